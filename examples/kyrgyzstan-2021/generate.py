"""Write the synthetic Kyrgyzstan 2021 election into a folder.

    python examples/kyrgyzstan-2021/generate.py --out DIR [--seed N]

writes DIR/definition.yaml, DIR/protocols-hand.csv, DIR/protocols-machine.csv and
DIR/mapping.yaml (the column mapping for `tallyroom import --format csv`). The same seed
always gives the same bytes. The work is done by `tallyroom.simulate.kyrgyzstan`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tallyroom.simulate.kyrgyzstan import write_example


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--seed", type=int, default=2021, help="random seed (default 2021)")
    args = parser.parse_args(argv)
    paths = write_example(args.out, args.seed)
    for path in paths.values():
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

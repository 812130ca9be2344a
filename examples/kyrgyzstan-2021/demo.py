"""`make demo` (for now): the Kyrgyzstan 2021 election, from scanner counts to the hand count.

In a fresh `demo/` folder at the top of the repository this generates the synthetic election
(`generate.py`), creates the store (`tallyroom init`), imports the scanner (machine) counts and
then the hand counts through the same checks and ledger as any station's protocol, and prints
the national party-list result of each count with `tallyroom results`. The hand count equals
the official 2021 result for the six parties that won seats; the demo checks that at the end.

    python examples/kyrgyzstan-2021/demo.py [--dir DIR] [--seed N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.simulate.kyrgyzstan_data import PARTIES, TOOK_PART, WINNER_VOTES

REPO = Path(__file__).resolve().parents[2]


def tallyroom(*args: str, capture: bool = False) -> str:
    """Run the `tallyroom` command line (the installed script beside this Python if any)."""
    script = Path(sys.executable).with_name("tallyroom")
    cmd = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from tallyroom.cli import main; main()"]
    )
    done = subprocess.run(
        [*cmd, *args], check=False, text=True, stdout=subprocess.PIPE if capture else None
    )
    if done.returncode != 0:
        sys.exit(f"demo: `tallyroom {' '.join(args)}` failed with exit code {done.returncode}")
    return done.stdout or ""


def _generic_csv_importer() -> bool:
    try:
        from tallyroom.importers.run import import_generic_csv  # noqa: F401
    except ImportError:
        return False
    return True


def import_counts(db: Path, paths: dict[str, Path], kind: str) -> None:
    csv_path = paths[kind]
    if _generic_csv_importer():
        tallyroom(
            "--db", str(db), "import", "--format", "csv", "--mapping", str(paths["mapping"]),
            "--count-kind", kind, str(csv_path),
        )
        return
    # Without the generic CSV importer: the same pipeline, called directly.
    from tallyroom.store.sql import open_store

    with open_store(str(db)) as store:
        report = kg.load_protocols(
            store,
            kg.read_protocols_csv(csv_path),
            kind,
            file_name=csv_path.name,
            file_hash=hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        )
    print(
        f"{csv_path.name}: {report.rows:,} rows, {report.accepted:,} protocols accepted, "
        f"{len(report.rejected):,} rejected"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=REPO / "demo", help="work folder (recreated)")
    parser.add_argument("--seed", type=int, default=2021)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()

    folder: Path = args.dir
    if folder.exists():
        shutil.rmtree(folder)
    paths = kg.write_example(folder, args.seed)
    print(f"generated the Kyrgyzstan 2021 example (seed {args.seed}) in {folder}")
    db = folder / "tallyroom.db"
    tallyroom("--db", str(db), "init", str(paths["definition"]))
    for kind in ("machine", "hand"):
        import_counts(db, paths, kind)
    for kind in ("machine", "hand"):
        print()
        tallyroom("--db", str(db), "results", "--contest", kg.PARTY_LIST, "--count-kind", kind)

    result = json.loads(
        tallyroom(
            "--db", str(db), "results", "--contest", kg.PARTY_LIST, "--count-kind", "hand",
            "--format", "json", capture=True,
        )
    )
    votes = {c["id"]: c["votes"] for c in result["choices"]}
    wrong = {p: (votes.get(p), v) for p, v in WINNER_VOTES.items() if votes.get(p) != v}
    took_part = result.get("took_part")
    print()
    if wrong or (took_part is not None and took_part != TOOK_PART):
        print(f"MISMATCH with the official 2021 result: {wrong}, took part {took_part}")
        return 1
    names = {p.id: p.en for p in PARTIES}
    print(
        f"the hand count equals the official 2021 result: {TOOK_PART:,} voters took part; "
        + ", ".join(f"{names[p]} {v:,}" for p, v in WINNER_VOTES.items())
    )
    print()
    seats = json.loads(
        tallyroom("--db", str(db), "seats", "--contest", kg.PARTY_LIST, "--format", "json", capture=True)
    )
    won = {name: n for name, n in seats["seats"].items() if n}
    print(
        f"list seats ({'official' if seats['official'] else 'provisional'}, Hare, 5% nationally and "
        "0.5% in every region of voters who took part): "
        + ", ".join(f"{name} {n}" for name, n in sorted(won.items(), key=lambda kv: -kv[1]))
    )
    if sorted(won.values(), reverse=True) != [15, 12, 9, 7, 6, 5]:
        print("MISMATCH with the official 2021 seats 15/12/9/7/6/5")
        return 1
    print(f"demo finished in {time.perf_counter() - t0:.1f} s; the store is {db}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How long `tallyroom verify` takes: the Kyrgyz-sized example and a 100,000-station election.

* **kg** — the generated Kyrgyzstan 2021 election (2,494 stations, 37 contests, machine and hand
  counts, ky/ru/en pages): target ≤ 10 s.
* **100k** — `tallyroom.simulate.large` with 100,000 stations (one party-list contest, ky/ru/en
  pages): target ≤ 2 minutes. Publishing it takes several minutes; pass `--dir` to keep and
  reuse the publish folder between runs.
* **ru** — the whole Russia 2016 Duma station file (Shpilkin's, 96,871 stations), imported and
  published with English pages, which must verify with no mismatch (the test suite verifies
  its first 1,500 rows in English and Russian; the whole file takes minutes to publish).

Each verification runs as its own `tallyroom verify` process (as an observer would run it);
reported: wall time, CPU time of the process and its workers (user and system), peak memory,
and the summary line. Other load on the machine is reported too (the load average before and
after the run), since the verification uses every core it is given.

    python benchmarks/bench_verify.py [--only kg|100k|ru] [--dir DIR] [--workers N] [--rounds 3]
        [--stations N] [--src SRC]

``--src`` runs the verifier of another checkout (for example a `git worktree` of an earlier
commit + /src) on the same folders, for before/after comparisons made back to back.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe

TALLYROOM = str(Path(sys.executable).with_name("tallyroom"))
TARGETS = {"kg": 10.0, "100k": 120.0, "ru": 120.0}
RUSSIA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ru_uik_shpilkin" / "2016.csv.zip"


def build_kg(folder: Path) -> Path:
    out = folder / "pub"
    if (out / "current").exists():
        return out
    from tallyroom.commission import create_key
    from tallyroom.definition.load import load_definition
    from tallyroom.publish.builder import Publisher
    from tallyroom.simulate import kyrgyzstan as kg
    from tallyroom.store.sql import open_store

    folder.mkdir(parents=True, exist_ok=True)
    definition = kg.generate_definition(2021)
    raw = kg.definition_yaml(definition)
    hand = kg.generate_protocols(definition, 2021)
    machine = kg.machine_counts(hand, 2021)
    db = folder / "kg.db"
    key = Path(str(db) + ".commission-key")
    signing = create_key(key, "tallyroom/kg-2021-parliament")
    store = open_store(str(db))
    store.initialize(load_definition(raw, "definition.yaml"), signing.verify_key.encode())
    kg.load_protocols(store, machine, "machine")
    kg.load_protocols(store, hand, "hand")
    t = time.perf_counter()
    outcome = Publisher(store, out, key).publish()
    assert outcome.status == "published", outcome.failures
    print(f"  published the Kyrgyz example in {time.perf_counter() - t:.0f} s", flush=True)
    store.close()
    return out


def build_large(folder: Path, stations: int) -> Path:
    out = folder / "pub"
    if (out / "current").exists():
        return out
    import msgspec

    from tallyroom.definition.model import Definition
    from tallyroom.simulate import large

    folder.mkdir(parents=True, exist_ok=True)
    raw = large.large_definition(stations)
    (folder / "definition.json").write_bytes(raw)
    definition = msgspec.json.decode(raw, type=Definition)
    large.write_protocols_csv(definition, folder / "protocols.csv")
    (folder / "mapping.yaml").write_text(large.mapping_yaml(definition))
    db = str(folder / "big.db")
    t = time.perf_counter()
    for args in (
        ["init", str(folder / "definition.json")],
        [
            "import",
            "--format",
            "csv",
            "--mapping",
            str(folder / "mapping.yaml"),
            str(folder / "protocols.csv"),
        ],
        ["publish", "--out", str(out)],
    ):
        subprocess.run([TALLYROOM, "--db", db, *args], check=True, capture_output=True)
    print(f"  built and published {stations:,} stations in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def build_russia(folder: Path) -> Path:
    out = folder / "pub"
    if (out / "current").exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    rows = folder / "2016.csv"
    with zipfile.ZipFile(RUSSIA) as zf:
        rows.write_bytes(zf.read("2016.csv"))
    db = str(folder / "ru.db")
    t = time.perf_counter()
    steps = (["import", "--format", "shpilkin", str(rows)], ["publish", "--out", str(out), "--lang", "en"])
    for args in steps:
        subprocess.run([TALLYROOM, "--db", db, *args], check=True, capture_output=True)
    print(f"  imported and published the Russia 2016 file in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def verify(
    source: Path, workers: int | None, src: Path | None = None
) -> tuple[float, float, float, float, str]:
    """(wall s, user CPU s and system CPU s of the process and its workers, peak MiB, summary
    line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    args = [TALLYROOM, "verify", str(source), "-q"] + ([f"--workers={workers}"] if workers else [])
    env = dict(os.environ, PYTHONPATH=str(src)) if src is not None else None
    t = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user = after.ru_utime - before.ru_utime
    system = after.ru_stime - before.ru_stime
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    if done.returncode != 0:
        raise SystemExit(f"verify exited {done.returncode}: {line}")
    return wall, user, system, after.ru_maxrss / 1024, line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["kg", "100k", "ru"])
    ap.add_argument("--dir", type=Path, default=None, help="Keep publish folders here (reused if present).")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stations", type=int, default=100_000)
    ap.add_argument("--src", type=Path, default=None, help="Verify with the tallyroom package in SRC.")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="tallyroom-bench-verify-"))
    print(f"machine: {describe()}")
    for name in ("kg", "100k", "ru"):
        if args.only and args.only != name:
            continue
        print(f"{name}: preparing …", flush=True)
        pub = (
            build_kg(base / "kg")
            if name == "kg"
            else build_russia(base / "ru")
            if name == "ru"
            else build_large(base / "large", args.stations)
        )
        files = sum(1 for _ in (pub / "current").resolve().rglob("*"))
        rounds = args.rounds if name == "kg" else 1
        best = None
        for _ in range(rounds):
            load = os.getloadavg()[0]
            result = verify(pub, args.workers, args.src)
            if best is None or result[0] < best[0]:
                best = (*result, load, os.getloadavg()[0])
        assert best is not None
        wall, user, system, peak, line, load, load_after = best
        verdict = "within" if wall <= TARGETS[name] else "OVER"
        print(
            f"{name}: {wall:6.1f} s wall, {user + system:6.1f} s CPU ({user:.1f} user + {system:.1f} sys), "
            f"peak {peak:,.0f} MiB, {files:,} files on disk, load average {load:.1f} before, "
            f"{load_after:.1f} after — {verdict} the {TARGETS[name]:.0f} s target"
        )
        print(f"  {line}")
        if name == "ru" and "against 96,871 signed protocols: 0 mismatches" not in line:
            raise SystemExit("the whole Russia 2016 file did not verify as 96,871 protocols, 0 mismatches")


if __name__ == "__main__":
    main()

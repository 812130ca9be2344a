"""A generated 1,000,000-station election: init, import, rebuild, the snapshot build and its
verification, each timed with its peak memory.

Each stage runs as its own `tallyroom` process (as a commission would run them), so the peak
resident memory reported is that stage's alone (the largest single process: the publisher's
and the verifier's forked workers share most of their parent's memory).

Usage: python benchmarks/bench_million.py [--stations N] [--dir DIR] [--no-publish] [--no-verify]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import msgspec
from _machine import describe

from tallyroom.definition.model import Definition
from tallyroom.simulate import large

TALLYROOM = str(Path(sys.executable).with_name("tallyroom"))


def stage(name: str, *args: str) -> tuple[float, float]:
    """Run one `tallyroom` command; print its wall and CPU time (with its worker processes),
    the load average when it started, and the peak resident memory of the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t = time.perf_counter()
    r = subprocess.run([TALLYROOM, *args], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        print(r.stdout, r.stderr)
        raise SystemExit(f"{name} failed")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    # ru_maxrss of children is the largest of any child so far: report it only when it grew.
    mib = max(after.ru_maxrss, before.ru_maxrss) / 1024
    print(
        f"{name:<16} {dt:7.1f} s  CPU {cpu:6.1f} s  load {load:4.1f}  peak {mib:6.0f} MiB  "
        f"{r.stdout.strip().splitlines()[-1][:100]}"
    )
    return dt, mib


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stations", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--no-publish", action="store_true", help="Stop after the rebuild.")
    ap.add_argument("--no-verify", action="store_true", help="Do not verify the snapshot.")
    args = ap.parse_args()
    d = Path(args.dir or tempfile.mkdtemp(prefix="tallyroom-million-"))
    d.mkdir(parents=True, exist_ok=True)
    for p in d.glob("big.db*"):
        p.unlink()
    t = time.perf_counter()
    raw = large.large_definition(args.stations)
    (d / "definition.json").write_bytes(raw)
    definition = msgspec.json.decode(raw, type=Definition)
    n = large.write_protocols_csv(definition, d / "protocols.csv")
    (d / "mapping.yaml").write_text(large.mapping_yaml(definition))
    del definition
    print(f"machine: {describe()}")
    print(
        f"generated {n:,} stations in {time.perf_counter() - t:.1f} s "
        f"(definition {len(raw) / 1e6:.0f} MB, protocols {(d / 'protocols.csv').stat().st_size / 1e6:.0f} MB)"
    )
    db = str(d / "big.db")
    t_init, m_init = stage("init", "--db", db, "init", str(d / "definition.json"))
    t_imp, m_imp = stage(
        "import (csv)",
        "--db",
        db,
        "import",
        "--format",
        "csv",
        "--mapping",
        str(d / "mapping.yaml"),
        str(d / "protocols.csv"),
    )
    stage("results", "--db", db, "results", "--format", "json")
    stage("rebuild --check", "--db", db, "rebuild", "--check")
    print(
        f"init + import: {t_init + t_imp:.1f} s for {n:,} stations "
        f"({n / (t_init + t_imp):,.0f} stations/s), peak memory {max(m_init, m_imp):,.0f} MiB"
    )
    if args.no_publish:
        return
    out = d / "publish"
    if out.exists():
        shutil.rmtree(out)
    stage("publish", "--db", db, "publish", "--out", str(out))
    files = sum(1 for _ in (out / "current").resolve().rglob("*"))
    size = sum(p.stat().st_size for p in (out / "current").resolve().rglob("*") if p.is_file())
    print(f"snapshot: {files:,} files, {size / 1e9:.2f} GB on disk")
    if not args.no_verify:
        stage("verify", "verify", str(out), "-q")


if __name__ == "__main__":
    main()

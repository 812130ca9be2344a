"""Import the Russia 2016 polling-station file end to end and compare with DuckDB.

Prints, from one run on this machine:
- DuckDB reading the same CSV and summing every protocol column (the baseline);
- tallyroom importing every protocol (parse, form and control rules, ledger entry with Merkle
  nodes, running tally, durable SQLite commit) into a store whose definition exists, the way
  `tallyroom import` does it (worker processes read and check, this process appends), and in
  one process;
- the same end to end including building the definition from the file;
- `rebuild` (recomputing every total from the ledger, reading it from the store).

Every timing is the best of `--repeat` runs, with its CPU time (this process and its worker
processes) and the load average when it ran: on a shared machine the wall time says as much
about the neighbours as about the code.

Usage: python benchmarks/bench_import.py [--db-dir DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe

from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.importers import shpilkin
from tallyroom.importers.run import shpilkin_into
from tallyroom.store.rebuild import rebuild_store
from tallyroom.store.sql import Store, open_store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ru_uik_shpilkin" / "2016.csv.zip"


def duckdb_sum(csv_path: Path) -> float:
    import duckdb

    con = duckdb.connect()
    cols = con.execute(f"DESCRIBE SELECT * FROM read_csv_auto('{csv_path}')").fetchall()
    numeric = [c[0] for c in cols if c[1] in ("BIGINT", "INTEGER")]
    quoted = ['"' + c.replace('"', '""') + '"' for c in numeric]
    sums = ", ".join(f"SUM({q})" for q in quoted)
    t = time.perf_counter()
    con.execute(f"SELECT COUNT(*), {sums} FROM read_csv_auto('{csv_path}')").fetchall()
    return time.perf_counter() - t


def cpu() -> float:
    """CPU seconds (user + system) of this process and of its finished worker processes."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


class Timed:
    """The best wall time of several runs, with that run's CPU time and load average."""

    def __init__(self) -> None:
        self.wall = float("inf")
        self.cpu = 0.0
        self.load = 0.0

    def run(self, fn: Callable[[], Any]) -> Any:
        load = os.getloadavg()[0]
        c, t = cpu(), time.perf_counter()
        out = fn()
        wall, used = time.perf_counter() - t, cpu() - c
        if wall < self.wall:
            self.wall, self.cpu, self.load = wall, used, load
        return out

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s (CPU {self.cpu:.2f} s, load {self.load:.1f})"


def fresh_store(tmp: Path, f: shpilkin.ShpilkinFile) -> Store:
    db = tmp / "protocols.db"
    for p in tmp.glob("protocols.db*"):
        p.unlink()
    store = open_store(str(db))
    store.initialize(load_definition(shpilkin.build_definition(f)), b"\x01" * 32)
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-dir", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(args.db_dir or tempfile.mkdtemp(prefix="tallyroom-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv_path = tmp / "2016.csv"
    with zipfile.ZipFile(DATA) as zf:
        csv_path.write_bytes(zf.read("2016.csv"))

    duck = min(duckdb_sum(csv_path) for _ in range(3))

    raw = csv_path.read_bytes()
    f = shpilkin.parse_header(csv_path.name, raw)
    t_def, t_cli, t_one = Timed(), Timed(), Timed()
    n = 0
    for _ in range(args.repeat):
        for timed, workers in ((t_cli, None), (t_one, 1)):
            store = t_def.run(lambda: fresh_store(tmp, f))
            report = timed.run(lambda s=store, w=workers: shpilkin_into(s, f, raw, CountKind.HAND, workers=w))
            n = report.accepted
            store.close()

    store = open_store(str(tmp / "protocols.db"))
    store.election()
    t_rebuild = Timed()
    for _ in range(args.repeat):
        rb = t_rebuild.run(lambda: rebuild_store(store))
    assert rb.tally.nonzero() == store.tally().nonzero()

    print(f"machine: {describe()}")
    print(f"Russia 2016: {n:,} protocols ({len(raw) / 1e6:.1f} MB CSV); best of {args.repeat} runs")
    print(f"duckdb read + sum all columns:              {duck:6.2f} s")
    print(f"definition build + init (96,871 stations): {t_def}")
    print(
        f"protocol import (parse, rules, ledger, tally, durable commit), as `tallyroom import`"
        f" ({min(2, os.cpu_count() or 1)} worker processes + the appending one):\n"
        f"    {t_cli} = {n / t_cli.wall:,.0f} protocols/s; ratio to duckdb {t_cli.wall / duck:.1f}x"
    )
    print(f"  the same in one process: {t_one} = {n / t_one.wall:,.0f} protocols/s")
    print(
        f"end to end incl. definition: {t_def.wall + t_cli.wall:6.2f} s"
        f" = {n / (t_def.wall + t_cli.wall):,.0f} protocols/s"
    )
    print(
        f"rebuild from the ledger (read + fold, as `tallyroom rebuild`): {t_rebuild}"
        f" = {rb.protocols / t_rebuild.wall:,.0f} protocols/s"
    )


if __name__ == "__main__":
    main()

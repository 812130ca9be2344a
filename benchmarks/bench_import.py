"""Import the Russia 2016 polling-station file end to end and compare with DuckDB.

Prints, from one run on this machine:
- DuckDB reading the same CSV and summing every protocol column (the baseline);
- tallyroom importing every protocol (parse, form and control rules, ledger entry with Merkle
  nodes, running tally, durable SQLite commit) into a store whose definition exists;
- the same end to end from the command line, including building the definition from the file;
- `rebuild` (recomputing every total from the ledger).

Usage: python benchmarks/bench_import.py [--db-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe

from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.importers import shpilkin
from tallyroom.importers.pipeline import file_sha256, import_rows
from tallyroom.store.sql import open_store
from tallyroom.tally.rebuild import rebuild

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-dir", type=Path, default=None)
    args = ap.parse_args()
    tmp = Path(args.db_dir or tempfile.mkdtemp(prefix="tallyroom-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv_path = tmp / "2016.csv"
    with zipfile.ZipFile(DATA) as zf:
        csv_path.write_bytes(zf.read("2016.csv"))

    duck = min(duckdb_sum(csv_path) for _ in range(3))

    raw = csv_path.read_bytes()
    f = shpilkin.parse_header(csv_path.name, raw)
    t0 = time.perf_counter()
    loaded = load_definition(shpilkin.build_definition(f))
    db = tmp / "protocols.db"
    for p in tmp.glob("protocols.db*"):
        p.unlink()
    store = open_store(str(db))
    store.initialize(loaded, b"\x01" * 32)
    t_def = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = import_rows(
        store,
        shpilkin.iter_rows(f),
        fmt="shpilkin",
        file_name=csv_path.name,
        file_hash=file_sha256(raw),
        count_kind=CountKind.HAND,
    )
    t_import = time.perf_counter() - t0
    n = report.accepted

    election = store.election()
    t0 = time.perf_counter()
    entries = [(i, d) for i, _k, d, _h in store.entries()]
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    rb = rebuild(election, entries)
    t_rebuild = time.perf_counter() - t0
    assert rb.tally.nonzero() == store.tally().nonzero()

    print(f"machine: {describe()}")
    print(f"Russia 2016: {n:,} protocols ({len(raw) / 1e6:.1f} MB CSV)")
    print(f"duckdb read + sum all columns:           {duck:6.2f} s")
    print(f"definition build + init (96,871 stations): {t_def:6.2f} s")
    print(
        f"protocol import (parse, rules, ledger, tally, durable commit): {t_import:6.2f} s"
        f" = {n / t_import:,.0f} protocols/s; ratio to duckdb {t_import / duck:.1f}x"
    )
    print(
        f"end to end incl. definition: {t_def + t_import:6.2f} s = {n / (t_def + t_import):,.0f} protocols/s"
    )
    print(
        f"rebuild from ledger: read {t_read:.2f} s + fold {t_rebuild:.2f} s"
        f" = {n / (t_read + t_rebuild):,.0f} protocols/s"
    )


if __name__ == "__main__":
    main()

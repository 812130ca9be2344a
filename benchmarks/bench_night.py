"""The election night at scale: 100,000 stations against SQLite and PostgreSQL (issue 7).

For each store this runs `tallyroom simulate`'s engine (tallyroom.simulate.run): it
generates a Kyrgyz-shaped election of --stations stations (400,000 protocols: two contests,
machine and hand counts), starts `tallyroom serve --publish-dir` on a loopback port
(--workers web workers and the one writer process, on either store), plays the night over
--duration seconds with the chosen faults, and reports:

* submissions/s: answered protocol submissions per second over the night, and at its busiest
  5 seconds;
* latency of a submission (from its first byte sent to its answer's last byte; signed,
  validated, durably committed, receipt issued): p50, p99, max;
* acceptance to publication: from each receipt to the first published snapshot (polled every
  0.2 s) whose ledger covers it: p50, p99, max;
* the final check's verdict (tally == truth, receipts proven, nothing forged counted, …),
  with `tallyroom verify` when --verify is given (it takes minutes at this size).

The client shares the machine with the server and the publisher (one asyncio process, up to
--connections keep-alive connections), as a device fleet on loopback would not: the numbers
are a floor. Nothing but 127.0.0.1 is contacted.

Usage: python benchmarks/bench_night.py [--stations 100000] [--store sqlite|postgresql|both]
       [--workers 3] [--duration 300] [--pg postgresql://…] [--faults none] [--verify]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe

from tallyroom.simulate.faults import describe as describe_faults
from tallyroom.simulate.faults import parse_faults
from tallyroom.simulate.run import SimulationConfig, SimulationResult, describe_result, simulate


@contextmanager
def pg_database(base: str) -> Iterator[str]:
    import psycopg

    name = f"tallyroom_night_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def night(args: argparse.Namespace, store: str, db: str | None, workers: int, work: Path) -> SimulationResult:
    config = SimulationConfig(
        stations=args.stations,
        seed=args.seed,
        rates=parse_faults(args.faults),
        duration=args.duration,
        db=db,
        workers=workers,
        work=work,
        keep=True,
        publish_every=args.publish_every,
        connections=args.connections,
        publish_wait=3600,
        give_up=1800,
        progress_every=30,
        verify=args.verify,
        max_prefix_checks=3,
    )
    t0 = time.monotonic()

    def say(line: str) -> None:
        print(f"  [{store}] {line}", flush=True)

    result = asyncio.run(simulate(config, say))
    for line in describe_result(result):
        say(line)
    say(result.summary)
    say(f"whole run {time.monotonic() - t0:.0f} s")
    return result


def row(store: str, workers: int, result: SimulationResult) -> str:
    m = result.metrics
    assert m is not None
    pub = (
        f"{m.publication_p50:.1f} / {m.publication_p99:.1f} / {m.publication_max:.1f} s"
        if m.publication_p50 is not None and m.publication_p99 is not None and m.publication_max is not None
        else "n/a"
    )
    return (
        f"| {store} | {workers} | {result.submissions:,} | {m.per_second:,.0f} | {m.peak_per_second:,.0f} | "
        f"{m.p50_ms:.0f} / {m.p99_ms:.0f} ms | {pub} | {m.snapshots} | "
        f"{'pass' if result.ok else 'FAIL: ' + result.summary.rsplit('FAILED: ', 1)[-1]} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds the arrivals are spread over")
    parser.add_argument(
        "--faults", default="none", help="all | none | light | a list (see tallyroom simulate)"
    )
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--workers", type=int, default=3, help="intake web workers (both stores)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("TALLYROOM_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL (a database is created and dropped)",
    )
    parser.add_argument("--publish-every", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--verify", action="store_true", help="also run `tallyroom verify` at the end")
    args = parser.parse_args(argv)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds the night: its server is stopped, its folder removed

    signal.signal(signal.SIGTERM, terminate)

    print(f"machine: {describe()}")
    print(
        f"night: {args.stations:,} stations, arrivals over {args.duration:g} s, faults: "
        f"{describe_faults(parse_faults(args.faults))}, a snapshot every {args.publish_every:g} s"
    )
    rows = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="tallyroom-bench-night-") as tmp:
        if args.store in ("sqlite", "both"):
            result = night(args, "sqlite", None, args.workers, Path(tmp) / "sqlite")
            rows.append(row("SQLite", args.workers, result))
            ok = ok and result.ok
        if args.store in ("postgresql", "both"):
            if not args.pg:
                print("PostgreSQL skipped: give --pg or set TALLYROOM_TEST_POSTGRES_URL")
            else:
                with pg_database(args.pg) as db:
                    result = night(args, "postgresql", db, args.workers, Path(tmp) / "postgresql")
                rows.append(row("PostgreSQL", args.workers, result))
                ok = ok and result.ok
    print()
    print(f"### Election night, {args.stations:,} stations (`bench_night.py`)")
    print()
    print(
        "| store | intake workers | submissions | per s (night) | per s (busiest 5 s) | latency p50 / p99 "
        "| receipt → public p50 / p99 / max | snapshots | final check |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

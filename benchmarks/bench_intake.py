"""Signed intake over HTTP on loopback: submissions/s, p99 at 1,000/s, ratio to a JSON echo.

For each store (SQLite file, PostgreSQL if TALLYROOM_TEST_POSTGRES_URL or --pg is set) this
starts `tallyroom serve` on a free loopback port with a synthetic election of --stations
stations (one party-list contest, three count kinds), pre-signs distinct protocols with the
stations' device keys, then measures with an asyncio HTTP/1.1 keep-alive client:

1. throughput: --connections concurrent connections each sending the next signed protocol
   as soon as the previous answer arrives (closed loop), --requests protocols in all;
   every answer must be 201 (signed, validated, durably committed, receipt issued);
2. latency: an open loop offering --rate submissions/s for --seconds, latency measured from
   each request's scheduled send time (no coordinated omission), p50/p99/max;
3. the same closed loop against `POST /api/v1/echo` on the same server (bare JSON echo),
   and the ratio intake/echo.

The client shares the machine's cores with the server, as a device fleet on loopback would
not; numbers are therefore a floor. Every loop is bounded in requests and seconds and talks
only to 127.0.0.1.

Usage: python benchmarks/bench_intake.py [--stations 12000] [--requests 20000]
       [--workers 1] [--pg postgresql://…] [--store sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _machine import describe

from support import kyrgyz_lines
from tallyroom.commission import create_key
from tallyroom.definition.load import load_definition
from tallyroom.intake.keys import generate_for
from tallyroom.store.sql import open_store

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "tallyroom"
KINDS = ("hand", "machine", "recount")


def definition(stations: int) -> bytes:
    """The small test election grown to N stations (JSON: quick for every worker to load)."""
    d = yaml.safe_load((ROOT / "tests" / "data" / "small.yaml").read_text())
    d["stations"] = [
        {"id": f"{i:06d}", "name": {"en": f"Station {i}"},
         "areas": ["chui" if i % 2 else "naryn"], "registered": 500 + i % 1500}
        for i in range(stations)
    ]
    d["contests"] = [c for c in d["contests"] if c["id"] == "party-list"]
    return json.dumps(d).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Prepared:
    db: str
    workdir: Path
    key_file: Path
    requests: list[bytes]  # full HTTP requests, signed


def prepare(db: str, workdir: Path, stations: int, count: int) -> Prepared:
    loaded = load_definition(definition(stations), "bench.json")
    key_file = workdir / "commission.key"
    ck = create_key(key_file, "tallyroom/small-2021")
    store = open_store(db)
    store.initialize(loaded, ck.verify_key.encode())
    election = store.election()
    keys = {k.station: k for k in generate_for(
        store, [s.id for s in election.stations], workdir / "keys", "bench")}
    store.close()
    contest = election.contest("party-list")
    choices = list(contest.choice_ids)
    rng = random.Random(1)
    reqs: list[bytes] = []
    for n in range(count):
        st = election.stations[n % len(election.stations)]
        kind = KINDS[(n // len(election.stations)) % len(KINDS)]
        body = json.dumps({
            "election": election.sha256, "station": st.id, "contest": "party-list",
            "count_kind": kind, "lines": kyrgyz_lines(choices, st.registered, rng), "sequence": n,
        }, separators=(",", ":")).encode()
        h = keys[st.id].headers(body)
        reqs.append(
            b"POST /api/v1/protocols HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"X-Tallyroom-Key-Id: {h['X-Tallyroom-Key-Id']}\r\n"
              f"X-Tallyroom-Signature: {h['X-Tallyroom-Signature']}\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    return Prepared(db, workdir, key_file, reqs)


def echo_requests(prepared: Prepared) -> Iterator[bytes]:
    for r in prepared.requests:
        _head, _, body = r.partition(b"\r\n\r\n")
        yield (b"POST /api/v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


class Server:
    def __init__(self, p: Prepared, workers: int, server: str = "granian") -> None:
        self.port = free_port()
        env = {**os.environ, "TALLYROOM_COMMISSION_KEY": str(p.key_file)}
        self.log = open(p.workdir / "serve.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN), "--db", p.db, "serve", "--port", str(self.port), "--workers", str(workers),
             "--server", server],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=p.workdir,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError((p.workdir / "serve.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Conn:
    """One keep-alive HTTP/1.1 connection; the server always sends Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, requests: list[bytes], connections: int,
                      time_limit: float) -> tuple[float, dict[int, int]]:
    it = iter(requests)
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + time_limit

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            for req in it:
                s = await conn.send(req)
                statuses[s] = statuses.get(s, 0) + 1
                if time.perf_counter() > deadline:
                    break
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    dt = time.perf_counter() - t0
    return sum(statuses.values()) / dt, statuses


async def open_loop(port: int, requests: list[bytes], rate: float,
                    seconds: float) -> tuple[list[float], dict[int, int], float]:
    n = min(len(requests), int(rate * seconds))
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(256):
        pool.put_nowait(await Conn.open(port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    t0 = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        at = t0 + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await pool.get()
        try:
            s = await conn.send(requests[i])
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - at)
        statuses[s] = statuses.get(s, 0) + 1

    await asyncio.gather(*(one(i) for i in range(n)))
    achieved = n / (time.perf_counter() - t0)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, statuses, achieved


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100 * len(v)))] * 1000


@dataclass
class Result:
    store: str
    workers: int
    rate: float
    statuses: dict[int, int]
    echo_rate: float
    p50: float
    p99: float
    pmax: float
    offered: float
    achieved: float
    open_statuses: dict[int, int]


def run_store(label: str, db: str, workdir: Path, args: argparse.Namespace) -> Result:
    total = args.requests + int(args.rate * args.seconds)
    t = time.perf_counter()
    p = prepare(db, workdir, args.stations, total)
    print(f"[{label}] prepared {total:,} signed protocols for {args.stations:,} stations "
          f"in {time.perf_counter() - t:.1f} s", flush=True)
    server = Server(p, args.workers, args.server)
    try:
        loop = asyncio.new_event_loop()
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:
            pass
        warm = p.requests[: args.requests]
        lat_reqs = p.requests[args.requests:]
        rate, statuses = loop.run_until_complete(
            closed_loop(server.port, warm, args.connections, args.time_limit))
        latencies, open_statuses, achieved = loop.run_until_complete(
            open_loop(server.port, lat_reqs, args.rate, args.seconds))
        echo_rate, _ = loop.run_until_complete(
            closed_loop(server.port, list(echo_requests(p))[: args.requests], args.connections,
                        args.time_limit))
        loop.close()
    finally:
        server.stop()
    return Result(label, args.workers, rate, statuses, echo_rate, pct(latencies, 50),
                  pct(latencies, 99), max(latencies) * 1000, args.rate, achieved, open_statuses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=12_000)
    ap.add_argument("--requests", type=int, default=20_000, help="closed-loop requests per store")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--time-limit", type=float, default=60.0, help="cap per closed loop, seconds")
    ap.add_argument("--rate", type=float, default=1000.0, help="offered rate of the open loop")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the open loop")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--server", choices=["granian", "uvicorn"], default="uvicorn")
    ap.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--pg", default=os.environ.get("TALLYROOM_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    need = args.requests + int(args.rate * args.seconds)
    if need > args.stations * len(KINDS):
        ap.error(f"--stations {args.stations} gives {args.stations * 3:,} distinct protocols; "
                 f"{need:,} are needed")
    results = []
    with tempfile.TemporaryDirectory(prefix="tallyroom-bench-intake-") as tmp:
        if args.store in ("sqlite", "both"):
            d = Path(tmp) / "sqlite"
            d.mkdir()
            results.append(run_store("sqlite", str(d / "store.db"), d, args))
        if args.store in ("postgresql", "both"):
            if not args.pg:
                print("PostgreSQL skipped: set TALLYROOM_TEST_POSTGRES_URL or --pg")
            else:
                import psycopg

                name = f"tallyroom_bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(args.pg, autocommit=True) as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    d = Path(tmp) / "pg"
                    d.mkdir()
                    url = f"{args.pg.rpartition('/')[0]}/{name}"
                    results.append(run_store("postgresql", url, d, args))
                finally:
                    with psycopg.connect(args.pg, autocommit=True) as admin:
                        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      "WHERE datname = %s", (name,))
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    print()
    print(f"Machine: {describe()}")
    print(f"Intake benchmark: {args.stations:,} stations, {args.connections} connections, "
          f"{args.workers} worker(s), {args.server}; client on the same machine")
    print()
    print("| store | signed submissions/s (closed loop) | JSON echo/s | intake/echo | "
          f"p50 / p99 / max at {args.rate:,.0f}/s offered (ms) | achieved/s | answers |")
    print("|---|---:|---:|---:|---|---:|---|")
    for r in results:
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted({**r.statuses}.items()))
        open_answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.open_statuses.items()))
        print(f"| {r.store} | {r.rate:,.0f} | {r.echo_rate:,.0f} | {r.rate / r.echo_rate:.2f} | "
              f"{r.p50:.1f} / {r.p99:.1f} / {r.pmax:.1f} | {r.achieved:,.0f} | "
              f"{answers}; open loop {open_answers} |")
    bad = [r for r in results if set(r.statuses) != {201} or set(r.open_statuses) != {201}]
    if bad:
        print("warning: some answers were not 201 (see the table)")
        sys.exit(1)


if __name__ == "__main__":
    main()

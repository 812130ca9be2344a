"""Signed intake over HTTP on loopback: submissions/s, p99 at 1,000/s, ratio to a JSON echo.

For each store (SQLite file, PostgreSQL if TALLYROOM_TEST_POSTGRES_URL or --pg is set) this
starts `tallyroom serve` on a free loopback port with a synthetic election of --stations
stations (one party-list contest, three count kinds), pre-signs distinct protocols with the
stations' device keys, writes them (full HTTP requests: headers and body) to files, then:

1. throughput: wrk (a C load generator, so the client takes little of the two cores) with a
   Lua script that sends each pre-signed request once over --connections keep-alive
   connections for --duration seconds (closed loop) and counts every answer's status; every
   answer must be 201 (signed, validated, durably committed, receipt stored and issued). A
   thread that runs out of distinct protocols is reported (its resends would be cheap 200s);
2. latency: an asyncio client offering --rate submissions/s for --seconds (open loop), each
   latency measured from the request's scheduled send time, so a stalled server cannot hide
   its queue (no coordinated omission); p50/p99/max and every answer's status;
3. the same wrk closed loop against `POST /api/v1/echo` on the same server (a bare JSON echo
   of the same bodies), and the ratio intake/echo.

The load average (1 min) is printed before and after each phase, and the CPU time the server
processes and the client spent per answer in each closed loop: the machine is
shared, so compare designs in back-to-back runs. Without wrk (or with --client python) the
closed loop falls back to the asyncio client, which itself takes most of a core.

Usage: python benchmarks/bench_intake.py [--stations 20000] [--duration 10]
       [--workers 2] [--pg postgresql://…] [--store sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe

from tallyroom.commission import create_key
from tallyroom.definition.load import load_definition
from tallyroom.intake.keys import generate_for
from tallyroom.store.sql import open_store

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "tallyroom"
KINDS = ("hand", "machine", "recount")
WRK = shutil.which("wrk")

#: wrk script: each thread sends its own slice of pre-signed requests, once each, in order,
#: and counts the status of every answer. Files: "<len>\n<request bytes>" repeated.
LUA = r"""
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1] .. "." .. id, "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local pos = 1
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    reqs[#reqs + 1] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
  sent = 0
  exhausted = 0
  statuses = {}
end

function request()
  sent = sent + 1
  if sent > #reqs then
    exhausted = 1
    sent = 1
  end
  return reqs[sent]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  local out = 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
    out = out + t:get("exhausted")
  end
  for k, v in pairs(total) do io.write(string.format("TALLYROOM status %d %d\n", k, v)) end
  io.write(string.format("TALLYROOM duration_us %d\n", summary.duration))
  io.write(string.format("TALLYROOM exhausted %d\n", out))
  io.write(string.format("TALLYROOM socket_errors %d\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live descendants."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                rest = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            stats[int(entry.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0))[1] / tick
        todo += [p for p, (ppid, _) in stats.items() if ppid == pid]
    return total


def db_cpu() -> float:
    """CPU seconds used so far by every live `postgres` process (the database's share;
    it includes other databases' work on a shared server, so read it next to the load)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                head, _, rest = (entry / "stat").read_text().rpartition(")")
            except OSError:
                continue
            if head.endswith("(postgres"):
                fields = rest.split()
                total += int(fields[11]) + int(fields[12])
    return total / tick


def client_cpu() -> float:
    """CPU seconds of this process and its waited-for children (wrk)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


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


def kyrgyz_lines(choices: list[str], registered: int, rng: random.Random) -> dict[str, int]:
    """A protocol of the Kyrgyz form that passes every error rule (valid votes split at
    random cut points, so preparing 60,000 of them takes seconds, not a minute)."""
    additional = rng.randint(0, registered // 50)
    voters = registered + additional
    issued_station = rng.randint(0, voters * 6 // 10)
    issued_outside = rng.randint(0, min(30, voters - issued_station))
    issued = issued_station + issued_outside
    received = issued + rng.randint(0, 200)
    in_mobile = rng.randint(0, issued_outside)
    in_stationary = rng.randint(0, issued - in_mobile) if issued > in_mobile else 0
    cast = in_mobile + in_stationary
    invalid = rng.randint(0, cast // 10)
    valid = cast - invalid
    cuts = sorted(rng.randint(0, valid) for _ in range(len(choices) - 1))
    votes = [b - a for a, b in zip([0, *cuts], [*cuts, valid], strict=True)]
    lines = {
        "registered_main": registered, "registered_additional": additional,
        "ballots_received": received, "issued_early": 0, "issued_station": issued_station,
        "issued_outside": issued_outside, "cancelled": received - issued,
        "in_stationary_boxes": in_stationary, "in_mobile_boxes": in_mobile,
        "invalid": invalid, "valid": valid,
    }
    lines.update(zip(choices, votes, strict=True))
    return lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Prepared:
    db: str
    workdir: Path
    key_file: Path
    requests: list[bytes]  # full HTTP requests, signed, each a distinct protocol


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


def echo_requests(requests: list[bytes]) -> Iterator[bytes]:
    for r in requests:
        _head, _, body = r.partition(b"\r\n\r\n")
        yield (b"POST /api/v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


class Server:
    def __init__(self, p: Prepared, workers: int, server: str, extra: list[str]) -> None:
        self.port = free_port()
        env = {**os.environ, "TALLYROOM_COMMISSION_KEY": str(p.key_file)}
        self.log = open(p.workdir / "serve.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(BIN), "--db", p.db, "serve", "--port", str(self.port), "--workers", str(workers),
             "--server", server, *extra],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=p.workdir,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError((p.workdir / "serve.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        time.sleep(1.0 + 0.5 * workers)  # every worker has loaded the election and its keys

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


# -- the closed loop with wrk -------------------------------------------------------------


@dataclass
class Closed:
    rate: float  # 201 (or, for the echo, 200) answers per second
    statuses: dict[int, int]
    exhausted: bool
    seconds: float
    #: CPU time per answer of the server's processes and of the client (µs).
    server_us: float = 0.0
    client_us: float = 0.0
    db_us: float = 0.0


def measured(server_pid: int, run: Callable[[], Closed]) -> Closed:
    """Run a closed loop and add the CPU time it cost the server and the client."""
    s0, c0, d0 = tree_cpu(server_pid), client_cpu(), db_cpu()
    r = run()
    s1, c1, d1 = tree_cpu(server_pid), client_cpu(), db_cpu()
    n = max(1, sum(r.statuses.values()))
    r.server_us = (s1 - s0) / n * 1e6
    r.client_us = (c1 - c0) / n * 1e6
    r.db_us = (d1 - d0) / n * 1e6
    return r


def wrk_closed_loop(port: int, path: str, requests: list[bytes], connections: int,
                    threads: int, duration: float, workdir: Path, ok: int) -> Closed:
    assert WRK is not None
    script = workdir / "bench.lua"
    script.write_text(LUA)
    base = workdir / f"reqs-{uuid.uuid4().hex[:8]}"
    for t in range(threads):
        with open(f"{base}.{t + 1}", "wb") as fh:
            for r in requests[t::threads]:
                fh.write(f"{len(r)}\n".encode())
                fh.write(r)
    out = subprocess.run(
        [WRK, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
         "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}{path}", "--", str(base)],
        capture_output=True, text=True, timeout=duration + 120, check=False,
    )
    for t in range(threads):
        Path(f"{base}.{t + 1}").unlink(missing_ok=True)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-2000:]}{out.stdout[-2000:]}")
    statuses: dict[int, int] = {}
    seconds = duration
    exhausted = False
    for m in re.finditer(r"^TALLYROOM (\w+) (\d+)(?: (\d+))?$", out.stdout, re.M):
        if m[1] == "status":
            statuses[int(m[2])] = int(m[3])
        elif m[1] == "duration_us":
            seconds = int(m[2]) / 1e6
        elif m[1] == "exhausted":
            exhausted = int(m[2]) > 0
        elif m[1] == "socket_errors" and int(m[2]):
            statuses[0] = int(m[2])  # 0: a socket error or timeout
    return Closed(statuses.get(ok, 0) / seconds, statuses, exhausted, seconds)


# -- the asyncio client (open loop; closed loop without wrk) -----------------------------


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


async def py_closed_loop(port: int, requests: list[bytes], connections: int, duration: float,
                         ok: int) -> Closed:
    it = iter(requests)
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    exhausted = [True]

    async def worker() -> None:
        conn = await Conn.open(port)
        try:
            for req in it:
                s = await conn.send(req)
                statuses[s] = statuses.get(s, 0) + 1
                if time.perf_counter() > deadline:
                    exhausted[0] = False
                    break
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    dt = time.perf_counter() - t0
    return Closed(statuses.get(ok, 0) / dt, statuses, exhausted[0], dt)


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
    intake: Closed
    echo: Closed
    p50: float
    p99: float
    pmax: float
    achieved: float
    open_statuses: dict[int, int]
    load: list[str]


def run_store(label: str, db: str, workdir: Path, args: argparse.Namespace) -> Result:
    n_open = int(args.rate * args.seconds)
    total = args.warmup + args.requests + n_open
    t = time.perf_counter()
    p = prepare(db, workdir, args.stations, total)
    print(f"[{label}] prepared {total:,} signed protocols for {args.stations:,} stations "
          f"in {time.perf_counter() - t:.1f} s", flush=True)
    warm = p.requests[: args.warmup]
    closed = p.requests[args.warmup: args.warmup + args.requests]
    lat_reqs = p.requests[args.warmup + args.requests:]
    echo = list(echo_requests(closed))
    extra = ["--max-batch", str(args.max_batch)] if args.max_batch else []
    server = Server(p, args.workers, args.server, extra)
    load = [loadavg()]
    loop = asyncio.new_event_loop()
    try:
        if warm:
            loop.run_until_complete(py_closed_loop(server.port, warm, 16, 30.0, 201))
        pid = server.proc.pid
        if args.client == "wrk":
            intake = measured(pid, lambda: wrk_closed_loop(
                server.port, "/api/v1/protocols", closed, args.connections, args.wrk_threads,
                args.duration, workdir, 201))
        else:
            intake = measured(pid, lambda: loop.run_until_complete(
                py_closed_loop(server.port, closed, args.connections, args.duration, 201)))
        load.append(loadavg())
        time.sleep(1.0)  # let the last batch commit
        latencies, open_statuses, achieved = loop.run_until_complete(
            open_loop(server.port, lat_reqs, args.rate, args.seconds))
        load.append(loadavg())
        if args.client == "wrk":
            echo_r = measured(pid, lambda: wrk_closed_loop(
                server.port, "/api/v1/echo", echo, args.connections, args.wrk_threads,
                args.duration, workdir, 200))
        else:
            echo_r = measured(pid, lambda: loop.run_until_complete(
                py_closed_loop(server.port, echo, args.connections, args.duration, 200)))
        load.append(loadavg())
    finally:
        loop.close()
        server.stop()
    print(f"[{label}] intake {intake.rate:,.0f}/s {intake.statuses} (server CPU "
          f"{intake.server_us:,.0f} µs, client {intake.client_us:,.0f} µs, postgres processes "
          f"{intake.db_us:,.0f} µs per submission), "
          f"echo {echo_r.rate:,.0f}/s ({echo_r.server_us:,.0f} µs), p99 {pct(latencies, 99):.1f} ms, "
          f"load {' '.join(load)}", flush=True)
    return Result(label, intake, echo_r, pct(latencies, 50), pct(latencies, 99),
                  max(latencies) * 1000, achieved, open_statuses, load)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stations", type=int, default=25_000)
    ap.add_argument("--requests", type=int, default=65_000,
                    help="distinct protocols for the closed loop (enough for --duration)")
    ap.add_argument("--warmup", type=int, default=2_000, help="protocols sent before measuring")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of each closed loop")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--client", choices=["wrk", "python"], default="wrk" if WRK else "python")
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1000.0, help="offered rate of the open loop")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the open loop")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-batch", type=int, default=0, help="passed to serve when set")
    ap.add_argument("--server", choices=["granian", "uvicorn"], default="uvicorn")
    ap.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--pg", default=os.environ.get("TALLYROOM_TEST_POSTGRES_URL"))
    args = ap.parse_args()
    need = args.warmup + args.requests + int(args.rate * args.seconds)
    if need > args.stations * len(KINDS):
        ap.error(f"--stations {args.stations} gives {args.stations * 3:,} distinct protocols; "
                 f"{need:,} are needed")
    if args.client == "wrk" and WRK is None:
        ap.error("wrk is not installed; use --client python")
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
          f"{args.workers} worker(s), {args.server}; closed loop by {args.client} "
          f"({args.duration:g} s), open loop by asyncio; client on the same machine")
    print()
    print("| store | signed submissions/s (closed loop) | JSON echo/s | intake/echo | "
          f"p50 / p99 / max at {args.rate:,.0f}/s offered (ms) | achieved/s | server CPU per "
          "submission / echo (µs) | client CPU per submission (µs) | load avg (start, after "
          "intake, after latency, after echo) | answers |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---|---|")
    for r in results:
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.intake.statuses.items()))
        open_answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.open_statuses.items()))
        print(f"| {r.store} | {r.intake.rate:,.0f} | {r.echo.rate:,.0f} | "
              f"{r.intake.rate / r.echo.rate:.2f} | {r.p50:.1f} / {r.p99:.1f} / {r.pmax:.1f} | "
              f"{r.achieved:,.0f} | {r.intake.server_us:,.0f} / {r.echo.server_us:,.0f} | "
              f"{r.intake.client_us:,.0f} | {' / '.join(r.load)} | "
              f"closed loop {answers}; open loop {open_answers} |")
    print()
    print("Server CPU counts the server's own processes (not PostgreSQL's); on PostgreSQL the "
          "database's CPU comes on top.")
    bad = [r for r in results if set(r.intake.statuses) != {201} or set(r.open_statuses) != {201}
           or set(r.echo.statuses) != {200}]
    short = [r for r in results if r.intake.exhausted]
    if short:
        print("warning: the closed loop ran out of distinct protocols (raise --requests and "
              "--stations); its resends were answered 200")
    if bad or short:
        print("warning: some answers were not 201 (see the table)")
        sys.exit(1)


if __name__ == "__main__":
    main()

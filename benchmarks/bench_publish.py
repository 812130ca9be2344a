"""Publish and serve the Kyrgyzstan-2021-sized election (2,494 stations, 37 contests, ky/ru/en).

Measures, in one run:

* snapshot build time: the first (full) snapshot and incremental snapshots after 10 new
  protocols each (median of --rounds);
* requests per second for the national page and its JSON from ``current``, served by the app
  (tallyroom.web.site under uvicorn, 2 workers) and by nginx (deploy/nginx.conf, 2 workers),
  with wrk when installed (apt-get install wrk), otherwise an asyncio client; and the ratio
  app / nginx from the same run.

    python benchmarks/bench_publish.py [--rounds 3] [--seconds 5] [--connections 64] [--no-serve]

Traffic goes to 127.0.0.1 only and every load run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "publish"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe  # noqa: E402

from tallyroom.commission import create_key  # noqa: E402
from tallyroom.definition.load import load_definition  # noqa: E402
from tallyroom.publish.builder import Publisher  # noqa: E402
from tallyroom.simulate import kyrgyzstan as kg  # noqa: E402
from tallyroom.store.sql import open_store  # noqa: E402

PATHS = ("/en/index.html", "/api/v1/results/index.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def build(folder: Path, rounds: int) -> tuple[Path, dict[str, float]]:
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
    kg.load_protocols(store, hand[:3000], "hand")
    out = folder / "pub"
    publisher = Publisher(store, out, key)
    t0 = time.perf_counter()
    first = publisher.publish()
    full = time.perf_counter() - t0
    assert first.status == "published", first.failures
    times = []
    for i in range(rounds):
        kg.load_protocols(store, hand[3000 + 10 * i : 3010 + 10 * i], "hand")
        t0 = time.perf_counter()
        o = publisher.publish()
        times.append(time.perf_counter() - t0)
        assert o.status == "published", o.failures
    store.close()
    return out, {
        "full_s": full,
        "incremental_s": statistics.median(times),
        "pages_full": first.pages_rendered,
        "files_full": first.written,
    }


def wrk(url: str, seconds: int, connections: int) -> float:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", "Accept-Encoding: br, gzip", url],
        capture_output=True, text=True, timeout=seconds + 30,
    )
    m = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if "Non-2xx" in done.stdout or "Socket errors" in done.stdout:
        raise RuntimeError(f"errors under load at {url}: {done.stdout}")
    if not m:
        raise RuntimeError(f"wrk said: {done.stdout}{done.stderr}")
    return float(m.group(1))


async def _client(url: str, seconds: int, connections: int) -> float:
    import httpx

    count = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, headers={"accept-encoding": "br, gzip"}) as c:

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < deadline:
                r = await c.get(url)
                r.raise_for_status()
                count += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return count / seconds


def load(url: str, seconds: int, connections: int) -> float:
    if shutil.which("wrk"):
        return wrk(url, seconds, connections)
    return asyncio.run(_client(url, seconds, min(connections, 32)))


def serve_and_measure(out: Path, seconds: int, connections: int) -> dict[str, float]:
    from nginx_support import nginx_binary, running_nginx

    results: dict[str, float] = {}
    port = free_port()
    env = {**os.environ, "TALLYROOM_PUBLISH_DIR": str(out)}
    app = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tallyroom.web.site:app_from_env",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "2", "--log-level", "warning",
         "--no-access-log", "--http", "httptools", "--loop", "uvloop"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        time.sleep(1.0)
        for path in PATHS:
            load(f"http://127.0.0.1:{port}{path}", 1, connections)  # warm the cache
            results[f"app {path}"] = load(f"http://127.0.0.1:{port}{path}", seconds, connections)
    finally:
        app.terminate()
        app.wait(timeout=15)
    if nginx_binary() is None:
        return results
    with tempfile.TemporaryDirectory() as tmp, running_nginx(out, Path(tmp), workers=2) as base:
        for path in PATHS:
            results[f"nginx {path}"] = load(base + path, seconds, connections)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--no-serve", action="store_true")
    args = ap.parse_args()
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        out, build_times = build(Path(tmp), args.rounds)
        print(
            f"snapshot build, Kyrgyzstan-sized (2,494 stations, ky/ru/en): full "
            f"{build_times['full_s']:.2f} s ({int(build_times['pages_full']):,} pages, "
            f"{int(build_times['files_full']):,} files); incremental after 10 protocols "
            f"{build_times['incremental_s']:.2f} s (median of {args.rounds})"
        )
        if args.no_serve:
            return 0
        tool = "wrk" if shutil.which("wrk") else "asyncio client"
        rates = serve_and_measure(out, args.seconds, args.connections)
        for name, rate in rates.items():
            how = f"{tool}, {args.connections} connections, {args.seconds} s"
            print(f"{name}: {rate:,.0f} requests/s ({how})")
        for path in PATHS:
            a, n = rates.get(f"app {path}"), rates.get(f"nginx {path}")
            if a and n:
                print(f"ratio app/nginx {path}: {a / n:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

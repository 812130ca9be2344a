"""Publish and serve the Kyrgyzstan-2021-sized election (2,494 stations, 37 contests, ky/ru/en).

Measures, in one run:

* snapshot build time: the first (full) snapshot and incremental snapshots after 10 new
  protocols each (median of --rounds), both for a publisher that links unchanged files at
  publish time and for a continuous publisher (``prestage``: the next staging folder is linked
  in the background between snapshots; the time that takes is printed too);
* requests per second for the national page and its JSON from ``current``, served by the app
  (tallyroom.web.site under uvicorn, 2 workers) and by nginx (deploy/nginx.conf, 2 workers),
  with wrk when installed (apt-get install wrk), otherwise an asyncio client; and the ratio
  app / nginx from the same run.

    python benchmarks/bench_publish.py [--rounds 3] [--seconds 5] [--connections 64] [--no-serve]
        [--baseline SRC]   also measure the builds with the tallyroom package in SRC (for
                           example a `git worktree` of an earlier commit + /src), back to back
        [--stations N]     also time a full build of a generated N-station election
                           (tallyroom.simulate.large; 100,000 is issue 5's target)
        [--work DIR]       build in DIR (removed at the end) instead of the temporary folder

Builds run in child processes (the one measured imports its own tallyroom), each opening a
store that another process made, as the publisher process of `tallyroom serve` does. Traffic
goes to 127.0.0.1 only and every load run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "publish"))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe, file_creation_us  # noqa: E402

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


def _kg_store(folder: Path) -> tuple[Any, Path, list[Any]]:
    from tallyroom.commission import create_key
    from tallyroom.definition.load import load_definition
    from tallyroom.simulate import kyrgyzstan as kg
    from tallyroom.store.sql import open_store

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
    return store, key, hand


def _stored(what: str, arg: int, folder: Path) -> None:
    """Make the election's store in ``folder`` in a process of its own, which exits. The
    builds are measured in a process that opens the store from disk, as the publisher
    process of `tallyroom serve` and `tallyroom publish` do: not in the one that generated
    and signed the protocols, whose heap (twice the publisher's at the Kyrgyz size) every
    forked page worker would inherit."""
    done = subprocess.run(
        [sys.executable, __file__, "--_store", what, str(arg), str(folder)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"making the {what} store failed:\n{done.stdout}\n{done.stderr}")


def _publisher(store: Any, out: Path, key: Path, prestage: bool) -> Any:
    from tallyroom.publish.builder import Publisher

    if prestage:
        try:
            return Publisher(store, out, key, prestage=True)
        except TypeError:  # a version without prestaging
            return None
    return Publisher(store, out, key)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the forked page renderers)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure_kg(folder: Path, rounds: int) -> dict[str, Any]:
    """Full build, then incremental builds after 10 new protocols (in this process, which
    opens the store another made: see :func:`_stored`)."""
    from tallyroom.simulate import kyrgyzstan as kg
    from tallyroom.store.sql import open_store

    out: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    for mode in ("linking", "prestage"):
        sub = folder / mode
        sub.mkdir()
        _stored("kg", 0, sub)
        store = open_store(str(sub / "kg.db"))
        key = sub / "kg.db.commission-key"
        publisher = _publisher(store, sub / "pub", key, mode == "prestage")
        if publisher is None:
            store.close()
            continue
        c0, t0 = _cpu(), time.perf_counter()
        first = publisher.publish()
        full = time.perf_counter() - t0
        full_cpu = _cpu() - c0
        assert first.status == "published", first.failures
        # The protocols that arrive between the incremental snapshots (the same seed as the
        # store's, made only now: the full build ran in a process without them).
        hand = kg.generate_protocols(kg.generate_definition(2021), 2021)
        times, cpus, prestaged, steps = [], [], [], []
        for i in range(rounds):
            kg.load_protocols(store, hand[3000 + 10 * i : 3010 + 10 * i], "hand")
            if mode == "prestage":
                prestaged.append(publisher.wait_prestaged())  # the interval between snapshots
            c0, t0 = _cpu(), time.perf_counter()
            o = publisher.publish()
            times.append(time.perf_counter() - t0)
            cpus.append(_cpu() - c0)
            steps.append(o.timings)
            assert o.status == "published", o.failures
        if hasattr(publisher, "close"):
            publisher.close()
        store.close()
        out[mode] = {
            "full_s": full,
            "full_cpu_s": full_cpu,
            "full_steps": first.timings,
            "incremental_s": statistics.median(times),
            "incremental_cpu_s": statistics.median(cpus),
            "incremental_all_s": times,
            "incremental_steps": steps[len(steps) // 2],
            "prestage_s": statistics.median(prestaged) if prestaged else None,
            "pages_full": first.pages_rendered,
            "files_full": first.written,
        }
    out["load_after"] = os.getloadavg()[0]
    return out


def measure_large(folder: Path, stations: int) -> dict[str, Any]:
    """A full build of a generated election of ``stations`` stations (in this process, which
    opens the store another made: see :func:`_stored`)."""
    from tallyroom.store.sql import open_store

    _stored("large", stations, folder)
    store = open_store(str(folder / "big.db"))
    publisher = _publisher(store, folder / "pub", folder / "big.db.commission-key", False)
    load = os.getloadavg()[0]
    c0, t0 = _cpu(), time.perf_counter()
    o = publisher.publish()
    full = time.perf_counter() - t0
    cpu = _cpu() - c0
    assert o.status == "published", o.failures
    store.close()
    return {
        "stations": stations,
        "full_s": full,
        "cpu_s": cpu,
        "steps": o.timings,
        "files": o.written,
        "pages": o.pages_rendered,
        "load": load,
    }


def _large_store(folder: Path, stations: int) -> None:
    """The store of a generated election of ``stations`` stations, one hand count each."""
    import msgspec

    from tallyroom.commission import create_key
    from tallyroom.definition.load import load_definition
    from tallyroom.definition.model import CountKind, Definition
    from tallyroom.importers.pipeline import ImportRow, import_rows
    from tallyroom.simulate import large
    from tallyroom.store.sql import open_store

    raw = large.large_definition(stations)
    definition = msgspec.json.decode(raw, type=Definition)
    db = folder / "big.db"
    key = Path(str(db) + ".commission-key")
    # verify checks that the checkpoints are signed under the definition's origin (the name
    # `tallyroom init` gives the key)
    e = definition.election
    signing = create_key(key, (e.origin or f"tallyroom/{e.id}").replace(" ", "_"))
    store = open_store(str(db))
    store.initialize(load_definition(raw, "definition.json"), signing.verify_key.encode())
    names = [*large.FORM_LINES, *(c.id for c in definition.contests[0].choices)]
    rows = (
        ImportRow(row=n, station=str(r[0]), contest=large.CONTEST, lines=dict(zip(names, r[1:], strict=True)))
        for n, r in enumerate(large.protocol_rows(definition), start=2)
    )
    import_rows(
        store,
        rows,
        fmt="simulate",
        file_name="large.csv",
        file_hash="0" * 64,
        count_kind=CountKind.HAND,
    )
    store.close()


def _child(what: str, arg: int, src: str | None, work: Path) -> dict[str, Any]:
    """Run one measurement in a fresh process (importing tallyroom from ``src`` if given), in
    a new folder under ``work`` that stays until the whole run is over: files removed in the
    middle of a run would make the next measurement's files slower to create
    (:func:`_machine.file_creation_us`)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    folder = Path(tempfile.mkdtemp(prefix=f"{what}-", dir=work))
    probe = file_creation_us(folder)
    done = subprocess.run(
        [sys.executable, __file__, "--_measure", what, str(arg), str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"measurement {what} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["file_creation_us"] = probe
    return result


def _round(d: dict[str, float] | None) -> str:
    if not d:
        return ""
    return ", ".join(f"{k} {v:.2f}" for k, v in d.items() if v >= 0.01)


def print_kg(label: str, r: dict[str, Any], rounds: int) -> None:
    print(
        f"[{label}] load average {r['load_before']:.2f} -> {r['load_after']:.2f}; "
        f"creating a file beside the output took {r['file_creation_us']:.0f} µs of CPU"
    )
    for mode in ("linking", "prestage"):
        m = r.get(mode)
        if m is None:
            continue
        pre = f"; prestaging between snapshots took {m['prestage_s']:.2f} s" if m["prestage_s"] else ""
        print(
            f"[{label}] {mode}: full {m['full_s']:.2f} s, CPU {m['full_cpu_s']:.2f} s "
            f"({int(m['pages_full']):,} pages, {int(m['files_full']):,} files); incremental after "
            f"10 protocols {m['incremental_s']:.3f} s, CPU {m['incremental_cpu_s']:.3f} s "
            f"(median of {rounds}: {', '.join(f'{t:.3f}' for t in m['incremental_all_s'])}){pre}"
        )
        print(f"[{label}]   full steps: {_round(m['full_steps'])}")
        print(f"[{label}]   incremental steps: {_round(m['incremental_steps'])}")


def print_alternating(runs: list[tuple[str, str | None]], pairs: int, rounds: int, work: Path) -> None:
    """Kyrgyz-sized runs of both trees taking turns (which goes first alternates), so that a
    machine whose speed drifts during the run favours neither; medians of each."""
    seen: dict[str, dict[str, list[float]]] = {label: {} for label, _ in runs}
    for i in range(pairs):
        for label, src in runs if i % 2 == 0 else runs[::-1]:
            r = _child("kg", rounds, src, work)
            for mode in ("linking", "prestage"):
                m = r.get(mode)
                if m is None:
                    continue
                for what in ("full_s", "full_cpu_s", "incremental_s"):
                    seen[label].setdefault(f"{mode} {what}", []).append(m[what])
    for label, got in seen.items():
        parts = [f"{k} {statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})" for k, v in got.items()]
        print(f"[{label}] median of {pairs} alternating runs: " + "; ".join(parts))


def wrk(url: str, seconds: int, connections: int) -> float:
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-H", "Accept-Encoding: br, gzip", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
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
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tallyroom.web.site:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    ap.add_argument("--baseline", metavar="SRC", help="also measure the builds with tallyroom from SRC")
    ap.add_argument(
        "--alternate",
        type=int,
        default=0,
        metavar="N",
        help="with --baseline: N more Kyrgyz-sized runs of each tree, taking turns, and their medians",
    )
    ap.add_argument("--stations", type=int, default=0, help="also time a full build of N stations")
    ap.add_argument(
        "--work", type=Path, help="folder for the builds (default: the system's temporary folder)"
    )
    ap.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_store", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._store:
        what, arg, folder = args._store[0], int(args._store[1]), Path(args._store[2])
        if what == "kg":
            _kg_store(folder)[0].close()
        else:
            _large_store(folder, arg)
        return 0
    if args._measure:
        what, arg, folder = args._measure[0], int(args._measure[1]), Path(args._measure[2])
        result = measure_kg(folder, arg) if what == "kg" else measure_large(folder, arg)
        print(json.dumps(result))
        return 0
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f}")
    runs = [("baseline", args.baseline), ("this tree", None)] if args.baseline else [("this tree", None)]
    if args.work:
        Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tallyroom-bench-publish-", dir=args.work))
    try:
        for label, src in runs:
            print_kg(label, _child("kg", args.rounds, src, work), args.rounds)
        if args.alternate and len(runs) == 2:
            print_alternating(runs, args.alternate, args.rounds, work)
        if args.stations:
            for label, src in runs:
                r = _child("large", args.stations, src, work)
                print(
                    f"[{label}] full build of {r['stations']:,} stations: {r['full_s']:.1f} s, "
                    f"CPU {r['cpu_s']:.1f} s ({r['pages']:,} pages, {r['files']:,} files; load "
                    f"{r['load']:.2f}; a file created in {r['file_creation_us']:.0f} µs); "
                    f"{_round(r['steps'])}"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.no_serve:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        store, key, _hand = _kg_store(Path(tmp))
        publisher = _publisher(store, Path(tmp) / "pub", key, False)
        assert publisher.publish().status == "published"
        store.close()
        out = Path(tmp) / "pub"
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

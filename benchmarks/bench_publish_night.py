"""Memory and time of the continuous publisher on a large Kyrgyz-shaped election night.

The shape of `tallyroom simulate --stations N`: N stations, the party-list contest and 36
single-member contests, a machine count and a hand count of every protocol (4 protocols per
station). The store is made once under --dir and copied for each run. In a fresh process, a
publisher like the one `tallyroom serve --publish-dir` runs (``prestage=True``) then builds

1. the first snapshot with every protocol but the last 10 x --rounds hand counts (a full build),
2. --rounds incremental snapshots after 10 new protocols each,

and the script prints, for each: wall time, CPU time (the publisher and its page workers), the
load average, and memory sampled every 0.1 s from /proc — the publisher's resident set, the
largest resident set and unique set (private pages) of any page worker, and the sum of the
proportional set sizes (PSS, shared pages divided among the processes sharing them) of the
publisher and its workers, which is what the machine really has to hold.

    python benchmarks/bench_publish_night.py [--stations 20000] [--rounds 3] [--dir DIR]
        [--trace]    also report (tracemalloc) what the publisher holds after the full build,
                     by allocating line; slows the build down, so its times mean nothing
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _machine import describe

SEED = 2021
#: Hand counts left out of the store, loaded 10 at a time before each incremental snapshot.
HELD_BACK = 100


def _protocols(stations: int) -> tuple[Any, list[Any], list[Any]]:
    from tallyroom.simulate import kyrgyzstan as kg

    definition = kg.generate_definition(SEED, stations)
    hand = kg.generate_protocols(definition, SEED)
    machine = kg.machine_counts(hand, SEED)
    return definition, hand, machine


def make_store(folder: Path, stations: int, held_back: int) -> Path:
    """The store with every machine count and all but ``held_back`` hand counts (made once)."""
    db = folder / "night.db"
    if db.exists():
        return db
    import msgspec

    from tallyroom.commission import create_key
    from tallyroom.definition.load import load_definition
    from tallyroom.simulate import kyrgyzstan as kg
    from tallyroom.store.sql import open_store

    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    definition, hand, machine = _protocols(stations)
    tmp = folder / "night.db.tmp"
    key = Path(str(db) + ".commission-key")
    signing = create_key(key, "tallyroom/night")
    store = open_store(str(tmp))
    loaded = load_definition(msgspec.json.encode(definition), "definition.json")
    store.initialize(loaded, signing.verify_key.encode())
    kg.load_protocols(store, machine, "machine")
    kg.load_protocols(store, hand[: len(hand) - held_back], "hand")
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.rename(tmp, db)
    print(f"  made the store ({len(machine) + len(hand) - held_back:,} protocols) in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    return db


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def _rollup(pid: int) -> dict[str, int]:
    """kB figures of /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, Private_Dirty, ...)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


class Sampler:
    """Peak memory of this process and its children, sampled from /proc."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self._stop = threading.Event()
        self.reset()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.peak = {"parent_rss": 0, "parent_uss": 0, "worker_rss": 0, "worker_uss": 0, "pss_sum": 0,
                     "workers": 0}

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.every):
            mine = _rollup(me)
            total = mine.get("Pss", 0)
            p = self.peak
            p["parent_rss"] = max(p["parent_rss"], mine.get("Rss", 0))
            private = mine.get("Private_Clean", 0) + mine.get("Private_Dirty", 0)
            p["parent_uss"] = max(p["parent_uss"], private)
            kids = _children(me)
            p["workers"] = max(p["workers"], len(kids))
            for kid in kids:
                r = _rollup(kid)
                total += r.get("Pss", 0)
                p["worker_rss"] = max(p["worker_rss"], r.get("Rss", 0))
                p["worker_uss"] = max(p["worker_uss"], r.get("Private_Clean", 0) + r.get("Private_Dirty", 0))
            p["pss_sum"] = max(p["pss_sum"], total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(db_src: Path, stations: int, rounds: int, trace: bool) -> dict[str, Any]:
    """In this (fresh) process: the full build and the incremental ones."""
    from tallyroom.publish.builder import Publisher
    from tallyroom.simulate import kyrgyzstan as kg
    from tallyroom.store.sql import open_store

    _definition, hand, _machine = _protocols(stations)
    work = Path(tempfile.mkdtemp(prefix="night-", dir=db_src.parent))
    try:
        db = work / "night.db"
        shutil.copyfile(db_src, db)
        shutil.copyfile(str(db_src) + ".commission-key", str(db) + ".commission-key")
        store = open_store(str(db))
        publisher = Publisher(store, work / "pub", Path(str(db) + ".commission-key"), prestage=True)
        if trace:
            import tracemalloc

            tracemalloc.start(1)
        sampler = Sampler()
        runs: list[dict[str, Any]] = []
        start = len(hand) - HELD_BACK
        for i in range(rounds + 1):
            if i:
                kg.load_protocols(store, hand[start + 10 * (i - 1) : start + 10 * i], "hand")
                publisher.wait_prestaged()
            sampler.reset()
            load = os.getloadavg()[0]
            c0, t0 = _cpu(), time.perf_counter()
            o = publisher.publish()
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
            assert o.status == "published", o.failures
            runs.append(
                {"wall": wall, "cpu": cpu, "load": load, "steps": o.timings, "memory": dict(sampler.peak),
                 "pages": o.pages_rendered, "written": o.written, "linked": o.linked}
            )
            if trace and i == 0:
                import gc
                import tracemalloc

                gc.collect()
                snap = tracemalloc.take_snapshot()
                top = snap.statistics("lineno")[:25]
                total = sum(s.size for s in snap.statistics("filename"))
                runs[0]["trace_total_mb"] = total / 1e6
                runs[0]["trace"] = [(str(s.traceback[0]), s.size / 1e6, s.count) for s in top]
        sampler.stop()
        publisher.close()
        store.close()
        return {
            "runs": runs,
            "maxrss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "maxrss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fmt_steps(d: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]) if v >= 0.01)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3, choices=range(0, HELD_BACK // 10 + 1))
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--_measure", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._measure:
        result = measure(Path(args._measure[0]), args.stations, int(args._measure[1]), args.trace)
        print(json.dumps(result))
        return 0
    folder = args.dir or Path(tempfile.gettempdir()) / f"tallyroom-bench-night-{args.stations}"
    print(f"machine: {describe()}; load average {os.getloadavg()[0]:.2f}", flush=True)
    db = make_store(folder, args.stations, HELD_BACK)
    cmd = [sys.executable, __file__, "--stations", str(args.stations)]
    cmd += ["--_measure", str(db), str(args.rounds)]
    if args.trace:
        cmd.append("--trace")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
    if done.returncode != 0:
        print(done.stdout, done.stderr, file=sys.stderr)
        return 1
    r = json.loads(done.stdout.strip().splitlines()[-1])
    for i, run in enumerate(r["runs"]):
        m = run["memory"]
        what = "full" if i == 0 else f"incremental {i} (10 protocols)"
        print(
            f"{what}: {run['wall']:.2f} s wall, CPU {run['cpu']:.2f} s, load {run['load']:.2f}; "
            f"{run['pages']:,} pages, {run['written']:,} files written, {run['linked']:,} linked"
        )
        print(
            f"  memory (MB): publisher RSS {m['parent_rss'] / 1024:,.0f} "
            f"(private {m['parent_uss'] / 1024:,.0f}); "
            f"{m['workers']} worker(s): largest RSS {m['worker_rss'] / 1024:,.0f}, private "
            f"{m['worker_uss'] / 1024:,.0f}; all together (PSS) {m['pss_sum'] / 1024:,.0f}"
        )
        print(f"  steps: {_fmt_steps(run['steps'])}")
        if "trace" in run:
            print(f"  tracemalloc after the full build: {run['trace_total_mb']:,.0f} MB held; largest:")
            for where, mb, count in run["trace"]:
                print(f"    {mb:8.1f} MB {count:>10,}  {where}")
    print(
        f"ru_maxrss: publisher {r['maxrss_self_mb']:,.0f} MB, "
        f"largest child {r['maxrss_children_mb']:,.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Describe the machine a benchmark ran on, for BENCHMARKS.md."""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from pathlib import Path


def describe() -> str:
    cpu = "unknown CPU"
    mem = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
        with open("/proc/meminfo", encoding="utf-8") as fh:
            kib = next((int(ln.split()[1]) for ln in fh if ln.startswith("MemTotal")), 0)
            mem = f", {kib // 1024 // 1024} GiB RAM" if kib else ""
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {speed()}"
    )


def _reference_work() -> float:
    """CPU seconds of a fixed piece of pure-Python work shaped like page rendering
    (f-strings, joins, dict lookups, UTF-8 encoding): the same instructions on every machine."""
    names = {i: f"name {i} — {i * 7}" for i in range(500)}
    c0 = time.process_time()
    for _ in range(400):
        out = []
        for i in range(500):
            out.append(f'<tr><th scope="row">{names[i]}</th><td class="n">{i * 31:,}</td></tr>')
        "".join(out).encode()
    return time.process_time() - c0


def _reference_child(queue: multiprocessing.SimpleQueue[float]) -> None:
    queue.put(min(_reference_work() for _ in range(5)))


def speed() -> str:
    """How fast this machine's CPUs are, to compare figures measured on different machines:
    the best of 5 runs of :func:`_reference_work` alone, and in two processes at once (the
    second figure shows whether two "cores" are two: hardware threads of one core, or a
    host's neighbours, make each slower when both work)."""
    alone = min(_reference_work() for _ in range(5))
    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return f"reference work {alone * 1e3:.0f} ms"
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.SimpleQueue[float] = ctx.SimpleQueue()
    procs = [ctx.Process(target=_reference_child, args=(queue,)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    both = max(queue.get() for _ in procs)
    return f"reference work {alone * 1e3:.0f} ms alone, {both * 1e3:.0f} ms each with 2 at once"


def file_creation_us(folder: Path, count: int = 2000) -> float:
    """CPU microseconds per empty file created in a new subfolder of ``folder`` (left there).

    On an ext4 file system without a journal (the disk of the machines measured here), the
    inode allocator passes over inodes it deems recently deleted (``recently_deleted()`` in
    fs/ext4/ialloc.c), so creating a file costs 20–25 µs in some block groups and 250–800 µs
    in others after many files were removed. Builds that write thousands of files are
    printed with this probe, so that a slow disk is not read as slow code."""
    sub = folder / f"probe-{time.monotonic_ns()}"
    sub.mkdir(parents=True)
    fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    try:
        c0 = time.process_time()
        for i in range(count):
            os.close(os.open(str(i), os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644, dir_fd=fd))
        return (time.process_time() - c0) / count * 1e6
    finally:
        os.close(fd)

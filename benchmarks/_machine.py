"""Describe the machine a benchmark ran on, for BENCHMARKS.md."""

from __future__ import annotations

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
        f"Python {platform.python_version()}"
    )


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

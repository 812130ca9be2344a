"""Describe the machine a benchmark ran on, for BENCHMARKS.md."""

from __future__ import annotations

import os
import platform


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

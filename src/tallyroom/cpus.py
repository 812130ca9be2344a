"""How many CPUs this process may use, which is not always how many the machine has.

``os.cpu_count()`` counts the machine's CPUs. A process may get fewer:
- its affinity mask (``taskset``, a cpuset cgroup, a container's ``--cpuset-cpus``);
- a CPU quota on one of its cgroups (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us``: a container's ``--cpus``, systemd's ``CPUQuota``).

Processes beyond the quota only wait for it to refill (Documentation/scheduler/sched-bwc.rst
in the kernel's sources), so it bounds the count. Python 3.13's ``os.process_cpu_count()``
reads the affinity only.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from tallyroom import cgroups


def quota_cpus(membership: Path = cgroups.MEMBERSHIP, root: Path = cgroups.ROOT) -> float | None:
    """The tightest CPU quota of this process's cgroups and their parents, in CPUs (1.5 for
    150 ms per 100 ms); None when no level sets one."""
    least: float | None = None
    for folder, v2 in cgroups.levels("cpu", membership, root):
        try:
            if v2:
                quota_text, period_text = (folder / "cpu.max").read_text().split()[:2]
                if quota_text == "max":
                    continue
                quota, period = int(quota_text), int(period_text)
            else:
                quota = int((folder / "cpu.cfs_quota_us").read_text())
                period = int((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota <= 0 or period <= 0:  # v1 writes -1 for no quota
            continue
        cpus = quota / period
        least = cpus if least is None else min(least, cpus)
    return least


def usable_cpus(membership: Path = cgroups.MEMBERSHIP, root: Path = cgroups.ROOT) -> int:
    """The CPUs this process may run on (its affinity), bounded by its CPU quota rounded up;
    at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    quota = quota_cpus(membership, root)
    if quota is not None:
        count = min(count, math.ceil(quota))
    return max(1, count)

"""The folders of this process's control groups (Linux cgroup v2 and v1).

A container, a systemd unit (``MemoryMax``, ``CPUQuota``) or a job scheduler limits a process
through the cgroups it is in, while ``/proc/meminfo`` and ``os.cpu_count()`` describe the
whole machine. Each limit is a file in the cgroup's folder; a parent's limit bounds its
children, so every level up to the root counts (see the kernel's
Documentation/admin-guide/cgroup-v2.rst, "Resource distribution models").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

MEMBERSHIP = Path("/proc/self/cgroup")
ROOT = Path("/sys/fs/cgroup")


def levels(
    controller: str, membership: Path = MEMBERSHIP, root: Path = ROOT
) -> Iterator[tuple[Path, bool]]:
    """The folder of each cgroup this process is in for ``controller`` ("memory", "cpu") and
    of each of its parents, innermost first, with whether it is cgroup v2 (its files are then
    ``memory.max``, ``cpu.max`` …, else v1's ``memory.limit_in_bytes``, ``cpu.cfs_quota_us``
    …). Nothing where ``/proc`` cannot tell."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            base, v2 = root, True
        elif controller in controllers.split(","):
            # v1 mounts each hierarchy under the names of its controllers ("cpu,cpuacct").
            base, v2 = root / _v1_mount(root, controllers), False
        else:
            continue
        parts = [p for p in path.split("/") if p and p not in (".", "..")]
        for depth in range(len(parts), -1, -1):
            yield base.joinpath(*parts[:depth]), v2


def _v1_mount(root: Path, controllers: str) -> str:
    """Where a v1 hierarchy is mounted: its controllers' names joined ("cpu,cpuacct"), or,
    where that folder is absent, the first controller's name (distributions link both)."""
    if (root / controllers).is_dir():
        return controllers
    return controllers.split(",")[0]

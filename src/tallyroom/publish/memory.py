"""How much memory the publisher may let forked processes copy.

A process forked from the publisher shares its memory until either side writes to a page,
and in CPython reading an object writes its reference count. So when forked processes read
the publisher's station records, every page holding a record they read may be copied: at
worst one copy of the publisher's anonymous memory per forked process (a page written by all
but one of the processes sharing it is copied for each of them; the last keeps the
original). :func:`room_for_copies` says whether that worst case fits; the publisher then lets
its page workers read the records they inherit instead of sending them copies
(docs/decisions/0005, "Later: large elections share the records").
"""

from __future__ import annotations

from pathlib import Path

from tallyroom import cgroups

#: The share of the memory available that the copies may take at worst.
SHARE_MEMORY_FRACTION = 0.5
#: cgroup v1 writes "no limit" as a number near 2**63.
_V1_UNLIMITED = 1 << 60
_V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes")


def _proc_kib(path: str, field: str) -> int | None:
    """A "<field> <n> kB" line of a /proc file, in KiB (None where there is no such file)."""
    try:
        with open(path, "rb") as fh:
            for line in fh:
                if line.startswith(field.encode()):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_room_kib(membership: Path = cgroups.MEMBERSHIP, root: Path = cgroups.ROOT) -> int | None:
    """The least memory left (limit minus usage, in KiB) in the memory cgroups this process is
    in, its own and every parent's, cgroup v2 or v1; None when none sets a limit. A container
    or a systemd ``MemoryMax`` limits the publisher far below what ``/proc/meminfo`` reports
    for the machine. Usage counts the page cache, which could be freed: this errs on the side
    of less room."""
    room: int | None = None
    for folder, v2 in cgroups.levels("memory", membership, root):
        limit_name, usage_name = ("memory.max", "memory.current") if v2 else _V1_FILES
        try:
            limit = int((folder / limit_name).read_text())  # "max" (no limit) raises
            usage = int((folder / usage_name).read_text())
        except (OSError, ValueError):
            continue
        if limit >= _V1_UNLIMITED:
            continue
        left = max(0, limit - usage) // 1024
        room = left if room is None else min(room, left)
    return room


def room_for_copies(processes: int) -> bool:
    """Whether ``processes`` copies of this process's anonymous memory (``RssAnon``) fit in
    :data:`SHARE_MEMORY_FRACTION` of what the system has available (``MemAvailable``, or the
    room a memory cgroup leaves this process when that is less). False where /proc cannot
    tell."""
    anon = _proc_kib("/proc/self/status", "RssAnon:")
    available = _proc_kib("/proc/meminfo", "MemAvailable:")
    if anon is None or available is None:
        return False
    room = cgroup_room_kib()
    if room is not None:
        available = min(available, room)
    return anon * processes <= available * SHARE_MEMORY_FRACTION

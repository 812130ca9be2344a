"""How many CPUs tallyroom may use: the affinity mask bounded by the tightest CPU quota of the
process's cgroups (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), never the machine's count when
a container or ``taskset`` gives less."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from tallyroom import cpus
from tallyroom.publish import builder


def _v2(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu.max").write_text(text + "\n")


def _v1(folder: Path, quota: int, period: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (folder / "cpu.cfs_period_us").write_text(f"{period}\n")


def test_the_tightest_quota_of_every_level_counts(tmp_path: Path) -> None:
    membership, root = tmp_path / "cgroup", tmp_path / "fs"
    # v2: the unit sets none, the container above it 250 ms per 100 ms.
    membership.write_text("0::/pod/unit\n")
    _v2(root / "pod" / "unit", "max 100000")
    _v2(root / "pod", "250000 100000")
    assert cpus.quota_cpus(membership, root) == 2.5
    # a tighter quota on the unit itself wins
    _v2(root / "pod" / "unit", "150000 100000")
    assert cpus.quota_cpus(membership, root) == 1.5
    # v1: the cpu controller's own hierarchy, mounted as "cpu,cpuacct"; -1 is "no quota"
    membership.write_text("4:memory:/m\n3:cpu,cpuacct:/svc/job\n0::/\n")
    (root / "cpu.max").unlink(missing_ok=True)
    _v1(root / "cpu,cpuacct" / "svc" / "job", -1, 100000)
    _v1(root / "cpu,cpuacct" / "svc", 300000, 100000)
    assert cpus.quota_cpus(membership, root) == 3.0
    # ... or as "cpu" alone where the joined folder does not exist
    membership.write_text("2:cpu,cpuacct:/batch\n")
    other = tmp_path / "fs2"
    _v1(other / "cpu" / "batch", 50000, 100000)
    assert cpus.quota_cpus(membership, other) == 0.5
    # no quota anywhere, unreadable values, no cgroup file: nothing known
    membership.write_text("0::/free\n")
    _v2(root / "free", "max 100000")
    assert cpus.quota_cpus(membership, root) is None
    _v2(root / "free", "garbage")
    assert cpus.quota_cpus(membership, root) is None
    assert cpus.quota_cpus(tmp_path / "missing", root) is None


def test_usable_cpus_is_the_affinity_bounded_by_the_quota_rounded_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    membership, root = tmp_path / "cgroup", tmp_path / "fs"
    membership.write_text("0::/c\n")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    _v2(root / "c", "max 100000")
    assert cpus.usable_cpus(membership, root) == 16
    _v2(root / "c", "150000 100000")  # 1.5 CPUs: two processes can use them
    assert cpus.usable_cpus(membership, root) == 2
    _v2(root / "c", "1000 100000")  # 1% of a CPU: still one
    assert cpus.usable_cpus(membership, root) == 1
    _v2(root / "c", "6400000 100000")  # a quota above the affinity does not add CPUs
    assert cpus.usable_cpus(membership, root) == 16


def _affinity_child(queue: multiprocessing.SimpleQueue[tuple[int, int, int]]) -> None:
    from tallyroom.verify.run import default_workers as verify_workers

    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    queue.put((cpus.usable_cpus(), builder.default_workers(), verify_workers()))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux's sched_setaffinity")
def test_a_process_bound_to_one_cpu_renders_pages_itself() -> None:
    """A real affinity mask (what ``taskset -c 0`` sets): one usable CPU, so neither the
    publisher nor the verifier forks workers; the machine's count is read here too, and never
    exceeded."""
    fork = multiprocessing.get_context("fork")
    queue: multiprocessing.SimpleQueue[tuple[int, int, int]] = fork.SimpleQueue()
    child = fork.Process(target=_affinity_child, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get() == (1, 1, 1)
    here = cpus.usable_cpus()
    assert 1 <= here <= (os.cpu_count() or 1)
    assert builder.default_workers() == min(builder.WORKERS_MAX, here)

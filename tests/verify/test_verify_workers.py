"""Verify's worker processes: every result comes back, and a worker that dies makes the
verification fail at once with a clear message (it used to wait for the result forever)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from verify_support import Pub

from tallyroom.cli import main
from tallyroom.verify import run
from tallyroom.verify.report import Tally
from tallyroom.verify.workers import WorkerDied, fork_map

pytestmark = pytest.mark.timeout(120)


def _square(n: int) -> int:
    return n * n


def _die_on_seven(n: int) -> int:
    if n == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    return n


def test_fork_map_returns_every_result() -> None:
    assert sorted(fork_map(_square, range(50), 2)) == [n * n for n in range(50)]


def test_a_killed_worker_fails_the_map_instead_of_hanging() -> None:
    with pytest.raises(WorkerDied, match="killed before it finished"):
        list(fork_map(_die_on_seven, range(20), 2))


def test_verify_exits_2_when_a_worker_is_killed(mini_pub: Pub, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = run._check_one

    def check_one(ctx: run._Ctx, rel: str, out: Tally) -> None:
        if rel.startswith("en/station/"):  # in a forked worker: the system kills it
            os.kill(os.getpid(), signal.SIGKILL)
        checked(ctx, rel, out)

    monkeypatch.setattr(run, "_check_one", check_one)
    result = CliRunner().invoke(main, ["verify", str(mini_pub.out), "--workers", "2", "-q"])
    assert result.exit_code == 2, result.output
    assert "verification did not finish" in result.output
    assert "0 mismatches" not in result.output


def test_the_same_snapshot_verifies_with_two_workers(mini_pub: Pub, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["verify", str(mini_pub.out), "--workers", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].endswith(": 0 mismatches")


def test_bad_signatures_in_workers_names_exactly_the_forged_ones() -> None:
    """Enough signatures to be checked in two forked workers: the altered message, the
    signature of another message and the truncated signature are found, and nothing else."""
    import nacl.signing

    from tallyroom.verify.ledger import PARALLEL_SIGNATURES, bad_signatures

    key = nacl.signing.SigningKey(b"\x07" * 32)
    public = key.verify_key.encode()
    jobs = []
    for n in range(PARALLEL_SIGNATURES + 100):
        message = b"receipt %d" % n
        jobs.append((n, public, message, key.sign(message).signature))
    jobs[17] = (17, public, b"receipt 17 altered", jobs[17][3])
    jobs[2500] = (2500, public, jobs[2500][2], jobs[2501][3])
    jobs[4050] = (4050, public, jobs[4050][2], jobs[4050][3][:40])
    assert bad_signatures(jobs, 2) == {17, 2500, 4050}
    assert bad_signatures(jobs[:100], 2) == {17}


def _slow_square(n: int) -> int:
    import time

    time.sleep(0.2)
    return n * n


def test_a_pool_left_early_lets_its_processes_go() -> None:
    """``Forked.close`` (what verify does when its recomputation fails while the signatures
    are still being checked) stops the pool without taking the results: no process stays."""
    import multiprocessing
    import time

    from tallyroom.verify.workers import Forked

    pool = Forked(_slow_square, range(40), 2)
    assert multiprocessing.active_children()
    pool.close()
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert multiprocessing.active_children() == []


"""Verify's worker processes: forked (they inherit what the main process recomputed), results
taken as they come, and a clear failure when one of them dies.

A worker killed mid-task (the kernel's OOM killer, a signal) made ``multiprocessing.Pool``
wait for its result forever: `tallyroom verify` hung instead of saying that it could not
finish. ``concurrent.futures.ProcessPoolExecutor`` notices the dead process and fails every
pending task; this module turns that into :class:`WorkerDied`.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(RuntimeError):
    """A worker process ended without returning its result: the verification is incomplete."""


class Forked(Generic[R]):
    """``fn`` of every task in ``workers`` forked processes, started now; the caller goes on
    with other work and takes the results (in the order they finish) when it needs them. The
    processes are forked here, so they see the module state as it is at this call."""

    def __init__(self, fn: Callable[[T], R], tasks: Iterable[T], workers: int) -> None:
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        self._futures = [self._pool.submit(fn, t) for t in tasks]

    def close(self) -> None:
        """Cancel what has not started and let the processes go (no results are taken)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def results(self) -> Iterator[R]:
        try:
            for done in as_completed(self._futures):
                yield done.result()
        except BrokenProcessPool as exc:
            for f in self._futures:
                f.cancel()
            raise WorkerDied(
                "a verify worker process was killed before it finished (by the system: most "
                "often for lack of memory); what it held was not checked"
            ) from exc
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def fork_map(fn: Callable[[T], R], tasks: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` of every task in ``workers`` forked processes, results in the order they finish.
    The processes are forked when the first task is handed out, so module state set before
    the call is theirs to read."""
    yield from Forked(fn, tasks, workers).results()

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
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class WorkerDied(RuntimeError):
    """A worker process ended without returning its result: the verification is incomplete."""


def fork_map(fn: Callable[[T], R], tasks: Iterable[T], workers: int) -> Iterator[R]:
    """``fn`` of every task in ``workers`` forked processes, results in the order they finish.
    The processes are forked when the first task is handed out, so module state set before
    the call is theirs to read."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(fn, t) for t in tasks]
        try:
            for done in as_completed(futures):
                yield done.result()
        except BrokenProcessPool as exc:
            for f in futures:
                f.cancel()
            raise WorkerDied(
                "a verify worker process was killed before it finished (by the system: most "
                "often for lack of memory); what it held was not checked"
            ) from exc

"""One store connection per worker for reads and staff actions, used from worker threads.

The event loop never waits on the database: calls run in a thread, one at a time per
connection (SQLite and psycopg connections are not for concurrent use).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from tallyroom.store.sql import Store, open_store

T = TypeVar("T")


class Reader:
    def __init__(self, url: str) -> None:
        self._store = open_store(url)
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        return self._store

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            try:
                return fn(self._store, *args)
            except BaseException:
                try:
                    self._store._rollback()
                except Exception:  # the connection may be gone; the next call reconnects
                    self._store.close()
                raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: self.call(fn, *args))

    def close(self) -> None:
        with self._lock:
            self._store.close()

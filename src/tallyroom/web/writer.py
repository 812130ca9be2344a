"""The writer process: one process commits the batches of every web worker.

``tallyroom serve`` starts it beside the web workers (see :mod:`tallyroom.web.server`). The
web workers do all the CPU work of a submission — HTTP, the Ed25519 check, strict JSON, form
and rules, entry bytes and leaf hash — in parallel, each on its own interpreter; the writer
only does what must be serial: the batched durable insert (:class:`BatchWriter`) and the
receipts. Nothing in it shares an interpreter lock with request handling.

Wire format, over a Unix socket in a folder only the server's user can enter: frames of a
4-byte big-endian length and a msgpack body. A worker sends one :class:`Batch` at a time
and waits for its :class:`Answers` (one per item, in order, and the key ids found revoked)
before it sends the next; in the meantime its next batch gathers. The writer reads every
frame that has arrived, commits them all as one batch, answers each, and reads again —
group commit across workers. A worker whose writer connection fails answers its waiting
requests 503 ``store-unavailable`` and connects again for the next batch; the server
starts a writer that died again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from tallyroom.web.commit import ACK, Answer, BatchWriter, Item, Job, unavailable

log = logging.getLogger("tallyroom.intake")

#: Environment variable naming the writer's socket (set by ``tallyroom serve``).
SOCKET_ENV = "TALLYROOM_WRITER_SOCKET"
_LEN = struct.Struct(">I")
#: Largest frame either side accepts (a batch of 1,000 protocols of 64 KiB each fits).
MAX_FRAME = 128 * 1024 * 1024


class Batch(msgspec.Struct, array_like=True):
    items: list[Item]


class Answers(msgspec.Struct, array_like=True):
    answers: list[tuple[int, bytes]]
    revoked: list[str]


_batch_decoder = msgspec.msgpack.Decoder(Batch)
_answers_decoder = msgspec.msgpack.Decoder(Answers)
_msgpack = msgspec.msgpack.Encoder()


def frame(body: bytes) -> bytes:
    return _LEN.pack(len(body)) + body


# -- the writer process --------------------------------------------------------------------


class _Conn:
    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def frames(self) -> list[bytes]:
        out: list[bytes] = []
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise ValueError(f"frame of {n} bytes")
            if len(buf) - pos - 4 < n:
                break
            out.append(bytes(buf[pos + 4: pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return out


class WriterServer:
    """Accept web workers on a Unix socket; commit what they send, batch by batch."""

    def __init__(self, path: Path, writer: BatchWriter, max_batch: int,
                 alive: Callable[[], bool], parent_alive: Callable[[], bool]) -> None:
        self.path = path
        self.writer = writer
        self.max_batch = max_batch
        #: False once asked to stop (SIGTERM), or once the server process is gone: then the
        #: writer serves the workers still connected (they may be finishing their last
        #: requests, or outlive a killed server) and returns when none is left.
        self.alive = alive
        self.parent_alive = parent_alive
        self._sel = selectors.DefaultSelector()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._listener.bind(str(path))
        os.chmod(path, 0o600)
        self._listener.listen(256)
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._pending: list[tuple[_Conn, list[Item]]] = []

    #: Seconds the writer goes on serving connected workers after it was asked to stop.
    LINGER = 25.0
    #: Seconds a batch waits for the other workers' batches before it is committed alone.
    #: Each worker has one batch in flight, so a batch from every connected worker is a full
    #: round; merging them halves the commits (and their fixed cost) when two workers take
    #: turns. Measured in docs/decisions/0006.
    GATHER = 0.002
    SEND_TIMEOUT = 10.0

    def serve(self) -> None:
        last_check = time.monotonic()
        stop_at = 0.0
        first_at = 0.0  # when the oldest pending batch arrived
        while True:
            timeout = 0.5
            if self._pending:
                timeout = 0.0 if self._round_complete() else max(
                    0.0, first_at + self.GATHER - time.monotonic()
                )
            for key, _ in self._sel.select(timeout):
                if key.fileobj is self._listener:
                    sock, _addr = self._listener.accept()
                    # Reads happen only when select says so; a worker that stops reading its
                    # answers is dropped after this long instead of stalling every worker.
                    sock.settimeout(self.SEND_TIMEOUT)
                    self._sel.register(sock, selectors.EVENT_READ, _Conn(sock))
                else:
                    had = bool(self._pending)
                    self._read(key.data)
                    if not had and self._pending:
                        first_at = time.monotonic()
            now = time.monotonic()
            if self._pending and (self._round_complete() or now >= first_at + self.GATHER):
                self._commit()
                first_at = now
            if now - last_check > 0.5:
                last_check = now
                if self.alive() and self.parent_alive():
                    continue
                # Asked to stop, or the server is gone: serve the workers still connected
                # (they answer their last requests while they shut down) for a while.
                stop_at = stop_at or now + self.LINGER
                if len(self._sel.get_map()) <= 1 or now >= stop_at:
                    return

    def _round_complete(self) -> bool:
        """Every connected worker has a batch waiting, or there is enough for a batch."""
        if sum(len(items) for _c, items in self._pending) >= self.max_batch:
            return True
        waiting = {id(c) for c, _items in self._pending}
        return all(
            id(key.data) in waiting
            for key in self._sel.get_map().values()
            if key.fileobj is not self._listener
        )

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(1 << 20)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.buf += data
        try:
            for body in conn.frames():
                self._pending.append((conn, _batch_decoder.decode(body).items))
        except (ValueError, msgspec.DecodeError):
            log.exception("a web worker sent a malformed frame; closing its connection")
            self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(conn.sock)
        conn.sock.close()

    def _commit(self) -> None:
        # Whole frames, up to max_batch items (at least one frame).
        take = 0
        n = 0
        for _conn, items in self._pending:
            if take and n + len(items) > self.max_batch:
                break
            n += len(items)
            take += 1
        group, self._pending = self._pending[:take], self._pending[take:]
        items = [it for _conn, its in group for it in its]
        try:
            answers, revoked = self.writer.commit(items)
        except Exception:
            log.exception("intake batch of %d failed; answering 503", len(items))
            self.writer.reset()
            answers, revoked = [unavailable()] * len(items), set()
        pos = 0
        rev = sorted(revoked)
        for conn, its in group:
            part = answers[pos: pos + len(its)]
            pos += len(its)
            body = _msgpack.encode(Answers([(a.status, a.body) for a in part], rev))
            try:
                conn.sock.sendall(frame(body))
            except OSError:  # that worker is gone; its batch is committed all the same
                self._drop(conn)

    def close(self) -> None:
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._sel.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def write_forever(path: Path, db: str, key_file: Path, max_batch: int, parent: int) -> int:
    """The writer process: commit batches until SIGTERM, or until the server ``parent`` and
    all its workers are gone."""
    import faulthandler

    from tallyroom.commission import load_key, origin_of
    from tallyroom.intake.receipts import ReceiptSigner
    from tallyroom.store.sql import open_store

    logging.basicConfig(level=logging.WARNING, format="tallyroom writer: %(message)s")
    faulthandler.register(signal.SIGUSR1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    stopping = [False]

    def stop(*_: Any) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    store = open_store(db)
    store.election()  # compiled once, before the first batch
    name, key = load_key(key_file)
    writer = BatchWriter(db, ReceiptSigner(origin_of(store), name, key), store)
    server = WriterServer(path, writer, max_batch, lambda: not stopping[0],
                          lambda: os.getppid() == parent)
    try:
        server.serve()
    finally:
        server.close()
        writer.close()
    return 0


# -- the web worker's side -----------------------------------------------------------------


class RemoteCommitter:
    """A web worker's group committer that sends its batches to the writer process."""

    def __init__(self, path: str, max_batch: int = 1000, connect_timeout: float = 120.0) -> None:
        self.path = path
        self.max_batch = max_batch
        self.connect_timeout = connect_timeout
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self.on_revoked: Any = None
        self.batches = 0

    async def start(self) -> None:
        # Wait for the writer (it may still be loading the election) before taking requests.
        await self._connect(self.connect_timeout)
        self._task = asyncio.create_task(self._pump(), name="tallyroom-remote-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._close()

    async def submit(self, job: Job) -> Answer:
        # Not shielded: the servers never cancel a request's task, and if one did, its job
        # would still be committed and its future is only resolved if nobody cancelled it.
        self._queue.put_nowait(job)
        return await job.future

    async def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    self.path, limit=MAX_FRAME
                )
                return
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.1)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _exchange(self, items: list[Item]) -> Answers:
        if self._writer is None or self._reader is None:
            await self._connect(2.0)
        assert self._writer is not None and self._reader is not None
        self._writer.write(frame(_msgpack.encode(Batch(items))))
        head = await self._reader.readexactly(4)
        (n,) = _LEN.unpack(head)
        return _answers_decoder.decode(await self._reader.readexactly(n))

    async def _pump(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            answers: list[Answer]
            try:
                got = await self._exchange([job.item for job in batch])
                if len(got.answers) != len(batch):
                    raise ValueError(f"{len(got.answers)} answers for {len(batch)} items")
                self.batches += 1
                answers = [ACK if s == 204 else Answer(s, b) for s, b in got.answers]
                if got.revoked and self.on_revoked is not None:
                    for kid in got.revoked:
                        self.on_revoked(kid)
            except (OSError, EOFError, asyncio.IncompleteReadError, ValueError,
                    msgspec.DecodeError) as exc:
                log.warning("the writer process is unreachable (%s); answering 503 to %d",
                            type(exc).__name__, len(batch))
                self._close()
                answers = [unavailable()] * len(batch)
            for job, answer in zip(batch, answers, strict=True):
                if not job.future.done():
                    job.future.set_result(answer)


def _main(argv: list[str]) -> int:
    if len(argv) == 5:
        return write_forever(Path(argv[0]), argv[1], Path(argv[2]), int(argv[3]), int(argv[4]))
    print("usage: python -m tallyroom.web.writer SOCKET DB COMMISSION_KEY MAX_BATCH PARENT_PID",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

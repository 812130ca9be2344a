"""A small asyncio HTTP/1.1 client for election-night devices (keep-alive, exact bytes).

The simulator needs what general clients hide: the exact body bytes on the wire, a body
sent slowly in pieces (a station on a bad line), a client that gives up after a few
milliseconds and sends again, and thousands of concurrent requests from one process at a
low cost per request. This client does only that: one request per connection at a time,
``Content-Length`` bodies, ``Content-Length`` or chunked answers, a bounded pool of
keep-alive connections. Every failure to get a whole answer is :class:`HttpError`, which a
device treats as "no answer: send again".

    client = HttpClient("http://127.0.0.1:8000")
    reply = await client.request("POST", "/api/v1/protocols", body, headers)
    await client.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: A pooled connection idle longer than this is closed instead of reused (servers close
#: idle keep-alive connections after about five seconds; uvicorn's default is 5 s).
IDLE_REUSE = 3.0
MAX_HEADER_BYTES = 64 * 1024


class HttpError(Exception):
    """No complete answer: refused, reset, closed early, or too slow."""


class HttpTimeout(HttpError):
    """No complete answer within the request's timeout."""


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    #: Seconds from the first byte sent to the last byte of the answer (no pool wait).
    elapsed: float = 0.0

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def field(self, name: str) -> Any:
        data = self.json()
        return data.get(name) if isinstance(data, dict) else None


class _Conn:
    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.writer.close()


class HttpClient:
    """Requests to one origin over at most ``max_connections`` keep-alive connections."""

    def __init__(self, base_url: str, max_connections: int = 64, connect_timeout: float = 5.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host:port URLs are supported, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.host_header = parts.netloc
        self.connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Conn] = []
        self.requests = 0

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    def drop_idle(self) -> None:
        """Forget pooled connections (after the server was restarted, they are all dead)."""
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def _connect(self) -> _Conn:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < IDLE_REUSE and not conn.reader.at_eof():
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=MAX_HEADER_BYTES),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise HttpError(f"cannot connect to {self.host}:{self.port}: {exc!r}") from None
        return _Conn(reader, writer)

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        pieces: Sequence[tuple[int, float]] = (),
    ) -> Reply:
        """Send one request and read the whole answer within ``timeout`` seconds.

        ``pieces``: send the body slowly — (bytes, pause in seconds before them) — after the
        headers; the rest of the body goes last.
        """
        async with self._slots:
            self.requests += 1
            conn = await self._connect()
            started = time.monotonic()
            try:
                reply = await asyncio.wait_for(
                    self._exchange(conn, method, path, body, headers or {}, pieces), timeout
                )
            except TimeoutError:
                conn.close()
                raise HttpTimeout(f"no answer within {timeout:g} s") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                conn.close()
                raise HttpError(f"{method} {path}: {exc!r}") from None
            except BaseException:
                conn.close()
                raise
            reply.elapsed = time.monotonic() - started
            if reply.headers.get("connection", "").lower() == "close":
                conn.close()
            else:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            return reply

    async def _exchange(
        self,
        conn: _Conn,
        method: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        pieces: Sequence[tuple[int, float]],
    ) -> Reply:
        head = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.host_header}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(body)}")
        w = conn.writer
        w.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent = 0
        for size, pause in pieces:
            await w.drain()
            await asyncio.sleep(pause)
            w.write(body[sent : sent + size])
            sent += size
        w.write(body[sent:])
        await w.drain()
        return await self._read_reply(conn.reader, method)

    async def _read_reply(self, r: asyncio.StreamReader, method: str) -> Reply:
        raw = await r.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP answer: {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return Reply(status, b"", headers)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await r.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
                if size == 0:
                    await r.readuntil(b"\r\n")
                    break
                chunks.append(await r.readexactly(size))
                await r.readexactly(2)
            return Reply(status, b"".join(chunks), headers)
        length = headers.get("content-length")
        if length is None:
            data = await r.read()
            headers["connection"] = "close"
            return Reply(status, data, headers)
        return Reply(status, await r.readexactly(int(length)), headers)

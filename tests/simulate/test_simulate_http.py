"""The simulator's HTTP client against a tiny in-process server: keep-alive, exact bytes,
bodies sent slowly in pieces, chunked answers, timeouts and refused connections."""

from __future__ import annotations

import asyncio
import time

import pytest

from tallyroom.simulate.http import HttpClient, HttpError, HttpTimeout
from tallyroom.simulate.server import free_port


async def _server(port: int, seen: list[tuple[str, bytes, float]]) -> asyncio.Server:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await r.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            lines = head.decode().split("\r\n")
            _method, path, _ = lines[0].split(" ")
            length = next((int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length")), 0)
            t0 = time.monotonic()
            body = await r.readexactly(length)
            seen.append((path, body, time.monotonic() - t0))
            if path == "/slow":
                await asyncio.sleep(1.0)
            if path == "/chunked":
                w.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                )
            else:
                w.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await w.drain()
        w.close()

    return await asyncio.start_server(handle, "127.0.0.1", port)


def test_requests_answers_and_failures() -> None:
    async def run() -> None:
        port = free_port()
        seen: list[tuple[str, bytes, float]] = []
        server = await _server(port, seen)
        client = HttpClient(f"http://127.0.0.1:{port}", max_connections=4)
        body = b'{"exact": "bytes",  "kept": 1}'
        reply = await client.request("POST", "/echo", body, {"X-A": "1"})
        assert (reply.status, reply.body) == (201, body)
        assert reply.json() == {"exact": "bytes", "kept": 1}
        # Keep-alive: the second request reuses the connection.
        await client.request("POST", "/echo", b"x")
        assert len(client._idle) == 1
        chunked = await client.request("GET", "/chunked")
        assert chunked.body == b"abcde"
        # A body sent in pieces arrives whole, and slowly.
        await client.request("POST", "/pieces", b"0123456789", pieces=((3, 0.2), (3, 0.2)))
        assert seen[-1][1] == b"0123456789" and seen[-1][2] >= 0.3
        with pytest.raises(HttpTimeout):
            await client.request("POST", "/slow", b"x", timeout=0.1)
        server.close()
        await server.wait_closed()
        await client.close()
        with pytest.raises(HttpError):
            await HttpClient(f"http://127.0.0.1:{port}").request("GET", "/")

    asyncio.run(run())


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        HttpClient("https://example.org")

"""Reading a request body with a hard limit, from the raw ASGI messages.

The declared ``Content-Length`` is checked before a single body byte is read; a body without
one (chunked) is counted as it streams and never held beyond the limit. Bodies just over the
limit are read and thrown away (up to :data:`DRAIN_LIMIT`), because ordinary HTTP clients
send the whole body before they read the answer and would otherwise see a broken connection
instead of the 413; beyond that the server answers at once and the connection is closed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive

from tallyroom.intake.errors import Rejection

#: Largest protocol body accepted (a protocol is about 1 KiB; forms with hundreds of
#: candidates stay far below this).
MAX_PROTOCOL_BYTES = 64 * 1024
#: Bodies larger than their limit but not than this are drained so the client reads the 413.
DRAIN_LIMIT = 16 * 1024 * 1024


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


def too_large(limit: int, size: int | None) -> Rejection:
    what = f"body of {size:,} bytes" if size is not None else "body"
    return Rejection(
        413,
        "too-large",
        f"{what} is larger than the limit of {limit:,} bytes",
        "body",
        extra={"limit": limit},
    )


async def _drain(receive: Receive, budget: int) -> None:
    while budget > 0:
        msg = await receive()
        if msg["type"] != "http.request":
            return
        budget -= len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or a 413 `Rejection` decided before it is ever held whole."""
    return await read_asgi_body(request.headers.get("content-length"), request.receive, limit)


async def read_asgi_body(declared: str | None, receive: Receive, limit: int) -> bytes:
    """:func:`read_body` from the raw ASGI ``receive`` and the ``Content-Length`` header."""
    if declared is not None:
        if not declared.isdigit() or len(declared) > 18:
            raise Rejection(400, "bad-length", "Content-Length is not a number", "Content-Length")
        size = int(declared)
        if size > limit:
            if size <= DRAIN_LIMIT:
                await _drain(receive, size)
            raise too_large(limit, size)
    chunks: list[bytes] = []
    n = 0
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            raise ClientGone()
        chunk = msg.get("body", b"")
        n += len(chunk)
        if n > limit:
            if msg.get("more_body", False):
                await _drain(receive, DRAIN_LIMIT - n)
            raise too_large(limit, None)
        if chunk:
            chunks.append(chunk)
        if not msg.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

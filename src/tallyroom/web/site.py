"""The public results site: serve a publish folder (``tallyroom publish --out DIR``) over ASGI.

``PublishedSite(DIR)`` is a plain ASGI app (mount it at ``/``; ``site_app(DIR)`` wraps it in a
Starlette app). It serves files only — every page was rendered and checked when its snapshot
was published — with:

* ``/snapshots/<n>/…``: ``Cache-Control: public, max-age=31536000, immutable`` (a snapshot is
  never edited);
* ``/…`` (anything else): the same path inside ``current`` (the newest snapshot), with a short
  ``max-age`` so readers see a new snapshot within seconds;
* strong ETags (SHA-256 of the bytes sent; each precompressed copy has its own), ``304 Not
  Modified`` on ``If-None-Match``, ``Vary: Accept-Encoding`` and the precompressed ``.br`` or
  ``.gz`` copy when the client accepts it; a file stored only as its ``.gz`` copy (station
  pages and their JSON twins, docs/bulletin.md §2) is decompressed for a client that does not;
* one byte range of any file (``Range``, ``If-Range``: 206, or 416 past the end; see
  :mod:`.ranges`), so that a download cut off on a slow connection goes on where it stopped;
* ``/`` → ``/<lang>/`` by ``Accept-Language`` (ky, ru, en); ``/<lang>/`` → its ``index.html``;
* ``/current.json`` (which snapshot is current), ``/status.json`` and ``/healthz`` (the last
  publish attempt: 503 when the gate refused it or the publisher stalled), ``/status`` (the
  operator's status page; see :mod:`.status_page`).
* an address with no file: 404 with the "page not found" page the publisher wrote
  (``errors/404.<lang>.html``) in the address's language, else the reader's; plain text for
  the JSON API (``/api/…``), as its OpenAPI document says.

Nothing outside the publish folder's ``current``, ``snapshots`` and its three JSON files is
reachable: no ``..``, no hidden names, no symlinks out of the folder.

Every response carries :data:`SECURITY_HEADERS` (``deploy/nginx.conf`` sends the same): the
pages load only their own scripts and styles and may not be framed by another site, so that
a look-alike page cannot show the real results inside a frame of its own.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tallyroom.publish.i18n import LANGUAGES, negotiate
from tallyroom.web import ranges, status_page

#: Sent with every response. The pages need no script, style, image or connection from
#: elsewhere, no inline script, no form and no plugin; inline ``style`` attributes colour the
#: party swatches. ``frame-ancestors 'none'`` (and ``X-Frame-Options`` for older browsers)
#: keeps the site out of other sites' frames; ``nosniff`` makes a JSON or CSV download never
#: run as a page.
CONTENT_SECURITY_POLICY = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
    b"object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

IMMUTABLE = b"public, max-age=31536000, immutable"
#: Files up to this size are kept in memory once read (a snapshot's files never change).
CACHE_MAX_FILE = 2_000_000
CACHE_MAX_TOTAL = 256_000_000
CHUNK = 256 * 1024

TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".json": b"application/json",
    ".jsonl": b"application/x-ndjson",
    ".csv": b"text/csv; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml",
    ".txt": b"text/plain; charset=utf-8",
    ".vkey": b"text/plain; charset=utf-8",
    ".yaml": b"application/yaml",
    ".sqlite": b"application/vnd.sqlite3",
    ".png": b"image/png",
    ".jpg": b"image/jpeg",
    ".pdf": b"application/pdf",
    ".js": b"text/javascript; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class _File:
    path: str
    etag: bytes
    size: int
    body: bytes | None  # None: too large to cache, streamed from disk
    encoding: bytes | None
    content_type: bytes


def _accepts(header: bytes, coding: bytes) -> bool:
    for part in header.split(b","):
        name, _, params = part.strip().partition(b";")
        if name.strip() == coding:
            return b"q=0" not in params.replace(b" ", b"") or b"q=0." in params
    return False


def _etag_matches(header: bytes, etag: bytes) -> bool:
    if header.strip() == b"*":
        return True
    for tag in header.split(b","):
        tag = tag.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


class PublishedSite:
    """ASGI app serving one publish folder."""

    def __init__(
        self,
        publish_dir: Path | str,
        *,
        languages: tuple[str, ...] = LANGUAGES,
        default_language: str = "en",
        current_max_age: int = 5,
    ) -> None:
        self.root = Path(publish_dir).resolve()
        self.languages = languages
        self.default_language = default_language
        self.current_cc = f"public, max-age={current_max_age}".encode()
        self._cache: dict[tuple[str, bytes | None], _File] = {}
        self._cached_bytes = 0
        self._current: tuple[float, str | None] = (0.0, None)
        #: The error pages read, by language: ((mtime, size), bytes).
        self._errors: dict[str, tuple[tuple[int, int], bytes]] = {}

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await self._plain(send, method, 405, b"only GET and HEAD\n", [(b"allow", b"GET, HEAD")])
            return
        path: str = scope["path"]
        headers = dict(scope["headers"])
        if path == "/":
            lang = negotiate(
                headers.get(b"accept-language", b"").decode("latin-1"), self.languages, self.default_language
            )
            await self._redirect(send, f"/{lang}/", vary=b"Accept-Language")
            return
        if path in ("/healthz", "/status"):
            await self._status(send, path, method)
            return
        if path in ("/current.json", "/status.json"):
            await self._serve(send, headers, method, str(self.root / path[1:]), b"no-cache")
            return
        parts = path[1:].split("/")
        if any(p.startswith(".") or (p == "" and i < len(parts) - 1) for i, p in enumerate(parts)):
            await self._not_found(send, method, path, headers)
            return
        if parts[-1] == "":
            parts[-1] = "index.html"
        elif len(parts) == 1 and parts[0] in self.languages:
            await self._redirect(send, f"/{parts[0]}/")
            return
        if parts[0] == "snapshots":
            if len(parts) < 3 or not parts[1].isdigit():
                await self._not_found(send, method, path, headers)
                return
            target = os.path.join(str(self.root), "snapshots", parts[1], *parts[2:])
            await self._serve(send, headers, method, target, IMMUTABLE, path)
            return
        current = self._current_dir()
        if current is None:
            retry = [(b"retry-after", b"5")]
            await self._plain(send, method, 503, b"nothing has been published yet\n", retry)
            return
        await self._serve(send, headers, method, os.path.join(current, *parts), self.current_cc, path)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- files ---------------------------------------------------------------------------------

    def _current_dir(self) -> str | None:
        """The real folder ``current`` points at (re-read at most every 50 ms)."""
        now = time.monotonic()
        at, value = self._current
        if value is not None and now - at < 0.05:
            return value
        try:
            target = os.readlink(self.root / "current")
        except OSError:
            return None
        value = os.path.join(str(self.root), target)
        self._current = (now, value)
        return value

    def _load(self, path: str, encoding: bytes | None) -> _File | None:
        key = (path, encoding)
        got = self._cache.get(key)
        if got is not None:
            return got
        real = path if encoding is None else path + (b".br" if encoding == b"br" else b".gz").decode()
        resolved = self._inside(real)
        if resolved is None:
            # A station page or its JSON twin is stored only as its gzip copy
            # (docs/bulletin.md §2): a client that does not accept gzip gets it decompressed.
            return self._gunzipped(path, key) if encoding is None else None
        try:
            st = os.stat(resolved)
        except OSError:
            return None
        suffix = os.path.splitext(path)[1]
        ctype = TYPES.get(suffix, b"application/octet-stream")
        h = hashlib.sha256()
        body: bytes | None = None
        with open(resolved, "rb") as fh:
            if st.st_size <= CACHE_MAX_FILE:
                body = fh.read()
                h.update(body)
            else:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        tag = h.hexdigest()[:40]
        etag = f'"{tag}"'.encode()
        return self._keep(key, _File(resolved, etag, st.st_size, body, encoding, ctype))

    def _inside(self, path: str) -> str | None:
        """The real path of a regular file inside the publish folder, or None."""
        try:
            resolved = os.path.realpath(path)
        except OSError:
            return None
        if not resolved.startswith(str(self.root) + os.sep) or not os.path.isfile(resolved):
            return None
        return resolved

    def _gunzipped(self, path: str, key: tuple[str, bytes | None]) -> _File | None:
        resolved = self._inside(path + ".gz")
        if resolved is None:
            return None
        with open(resolved, "rb") as fh:
            raw = fh.read()
        try:
            body = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return None
        etag = f'"{hashlib.sha256(body).hexdigest()[:40]}"'.encode()
        ctype = TYPES.get(os.path.splitext(path)[1], b"application/octet-stream")
        return self._keep(key, _File(resolved, etag, len(body), body, None, ctype))

    def _keep(self, key: tuple[str, bytes | None], f: _File) -> _File:
        # Only files inside a numbered snapshot are immutable and safe to keep.
        if f.body is not None and "/snapshots/" in f.path and self._cached_bytes + f.size < CACHE_MAX_TOTAL:
            self._cache[key] = f
            self._cached_bytes += f.size
        return f

    async def _serve(
        self,
        send: Send,
        headers: dict[bytes, bytes],
        method: str,
        path: str,
        cache_control: bytes,
        url: str | None = None,
    ) -> None:
        accept = headers.get(b"accept-encoding", b"")
        f = None
        if accept:
            if _accepts(accept, b"br"):
                f = self._load(path, b"br")
            if f is None and _accepts(accept, b"gzip"):
                f = self._load(path, b"gzip")
        if f is None:
            f = self._load(path, None)
        if f is None:
            if url is None:
                await self._plain(send, method, 404, b"not found\n")
            else:
                await self._not_found(send, method, url, headers)
            return
        common = [
            (b"etag", f.etag),
            (b"cache-control", cache_control),
            (b"vary", b"Accept-Encoding"),
            *SECURITY_HEADERS,
        ]
        inm = headers.get(b"if-none-match")
        if inm is not None and _etag_matches(inm, f.etag):
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        if f.encoding is not None:
            common.append((b"content-encoding", f.encoding))
        span = None
        # HEAD too: its headers are those GET would get (RFC 9110 §9.3.2), as from nginx.
        wanted = headers.get(b"range")
        if wanted is not None:
            if_range = headers.get(b"if-range")
            # If-Range with anything but this representation's own (strong) tag, a date
            # included (no Last-Modified is sent), asks for the whole file (RFC 9110 §13.1.5).
            if if_range is None or if_range.strip() == f.etag:
                span = ranges.byte_range(wanted, f.size)
        if span == ranges.UNSATISFIABLE:
            await send(
                {
                    "type": "http.response.start",
                    "status": 416,
                    "headers": [
                        (b"content-range", f"bytes */{f.size}".encode()),
                        (b"content-length", b"0"),
                        *common,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if isinstance(span, tuple):
            first, last = span
            status = 206
            common.append((b"content-range", f"bytes {first}-{last}/{f.size}".encode()))
        else:
            first, last = 0, f.size - 1
            status = 200
        out = [
            (b"content-type", f.content_type),
            (b"content-length", str(last + 1 - first).encode()),
            (b"accept-ranges", b"bytes"),
            *common,
        ]
        await send({"type": "http.response.start", "status": status, "headers": out})
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        if f.body is not None:
            body = f.body if status == 200 else f.body[first : last + 1]
            await send({"type": "http.response.body", "body": body})
            return
        left = last + 1 - first
        with open(f.path, "rb") as fh:
            fh.seek(first)
            while True:
                block = fh.read(min(CHUNK, left))
                left -= len(block)
                more = left > 0 and len(block) > 0
                await send({"type": "http.response.body", "body": block, "more_body": more})
                if not more:
                    break

    # -- small responses -----------------------------------------------------------------------

    async def _not_found(self, send: Send, method: str, url: str, headers: dict[bytes, bytes]) -> None:
        """404 with the "page not found" page the publisher wrote (``errors/404.<lang>.html``)
        in the language of the address (``/ru/…``, ``/snapshots/N/ru/…``), else of
        ``Accept-Language``. The JSON API's addresses (``/api/…``) keep the plain text its
        OpenAPI document gives, and so does any address before such a page is written."""
        parts = url[1:].split("/")
        if parts[0] == "api" or (parts[0] == "snapshots" and parts[2:3] == ["api"]):
            await self._plain(send, method, 404, b"not found\n")
            return
        lang = next((p for p in parts[:3] if p in self.languages), None)
        if lang is None:
            lang = negotiate(
                headers.get(b"accept-language", b"").decode("latin-1"), self.languages, self.default_language
            )
        body = self._error_page(lang)
        if body is None:
            await self._plain(send, method, 404, b"not found\n")
            return
        await _respond(send, method, 404, b"text/html; charset=utf-8", body)

    def _error_page(self, lang: str) -> bytes | None:
        """``errors/404.<lang>.html``, read again when the publisher replaced it."""
        path = self.root / "errors" / f"404.{lang}.html"
        try:
            st = path.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        got = self._errors.get(lang)
        if got is not None and got[0] == stamp:
            return got[1]
        try:
            body = path.read_bytes()
        except OSError:
            return None
        self._errors[lang] = (stamp, body)
        return body

    async def _plain(
        self,
        send: Send,
        method: str,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        await _respond(send, method, status, b"text/plain; charset=utf-8", body, extra or [])

    async def _redirect(self, send: Send, location: str, vary: bytes | None = None) -> None:
        headers = [
            (b"location", location.encode()),
            (b"content-length", b"0"),
            (b"cache-control", b"public, max-age=60"),
            *SECURITY_HEADERS,
        ]
        if vary:
            headers.append((b"vary", vary))
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def status(self) -> dict[str, Any]:
        return status_page.read_status(self.root, self._current_dir() is not None)

    async def _status(self, send: Send, path: str, method: str) -> None:
        has_current = self._current_dir() is not None
        st = status_page.read_status(self.root, has_current)
        now = time.time()
        state, _ = status_page.health(st, has_current, now)
        if path == "/healthz":
            doc = status_page.health_document(st, has_current, now)
            body = (json.dumps(doc) + "\n").encode()
            ctype = b"application/json"
        else:
            current = status_page.read_json(self.root / "current.json") if has_current else None
            refusals = status_page.recent_refusals(self.root)
            body = status_page.status_page(st, current, refusals, has_current, now).encode()
            ctype = b"text/html; charset=utf-8"
        await _respond(send, method, 200 if state == "ok" else 503, ctype, body)


async def _respond(
    send: Send,
    method: str,
    status: int,
    content_type: bytes,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A small response made here (not a published file): never cached, with the security
    headers; no body for HEAD."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-cache"),
                *SECURITY_HEADERS,
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def site_app(publish_dir: Path | str, **kwargs: Any) -> Any:
    """A Starlette app with the published site mounted at ``/``."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return Starlette(routes=[Mount("/", app=PublishedSite(publish_dir, **kwargs))])


def app_from_env() -> PublishedSite:
    """Factory for ASGI servers (`uvicorn --factory tallyroom.web.site:app_from_env`): serves
    the folder named by ``TALLYROOM_PUBLISH_DIR``."""
    folder = os.environ.get("TALLYROOM_PUBLISH_DIR")
    if not folder:
        raise RuntimeError("set TALLYROOM_PUBLISH_DIR to the publish folder")
    return PublishedSite(folder)

"""Where the published files come from: a snapshot folder, a publish folder, or a site's URL.

* a **snapshot folder** holds ``manifest.json`` (docs/bulletin.md §2);
* a **publish folder** holds ``current`` (or ``current.json``) and ``snapshots/<N>/``: the
  current snapshot is verified, and the earlier ones are compared with the ledger's record of
  them;
* an **http(s) URL** of a site (``/current.json``, ``/snapshots/<N>/…``) or of one snapshot
  (``…/snapshots/<N>/``): files are fetched with ``urllib``, asking for the precompressed copy
  a browser would get (``Accept-Encoding: br, gzip``) and decompressing it here, so the bytes a
  reader receives are the ones checked.

Reading never trusts what it reads: every file is hashed against the manifest by the caller.
A source that cannot be reached at all raises :class:`SourceError` (exit code 2).
"""

from __future__ import annotations

import gzip
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

try:
    import brotli as _brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - brotli is a dependency; without it .br is skipped
    _brotli = None
try:
    # ISA-L's inflate decodes the same gzip format (members, CRC-32 and size checked) about
    # 1.6x faster than zlib: a snapshot has a .gz copy of nearly every one of its files.
    from isal import igzip as _igzip

    _gunzip: Callable[[bytes], bytes] = _igzip.decompress
except ImportError:  # pragma: no cover - isal is a dependency
    _gunzip = gzip.decompress

#: Seconds before an HTTP request gives up.
HTTP_TIMEOUT = 30.0
USER_AGENT = "tallyroom-verify/1"


class SourceError(Exception):
    """The source cannot be read at all (missing folder, unreachable site, no manifest)."""


class FileMissing(Exception):
    """One file of the source is not there (a mismatch, not a reason to stop)."""


def decompress(encoding: str, data: bytes) -> bytes:
    """Decompress a copy; ValueError if it does not decompress."""
    try:
        if encoding in ("gzip", "gz"):
            return _gunzip(data)
        if encoding in ("br", "brotli"):
            if _brotli is None:  # pragma: no cover
                raise ValueError("brotli is not installed")
            unbr: bytes = _brotli.decompress(data)
            return unbr
        if encoding == "deflate":
            return zlib.decompress(data)
    except ValueError:
        raise
    except Exception as exc:  # gzip, zlib and brotli each raise their own error types
        raise ValueError(f"{encoding} data does not decompress: {exc}") from None
    raise ValueError(f"unknown content encoding {encoding!r}")


class Snapshot(Protocol):
    """The files of one snapshot, by path relative to the snapshot folder."""

    @property
    def label(self) -> str: ...

    def read(self, rel: str) -> bytes:
        """The file's bytes (as a reader gets them, decoded); :class:`FileMissing` if absent."""
        ...

    def read_gzip_only(self, rel: str) -> bytes:
        """The bytes of a file stored only as ``<rel>.gz`` (manifest encoding ``gzip-only``,
        docs/bulletin.md §2), decompressed; :class:`FileMissing` if absent, ValueError if the
        copy does not decompress."""
        ...

    def copies(self, rel: str, encodings: list[str]) -> list[tuple[str, bytes | None]]:
        """The precompressed copies to check: (encoding, decompressed bytes or None if absent).

        A folder checks each listed copy; a site checks the one it served (done in ``read``).
        """
        ...

    def listing(self) -> set[str] | None:
        """Every file present (folders only), to find files the manifest does not list."""
        ...

    def prefetch(self, names: list[str]) -> None:
        """Ask for these files (names on disk, compressed copies included) to be read ahead,
        when they are not in memory yet; nothing for a site."""
        ...

    def local_path(self, rel: str) -> Path | None:
        """A path on disk, when the file is local (SQLite opens it in place)."""
        ...


def _cached(path: str) -> bool:
    """Whether the start of the file is in the page cache (a read that may not wait for the
    disk, ``RWF_NOWAIT``, succeeds); True where that cannot be asked."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError):  # ValueError: a name with a NUL byte (a tampered manifest)
        return True
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
        return True
    except BlockingIOError:
        return False
    except (OSError, AttributeError):
        return True
    finally:
        os.close(fd)


def _read_ahead(paths: list[str]) -> None:
    """Start the kernel reading these files (``posix_fadvise`` WILLNEED returns at once), so
    that the disk works on many of them while they are checked one by one: verifying the
    100,000-station night with nothing in the page cache spent a third of its time waiting for
    its 405,625 small files to be read one at a time (docs/decisions/0016)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except (OSError, ValueError):
            continue  # a missing or unreadable file is reported when it is read
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except (OSError, AttributeError):
            pass
        finally:
            os.close(fd)


def _read(path: str) -> bytes:
    """A whole file with as few system calls as possible (hundreds of thousands are read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size + 1)
        # One read returns the whole file when it has the size fstat gave; a short read or a
        # file that grew meanwhile is read on to its end.
        if len(data) != size:
            parts = [data]
            while True:
                more = os.read(fd, 1 << 20)
                if not more:
                    break
                parts.append(more)
            data = b"".join(parts)
        return data
    finally:
        os.close(fd)


@dataclass
class DirSnapshot:
    root: Path

    @property
    def label(self) -> str:
        return str(self.root)

    def __post_init__(self) -> None:
        self._base = str(self.root) + os.sep

    def read(self, rel: str) -> bytes:
        try:
            return _read(self._base + rel)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise FileMissing(rel) from None

    def read_gzip_only(self, rel: str) -> bytes:
        return decompress("gzip", self.read(rel + ".gz"))

    def copies(self, rel: str, encodings: list[str]) -> list[tuple[str, bytes | None]]:
        out: list[tuple[str, bytes | None]] = []
        for enc in encodings:
            suffix = ".gz" if enc == "gzip" else ".br" if enc == "br" else None
            if suffix is None:
                out.append((enc, None))
                continue
            try:
                raw = _read(self._base + rel + suffix)
            except FileNotFoundError:
                out.append((enc, None))
                continue
            try:
                out.append((enc, decompress(enc, raw)))
            except ValueError:
                out.append((enc, b"(does not decompress)"))
        return out

    def listing(self) -> set[str]:
        found: set[str] = set()
        base = str(self.root)
        for folder, _dirs, names in os.walk(base):
            rel_dir = os.path.relpath(folder, base)
            for name in names:
                found.add(name if rel_dir == "." else f"{rel_dir}/{name}")
        return found

    def local_path(self, rel: str) -> Path | None:
        return self.root / rel

    def prefetch(self, names: list[str]) -> None:
        paths = [self._base + n for n in names]
        if paths and not _cached(paths[0]):
            _read_ahead(paths)


def http_get(url: str, *, encoded: bool = True) -> tuple[bytes, str | None]:
    """GET ``url``; return (decoded body, content encoding served). Raises FileMissing on 404."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "br, gzip" if encoded else "identity"}
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            raw = resp.read()
            encoding = resp.headers.get("Content-Encoding")
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise FileMissing(url) from None
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SourceError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if encoding and encoding != "identity":
        try:
            raw = decompress(encoding, raw)
        except ValueError as exc:
            raise ValueError(f"{url}: the {encoding} copy served does not decompress: {exc}") from exc
    return raw, encoding


@dataclass
class HttpSnapshot:
    base: str  # ends with "/"

    @property
    def label(self) -> str:
        return self.base

    def read(self, rel: str) -> bytes:
        try:
            body, _enc = http_get(self.base + urllib.parse.quote(rel))
        except FileMissing:
            raise FileMissing(rel) from None
        return body

    def read_gzip_only(self, rel: str) -> bytes:
        # tallyroom's app and deploy/nginx.conf serve the copy under the file's own name; a
        # plain static server (a mirror of the folder) has only the .gz file.
        try:
            return self.read(rel)
        except FileMissing:
            pass
        try:
            raw, _enc = http_get(self.base + urllib.parse.quote(rel + ".gz"), encoded=False)
        except FileMissing:
            raise FileMissing(rel) from None
        return decompress("gzip", raw)

    def copies(self, rel: str, encodings: list[str]) -> list[tuple[str, bytes | None]]:
        return []  # the copy a client is served is checked by read()

    def listing(self) -> set[str] | None:
        return None

    def local_path(self, rel: str) -> Path | None:
        return None

    def prefetch(self, names: list[str]) -> None:
        return None


@dataclass
class Opened:
    """A source resolved to the snapshot to verify, and (when known) its publish folder."""

    snapshot: Snapshot
    #: Reads files of the publish folder (``current.json``, ``snapshots/<n>/…``), or None when
    #: the source was a single snapshot.
    publish: PublishRoot | None
    number_hint: int | None = None


class PublishRoot(Protocol):
    @property
    def label(self) -> str: ...

    def read(self, rel: str) -> bytes: ...

    def snapshot(self, number: int) -> Snapshot: ...

    def current(self) -> tuple[int, Snapshot]: ...


@dataclass
class DirPublish:
    root: Path

    @property
    def label(self) -> str:
        return str(self.root)

    def read(self, rel: str) -> bytes:
        try:
            return (self.root / rel).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise FileMissing(rel) from None

    def snapshot(self, number: int) -> Snapshot:
        return DirSnapshot(self.root / "snapshots" / str(number))

    def current(self) -> tuple[int, Snapshot]:
        link = self.root / "current"
        if link.is_symlink() or link.is_dir():
            target = Path(os.readlink(link)) if link.is_symlink() else link.resolve()
            name = target.name
            if name.isdigit():
                return int(name), self.snapshot(int(name))
        pointer = _current_json(self.read("current.json"), str(self.root / "current.json"))
        return pointer, self.snapshot(pointer)


def _current_json(raw: bytes, where: str) -> int:
    try:
        doc = json.loads(raw)
        number = doc["snapshot"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{where} does not say which snapshot is current: {exc}") from None
    if not isinstance(number, int) or number < 1:
        raise SourceError(f"{where}: snapshot {number!r} is not a snapshot number")
    return number


@dataclass
class HttpPublish:
    base: str  # ends with "/"

    @property
    def label(self) -> str:
        return self.base

    def read(self, rel: str) -> bytes:
        body, _ = http_get(self.base + rel, encoded=False)
        return body

    def snapshot(self, number: int) -> Snapshot:
        return HttpSnapshot(f"{self.base}snapshots/{number}/")

    def current(self) -> tuple[int, Snapshot]:
        try:
            raw = self.read("current.json")
        except FileMissing:
            raise SourceError(f"{self.base}current.json: not found (is this a tallyroom site?)") from None
        number = _current_json(raw, self.base + "current.json")
        return number, self.snapshot(number)


def open_source(spec: str) -> Opened:
    """Resolve SOURCE (a folder or a URL) to the snapshot to verify."""
    if spec.startswith(("http://", "https://")):
        return _open_url(spec)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if not path.is_dir():
        raise SourceError(f"{spec}: not a folder (give a snapshot folder, a publish folder or a URL)")
    if (path / "manifest.json").is_file():
        publish = _publish_of(path)
        number = int(path.resolve().name) if path.resolve().name.isdigit() else None
        return Opened(DirSnapshot(path), publish, number)
    if (path / "current").exists() or (path / "current.json").is_file():
        pub = DirPublish(path)
        number, snap = pub.current()
        if not isinstance(snap, DirSnapshot) or not (snap.root / "manifest.json").is_file():
            raise SourceError(f"{spec}: current snapshot {number} has no manifest.json")
        return Opened(snap, pub, number)
    raise SourceError(f"{spec}: neither a snapshot (no manifest.json) nor a publish folder (no current)")


def _publish_of(snapshot_dir: Path) -> DirPublish | None:
    """The publish folder around ``<pub>/snapshots/<n>`` or ``<pub>/current``, if it is one."""
    real = snapshot_dir.resolve()
    if real.name.isdigit() and real.parent.name == "snapshots":
        return DirPublish(real.parent.parent)
    return None


def _open_url(spec: str) -> Opened:
    base = spec if spec.endswith("/") else spec + "/"
    parsed = urllib.parse.urlsplit(base)
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) >= 2 and parts[-2] == "snapshots" and parts[-1].isdigit():
        root = urllib.parse.urlunsplit(
            (parsed.scheme, parsed.netloc, "/".join(["", *parts[:-2], ""]), "", "")
        )
        return Opened(HttpSnapshot(base), HttpPublish(root), int(parts[-1]))
    pub = HttpPublish(base)
    try:
        number, snap = pub.current()
    except SourceError:
        # Perhaps the URL is one snapshot served on its own.
        try:
            http_get(base + "manifest.json", encoded=False)
        except (FileMissing, SourceError):
            raise SourceError(f"{spec}: no current.json and no manifest.json: not a tallyroom site") from None
        return Opened(HttpSnapshot(base), None, None)
    return Opened(snap, pub, number)

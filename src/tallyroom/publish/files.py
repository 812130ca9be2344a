"""Writing one snapshot's files: exact bytes, precompressed copies, hashes for the manifest.

Every file is written once into a staging folder and never changed. A file whose content did
not change since the previous snapshot is hard-linked from it (with its compressed copies), so
an incremental snapshot costs one link per unchanged file instead of a render and a write.

The staging folder may also start as a *prestaged* copy of the previous snapshot (every file
hard-linked, :func:`prestage`, done while the publisher waits for the next interval): then an
unchanged file costs nothing at publish time, a changed one is unlinked and written anew (never
written through the link: that inode belongs to the previous snapshot), and what the new
snapshot no longer has is removed before the folder is renamed into place.

Precompression (:func:`compression_for`, measured on the Kyrgyz-sized election in
docs/decisions/0005): the thousands of station pages and their JSON twins are stored *only*
as a gzip copy at level 1 (ISA-L's igzip when the ``isal`` package is installed: 5x faster
than zlib, at a better ratio than zlib level 1), listed with the encoding
:data:`GZIP_ONLY` (docs/decisions/0010: a file fewer to create and read per page, and a
fifth of the bytes); the app and nginx send that copy, decompressed for the rare client that
does not accept gzip. A brotli copy at quality 1–2 is no smaller for these 15–20 kB pages,
so they get none. Downloads
under ``data/`` and the ledger chunks get gzip level 1 and brotli quality 1; files of 1 MB
and more gzip level 1 only. The national and area pages and every other file get brotli
quality 5 (what browsers are sent) and gzip at ISA-L level 2 (:data:`PAGE_GZIP_LEVEL`).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import os
import threading
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

try:
    import brotli as _brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - brotli is optional
    _brotli = None

_igzip: Any = None
_isal_zlib: Any = None
try:
    import isal.igzip  # type: ignore[import-not-found,unused-ignore]
    import isal.isal_zlib  # type: ignore[import-not-found,unused-ignore]

    _igzip, _isal_zlib = isal.igzip, isal.isal_zlib
except ImportError:  # pragma: no cover - isal is optional (a dependency since docs/decisions/0005)
    pass

#: Files with these suffixes get .gz (and .br) copies when at least MIN_COMPRESS bytes long.
COMPRESSIBLE = frozenset(
    {".html", ".json", ".csv", ".txt", ".css", ".svg", ".yaml", ".jsonl", ".xml", ".vkey", ".sqlite"}
)
MIN_COMPRESS = 256
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
#: The national, area, reconciliation and other pages rewritten in every snapshot: gzip at
#: ISA-L level 2 (measured on the 57 pages of an incremental Kyrgyz-sized snapshot: 3.4 ms
#: and 329 kB against zlib level 6's 26.4 ms and 287 kB) and brotli at quality 5, the copy
#: that browsers (all of which accept brotli) are sent; the gzip copy is for the others.
PAGE_GZIP_LEVEL = 2
#: Large files are compressed faster (they are downloads, not pages on a phone).
LARGE = 1_000_000
#: Station pages and their JSON twins: gzip only, at this level (see the module docstring).
STATION_GZIP_LEVEL = 1
#: Downloads (``data/``, ledger chunks): rewritten often, hundreds of kB each; brotli at
#: quality 1 is as small as zlib at 6 for them and ten times faster.
DOWNLOAD_GZIP_LEVEL = 1
DOWNLOAD_BROTLI_QUALITY = 1

#: The encoding listed for a file stored only as ``<file>.gz`` (station pages and their JSON
#: twins, docs/bulletin.md §2): its SHA-256 and size are still those of the decompressed bytes.
GZIP_ONLY = "gzip-only"

_SUFFIXES = {"gzip": ".gz", "br": ".br"}
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def brotli_available() -> bool:
    return _brotli is not None


def compress_gzip(data: bytes, level: int | None = None) -> bytes:
    if level is None:
        level = GZIP_LEVEL if len(data) < LARGE else 1
    if _igzip is not None and level <= 3:
        out: bytes = _igzip.compress(data, compresslevel=level, mtime=0)
        return out
    return gzip.compress(data, compresslevel=level, mtime=0)


def compress_brotli(data: bytes, quality: int | None = None) -> bytes:
    assert _brotli is not None
    if quality is None:
        quality = BROTLI_QUALITY if len(data) < LARGE else 2
    out: bytes = _brotli.compress(data, quality=quality)
    return out


def compression_for(rel: str, size: int) -> tuple[int, int | None]:
    """(gzip level, brotli quality or None for no .br copy) of a file (see the module doc)."""
    if is_station_file(rel):
        return STATION_GZIP_LEVEL, None
    if size >= LARGE:
        return 1, None
    if rel.startswith(("data/", "bulletin/entries/")):
        return DOWNLOAD_GZIP_LEVEL, DOWNLOAD_BROTLI_QUALITY
    return PAGE_GZIP_LEVEL, BROTLI_QUALITY


def is_station_file(rel: str) -> bool:
    """A station page or its JSON twin: thousands of them, each read rarely."""
    if rel.startswith("api/v1/results/station/"):
        return True
    parts = rel.split("/", 2)
    return len(parts) == 3 and parts[1] == "station"


class FileInfo(msgspec.Struct, array_like=True):
    """A manifest entry: ``[sha256, size, [encodings]]``. A msgspec struct encoded as that
    array, so that the manifest (11,000 entries for the Kyrgyz-sized election, 400,000 at
    100,000 stations) is encoded in one call instead of a list made per entry."""

    sha256: str
    size: int
    encodings: tuple[str, ...] = ()

    def to_list(self) -> list[Any]:
        return [self.sha256, self.size, list(self.encodings)]

    @classmethod
    def from_list(cls, value: list[Any]) -> FileInfo:
        return cls(str(value[0]), int(value[1]), tuple(value[2]))

    def paths(self, rel: str) -> list[str]:
        """The file and its compressed copies (only the gzip copy of a :data:`GZIP_ONLY` file)."""
        if self.encodings == (GZIP_ONLY,):
            return [rel + ".gz"]
        return [rel, *(rel + _SUFFIXES[e] for e in self.encodings)]


class _Dirs:
    """Open directory descriptors under one root, so that each file costs one ``openat``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fds: dict[str, int] = {}

    def fd(self, folder: str) -> int:
        got = self.fds.get(folder)
        if got is None:
            path = self.root / folder if folder else self.root
            path.mkdir(parents=True, exist_ok=True)
            got = self.fds[folder] = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        return got

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


def _split(rel: str) -> tuple[str, str]:
    folder, _, name = rel.rpartition("/")
    return folder, name


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


#: The folder of a prestaged staging folder that holds spare empty files (removed before the
#: staging folder is renamed into place; never part of a snapshot).
SPARE_FOLDER = ".spare"
#: Spare files made per prestaged snapshot: twice as many as the last snapshot created,
#: within these bounds.
SPARE_MIN = 256
SPARE_MAX = 2048


def make_spares(folder: Path, count: int) -> None:
    """Create ``count`` empty files in ``folder`` (see :class:`_Spares`)."""
    folder.mkdir()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(count):
            os.close(os.open(f"{i}", _CREATE, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


class _Spares:
    """Empty files made ahead of time, in a prestaged staging folder, for the files of the next
    snapshot. Making a file allocates an inode, and on the ext4 disk measured that costs
    100–360 µs of CPU (a hard link 15 µs, an unlink 5 µs, on tmpfs all of them 5–8 µs): about
    270 files per incremental Kyrgyz-sized snapshot, some 60 ms. A spare is taken by linking it
    under the new name (which fails if that name exists, like ``O_EXCL``) and unlinking its
    spare name, so that the inode is allocated between snapshots, not at publish time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        self.names = os.listdir(self.fd)

    def open(self, dir_fd: int, name: str) -> int | None:
        """A descriptor (for writing) of a new empty file ``name`` in ``dir_fd``; None when
        no spare is left."""
        try:
            spare = self.names.pop()  # atomic: the writer's threads may take spares too
        except IndexError:
            return None
        fd = os.open(spare, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), dir_fd=self.fd)
        try:
            os.link(spare, name, src_dir_fd=self.fd, dst_dir_fd=dir_fd)
            os.unlink(spare, dir_fd=self.fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def remove(self) -> None:
        """Remove the spares left and their folder."""
        for spare in self.names:
            os.unlink(spare, dir_fd=self.fd)
        self.names = []
        os.close(self.fd)
        os.rmdir(self.folder)


#: Threads that compress, hash and write the files of :meth:`SnapshotWriter.write_later`. Two
#: instead of one, on 2 cores: a prestaged incremental Kyrgyz-sized snapshot took 0.350-0.395 s
#: instead of 0.370-0.412 s (its pages step 82-88 ms instead of 99-105 ms; medians of three
#: runs of 13-20 builds each, taking turns in one process); a third thread gained nothing more.
WRITER_THREADS = 2

#: Large files are hashed and compressed in pieces of this many bytes (:meth:`SnapshotWriter.adopt`).
PIECE = 4 << 20


def _gzip_stream(level: int) -> Any:
    """A streaming gzip compressor (header with no time or name): ISA-L's for levels ≤ 3
    when the ``isal`` package is installed, like :func:`compress_gzip`."""
    if _isal_zlib is not None and level <= 3:
        return _isal_zlib.compressobj(level, _isal_zlib.DEFLATED, 31)
    return zlib.compressobj(level, zlib.DEFLATED, 31)


@dataclass
class SnapshotWriter:
    """Writes files under ``root`` (the staging folder) and remembers their hashes.

    ``present`` lists files already in ``root`` because it was prestaged from the previous
    snapshot (relative path -> that snapshot's manifest entry).
    """

    root: Path
    compress: bool = True
    brotli: bool = True
    files: dict[str, FileInfo] = field(default_factory=dict)
    written: int = 0
    linked: int = 0
    present: dict[str, FileInfo] = field(default_factory=dict)
    #: The previous snapshot and its manifest, for :meth:`put`.
    previous: Path | None = None
    prev_files: dict[str, FileInfo] = field(default_factory=dict)
    _dirs: _Dirs | None = None
    _src: _Dirs | None = None
    #: Spare empty files of a prestaged staging folder (see :class:`_Spares`).
    _spares: _Spares | None = None
    #: Files created (each an inode allocated), to size the next snapshot's spares.
    created: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: The threads that write files handed to :meth:`write_later`, and those not yet recorded.
    _pool: ThreadPoolExecutor | None = None
    _pending: list[tuple[str, Future[FileInfo]]] = field(default_factory=list)
    #: Files this writer wrote (not linked) in this process, in order: a continuous publisher
    #: does not prestage them for the next snapshot (they are mostly rewritten again).
    rewritten: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        folder = self.root / SPARE_FOLDER
        if self.present and folder.is_dir():
            self._spares = _Spares(folder)

    def _open_new(self, dir_fd: int, name: str) -> int:
        """A descriptor of a new file ``name`` (which must not exist): a spare if any is left."""
        with self._lock:
            self.created += 1
        if self._spares is not None:
            fd = self._spares.open(dir_fd, name)
            if fd is not None:
                return fd
        return os.open(name, _CREATE, 0o644, dir_fd=dir_fd)

    def _create(self, dir_fd: int, name: str, data: bytes) -> None:
        fd = self._open_new(dir_fd, name)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)

    @property
    def dirs(self) -> _Dirs:
        if self._dirs is None:
            self._dirs = _Dirs(self.root)
        return self._dirs

    def _clear(self, rel: str) -> None:
        """Remove a prestaged file (a link to the previous snapshot's inode) before writing."""
        old = self.present.pop(rel, None)
        if old is not None:
            folder, _ = _split(rel)
            fd = self.dirs.fd(folder)
            for path in old.paths(rel):
                os.unlink(_split(path)[1], dir_fd=fd)

    def discard(self, rel: str) -> None:
        """Remove a prestaged file that is about to be written by another process."""
        if self.present:
            self._clear(rel)

    def path_for(self, rel: str) -> Path:
        """Where to create ``rel`` by other means (then :meth:`adopt` it); a prestaged link
        there is removed first, so nothing is ever written through it."""
        self.discard(rel)
        path = self.root / rel
        self.dirs.fd(_split(rel)[0])
        return path

    def adopt(self, rel: str) -> FileInfo:
        """Record (hash, compress) a file created at :meth:`path_for`. A large file is read
        in pieces (hashed and compressed as it is read): never all of it in memory."""
        folder, name = _split(rel)
        fd = self.dirs.fd(folder)
        if os.path.getsize(self.root / rel) >= LARGE:
            return self._record(rel, self._adopt_large(rel, fd, name))
        data = (self.root / rel).read_bytes()
        encodings: list[str] = []
        if self.compress and len(data) >= MIN_COMPRESS and os.path.splitext(name)[1] in COMPRESSIBLE:
            gz, br = compression_for(rel, len(data))
            self._create(fd, name + ".gz", compress_gzip(data, gz))
            encodings.append("gzip")
            if br is not None and self.brotli and _brotli is not None:
                self._create(fd, name + ".br", compress_brotli(data, br))
                encodings.append("br")
        return self._record(rel, FileInfo(hashlib.sha256(data).hexdigest(), len(data), tuple(encodings)))

    def _record(self, rel: str, info: FileInfo) -> FileInfo:
        """Note a file this writer wrote (or adopted)."""
        self.files[rel] = info
        self.written += 1
        self.rewritten.append(rel)
        return info

    def _adopt_large(self, rel: str, fd: int, name: str) -> FileInfo:
        want = self.compress and os.path.splitext(name)[1] in COMPRESSIBLE
        size = 0
        sha = hashlib.sha256()
        gz = _gzip_stream(compression_for(rel, LARGE)[0]) if want else None
        out = self._open_new(fd, name + ".gz") if gz is not None else -1
        try:
            with open(self.root / rel, "rb") as fh:
                while piece := fh.read(PIECE):
                    size += len(piece)
                    sha.update(piece)
                    if gz is not None:
                        _write_all(out, gz.compress(piece))
            if gz is not None:
                _write_all(out, gz.flush())
        finally:
            if out >= 0:
                os.close(out)
        return FileInfo(sha.hexdigest(), size, ("gzip",) if gz is not None else ())

    def put(self, rel: str, data: bytes) -> FileInfo:
        """Write ``data``, or link the previous snapshot's file when it holds these very bytes
        (same SHA-256 and size): saves compressing and writing an unchanged file again."""
        old = self.prev_files.get(rel)
        if (
            old is not None
            and self.previous is not None
            and old.size == len(data)
            and old.sha256 == hashlib.sha256(data).hexdigest()
        ):
            self.link(self.previous, rel, old)
            return old
        return self.write(rel, data)

    def write(self, rel: str, data: bytes, compress: bool | None = None) -> FileInfo:
        if self.present:
            self._clear(rel)
        folder, name = _split(rel)
        return self._record(rel, self._encode(self.dirs.fd(folder), name, rel, data, compress))

    def _encode(self, fd: int, name: str, rel: str, data: bytes, compress: bool | None) -> FileInfo:
        """Create ``name`` in the folder ``fd`` with ``data`` and its compressed copies. Changes
        nothing of this writer but its spares and count of files made (both safe from the
        writer's threads)."""
        info, out = self._encoded(name, rel, data, compress)
        for leaf, body in out:
            self._create(fd, leaf, body)
        return info

    def _encoded(
        self, name: str, rel: str, data: bytes, compress: bool | None
    ) -> tuple[FileInfo, list[tuple[str, bytes]]]:
        """The manifest entry of ``rel`` and the files it is stored as (name in its folder,
        bytes): itself and its compressed copies, or only its gzip copy."""
        want = self.compress if compress is None else compress
        compressible = want and len(data) >= MIN_COMPRESS and os.path.splitext(name)[1] in COMPRESSIBLE
        sha = hashlib.sha256(data).hexdigest()
        gz, br = compression_for(rel, len(data))
        if compressible and is_station_file(rel):
            return FileInfo(sha, len(data), (GZIP_ONLY,)), [(name + ".gz", compress_gzip(data, gz))]
        out = [(name, data)]
        encodings: list[str] = []
        if compressible:
            out.append((name + ".gz", compress_gzip(data, gz)))
            encodings.append("gzip")
            if br is not None and self.brotli and _brotli is not None:
                out.append((name + ".br", compress_brotli(data, br)))
                encodings.append("br")
        return FileInfo(sha, len(data), tuple(encodings)), out

    def write_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """:meth:`write` each of ``items`` (path, bytes), for a writer that shares its folders
        with another process's: the page workers of a full build all write station pages
        into the same few folders (``en/station/`` …). Two processes creating files in one
        ext4 folder at once wait on its lock by spinning: measured on a 2-core machine, 156 µs
        of CPU per file instead of 24 µs alone (docs/decisions/0011). So the files are
        compressed first, then created folder by folder, each folder under an exclusive
        ``flock`` on it (other writers of the same folder wait asleep instead), taking first
        a folder no other worker holds."""
        by_folder: dict[str, list[tuple[str, bytes]]] = {}
        infos: list[tuple[str, FileInfo]] = []
        for rel, data in items:
            if self.present:
                self._clear(rel)
            folder, name = _split(rel)
            info, out = self._encoded(name, rel, data, None)
            infos.append((rel, info))
            by_folder.setdefault(folder, []).extend(out)
        pending = list(by_folder.items())
        while pending:
            pick = 0
            for i, (folder, _) in enumerate(pending):
                try:
                    fcntl.flock(self.dirs.fd(folder), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                pick = i
                break
            else:
                fcntl.flock(self.dirs.fd(pending[0][0]), fcntl.LOCK_EX)
            folder, out = pending.pop(pick)
            fd = self.dirs.fd(folder)
            try:
                for leaf, body in out:
                    self._create(fd, leaf, body)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        for rel, info in infos:
            self._record(rel, info)

    def write_later(self, rel: str, data: bytes) -> None:
        """:meth:`write`, with the compression, hashing and writing done by background threads
        (:data:`WRITER_THREADS`): they release the GIL, so they overlap the rendering of the
        next page and each other. The file is recorded by :meth:`drain`, in the order the files
        were handed over (the prestaged link is removed here, in the caller's thread, so that
        nothing is ever written through it)."""
        if self.present:
            self._clear(rel)
        folder, name = _split(rel)
        fd = self.dirs.fd(folder)
        self._pending.append((rel, self._thread().submit(self._encode, fd, name, rel, data, None)))

    def _thread(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="tallyroom-writer")
        return self._pool

    def adopt_later(self, rel: str) -> None:
        """:meth:`adopt` by the background thread of :meth:`write_later`: hashing and
        compressing a large download (the 13 MB SQLite file of a Kyrgyz-sized election:
        40–50 ms, all of it outside the GIL) overlap what the caller does next. Only for a
        writer whose caller does not fork while the thread runs."""
        folder, name = _split(rel)
        fd = self.dirs.fd(folder)
        if os.path.getsize(self.root / rel) < LARGE:
            self.adopt(rel)
            return
        self._pending.append((rel, self._thread().submit(self._adopt_large, rel, fd, name)))

    def drain(self) -> None:
        """Wait for the files handed to :meth:`write_later` and record them."""
        pending, self._pending = self._pending, []
        for rel, done in pending:
            self._record(rel, done.result())

    def link(self, previous: Path, rel: str, info: FileInfo) -> None:
        """Reuse an unchanged file (and its compressed copies) of the previous snapshot."""
        old = self.present.pop(rel, None) if self.present else None
        if old is not None:
            if old == info:  # prestaged: already the same inode
                self.files[rel] = info
                self.linked += 1
                return
            self.present[rel] = old
            self._clear(rel)
        if self._src is None or self._src.root != previous:
            if self._src is not None:
                self._src.close()
            self._src = _Dirs(previous)
        folder, _ = _split(rel)
        src, dst = self._src.fd(folder), self.dirs.fd(folder)
        for path in info.paths(rel):
            leaf = _split(path)[1]
            os.link(leaf, leaf, src_dir_fd=src, dst_dir_fd=dst)
        self.files[rel] = info
        self.linked += 1

    def finish(self) -> None:
        """Remove prestaged files the new snapshot does not have and the spares left; close
        descriptors."""
        self.drain()
        for rel in list(self.present):
            self._clear(rel)
        self.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)  # before the descriptors its files use are closed
        spares, self._spares = self._spares, None
        if spares is not None:
            spares.remove()
        for d in (self._dirs, self._src):
            if d is not None:
                d.close()
        self._dirs = self._src = None


def prestage(previous: Path, stage: Path, files: dict[str, FileInfo], spares: int = 0) -> None:
    """Hard-link every file of ``previous`` (as its manifest lists them) into ``stage``, and
    make ``spares`` empty files for the next snapshot's new files (:class:`_Spares`)."""
    src, dst = _Dirs(previous), _Dirs(stage)
    try:
        if spares:
            make_spares(stage / SPARE_FOLDER, spares)
        for rel, info in files.items():
            folder, _ = _split(rel)
            s, d = src.fd(folder), dst.fd(folder)
            for path in info.paths(rel):
                leaf = _split(path)[1]
                os.link(leaf, leaf, src_dir_fd=s, dst_dir_fd=d)
    finally:
        src.close()
        dst.close()

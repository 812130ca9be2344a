"""Writing one snapshot's files: exact bytes, precompressed copies, hashes for the manifest.

Every file is written once into a staging folder and never changed. A file whose content did
not change since the previous snapshot is hard-linked from it (with its compressed copies), so
an incremental snapshot costs one link per unchanged file instead of a render and a write.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import brotli as _brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - brotli is optional
    _brotli = None

#: Files with these suffixes get .gz (and .br) copies when at least MIN_COMPRESS bytes long.
COMPRESSIBLE = frozenset(
    {".html", ".json", ".csv", ".txt", ".css", ".svg", ".yaml", ".jsonl", ".xml", ".vkey", ".sqlite"}
)
MIN_COMPRESS = 256
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
#: Large files are compressed faster (they are downloads, not pages on a phone).
LARGE = 1_000_000


def brotli_available() -> bool:
    return _brotli is not None


def compress_gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL if len(data) < LARGE else 1, mtime=0)


def compress_brotli(data: bytes) -> bytes:
    assert _brotli is not None
    quality = BROTLI_QUALITY if len(data) < LARGE else 2
    out: bytes = _brotli.compress(data, quality=quality)
    return out


@dataclass
class FileInfo:
    sha256: str
    size: int
    encodings: tuple[str, ...] = ()

    def to_list(self) -> list[Any]:
        return [self.sha256, self.size, list(self.encodings)]

    @classmethod
    def from_list(cls, value: list[Any]) -> FileInfo:
        return cls(str(value[0]), int(value[1]), tuple(value[2]))


@dataclass
class SnapshotWriter:
    """Writes files under ``root`` (the staging folder) and remembers their hashes."""

    root: Path
    compress: bool = True
    brotli: bool = True
    files: dict[str, FileInfo] = field(default_factory=dict)
    written: int = 0
    linked: int = 0
    _dirs: set[Path] = field(default_factory=set)

    def _dir(self, path: Path) -> None:
        parent = path.parent
        if parent not in self._dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(parent)

    def write(self, rel: str, data: bytes, compress: bool | None = None) -> FileInfo:
        path = self.root / rel
        self._dir(path)
        with open(path, "xb") as fh:
            fh.write(data)
        encodings: list[str] = []
        want = self.compress if compress is None else compress
        if want and len(data) >= MIN_COMPRESS and path.suffix in COMPRESSIBLE:
            with open(f"{path}.gz", "xb") as fh:
                fh.write(compress_gzip(data))
            encodings.append("gzip")
            if self.brotli and _brotli is not None and len(data) < LARGE:
                with open(f"{path}.br", "xb") as fh:
                    fh.write(compress_brotli(data))
                encodings.append("br")
        info = FileInfo(hashlib.sha256(data).hexdigest(), len(data), tuple(encodings))
        self.files[rel] = info
        self.written += 1
        return info

    def link(self, previous: Path, rel: str, info: FileInfo) -> None:
        """Reuse an unchanged file (and its compressed copies) of the previous snapshot."""
        src = previous / rel
        dst = self.root / rel
        self._dir(dst)
        os.link(src, dst)
        for enc in info.encodings:
            suffix = ".gz" if enc == "gzip" else ".br"
            os.link(f"{src}{suffix}", f"{dst}{suffix}")
        self.files[rel] = info
        self.linked += 1

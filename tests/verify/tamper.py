"""Tampering with a copy of a published snapshot, the way an attacker who controls the web
server would: change a file, then make its precompressed copies and the manifest (and
``current.json``) agree with the change, so that only the deeper checks can catch it."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]

from support import published_bytes


def copy_publish(src: Path, dst: Path) -> Path:
    """A real copy (no hard links shared with ``src``) of a publish folder."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def read(snapshot: Path, rel: str) -> bytes:
    """A file's bytes (a station page or its JSON twin is stored only as its .gz copy)."""
    return published_bytes(snapshot / rel)


def rewrite(snapshot: Path, rel: str, data: bytes, *, fix_manifest: bool = True) -> None:
    """Replace one file of a snapshot (and its .gz/.br copies); update manifest.json."""
    path = snapshot / rel
    if path.exists() or not Path(f"{path}.gz").exists():  # else stored only as the .gz copy
        path.unlink(missing_ok=True)
        path.write_bytes(data)
    for suffix, make in ((".gz", lambda b: gzip.compress(b, mtime=0)), (".br", brotli.compress)):
        copy = Path(f"{path}{suffix}")
        if copy.exists():
            copy.unlink()
            copy.write_bytes(make(data))
    if not fix_manifest:
        return
    manifest_path = snapshot / "manifest.json"
    manifest = json.loads(manifest_path.read_bytes())
    manifest["files"][rel][0] = hashlib.sha256(data).hexdigest()
    manifest["files"][rel][1] = len(data)
    rewrite_manifest(snapshot, manifest)


def rewrite_manifest(snapshot: Path, manifest: dict[str, Any]) -> None:
    raw = _canonical(manifest)
    path = snapshot / "manifest.json"
    path.unlink()
    path.write_bytes(raw)
    for suffix in (".gz", ".br"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    current = snapshot.parent.parent / "current.json"
    if current.exists():
        pointer = json.loads(current.read_bytes())
        if pointer.get("snapshot") == int(snapshot.name):
            pointer["manifest_sha256"] = hashlib.sha256(raw).hexdigest()
            current.unlink()
            current.write_bytes(_canonical(pointer))


def edit_json(snapshot: Path, rel: str, edit: Callable[[Any], object]) -> None:
    """Decode, change with ``edit(doc)``, encode canonically and rewrite."""
    doc = json.loads(read(snapshot, rel))
    edit(doc)
    rewrite(snapshot, rel, _canonical(doc))


def edit_text(snapshot: Path, rel: str, old: str, new: str, count: int = 1) -> None:
    text = read(snapshot, rel).decode("utf-8")
    assert old in text, f"{old!r} not in {rel}"
    rewrite(snapshot, rel, text.replace(old, new, count).encode("utf-8"))

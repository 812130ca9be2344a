"""Files not in memory are read ahead by each task of the file checks (``posix_fadvise``), and
a verification that does so finds exactly what one that does not finds."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner
from verify_support import Pub

from tallyroom.cli import main
from tallyroom.verify.bulletin import parse_manifest
from tallyroom.verify.run import _stored_as
from tallyroom.verify.source import _cached, _read_ahead


def _evict(folder: Path) -> int:
    """Drop the folder's files from the page cache (clean pages only: synced first)."""
    os.sync()
    n = 0
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            n += 1
    return n


def test_every_name_read_ahead_is_a_file_of_the_snapshot(mini_pub: Pub) -> None:
    snap = mini_pub.snapshot()
    manifest = parse_manifest((snap / "manifest.json").read_bytes())
    names = [n for rel in manifest.files for n in _stored_as(manifest, rel)]
    assert len(names) > len(manifest.files)  # compressed copies too
    assert all((snap / n).is_file() for n in names)
    station = next(rel for rel in manifest.files if rel.startswith("en/station/"))
    assert _stored_as(manifest, station) == [station + ".gz"]  # stored only as its gzip copy


def test_reading_ahead_skips_what_is_missing_or_cannot_be_a_name(tmp_path: Path) -> None:
    there = tmp_path / "there"
    there.write_bytes(b"x" * 10_000)
    bad = str(tmp_path / "bad\x00name")  # a manifest may list any text
    _read_ahead([str(tmp_path / "missing"), bad, str(there)])
    assert there.read_bytes() == b"x" * 10_000
    assert _cached(str(there)) and _cached(bad)


def test_a_verification_of_files_not_in_memory_finds_the_same(mini_pub: Pub) -> None:
    first = CliRunner().invoke(main, ["verify", str(mini_pub.out), "--workers", "2", "-q"])
    snap = mini_pub.snapshot()
    assert _evict(snap) > 1000
    page = next((snap / "en" / "station").iterdir())
    evicted = not _cached(str(page))
    again = CliRunner().invoke(main, ["verify", str(mini_pub.out), "--workers", "2", "-q"])
    assert first.exit_code == again.exit_code == 0, again.output
    assert first.output.splitlines()[-1] == again.output.splitlines()[-1]
    # Where the file system keeps no page cache of its own (tmpfs), nothing could be evicted:
    # the read-ahead was not needed, and the check above is all there is to see.
    if evicted:
        assert _cached(str(page))

"""The station files of a snapshot (``data/stations/<region>.json`` and
``data/csv/stations/<region>.csv``, docs/bulletin.md §7.3 and §8), rewritten in place.

A region's files are rewritten whenever one of its records changed, and a region holds up to
tens of thousands of records. Each record's part of the two files (its JSON object, its CSV
lines) is a pure function of its ledger entry, so a part whose record has the same leaf hash
as in the previous snapshot is copied from the previous snapshot's file instead of being made
again. Only *where* each part lies in the previous files is kept in memory (two offsets per
part and a reference to the record's own leaf hash string): keeping the parts themselves cost
3 kB per protocol, 1.2 GB for 100,000 stations with four protocols each
(docs/decisions/0005). A previous file is used only when its SHA-256 is the one in the
previous snapshot's manifest.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tallyroom.definition.compiled import CompiledElection
from tallyroom.publish import exports
from tallyroom.publish.files import FileInfo
from tallyroom.publish.results import Row

#: (contest id, station id, count kind)
Key = tuple[str, str, str]


def paths(group: str) -> tuple[str, str]:
    """The JSON and CSV file of a station group."""
    return f"data/stations/{group}.json", f"data/csv/stations/{group}.csv"


@dataclass
class Layout:
    """Where each record's parts lie in one group's two files."""

    keys: list[Key]
    #: The leaf hash (hex) of each record, the record's own string object.
    leaves: list[str]
    #: Part i of the JSON file is ``json[json_at[2i]:json_at[2i+1]]``; likewise for the CSV.
    json_at: array[int]
    csv_at: array[int]


def _join(
    head: bytes, parts: Sequence[bytes | memoryview], sep: bytes, tail: bytes
) -> tuple[bytes, array[int]]:
    """``head + sep.join(parts) + tail`` and the start and end of each part in it."""
    at = array("q", bytes(16 * len(parts)))
    pos = len(head)
    for i, p in enumerate(parts):
        n = len(p)
        at[2 * i] = pos
        at[2 * i + 1] = pos + n
        pos += n + len(sep)
    return b"".join((head, sep.join(parts), tail)), at


def _json_head(group: str) -> bytes:
    """:func:`tallyroom.publish.exports.stations_json_from` up to the first record."""
    head = exports.stations_json_from(group, [])
    assert head.endswith(b"]}\n")
    return head[: -len(b"]}\n")]


def _previous(folder: Path | None, files: dict[str, FileInfo], rel: str) -> bytes | None:
    """The previous snapshot's file, if it is there and holds the bytes its manifest lists."""
    info = files.get(rel)
    if folder is None or info is None:
        return None
    try:
        data = (folder / rel).read_bytes()
    except OSError:
        return None
    if len(data) != info.size or hashlib.sha256(data).hexdigest() != info.sha256:
        return None
    return data


def make(
    election: CompiledElection,
    group: str,
    rows: Sequence[Row],
    old: Layout | None,
    folder: Path | None,
    files: dict[str, FileInfo],
) -> tuple[bytes, bytes, Layout]:
    """The JSON and CSV file of one group of records (sorted by key) and where each record's
    parts lie in them. ``old`` is the layout of the group's files in the snapshot in
    ``folder`` (with manifest ``files``); a record with the same key and leaf hash there
    has its parts copied from those files."""
    json_rel, csv_rel = paths(group)
    old_json = old_csv = None
    if old is not None:
        old_json = _previous(folder, files, json_rel)
        old_csv = _previous(folder, files, csv_rel) if old_json is not None else None
    where: dict[Key, int] = {}
    if old is not None and old_json is not None and old_csv is not None:
        where = {k: i for i, k in enumerate(old.keys)}
    json_view = memoryview(old_json) if old_json is not None else None
    csv_view = memoryview(old_csv) if old_csv is not None else None
    json_parts: list[bytes | memoryview] = []
    csv_parts: list[bytes | memoryview] = []
    keys: list[Key] = []
    leaves: list[str] = []
    for r in rows:
        key = (r["contest"], r["station"], r["count_kind"])
        leaf = r["leaf_hash"]
        i = where.get(key)
        if i is not None and old is not None and old.leaves[i] == leaf:
            assert json_view is not None and csv_view is not None
            json_parts.append(json_view[old.json_at[2 * i] : old.json_at[2 * i + 1]])
            csv_parts.append(csv_view[old.csv_at[2 * i] : old.csv_at[2 * i + 1]])
        else:
            json_parts.append(exports.station_json_part(r))
            csv_parts.append(exports.station_csv_part(election, r))
        keys.append(key)
        leaves.append(leaf)
    json_data, json_at = _join(_json_head(group), json_parts, b",", b"]}\n")
    csv_data, csv_at = _join(exports.stations_csv_from([]), csv_parts, b"", b"")
    return json_data, csv_data, Layout(keys, leaves, json_at, csv_at)


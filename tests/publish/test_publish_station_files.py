"""Station files spliced from the previous snapshot's files equal files made from scratch.

`tallyroom.publish.station_files.make` copies the part of every record whose leaf hash did not
change from the previous files; the result must be byte for byte what `exports` makes from
the records, whatever changed: records replaced, added, removed, the previous file tampered
with (then nothing is copied from it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from publish_support import displayed

from conftest import Published
from tallyroom.publish import exports, station_files
from tallyroom.publish.files import FileInfo


def _write(folder: Path, rel: str, data: bytes, files: dict[str, FileInfo]) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    files[rel] = FileInfo(hashlib.sha256(data).hexdigest(), len(data))


def test_spliced_station_files_equal_fresh_ones(published: Published, tmp_path: Path) -> None:
    shown = displayed(published.store)
    election, results = shown.election, shown.results
    groups = exports.stations_by_group(election, results)
    group, rows = max(groups.items(), key=lambda kv: len(kv[1]))
    assert len(rows) > 10

    def fresh(records: list[dict[str, object]]) -> tuple[bytes, bytes]:
        return exports.stations_json(group, records), exports.stations_csv(election, records)

    files: dict[str, FileInfo] = {}
    json_rel, csv_rel = station_files.paths(group)
    first_json, first_csv, layout = station_files.make(election, group, rows, None, None, {})
    assert (first_json, first_csv) == fresh(rows)
    _write(tmp_path, json_rel, first_json, files)
    _write(tmp_path, csv_rel, first_csv, files)

    # Replace some records (new leaf hash, other numbers), drop one, keep the rest.
    changed = []
    for i, r in enumerate(rows):
        if i == 3:
            continue
        if i % 5 == 0:
            votes = {**r["lines"]}
            first = next(iter(votes))
            votes[first] += 1
            r = {**r, "leaf_hash": "f" * 64, "lines": votes, "ledger_index": r["ledger_index"] + 100000}
        changed.append(r)
    new_json, new_csv, new_layout = station_files.make(election, group, changed, layout, tmp_path, files)
    assert (new_json, new_csv) == fresh(changed)
    assert new_layout.keys == [(r["contest"], r["station"], r["count_kind"]) for r in changed]

    # A previous file that is not what its manifest says is not used.
    (tmp_path / json_rel).write_bytes(first_json.replace(b'"lines":{', b'"lines":{ ', 1))
    again_json, again_csv, _ = station_files.make(election, group, changed, layout, tmp_path, files)
    assert (again_json, again_csv) == fresh(changed)

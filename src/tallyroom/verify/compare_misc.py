"""The smaller published documents: what changed (§9), the snapshot list, downloads, the
``current.json`` pointer and the bulletin's station keys (§2)."""

from __future__ import annotations

from typing import Any

from tallyroom.verify.bulletin import FileInfo, Manifest
from tallyroom.verify.expected import Expected
from tallyroom.verify.ledger import SnapshotRecord
from tallyroom.verify.report import Tally


def check_changes(
    file: str, doc: Any, ex: Expected, manifest: Manifest, records: list[SnapshotRecord], out: Tally
) -> None:
    """``changes.json`` / ``api/v1/changes.json`` (the latter wraps it as ``{"changes": …}``)."""
    check = "changes"
    if isinstance(doc, dict) and "changes" in doc and isinstance(doc["changes"], dict):
        doc = doc["changes"]
    if not isinstance(doc, dict):
        out.fail(check, file, "", "not a JSON object")
        return
    snap = manifest.snapshot
    prev = next((r for r in records if r.number == snap.get("previous")), None)
    want = {
        "snapshot": snap["number"],
        "previous": snap.get("previous"),
        "ledger_to": snap["ledger_size"],
        "ledger_from": prev.ledger_size if prev is not None else 0,
    }
    for f, v in want.items():
        out.numbers += 1
        if doc.get(f) != v:
            out.add(check, file, f, doc.get(f), v, "the manifest and the ledger's snapshot records")
    for i, p in enumerate(doc.get("new_protocols") or []):
        key = (p.get("contest"), p.get("station"), p.get("count_kind"))
        rec = ex.stations.get(key)
        out.numbers += 1
        if rec is None:
            out.fail(check, file, f"new_protocols[{i}]", f"{' / '.join(map(str, key))} is not in force")
        elif p.get("ledger_index") != rec["ledger_index"]:
            out.add(
                check,
                file,
                f"new_protocols[{i}].ledger_index",
                p.get("ledger_index"),
                rec["ledger_index"],
                "the ledger entry in force",
            )
    for i, r in enumerate(doc.get("rows_changed") or []):
        key = (r.get("contest"), r.get("area"), r.get("count_kind"))
        row = ex.rows.get(key)
        if row is None:
            out.fail(check, file, f"rows_changed[{i}]", f"{' / '.join(map(str, key))} is not a published row")
            continue
        # §9 names took_part (the publisher writes ballots_cast there for a form without it)
        for f, v in (("stations_reporting", row["stations_reporting"]), ("took_part", row["took_part"])):
            pair = r.get(f)
            out.numbers += 1
            if not isinstance(pair, list) or len(pair) != 2 or pair[1] != v:
                out.add(
                    check,
                    file,
                    f"rows_changed[{'/'.join(map(str, key))}].{f}[new]",
                    pair[1] if isinstance(pair, list) and len(pair) == 2 else pair,
                    v,
                    ex.why(key, f),
                )


def check_snapshot_list(
    file: str, doc: Any, manifest: Manifest, records: list[SnapshotRecord], out: Tally
) -> None:
    """``api/v1/snapshots.json``: each earlier snapshot as the ledger logged it, then this one."""
    check = "snapshots-list"
    items = doc.get("snapshots") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        out.fail(check, file, "snapshots", "missing")
        return
    logged = {r.number: r for r in records}
    snap = manifest.snapshot
    for item in items:
        n = item.get("number")
        if n == snap["number"]:
            want = (snap["ledger_size"], snap["root"])
            why = "this snapshot's manifest"
        elif n in logged:
            want = (logged[n].ledger_size, logged[n].root)
            why = f"the ledger's record of snapshot {n} (entry {logged[n].index})"
        else:
            out.fail(check, file, f"snapshots[{n}]", "a snapshot the ledger has no record of")
            continue
        out.numbers += 2
        got = (item.get("ledger_size"), item.get("root"))
        if got != want:
            out.add(check, file, f"snapshots[{n}]", list(got), list(want), why)


def check_downloads(file: str, doc: Any, manifest: Manifest, out: Tally) -> None:
    items = doc.get("downloads") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        out.fail("downloads", file, "downloads", "missing")
        return
    for item in items:
        rel = item.get("path")
        info = FileInfo.of(manifest.files.get(rel))
        out.numbers += 2
        if info is None:
            out.fail("downloads", file, f"downloads[{rel}]", "offers a file the manifest does not list")
        elif (item.get("sha256"), item.get("size")) != (info.sha256, info.size):
            out.add(
                "downloads",
                file,
                f"downloads[{rel}]",
                [item.get("sha256"), item.get("size")],
                [info.sha256, info.size],
                "manifest.json",
            )


def check_current(doc: Any, number: int, manifest: Manifest, out: Tally) -> None:
    """``current.json`` of a publish folder points at the snapshot verified."""
    file = "current.json"
    if not isinstance(doc, dict):
        out.fail("current", file, "", "not a JSON object")
        return
    want = {
        "snapshot": number,
        "path": f"snapshots/{number}/",
        "ledger_size": manifest.snapshot["ledger_size"],
        "root": manifest.snapshot["root"],
        "published_at": manifest.snapshot.get("published_at"),
        "manifest_sha256": manifest.sha256,
    }
    for f, v in want.items():
        if doc.get(f) != v:
            out.add("current", file, f, doc.get(f), v, f"snapshots/{number}/manifest.json")


def check_station_keys(file: str, doc: Any, ex: Expected, out: Tally, notes: list[str]) -> None:
    """``bulletin/stations.json``: each station's key as provisioned in the definition (§2)."""
    stations = doc.get("stations") if isinstance(doc, dict) else None
    if not isinstance(stations, dict):
        out.fail("station-keys", file, "stations", "missing")
        return
    changes = 0
    for st in ex.election.stations:
        got = stations.get(st.id)
        if not isinstance(got, dict):
            out.fail("station-keys", file, f"stations.{st.id}", "missing")
            continue
        if got.get("key") != st.key:
            out.add("station-keys", file, f"stations.{st.id}.key", got.get("key"), st.key, "the definition")
        changes += len(got.get("key_changes") or [])
    registered = sum(1 for k in ex.walk.keys.values() if k.registered_at > 0)
    if registered and not changes:
        notes.append(
            f"{file} lists no key_changes while the ledger registers {registered:,} device keys in "
            "key_change entries; the verifier takes key history from the ledger"
        )

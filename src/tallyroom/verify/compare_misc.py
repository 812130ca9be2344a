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
    _check_decisions(file, doc, ex, want["ledger_from"], want["ledger_to"], out)
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


def _check_decisions(file: str, doc: dict[str, Any], ex: Expected, lo: int, hi: int, out: Tally) -> None:
    """``decisions`` of ``changes.json``: how many corrections and annulments the ledger holds
    between the two snapshots, and the first of them, in ledger order, as the ledger says
    them (absent from snapshots published before the list was)."""
    check = "changes"
    if "decisions" not in doc and "decisions_total" not in doc:
        return
    e = ex.election
    events = {
        ev["ledger_index"]: (key, ev)
        for key, evs in ex.walk.history.items()
        for ev in evs
        if ev["entry"] != "protocol" and lo <= ev["ledger_index"] < hi
    }
    order = sorted(events)
    out.numbers += 1
    if doc.get("decisions_total") != len(order):
        out.add(check, file, "decisions_total", doc.get("decisions_total"), len(order), "the ledger")
    listed = doc.get("decisions")
    if not isinstance(listed, list):
        out.fail(check, file, "decisions", "missing or not a list")
        return
    for i, q in enumerate(listed):
        idx = q.get("ledger_index") if isinstance(q, dict) else None
        out.numbers += 1
        if i >= len(order) or idx != order[i]:
            expected = order[i] if i < len(order) else None
            where = f"decisions[{i}].ledger_index"
            out.add(check, file, where, idx, expected, "the ledger's decisions in order")
            continue
        assert isinstance(q, dict)
        (ci, si, kind), ev = events[idx]
        said = {
            "entry": ev["entry"],
            "action": ev["action"],
            "contest": e.contests[ci].id,
            "station": e.stations[si].id,
            "count_kind": kind,
            "target": ev["target"],
            "reason": ev["reason"],
            "proposed_by": ev["proposed_by"],
            "approved_by": ev["approved_by"],
        }
        for f, v in said.items():
            out.numbers += 1
            if q.get(f) != v:
                out.add(check, file, f"decisions[{i}].{f}", q.get(f), v, f"ledger entry {idx}")


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
    """``bulletin/stations.json`` (§2): each station's key as provisioned in the definition,
    and its key changes exactly as the ledger's ``key_change`` entries record them."""
    stations = doc.get("stations") if isinstance(doc, dict) else None
    if not isinstance(stations, dict):
        out.fail("station-keys", file, "stations", "missing")
        return
    for st in ex.election.stations:
        got = stations.get(st.id)
        if not isinstance(got, dict):
            out.fail("station-keys", file, f"stations.{st.id}", "missing")
            continue
        out.numbers += 1
        if got.get("key") != st.key:
            out.add("station-keys", file, f"stations.{st.id}.key", got.get("key"), st.key, "the definition")
        want = ex.walk.key_changes.get(st.id, [])
        shown = got.get("key_changes")
        out.numbers += len(want)
        if shown == want:
            continue
        if not isinstance(shown, list):
            out.fail("station-keys", file, f"stations.{st.id}.key_changes", "missing")
            continue
        listed = {(_field(c, "ledger_index"), _field(c, "key_id"), _field(c, "change")) for c in shown}
        ledger = {(c["ledger_index"], c["key_id"], c["change"]) for c in want}
        for idx, kid, change in sorted(ledger - listed, key=str):
            out.fail(
                "station-keys",
                file,
                f"stations.{st.id}.key_changes",
                f"key {kid} {change} at ledger entry {idx} (a key_change entry) is not listed",
            )
        for idx, kid, change in sorted(listed - ledger, key=str):
            out.fail(
                "station-keys",
                file,
                f"stations.{st.id}.key_changes",
                f"lists key {kid} as {change} at ledger entry {idx}, which no key_change entry says",
            )
        if listed == ledger:
            out.add(
                "station-keys",
                file,
                f"stations.{st.id}.key_changes",
                shown,
                want,
                "the key_change entries of the ledger, in ledger order (§2)",
            )
    for sid in stations:
        if sid not in ex.election.station_index:
            out.fail("station-keys", file, f"stations.{sid}", "not a station of the definition")


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else None


JOURNAL_OUTCOMES = ("accepted", "duplicate", "conflict", "rejected")


def check_journal(file: str, doc: Any, ex: Expected, out: Tally) -> dict[str, Any] | None:
    """``bulletin/journal.json`` (§2). The journal is not part of the ledger, so its counts
    cannot be recomputed; what can be checked is that it is whole: known stations, whole
    numbers, reasons adding up to the rejected and conflicting attempts, totals adding up.
    Returns the per-station counts (station pages must show the same)."""
    check = "journal"
    if not isinstance(doc, dict) or doc.get("format") != "tallyroom-journal/1":
        out.fail(check, file, "format", "not a tallyroom-journal/1 document")
        return None
    stations = doc.get("stations")
    if not isinstance(stations, dict):
        out.fail(check, file, "stations", "missing")
        return None
    totals = {o: 0 for o in JOURNAL_OUTCOMES}
    reasons: dict[str, int] = {}
    lines = 0
    for name, counts in [*stations.items(), ("unattributed", doc.get("unattributed"))]:
        label = "unattributed" if name == "unattributed" else f"stations.{name}"
        if name != "unattributed" and name not in ex.election.station_index:
            out.fail(check, file, label, "not a station of the definition")
        if not _counts_ok(counts):
            out.fail(check, file, label, "not counts of whole numbers (accepted, …, reasons)")
            continue
        out.numbers += 4 + len(counts["reasons"])
        for o in JOURNAL_OUTCOMES:
            totals[o] += counts[o]
            lines += counts[o]
        for r, n in counts["reasons"].items():
            reasons[r] = reasons.get(r, 0) + n
        given = sum(counts["reasons"].values())
        if given != counts["rejected"] + counts["conflict"]:
            out.add(
                check,
                file,
                f"{label}.reasons",
                given,
                counts["rejected"] + counts["conflict"],
                "every rejected or conflicting attempt is counted under its reason",
            )
    want_totals = {**totals, "reasons": dict(sorted(reasons.items()))}
    out.numbers += 2
    if doc.get("totals") != want_totals:
        out.add(
            check, file, "totals", doc.get("totals"), want_totals, "the sum over stations and unattributed"
        )
    if doc.get("lines") != lines:
        out.add(check, file, "lines", doc.get("lines"), lines, "the sum of every count")
    return stations


def _counts_ok(counts: Any) -> bool:
    if not isinstance(counts, dict) or not isinstance(counts.get("reasons"), dict):
        return False
    values = [counts.get(o) for o in JOURNAL_OUTCOMES] + list(counts["reasons"].values())
    return all(type(v) is int and v >= 0 for v in values)

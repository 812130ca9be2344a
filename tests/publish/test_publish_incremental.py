"""Incremental publishing computes exactly what a full build computes.

* the gate's fold of new ledger entries into the tally it recomputed before equals a
  recomputation from entry 0, on random ledgers with protocols, corrections, annulments and
  the publisher's own entries;
* the gate's incremental checks catch a fault injected into a long-running publisher, in a
  row or record that changed and in one that did not;
* snapshots made by a long-running publisher (prestaged or not) hold the same files as
  snapshots made by a fresh one, and never change an earlier snapshot;
* a ledger that does not extend the previous snapshot's is refused;
* the pieces that are written faster equal what they replace (station records, station
  files from cached parts, the tally invariants restricted to some totals).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest
from publish_support import displayed, load, make_store, mini

from conftest import Published
from tallyroom.definition.compiled import compile_election
from tallyroom.definition.load import load_definition
from tallyroom.ledger.entry import EntryKind, encode_entry
from tallyroom.ledger.merkle import leaf_hash
from tallyroom.publish import builder, exports, gate
from tallyroom.publish.builder import Publisher
from tallyroom.publish.files import FileInfo, SnapshotWriter, prestage
from tallyroom.publish.ledger_view import (
    Entry,
    LedgerPrefix,
    election_of,
    read_prefix,
)
from tallyroom.publish.results import Results, plain, station_protocol, station_protocol_reference
from tallyroom.store.sql import open_store
from tallyroom.tally.invariants import check_tally
from tallyroom.tally.running import TallyKey

_json = msgspec.json.Encoder()


def _entry(index: int, kind: EntryKind, payload: bytes) -> Entry:
    data = encode_entry(kind, payload)
    return Entry(index, str(kind), data, leaf_hash(data))


def _random_ledger(seed: int, size: int) -> list[Entry]:
    """A ledger in tallyroom's rules: protocols, corrections (supersede, dismiss),
    annulments and checkpoint/snapshot entries, in random order."""
    m = mini()
    rnd = random.Random(seed)
    election = compile_election(load_definition(m.raw, "mini"))
    entries = [_entry(0, EntryKind.DEFINITION, m.raw)]
    pool = [(p, "machine") for p in m.machine] + [(p, "hand") for p in m.hand]
    rnd.shuffle(pool)
    in_force: dict[tuple[str, str, str], int] = {}

    def body(p: object, kind: str, bump: int = 0) -> bytes:
        lines = dict(p.lines)  # type: ignore[attr-defined]
        if bump:
            first = next(iter(lines))
            lines[first] += bump
        return _json.encode(
            {
                "election": election.sha256,
                "station": p.station,  # type: ignore[attr-defined]
                "contest": p.contest,  # type: ignore[attr-defined]
                "count_kind": kind,
                "lines": lines,
            }
        )

    while len(entries) < size:
        i = len(entries)
        roll = rnd.random()
        if roll < 0.65 and pool:
            p, kind = pool.pop()
            key = (p.contest, p.station, kind)
            payload = b'{"via":"import"}\n' + body(p, kind)
            entries.append(_entry(i, EntryKind.PROTOCOL, payload))
            in_force[key] = i
        elif roll < 0.8 and in_force:
            key = rnd.choice(sorted(in_force))
            contest, station, kind = key
            action = rnd.choice(["supersede", "dismiss"])
            decision = {
                "action": action,
                "target": in_force[key],
                "station": station,
                "contest": contest,
                "count_kind": kind,
                "reason": "test",
                "proposed_by": "a",
                "approved_by": "b",
            }
            p = next(q for q in m.hand + m.machine if (q.contest, q.station) == (contest, station))
            tail = body(p, kind, bump=rnd.randint(1, 3)) if action == "supersede" else b""
            entries.append(_entry(i, EntryKind.CORRECTION, _json.encode(decision) + b"\n" + tail))
            if action == "supersede":
                in_force[key] = i
        elif roll < 0.85 and in_force:
            key = rnd.choice(sorted(in_force))
            contest, station, kind = key
            decision = {
                "action": "annul",
                "target": in_force.pop(key),
                "station": station,
                "contest": contest,
                "count_kind": kind,
                "reason": "test",
                "proposed_by": "a",
                "approved_by": "b",
            }
            entries.append(_entry(i, EntryKind.ANNULMENT, _json.encode(decision) + b"\n"))
        else:
            kind = rnd.choice([EntryKind.CHECKPOINT, EntryKind.SNAPSHOT])
            entries.append(_entry(i, kind, b"own entry %d" % i))
    return entries


def _same_tally(a: gate.GateReport, b: gate.GateReport) -> None:
    assert a.rebuilt is not None and b.rebuilt is not None
    assert a.rebuilt.active == b.rebuilt.active
    ta = {k: (t.counts, t.reporting) for k, t in a.rebuilt.tally.nonzero().items()}
    tb = {k: (t.counts, t.reporting) for k, t in b.rebuilt.tally.nonzero().items()}
    assert ta == tb


def test_folding_new_entries_equals_recomputing_everything() -> None:
    for seed in range(12):
        ledger = _random_ledger(seed, 160)
        election = election_of(LedgerPrefix(ledger[:1]))
        rnd = random.Random(1000 + seed)
        cuts = sorted({1, *(rnd.randint(1, len(ledger)) for _ in range(6)), len(ledger)})
        base = None
        base_size = 0
        for cut in cuts:
            prefix = LedgerPrefix(ledger[:cut])
            full = gate.recompute(election, prefix)
            folded = gate.recompute_from(election, prefix, base, base_size)
            _same_tally(folded, full)
            base, base_size = folded.rebuilt, cut


def test_a_second_protocol_for_a_counted_key_is_refused_when_folding() -> None:
    ledger = _random_ledger(3, 40)
    election = election_of(LedgerPrefix(ledger[:1]))
    first = next(e for e in ledger if e.kind == "protocol")
    dup = Entry(len(ledger), "protocol", first.data, first.leaf_hash)
    base = gate.recompute(election, LedgerPrefix(ledger)).rebuilt
    folded = gate.recompute_from(election, LedgerPrefix([*ledger, dup]), base, len(ledger))
    assert folded.rebuilt is None and folded.failures[0].check == "rebuild"


def test_restricted_tally_invariants_equal_the_full_check(published: Published) -> None:
    store = published.store
    prefix = read_prefix(store, store.head().size)
    election = election_of(prefix)
    rebuilt = gate.recompute(election, prefix).rebuilt
    assert rebuilt is not None
    stations = {k: v[1] for k, v in rebuilt.active.items()}
    kinds = sorted({k.count_kind for k in rebuilt.tally.totals})
    everything = [
        TallyKey(c.index, a, k) for c in election.contests for k in kinds for a in range(len(election.areas))
    ]
    assert gate.tally_invariants(election, rebuilt.tally, stations, everything) == check_tally(
        election, rebuilt.tally, stations
    )
    # A broken total is reported the same way by both.
    key = next(iter(rebuilt.tally.totals))
    rebuilt.tally.totals[key].counts[0] += 7
    want = check_tally(election, rebuilt.tally, stations)
    assert want
    assert gate.tally_invariants(election, rebuilt.tally, stations, everything) == want
    rebuilt.tally.totals[key].counts[0] -= 7
    # So is a station whose protocol no longer adds up to its areas' totals (check_tally sums
    # each station into the areas that list it directly, the restricted check area by area).
    skey = sorted(stations)[len(stations) // 2]
    changed = list(stations[skey])
    changed[0] += 5
    want = check_tally(election, rebuilt.tally, {**stations, skey: changed})
    station = election.stations[skey[1]]
    assert {(f.invariant, f.area) for f in want} >= {("children-sum-to-parent", a) for a in station.areas}
    assert gate.tally_invariants(election, rebuilt.tally, {**stations, skey: changed}, everything) == want


def test_station_records_and_files_equal_their_reference(published: Published) -> None:
    shown = displayed(published.store)
    election, results = shown.election, shown.results
    for p in shown.entries:
        record = station_protocol(election, p)
        assert plain(record) == station_protocol_reference(election, p)
        # Encoded, a record is the JSON of the reference dict: same fields, same order.
        assert exports.json_bytes(record) == exports.json_bytes(station_protocol_reference(election, p))
    for group, rows in exports.stations_by_group(election, results).items():
        assert exports.stations_json_from(group, map(exports.station_json_part, rows)) == (
            exports.stations_json(group, rows)
        )
        parts = [exports.station_csv_part(election, r) for r in rows]
        assert exports.stations_csv_from(parts) == exports.stations_csv(election, rows)


def _published_files(snapshot: Path) -> dict[str, bytes]:
    """Every published file of a snapshot except compressed copies and the SQLite file
    (whose bytes depend on how it was updated; its rows are compared by other tests)."""
    out = {}
    for p in snapshot.rglob("*"):
        rel = str(p.relative_to(snapshot))
        if p.is_file() and p.suffix not in (".gz", ".br") and not rel.endswith(".sqlite"):
            out[rel] = p.read_bytes()
    return out


def _tree(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_ino, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


def _clock() -> object:
    t = [1_700_000_000.0]

    def clock() -> float:
        t[0] += 1
        return t[0]

    return clock


def test_long_running_and_fresh_publishers_publish_the_same_files(tmp_path: Path) -> None:
    m = mini()
    origin = tmp_path / "origin"
    origin.mkdir()
    first, _ = make_store(origin, machine=50, hand=0)
    first.close()
    runs = {}
    for mode in ("fresh", "kept", "prestaged"):
        folder = tmp_path / mode
        folder.mkdir()
        for name in ("kg.db", "kg.db.commission-key"):
            shutil.copy(origin / name, folder / name)
        store = open_store(str(folder / "kg.db"))
        key = folder / "kg.db.commission-key"
        clock = _clock()
        kept = Publisher(store, folder / "pub", key, clock=clock, prestage=mode == "prestaged")  # type: ignore[arg-type]
        trees = []
        batches = [("machine", m.machine[50:60]), ("machine", m.machine[60:75]), ("hand", m.hand[:12])]
        for step in range(4):
            if step:
                load(store, *batches[step - 1])
                kept.wait_prestaged()
            if mode == "fresh":
                outcome = Publisher(store, folder / "pub", key, clock=clock).publish()  # type: ignore[arg-type]
            else:
                outcome = kept.publish()
            assert outcome.status == "published", outcome.failures
            snap = folder / "pub" / "snapshots" / str(outcome.snapshot)
            trees.append(_tree(snap))
            # Earlier snapshots are untouched, inode for inode and byte for byte.
            for n, before in enumerate(trees[:-1], start=1):
                assert _tree(folder / "pub" / "snapshots" / str(n)) == before
        kept.close()
        assert not [p for p in (folder / "pub" / "snapshots").iterdir() if p.name.startswith(".")]
        runs[mode] = [_published_files(folder / "pub" / "snapshots" / str(n)) for n in range(1, 5)]
        store.close()
    assert runs["kept"] == runs["fresh"]
    assert runs["prestaged"] == runs["fresh"]


def _db_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        tables = [r[0] for r in names]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def test_a_download_updated_beside_the_publisher_holds_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental snapshot with many new records has its SQLite download updated by a
    forked process while the publisher goes on: the same rows as updated in-process, the
    manifest's hash is that of the file written, and the previous snapshot's file is intact."""
    m = mini()
    origin = tmp_path / "origin"
    origin.mkdir()
    first, _ = make_store(origin, machine=50, hand=0)
    first.close()
    started: list[str] = []
    start = builder._Beside.start

    def spy(self: builder._Beside, rel: str, fn: Any, *args: Any) -> None:
        started.append(f"{rel}:{fn.__name__}")
        start(self, rel, fn, *args)

    monkeypatch.setattr(builder._Beside, "start", spy)
    dbs = {}
    for mode, least in (("in-process", 10**9), ("beside", 1)):
        monkeypatch.setattr(builder, "BESIDE_UPDATE_MIN", least)
        folder = tmp_path / mode
        shutil.copytree(origin, folder)
        store = open_store(str(folder / "kg.db"))
        pub = Publisher(store, folder / "pub", folder / "kg.db.commission-key", workers=2, clock=_clock())  # type: ignore[arg-type]
        assert pub.publish().status == "published"
        before = (folder / "pub" / "snapshots" / "1" / "data" / "tallyroom.sqlite").read_bytes()
        load(store, "machine", m.machine[50:90])
        outcome = pub.publish()
        assert outcome.status == "published" and outcome.snapshot == 2, outcome.failures
        snap = folder / "pub" / "snapshots" / "2"
        db = snap / "data" / "tallyroom.sqlite"
        listed = json.loads((snap / "manifest.json").read_bytes())["files"]["data/tallyroom.sqlite"]
        assert hashlib.sha256(db.read_bytes()).hexdigest() == listed[0]
        assert (folder / "pub" / "snapshots" / "1" / "data" / "tallyroom.sqlite").read_bytes() == before
        dbs[mode] = _db_rows(db)
        store.close()
    assert started == ["data/tallyroom.sqlite:update_file"]  # the second snapshot, beside only
    assert dbs["beside"] == dbs["in-process"]
    assert sum(len(rows) for rows in dbs["beside"].values()) > 1000


def test_a_warm_gate_still_refuses_faults(tmp_path: Path) -> None:
    m = mini()
    store, key = make_store(tmp_path, machine=40, hand=0)
    pub = Publisher(store, tmp_path / "pub", key)
    assert pub.publish().status == "published"
    load(store, "machine", m.machine[40:50])
    assert pub.publish().status == "published"
    changed = {p.station for p in m.machine[50:60]}
    load(store, "machine", m.machine[50:60])

    def unchanged_station(results: Results) -> None:
        key = next(k for k in results.stations if k[1] not in changed)
        results.stations[key]["lines"]["invalid"] += 1

    def changed_station(results: Results) -> None:
        key = next(k for k in results.stations if k[1] in changed)
        results.stations[key]["valid"] += 1

    def national_row(results: Results) -> None:
        row = results.rows[("party-list", "kg", "machine")]
        row["choices"][0]["votes"] += row["choices"][0]["votes"]

    for hook in (unchanged_station, changed_station, national_row):
        pub.display_hook = hook
        outcome = pub.publish()
        assert outcome.status == "refused", hook.__name__
        assert outcome.failures
    pub.display_hook = None
    outcome = pub.publish()
    assert outcome.status == "published" and outcome.snapshot == 3
    # The records this publisher keeps were never changed by building snapshots from them.
    prefix = read_prefix(store, json.loads((tmp_path / "pub/current.json").read_bytes())["ledger_size"])
    election = election_of(prefix)
    for p in pub._ledger.protocols.values():
        kept = pub._display_cache.get(p.leaf_hash)
        if kept is not None:
            assert kept == station_protocol(election, p)


def test_a_ledger_that_does_not_extend_the_last_snapshot_is_refused(tmp_path: Path) -> None:
    m = mini()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    store_a, key_a = make_store(tmp_path / "a", machine=30, hand=0)
    out = tmp_path / "pub"
    assert Publisher(store_a, out, key_a).publish().status == "published"
    # Another ledger of the same election (different order of the same protocols).
    store_b, key_b = make_store(tmp_path / "b", machine=0, hand=0)
    load(store_b, "machine", list(reversed(m.machine[:40])))
    outcome = Publisher(store_b, out, key_b).publish()
    assert outcome.status == "refused"
    assert any(f.check == "ledger-root" for f in outcome.failures)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["1"]


def test_writer_replaces_prestaged_files_without_touching_the_previous_snapshot(tmp_path: Path) -> None:
    prev = tmp_path / "1"
    w1 = SnapshotWriter(prev)
    w1.write("a/x.html", b"<p>" + b"x" * 400 + b"</p>")
    w1.write("a/y.json", b"{}" * 300)
    w1.write("b/z.txt", b"z" * 10)
    w1.close()
    before = _tree(prev)
    stage = tmp_path / ".staging-2"
    stage.mkdir()
    prestage(prev, stage, w1.files)
    w2 = SnapshotWriter(stage, present=dict(w1.files), previous=prev, prev_files=dict(w1.files))
    w2.write("a/x.html", b"<p>new</p>" * 40)  # changed: written anew, not through the link
    w2.put("a/y.json", b"{}" * 300)  # same bytes: kept as the same inode
    w2.write("c/new.csv", b"n,e,w\n" * 60)
    w2.finish()  # b/z.txt is not in snapshot 2: removed from the staging folder
    assert _tree(prev) == before
    got = _tree(stage)
    assert set(got) == {
        "a/x.html",
        "a/x.html.gz",
        "a/x.html.br",
        "a/y.json",
        "a/y.json.gz",
        "a/y.json.br",
        "c/new.csv",
        "c/new.csv.gz",
        "c/new.csv.br",
    }
    assert got["a/y.json"] == before["a/y.json"]
    assert got["a/x.html"][1] == b"<p>new</p>" * 40 and got["a/x.html"][0] != before["a/x.html"][0]
    assert w2.files["a/y.json"] == w1.files["a/y.json"]
    info = w2.files["c/new.csv"]
    assert info == FileInfo(hashlib.sha256(b"n,e,w\n" * 60).hexdigest(), 360, ("gzip", "br"))


def test_spare_files_become_new_files_and_leave_nothing_behind(tmp_path: Path) -> None:
    prev = tmp_path / "1"
    w1 = SnapshotWriter(prev)
    w1.write("a/x.html", b"<p>" + b"x" * 400 + b"</p>")
    w1.write("b/z.txt", b"z" * 10)
    w1.close()
    before = _tree(prev)
    stage = tmp_path / ".staging-2"
    stage.mkdir()
    prestage(prev, stage, w1.files, spares=4)  # fewer than the 7 files made below
    w2 = SnapshotWriter(stage, present=dict(w1.files), previous=prev, prev_files=dict(w1.files))
    w2.write("a/x.html", b"<p>new</p>" * 40)
    w2.write("c/new.csv", b"n,e,w\n" * 60)
    w2.write("c/small.txt", b"s")
    w2.finish()
    assert _tree(prev) == before
    got = _tree(stage)
    assert set(got) == {
        "a/x.html",
        "a/x.html.gz",
        "a/x.html.br",
        "c/new.csv",
        "c/new.csv.gz",
        "c/new.csv.br",
        "c/small.txt",
    }
    assert got["a/x.html"][1] == b"<p>new</p>" * 40 and got["a/x.html"][0] != before["a/x.html"][0]
    assert got["c/new.csv"][1] == b"n,e,w\n" * 60 and got["c/small.txt"][1] == b"s"
    assert w2.created == 7
    assert not (stage / ".spare").exists()  # no spare left


def test_csv_levels_from_memo_equal_the_rows_written_in_one_go(published: Published) -> None:
    shown = displayed(published.store)
    election, results = shown.election, shown.results
    reference: dict[str, tuple[io.StringIO, Any]] = {}
    for key in sorted(results.rows):
        row = results.rows[key]
        level = exports.area_level(election, election.area_index[row["area"]])
        if level not in reference:
            reference[level] = exports._writer()
        for r in exports._csv_rows(level, "area", row):
            reference[level][1].writerow(["" if v is None else v for v in r])
    want = {level: buf.getvalue().encode("utf-8") for level, (buf, _) in reference.items()}
    memo: exports.CsvMemo = {}
    assert exports.csv_levels(election, results) == want
    assert exports.csv_levels(election, results, memo) == want
    assert exports.csv_levels(election, results, memo) == want  # every row from the memo


def test_files_written_later_equal_files_written_at_once(tmp_path: Path) -> None:
    files = {f"p/{i}.html": (b"<p>%d</p>" % i) * (40 + i) for i in range(30)} | {"q/small.json": b"{}"}
    now = SnapshotWriter(tmp_path / "now")
    for rel, data in files.items():
        now.write(rel, data)
    now.finish()
    later = SnapshotWriter(tmp_path / "later")
    for rel, data in files.items():
        later.write_later(rel, data)
    later.drain()
    later.finish()
    assert later.files == now.files and later.written == now.written == len(files)
    # The same files with the same content; compressed copies compared by what they decompress
    # to: in one full-suite run under load the two paths' gzip copies of one page differed in
    # their bytes (ISA-L's stream in one, another valid stream in the other), not in content.
    assert _content(tmp_path / "later") == _content(tmp_path / "now")


def _content(folder: Path) -> dict[str, bytes]:
    import gzip

    import brotli  # type: ignore[import-untyped]

    out = {}
    for rel, (_ino, data) in _tree(folder).items():
        if rel.endswith(".gz"):
            data = gzip.decompress(data)
        elif rel.endswith(".br"):
            data = brotli.decompress(data)
        out[rel] = data
    return out

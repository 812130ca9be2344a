"""`tallyroom publish`: immutable numbered snapshots recomputed from the ledger, made current
atomically, rebuilt incrementally, with the ledger and checkpoints published beside them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from pathlib import Path

import brotli
import msgspec
from click.testing import CliRunner
from publish_support import load, make_store, mini

from conftest import Published
from tallyroom.cli import main
from tallyroom.ledger.checkpoint import parse_vkey, verify_checkpoint
from tallyroom.ledger.merkle import leaf_hash, root_from_leaf_hashes
from tallyroom.publish.builder import Publisher, current_snapshot
from tallyroom.tally.report import tally_row


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_bytes())


def test_snapshot_layout_and_current_pointer(published: Published) -> None:
    out = published.out
    assert os.readlink(out / "current") == "snapshots/1"
    pointer = json.loads((out / "current.json").read_bytes())
    assert pointer["snapshot"] == 1 and pointer["path"] == "snapshots/1/"
    assert (
        pointer["manifest_sha256"]
        == hashlib.sha256((out / "snapshots/1/manifest.json").read_bytes()).hexdigest()
    )
    status = json.loads((out / "status.json").read_bytes())
    assert status["healthy"] and status["last_attempt"]["status"] == "published"
    snap = out / "snapshots" / "1"
    for rel in (
        "checkpoint.txt",
        "changes.json",
        "data/results.json",
        "data/csv/admin-0.csv",
        "data/csv/admin-1.csv",
        "data/csv/smd-0.csv",
        "data/csv/stations/batken.csv",
        "data/stations/batken.json",
        "data/nist-err-machine.json",
        "data/nist-err-hand.json",
        "data/tallyroom.sqlite",
        "bulletin/definition.yaml",
        "bulletin/commission.vkey",
        "bulletin/checkpoints.jsonl",
        "bulletin/stations.json",
        "bulletin/entries/000000000000.jsonl",
        "api/v1/results/index.json",
        "api/v1/results/area/chui.json",
        "api/v1/results/party-list/hand/kg.json",
        "api/v1/results/station/ps-1001.json",
        "en/index.html",
        "ky/index.html",
        "ru/index.html",
        "en/area/chui.html",
        "en/station/ps-1001.html",
        "static/site.css",
    ):
        if "/station/" in rel:  # stored only as the gzip copy (docs/bulletin.md §2)
            assert (snap / f"{rel}.gz").is_file() and not (snap / rel).exists(), rel
        else:
            assert (snap / rel).is_file(), rel
    assert not list((out / "snapshots").glob(".staging-*"))


def test_manifest_hashes_and_precompressed_copies(published: Published) -> None:
    snap = published.out / "snapshots" / "1"
    files = manifest(snap)["files"]
    assert len(files) > 300
    for rel, (sha, size, encodings) in files.items():
        if encodings == ["gzip-only"]:
            assert not (snap / rel).exists(), rel
            data = gzip.decompress((snap / f"{rel}.gz").read_bytes())
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, size), rel
            continue
        data = (snap / rel).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, size), rel
        if "gzip" in encodings:
            assert gzip.decompress((snap / f"{rel}.gz").read_bytes()) == data, rel
        if "br" in encodings:
            assert brotli.decompress((snap / f"{rel}.br").read_bytes()) == data, rel
    assert "br" in files["en/index.html"][2] and "gzip" in files["en/index.html"][2]
    stations = [rel for rel in files if "/station/" in rel]
    assert len(stations) > 100
    assert all(files[rel][2] == ["gzip-only"] for rel in stations)
    assert all(files[rel][2] != ["gzip-only"] for rel in files if "/station/" not in rel)


def test_published_numbers_equal_the_running_tally(published: Published) -> None:
    store = published.store
    e = store.election()
    doc = msgspec.json.decode((published.current / "data/results.json").read_bytes())
    rows = {(r["contest"], r["area"], r["count_kind"]): r for r in doc["rows"]}
    contest = e.contest("party-list")
    for kind in ("machine", "hand"):
        for area in ("kg", "chui", "bishkek", "abroad"):
            want = tally_row(
                e, contest, e.area_index[area], kind, store.totals(contest.index, e.area_index[area], kind)
            ).to_dict()
            got = rows[("party-list", area, kind)]
            assert {k: got[k] for k in want} == want
            assert got["official"] == (kind == "hand")
    national = rows[("party-list", "kg", "hand")]
    assert national["stations_reporting"] > 0
    assert national["percent_base"]["figure"] == "took_part"
    stations = [
        r
        for rel in doc["station_files"]
        for r in msgspec.json.decode((published.current / rel).read_bytes())["stations"]
    ]
    assert len(stations) == len(mini().machine) + 100


def test_bulletin_reproduces_the_checkpoint(published: Published) -> None:
    snap = published.current
    entries = []
    for chunk in sorted((snap / "bulletin/entries").glob("*.jsonl")):
        for line in chunk.read_bytes().splitlines():
            entries.append(json.loads(line))
    assert [e["index"] for e in entries] == list(range(len(entries)))
    datas = [base64.b64decode(e["data"]) for e in entries]
    assert all(leaf_hash(d).hex() == e["leaf_hash"] for d, e in zip(datas, entries, strict=True))
    name, vkey = parse_vkey((snap / "bulletin/commission.vkey").read_text().strip())
    cp = verify_checkpoint((snap / "checkpoint.txt").read_bytes(), name, vkey)
    assert cp.size == len(entries)
    assert cp.root == root_from_leaf_hashes([leaf_hash(d) for d in datas])
    snapshot = manifest(snap)["snapshot"]
    assert (snapshot["ledger_size"], snapshot["root"]) == (cp.size, cp.root.hex())
    definition = datas[0].split(b"\n", 1)[1]
    assert definition == (snap / "bulletin/definition.yaml").read_bytes() == mini().raw
    cps = [json.loads(x) for x in (snap / "bulletin/checkpoints.jsonl").read_bytes().splitlines()]
    assert cps[-1]["size"] == cp.size


def test_incremental_snapshot_reuses_unchanged_files_and_never_edits(tmp_path: Path) -> None:
    m = mini()
    store, key = make_store(tmp_path, machine=60, hand=0)
    out = tmp_path / "pub"
    pub = Publisher(store, out, key)
    first = pub.publish()
    assert first.status == "published" and first.snapshot == 1
    before = {p: p.read_bytes() for p in (out / "snapshots/1").rglob("*") if p.is_file()}
    assert pub.publish().status == "unchanged"  # only the publisher's own entries are new
    load(store, "machine", m.machine[60:70])
    second = pub.publish()
    assert second.status == "published" and second.snapshot == 2
    assert second.pages_reused > 0 and second.linked > 0
    assert second.protocols_new == 10
    # Snapshot 1 is untouched, byte for byte.
    assert {p: p.read_bytes() for p in (out / "snapshots/1").rglob("*") if p.is_file()} == before
    assert current_snapshot(out) == 2
    # A station that did not change is the same file (a hard link), one that did is new.
    new_station = m.machine[65].station
    old_station = m.machine[0].station
    s1, s2 = out / "snapshots/1", out / "snapshots/2"
    assert (
        os.stat(s1 / f"en/station/{old_station}.html.gz").st_ino
        == os.stat(s2 / f"en/station/{old_station}.html.gz").st_ino
    )
    assert (
        os.stat(s1 / f"en/station/{new_station}.html.gz").st_ino
        != os.stat(s2 / f"en/station/{new_station}.html.gz").st_ino
    )
    changes = json.loads((s2 / "changes.json").read_bytes())
    assert changes["previous"] == 1 and changes["new_protocols_total"] == 10
    assert new_station in {p["station"] for p in changes["new_protocols"]}
    assert any(r["area"] == "kg" for r in changes["rows_changed"])
    # Listed as the definition lists contests and areas (the country first), each area's
    # count kinds side by side.
    e = store.election()
    order = [
        ([c.id for c in e.contests].index(r["contest"]), e.area_index[r["area"]], r["count_kind"])
        for r in changes["rows_changed"]
    ]
    assert order == sorted(order, key=lambda o: (o[0], o[1])) and changes["rows_changed"][0]["area"] == "kg"
    snaps = json.loads((s2 / "api/v1/snapshots.json").read_bytes())["snapshots"]
    assert [s["number"] for s in snaps] == [1, 2]
    # The SQLite file, updated in place of a rebuild, holds what a full build would.
    assert _dump(s2 / "data/tallyroom.sqlite") == _dump_full(store, out)
    # The snapshot itself is logged in the ledger, so the next checkpoint commits to it.
    kinds = [k for _i, k, _d, _h in store.entries()]
    assert kinds.count("snapshot") == 2 and kinds.count("checkpoint") == 2


def test_cli_publish(tmp_path: Path) -> None:
    store, _key = make_store(tmp_path, machine=20, hand=0)
    store.close()
    out = tmp_path / "pub"
    runner = CliRunner()
    r = runner.invoke(main, ["--db", str(tmp_path / "kg.db"), "publish", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "published snapshot 1" in r.output and "numbers checked" in r.output
    r = runner.invoke(main, ["--db", str(tmp_path / "kg.db"), "publish", "--out", str(out)])
    assert r.exit_code == 0 and "nothing new" in r.output
    r = runner.invoke(
        main, ["--db", str(tmp_path / "kg.db"), "publish", "--out", str(out), "--force", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["snapshot"] == 2
    again = ["--db", str(tmp_path / "kg.db"), "publish", "--out", str(out), "--force"]
    r = runner.invoke(main, [*again, "--workers", "3"])
    assert r.exit_code == 0 and "published snapshot 3" in r.output, r.output
    r = runner.invoke(main, [*again, "--workers", "0"])
    assert r.exit_code == 2 and "--workers" in r.output and "0" in r.output
    assert not (out / "snapshots" / "4").exists()
    r = runner.invoke(main, ["--db", str(tmp_path / "missing.db"), "publish", "--out", str(out)])
    assert r.exit_code == 2


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    import sqlite3

    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    conn.close()
    return out


def _dump_full(store: object, out: Path) -> dict[str, list[tuple[object, ...]]]:
    import tempfile

    from tallyroom.publish import gate, sqlite_export
    from tallyroom.publish.ledger_view import election_of, protocol_entries, read_prefix
    from tallyroom.publish.results import present

    snap = json.loads((out / "snapshots/2/manifest.json").read_bytes())["snapshot"]
    prefix = read_prefix(store, snap["ledger_size"])  # type: ignore[arg-type]
    e = election_of(prefix)
    rebuilt = gate.recompute(e, prefix).rebuilt
    assert rebuilt is not None
    results = present(
        e, rebuilt.tally, protocol_entries(e, prefix, rebuilt.active), {k[2] for k in rebuilt.active}
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "full.sqlite"
        path.write_bytes(sqlite_export.build(e, results, snap))
        return _dump(path)


def test_a_restarted_publisher_writes_missing_error_pages_when_nothing_changed(tmp_path: Path) -> None:
    """The "page not found" pages live beside the snapshots: a publisher started on a publish
    folder whose ledger has no news writes them too (once), e.g. after they were removed or
    when the folder was published by a version that had none."""
    store, key = make_store(tmp_path, machine=20, hand=0)
    out = tmp_path / "pub"
    assert Publisher(store, out, key).publish().status == "published"
    pages = sorted(p.name for p in (out / "errors").iterdir())
    assert pages == ["404.en.html", "404.ky.html", "404.ru.html", "404.txt"]
    english = (out / "errors" / "404.en.html").read_bytes()
    for name in pages:
        (out / "errors" / name).unlink()
    again = Publisher(store, out, key)
    assert again.publish().status == "unchanged"
    assert sorted(p.name for p in (out / "errors").iterdir()) == pages
    assert (out / "errors" / "404.en.html").read_bytes() == english
    # Once per process: a later attempt with no news does not look again.
    (out / "errors" / "404.txt").unlink()
    assert again.publish().status == "unchanged"
    assert not (out / "errors" / "404.txt").exists()

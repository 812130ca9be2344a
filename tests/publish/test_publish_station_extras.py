"""What station pages and the bulletin show besides the protocols in force: the history of
every version of a station's protocols, photos of paper protocols, the intake journal per
station, and station key changes — published once, then kept up to date incrementally."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from extras_support import NOT_UPLOADED, PNG, Extras, add_extras, journal
from publish_support import make_store

from support import published_bytes, published_text
from tallyroom.intake.journal import Outcome
from tallyroom.ledger.entry import decode_entry
from tallyroom.publish import station_facts
from tallyroom.publish.builder import Publisher
from tallyroom.publish.station_facts import JournalTally
from tallyroom.store import intake as db
from tallyroom.store.sql import Store, open_store


@dataclass
class Built:
    store: Store
    out: Path
    x: Extras

    @property
    def cur(self) -> Path:
        return self.out / "current"

    def page(self, station: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(published_bytes(self.cur / f"api/v1/results/station/{station}.json"))
        return doc

    def html(self, station: str, lang: str = "en") -> str:
        return published_text(self.cur / f"{lang}/station/{station}.html")

    def group(self, station: str, contest: str = "party-list", kind: str = "hand") -> dict[str, Any]:
        return next(
            g for g in self.page(station)["history"] if (g["contest"], g["count_kind"]) == (contest, kind)
        )

    def entries(self) -> dict[int, tuple[str, bytes, str]]:
        """Every published ledger entry: index -> (kind, payload, leaf hash)."""
        out = {}
        for path in sorted((self.cur / "bulletin/entries").glob("*.jsonl")):
            for line in path.read_bytes().splitlines():
                item = json.loads(line)
                kind, payload = decode_entry(base64.b64decode(item["data"]))
                out[item["index"]] = (str(kind), payload, item["leaf_hash"])
        return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    folder = tmp_path_factory.mktemp("extras")
    store, key = make_store(folder, machine=None, hand=100)
    x = add_extras(store, folder)
    out = folder / "pub"
    outcome = Publisher(store, out, key, workers=1).publish()
    assert outcome.status == "published", outcome.failures
    yield Built(store, out, x)
    store.close()


def test_history_lists_every_version_with_the_decisions(built: Built) -> None:
    entries = built.entries()
    g = built.group(built.x.corrected)
    first, correction = g["entries"]
    assert (first["action"], first["status"], first["ended_by"]) == (
        "submit",
        "superseded",
        correction["ledger_index"],
    )
    assert first["source"] == "import"
    assert correction["action"] == "supersede" and correction["status"] == "counts"
    assert correction["target"] == first["ledger_index"] and g["in_force"] == correction["ledger_index"]
    assert (correction["reason"], correction["proposed_by"], correction["approved_by"]) == (
        "recounted at the district commission",
        "olga",
        "sam",
    )
    for e in g["entries"]:  # each item is the ledger entry it names
        kind, _payload, leaf = entries[e["ledger_index"]]
        assert (kind, leaf) == (e["entry"], e["leaf_hash"])
    # An annulment: nothing counts any more.
    g = built.group(built.x.annulled)
    annulled, decision = g["entries"]
    assert g["in_force"] is None
    assert (annulled["status"], annulled["ended_by"]) == ("annulled", decision["ledger_index"])
    assert (decision["entry"], decision["action"], decision["status"]) == ("annulment", "annul", "decision")
    assert decision["reason"] == "signed by one member only"
    # A conflicting device reading turned down: recorded, never counted.
    g = built.group(built.x.photo)
    submitted, dismissed = g["entries"]
    key_id = built.x.keys[built.x.photo].key_id
    assert (submitted["source"], submitted["key_id"], submitted["status"]) == ("device", key_id, "counts")
    assert (dismissed["action"], dismissed["status"], dismissed["key_id"]) == ("dismiss", "dismissed", key_id)
    assert dismissed["body_sha256"] != submitted["body_sha256"] and g["in_force"] == submitted["ledger_index"]
    # A station without decisions: its protocols in force, nothing else.
    x = built.x
    busy = {x.corrected, x.annulled, x.photo, x.no_photo, x.forged}
    quiet = built.page(next(s.id for s in built.store.election().stations if s.id not in busy))
    assert all(len(h["entries"]) == 1 and h["entries"][0]["status"] == "counts" for h in quiet["history"])


def test_history_on_the_page_in_every_language(built: Built) -> None:
    g = built.group(built.x.corrected)
    old, new = (e["ledger_index"] for e in g["entries"])
    en = built.html(built.x.corrected)
    assert f'<tr data-index="{old}" data-status="superseded">' in en
    assert f"superseded by entry {new}" in en
    assert "Reason: recounted at the district commission. Proposed by olga, approved by sam." in en
    assert f"ledger entry {new} counts now" in en
    assert f"заменён записью {new}" in built.html(built.x.corrected, "ru")
    assert f"{new}-жазуу менен алмаштырылды" in built.html(built.x.corrected, "ky")
    assert "nothing counts now" in built.html(built.x.annulled)
    assert "never counted" in built.html(built.x.photo)


def test_what_changed_names_every_correction_and_annulment(built: Built) -> None:
    """A total that went down or a protocol replaced is explained on the "what changed" page:
    each decision with its station, what it did, its reason and the two people behind it."""
    x = built.x
    doc = json.loads(published_bytes(built.cur / "changes.json"))
    assert doc["decisions_total"] == 3
    assert [(q["action"], q["station"], q["entry"]) for q in doc["decisions"]] == [
        ("dismiss", x.photo, "correction"),
        ("supersede", x.corrected, "correction"),
        ("annul", x.annulled, "annulment"),
    ]
    entries = built.entries()
    for q in doc["decisions"]:  # each as its ledger entry says it
        kind, payload, _leaf = entries[q["ledger_index"]]
        line = json.loads(payload.split(b"\n", 1)[0])
        assert kind == q["entry"]
        assert {k: line.get(k) for k in ("target", "reason", "proposed_by", "approved_by", "contest")} == {
            k: q[k] for k in ("target", "reason", "proposed_by", "approved_by", "contest")
        }
    annul = doc["decisions"][2]
    en = published_text(built.cur / "en/changes.html")
    assert "Corrections and annulments: 3." in en
    item = en[en.index(f'<li data-index="{annul["ledger_index"]}">') :].split("</li>", 1)[0]
    assert f'station/{x.annulled}.html"' in item and f"Annulment of entry {annul['target']}" in item
    assert "Reason: signed by one member only. Proposed by olga, approved by sam." in item
    assert "Исправлений и отмен: 3." in published_text(built.cur / "ru/changes.html")
    assert f"Отмена записи {annul['target']}" in published_text(built.cur / "ru/changes.html")
    assert "Оңдоолор жана жокко чыгаруулар: 3." in published_text(built.cur / "ky/changes.html")


def test_photo_is_copied_once_and_shown(built: Built) -> None:
    x = built.x
    rel = f"images/{x.photo_sha}.png"
    assert (built.cur / rel).read_bytes() == PNG
    manifest = json.loads((built.cur / "manifest.json").read_bytes())
    assert manifest["files"][rel][0] == x.photo_sha
    assert [r for r in manifest["files"] if r.startswith("images/")] == [rel]
    col = next(c for c in built.page(x.photo)["contests"][0]["columns"] if c["count_kind"] == "hand")
    assert col["image"] == {"sha256": x.photo_sha, "path": rel, "media_type": "image/png"}
    html = built.html(x.photo)
    assert f'<img src="../../{rel}" alt="Photo or scan of the paper protocol: ' in html
    assert f'<a href="../../{rel}">Photo or scan of the paper protocol</a>' in html
    assert f"<code>{x.photo_sha}</code>" in html
    # Declared, never uploaded: said so, with the declared hash, and no file.
    col = next(c for c in built.page(x.no_photo)["contests"][0]["columns"] if c["count_kind"] == "hand")
    assert col["image"] == {"sha256": x.missing_sha, "path": None, "media_type": None}
    html = built.html(x.no_photo)
    assert "but it has not been uploaded" in html and f"<code>{x.missing_sha}</code>" in html
    assert "<img" not in html
    # Protocols that declare nothing show nothing.
    assert all(c.get("image") is None for c in built.page(x.corrected)["contests"][0]["columns"])


def test_intake_journal_per_station(built: Built) -> None:
    x = built.x
    doc = json.loads((built.cur / "bulletin/journal.json").read_bytes())
    assert doc["format"] == "tallyroom-journal/1"
    assert doc["stations"][x.forged] == {
        "accepted": 0,
        "duplicate": 0,
        "conflict": 0,
        "rejected": 5,
        "reasons": {"forged-signature": 5},
    }
    assert doc["stations"][x.photo]["conflict"] == 1 and doc["stations"][x.photo]["accepted"] == 1
    assert doc["unattributed"]["reasons"] == {"malformed-json": 1}
    assert doc["totals"]["rejected"] == 6 and doc["lines"] == 9
    assert built.page(x.forged)["intake"] == doc["stations"][x.forged]
    html = built.html(x.forged)
    assert "Accepted: 0; sent again: 0; conflicting: 0; rejected: 5." in html
    assert '<li data-reason="forged-signature">forged signature: 5</li>' in html
    assert "поддельная подпись: 5" in built.html(x.forged, "ru")
    assert built.page(x.corrected)["intake"] is None
    assert "No attempt to submit a protocol from a device" in built.html(x.corrected)


def test_key_changes_in_stations_json(built: Built) -> None:
    x = built.x
    stations = json.loads((built.cur / "bulletin/stations.json").read_bytes())["stations"]
    key_entries = {i: json.loads(p) for i, (k, p, _leaf) in built.entries().items() if k == "key_change"}
    rotated = stations[x.no_photo]["key_changes"]
    assert [(c["action"], c["change"]) for c in rotated] == [
        ("register", "registered"),
        ("rotate", "revoked"),
        ("rotate", "registered"),
    ]
    assert rotated[0]["key_id"] == rotated[1]["key_id"] == x.keys[x.no_photo].key_id
    assert rotated[2]["key_id"] != rotated[1]["key_id"] and rotated[2]["reason"] == "device lost"
    for c in rotated:
        assert c["action"] == key_entries[c["ledger_index"]]["action"]
    revoked = stations[x.forged]["key_changes"]
    assert [(c["change"], c["reason"], c["by"]) for c in revoked][-1] == ("revoked", "key stolen", "ada")
    assert key_entries[revoked[-1]["ledger_index"]]["revoked"] == [x.keys[x.forged].key_id]
    assert stations[x.corrected]["key_changes"] == []


def test_downloads_and_refresh_script(built: Built) -> None:
    downloads = json.loads((built.cur / "api/v1/downloads.json").read_bytes())["downloads"]
    assert {d["path"]: d["what"] for d in downloads}["bulletin/journal.json"] == "journal"
    words = (
        'defer data-auto="Update this page when new results are published" '
        'data-news="Newer results have been published." data-show="Show them"></script>'
    )
    script = f'<script src="../../static/refresh.js" {words}'
    assert script in built.html(built.x.photo) and script in (built.cur / "en/area/chui.html").read_text()
    assert f'<script src="../static/refresh.js" {words}' in (built.cur / "en/index.html").read_text()
    assert 'data-show="Көрсөтүү"' in (built.cur / "ky/index.html").read_text()
    assert "<script" not in (built.cur / "en/downloads.html").read_text()
    assert (built.cur / "static/refresh.js").read_bytes().startswith(b"/* tallyroom")


def _tree(snapshot: Path) -> dict[str, tuple[int, bytes]]:
    """Every file by the name it is published under (a station page stored only as its .gz
    copy under its own name), with its inode and its bytes as a reader gets them."""
    out = {}
    for p in snapshot.rglob("*"):
        if not p.is_file() or p.suffix in (".br", ".sqlite"):
            continue
        if p.suffix == ".gz":
            plain = p.with_suffix("")
            if plain.exists():
                continue
            out[str(plain.relative_to(snapshot))] = (p.stat().st_ino, published_bytes(plain))
        else:
            out[str(p.relative_to(snapshot))] = (p.stat().st_ino, p.read_bytes())
    return out


def test_kept_and_fresh_publishers_agree_and_rebuild_only_what_changed(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    store, _key = make_store(origin, machine=None, hand=100)
    x = add_extras(store, origin)
    store.close()
    runs: dict[str, list[dict[str, tuple[int, bytes]]]] = {}
    for mode in ("kept", "fresh"):
        folder = tmp_path / mode
        shutil.copytree(origin, folder)
        store = open_store(str(folder / "kg.db"))
        key = folder / "kg.db.commission-key"

        def clock(t: list[float] = [1_700_000_000.0]) -> float:  # noqa: B006 - a counter per run
            t[0] += 1
            return t[0]

        kept = Publisher(store, folder / "pub", key, clock=clock, workers=1)

        def publish() -> Any:
            p = kept if mode == "kept" else Publisher(store, folder / "pub", key, clock=clock, workers=1)  # noqa: B023
            outcome = p.publish(force=True)
            assert outcome.status == "published", outcome.failures
            return outcome

        trees = []
        publish()
        trees.append(_tree(folder / "pub/snapshots/1"))
        # The missing photo arrives; five more forged attempts at another station.
        missing_sha = x.missing_sha
        db.put_image(store, missing_sha, "image/jpeg", NOT_UPLOADED, x.no_photo, "party-list", "hand", "olga")
        journal(store, x.forged, Outcome.REJECTED, "forged-signature", 5)
        outcome = publish()
        trees.append(_tree(folder / "pub/snapshots/2"))
        # Only the two stations' pages were rendered again (and the always-new lists).
        if mode == "kept":
            assert outcome.pages_rendered <= 6, outcome.to_dict()
        one, two = trees
        for sid in (x.no_photo, x.forged):
            assert one[f"en/station/{sid}.html"] != two[f"en/station/{sid}.html"]
        assert one[f"en/station/{x.photo}.html"] == two[f"en/station/{x.photo}.html"]  # same inode
        assert two[f"images/{missing_sha}.jpg"][1] == NOT_UPLOADED
        assert (
            f'<img src="../../images/{missing_sha}.jpg"' in two[f"en/station/{x.no_photo}.html"][1].decode()
        )
        assert b"rejected: 10." in two[f"en/station/{x.forged}.html"][1]
        # Photos of an earlier snapshot are linked, not copied again.
        journal(store, None, Outcome.REJECTED, "malformed-json")
        publish()
        trees.append(_tree(folder / "pub/snapshots/3"))
        for sha, ext in ((x.photo_sha, "png"), (missing_sha, "jpg")):
            assert trees[2][f"images/{sha}.{ext}"] == trees[1][f"images/{sha}.{ext}"]
        runs[mode] = [{k: v[1] for k, v in tree.items()} for tree in trees]
        kept.close()
        store.close()
    assert runs["kept"] == runs["fresh"]


class _Journal:
    """Journal lines that become visible out of id order, as on PostgreSQL with several
    intake workers."""

    def __init__(self) -> None:
        self.visible: list[dict[str, Any]] = []

    def add(self, lid: int, station: str, outcome: str, reason: str | None = None) -> None:
        self.visible.append({"id": lid, "station": station, "outcome": outcome, "reason": reason})

    def lines(self, _store: object, _station: object, limit: int, after: int) -> list[dict[str, Any]]:
        return sorted((x for x in self.visible if x["id"] > after), key=lambda x: x["id"])[:limit]


def test_journal_lines_that_commit_late_are_counted_once(
    monkeypatch: pytest.MonkeyPatch, built: Built
) -> None:
    election = built.store.election()
    sid = election.stations[0].id
    fake = _Journal()
    monkeypatch.setattr(station_facts.db, "journal_lines", fake.lines)
    monkeypatch.setattr(JournalTally, "PAGE", 2)
    tally = JournalTally(window=10)
    for lid in (1, 2, 4, 5, 6):
        fake.add(lid, sid, "rejected", "forged-signature")
    assert tally.update(built.store, election) == {sid}
    fake.add(3, sid, "accepted")  # committed after 4–6 were read
    fake.add(7, "no-such-station", "rejected", "unknown-station")
    assert tally.update(built.store, election) == {sid}
    assert tally.update(built.store, election) == set()  # nothing new: nothing counted twice
    assert tally.station(sid) == {
        "accepted": 1,
        "duplicate": 0,
        "conflict": 0,
        "rejected": 5,
        "reasons": {"forged-signature": 5},
    }
    doc = tally.document()
    assert doc["lines"] == 7 and doc["unattributed"]["reasons"] == {"unknown-station": 1}
    assert msgspec.json.decode(tally.document_bytes()) == doc

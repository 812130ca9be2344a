"""The verifier checks what station pages and the bulletin show besides the protocols in
force: every version in a station's history (recomputed from the ledger), the photos the
protocols declare, station key changes (from the ledger's key_change entries), and that the
pages show the published intake journal — whose own counts are not recomputable, only
checked to be whole and to add up."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from extras_support import Extras, add_extras
from publish_support import make_store
from tamper import copy_publish, edit_json, edit_text, read, rewrite
from verify_support import Pub, publish

from tallyroom.cli import main


@pytest.fixture(scope="module")
def extras_pub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pub, Extras]]:
    folder = tmp_path_factory.mktemp("extras")
    store, key = make_store(folder, machine=None, hand=100)
    x = add_extras(store, folder)
    publish(store, folder / "pub", key)
    yield Pub(folder / "pub", folder / "kg.db", key, store), x
    store.close()


def verify(tmp_path: Path, pub: Path) -> tuple[Result, dict[str, Any]]:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["verify", str(pub), "--workers", "1", "--report", str(out)])
    return result, json.loads(out.read_text())


def messages(report: dict[str, Any]) -> list[str]:
    out = []
    for m in report["mismatches"]:
        head = " › ".join(p for p in (m["file"], m["where"]) if p)
        out.append(f"{head}: {m['published']} | {m['expected']} | {m['why']}")
    return out


@pytest.fixture
def copy(extras_pub: tuple[Pub, Extras], tmp_path: Path) -> tuple[Path, Path, Extras]:
    pub = copy_publish(extras_pub[0].out, tmp_path / "pub")
    return pub, (pub / "current").resolve(), extras_pub[1]


def _group(doc: dict[str, Any], contest: str = "party-list", kind: str = "hand") -> dict[str, Any]:
    return next(g for g in doc["history"] if (g["contest"], g["count_kind"]) == (contest, kind))


def test_a_snapshot_with_history_photos_journal_and_key_changes_verifies(
    extras_pub: tuple[Pub, Extras], tmp_path: Path
) -> None:
    result, report = verify(tmp_path, extras_pub[0].out)
    assert result.exit_code == 0, result.output
    assert report["mismatches"] == []
    assert not any("key_changes" in n for n in report.get("notes", []))


def test_a_key_change_removed_from_stations_json(copy: tuple[Path, Path, Extras], tmp_path: Path) -> None:
    pub, snap, x = copy
    removed: dict[str, Any] = {}

    def drop(doc: dict[str, Any]) -> None:
        changes = doc["stations"][x.no_photo]["key_changes"]
        removed.update(changes.pop(1))  # the revocation of the rotated key

    edit_json(snap, "bulletin/stations.json", drop)
    result, report = verify(tmp_path, pub)
    assert result.exit_code == 1
    where = f"bulletin/stations.json › stations.{x.no_photo}.key_changes: "
    what = f"key {removed['key_id']} revoked at ledger entry {removed['ledger_index']} (a key_change entry)"
    assert any(m.startswith(where) and what in m for m in messages(report)), messages(report)
    assert report["mismatches_by_check"] == {"station-keys": 1, "downloads": 1}


def test_a_history_status_changed_in_json_and_html(copy: tuple[Path, Path, Extras], tmp_path: Path) -> None:
    pub, snap, x = copy
    rel = f"api/v1/results/station/{x.corrected}.json"
    first = _group(json.loads(read(snap, rel)))["entries"][0]["ledger_index"]

    def hide(doc: dict[str, Any]) -> None:  # pretend the first version still counts
        e = _group(doc)["entries"][0]
        e["status"], e["ended_by"] = "counts", None

    edit_json(snap, rel, hide)
    edit_text(
        snap,
        f"ru/station/{x.corrected}.html",
        f'<tr data-index="{first}" data-status="superseded">',
        f'<tr data-index="{first}" data-status="counts">',
    )
    result, report = verify(tmp_path, pub)
    assert result.exit_code == 1
    got = messages(report)
    assert any(
        m.startswith(f'{rel} › history[party-list / hand].entries[{first}].status: "counts" | "superseded"')
        for m in got
    ), got
    assert any(m.startswith(f"ru/station/{x.corrected}.html › history[party-list / hand]") for m in got), got


def test_a_dismissed_reading_removed_from_the_history(
    copy: tuple[Path, Path, Extras], tmp_path: Path
) -> None:
    pub, snap, x = copy
    rel = f"api/v1/results/station/{x.photo}.json"
    edit_json(snap, rel, lambda doc: _group(doc)["entries"].pop())
    result, report = verify(tmp_path, pub)
    assert result.exit_code == 1
    assert any(
        m.startswith(f"{rel} › history[party-list / hand].entries: ")
        and "(correction, dismiss) is missing" in m
        for m in messages(report)
    ), messages(report)


def test_intake_figures_must_be_the_published_journal(
    copy: tuple[Path, Path, Extras], tmp_path: Path
) -> None:
    pub, snap, x = copy
    edit_text(snap, f"en/station/{x.forged}.html", "rejected: 5.", "rejected: 0.")
    edit_json(snap, "bulletin/journal.json", lambda doc: doc["totals"].update(rejected=0))
    result, report = verify(tmp_path, pub)
    assert result.exit_code == 1
    got = messages(report)
    assert any(m.startswith(f"en/station/{x.forged}.html › intake: ") for m in got), got
    assert any(m.startswith("bulletin/journal.json › totals: ") for m in got), got


def test_a_photo_swapped_or_a_declared_hash_changed(copy: tuple[Path, Path, Extras], tmp_path: Path) -> None:
    pub, snap, x = copy
    rel = f"images/{x.photo_sha}.png"
    other = b"\x89PNG\r\n\x1a\n" + b"another photo altogether"
    rewrite(snap, rel, other)  # the manifest is made to agree: only the name gives it away
    page = f"api/v1/results/station/{x.no_photo}.json"

    def declare(doc: dict[str, Any]) -> None:
        col = next(c for c in doc["contests"][0]["columns"] if c["count_kind"] == "hand")
        col["image"]["sha256"] = "0" * 64

    edit_json(snap, page, declare)
    result, report = verify(tmp_path, pub)
    assert result.exit_code == 1
    got = messages(report)
    sha = hashlib.sha256(other).hexdigest()
    assert any(m.startswith(f'{rel} › SHA-256: "{sha}" | "{x.photo_sha}"') for m in got), got
    zeros = "0" * 64
    where = f"{page} › contests.party-list.columns.hand.image.sha256"
    assert any(m.startswith(f'{where}: "{zeros}" | "{x.missing_sha}"') for m in got), got


def test_a_decision_misstated_in_what_changed(copy: tuple[Path, Path, Extras], tmp_path: Path) -> None:
    pub, snap, _x = copy
    said: dict[str, Any] = {}

    def edit(doc: dict[str, Any]) -> None:
        said.update(doc["decisions"][1])
        doc["decisions"][1]["reason"] = "a typo"
        doc["decisions_total"] = 2

    edit_json(snap, "changes.json", edit)
    result, report = verify(tmp_path, pub)
    assert result.exit_code == 1
    got = messages(report)
    assert any(
        m.startswith(f'changes.json › decisions[1].reason: "a typo" | "{said["reason"]}" | ledger entry')
        for m in got
    ), got
    assert any(m.startswith("changes.json › decisions_total: 2 | 3") for m in got), got

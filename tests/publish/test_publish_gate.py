"""The publish gate refuses anything that does not add up, and the site keeps the previous
snapshot. The 2021 Kyrgyz fault — a display step that added a figure twice, so that party
shares summed to more than 150% — is injected and must never be published."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from publish_support import load, make_store, mini

from tallyroom.cli import main
from tallyroom.publish import builder
from tallyroom.publish.builder import Publisher, current_snapshot
from tallyroom.publish.results import Results
from tallyroom.tally.report import percent
from tallyroom.tally.running import TallyKey


def double_count_2021(results: Results) -> None:
    """The 2021 display fault: each party's figure added twice into the national total,
    with shares computed from the doubled figures (so they sum to about 200%)."""
    row = results.rows[("party-list", "kg", "machine")]
    base = row["percent_base"]["value"]
    for c in row["choices"]:
        c["votes"] += c["votes"]
        c["percent"] = percent(c["votes"], base)
        row["lines"][c["id"]] = c["votes"]


def region_only(results: Results) -> None:
    row = results.rows[("party-list", "chui", "machine")]
    row["choices"][0]["votes"] += 1
    row["lines"][row["choices"][0]["id"]] += 1
    row["choices"][0]["percent"] = percent(row["choices"][0]["votes"], row["percent_base"]["value"])


def wrong_base(results: Results) -> None:
    """Shares of valid votes published as shares of voters who took part."""
    row = results.rows[("party-list", "kg", "machine")]
    for c in row["choices"]:
        c["percent"] = percent(c["votes"], row["valid"])


def station_line(results: Results) -> None:
    key = next(iter(results.stations))
    results.stations[key]["lines"]["invalid"] += 5


def station_choice(results: Results) -> None:
    """One party's votes of one station protocol doubled, its line left alone."""
    key = next(k for k in results.stations if k[0] == "party-list")
    choice = results.stations[key]["choices"][2]
    choice["votes"] += choice["votes"]


def _refused(tmp_path: Path, hook: object) -> tuple[Publisher, list[str]]:
    store, key = make_store(tmp_path, machine=40, hand=0)
    out = tmp_path / "pub"
    assert Publisher(store, out, key).publish().status == "published"
    load(store, "machine", mini().machine[40:60])
    cps_before = len(store.checkpoints())
    faulty = Publisher(store, out, key, display_hook=hook)  # type: ignore[arg-type]
    outcome = faulty.publish()
    assert outcome.status == "refused"
    # Nothing was published: the previous snapshot stays current, no snapshot 2, no staging,
    # no checkpoint signed for the refused numbers.
    assert current_snapshot(out) == 1 and os.readlink(out / "current") == "snapshots/1"
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["1"]
    assert len(store.checkpoints()) == cps_before
    status = json.loads((out / "status.json").read_bytes())
    assert status["healthy"] is False and status["current_snapshot"] == 1
    assert status["last_attempt"]["status"] == "refused"
    refusals = list((out / "refusals").glob("*.json"))
    assert len(refusals) == 1
    record = json.loads(refusals[0].read_bytes())
    assert record["would_have_been_snapshot"] == 2 and not record["ok"]
    # Once the display step is right again, the same ledger publishes as snapshot 2.
    ok = Publisher(store, out, key).publish()
    assert ok.status == "published" and ok.snapshot == 2 and current_snapshot(out) == 2
    assert json.loads((out / "status.json").read_bytes())["healthy"] is True
    return faulty, [f"{f.check} {f.where} {f.message}" for f in outcome.failures]


def test_the_2021_double_count_is_refused(tmp_path: Path) -> None:
    _, failures = _refused(tmp_path, double_count_2021)
    text = "\n".join(failures)
    assert "published-equals-recomputed party-list / kg / machine" in text
    assert "shares-le-100" in text  # Σ votes > voters who took part: shares over 100%
    assert "children-sum-to-parent party-list / kg / machine" in text
    assert "choices-le-valid" in text


def test_a_refusal_while_the_page_workers_render_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate of a first (full) snapshot runs while forked workers already render its pages
    and another process writes its SQLite download into the staging folder: refused, they are
    stopped and everything they wrote goes with the folder; nothing is signed or published,
    and the next good build is snapshot 1."""
    monkeypatch.setattr(builder, "BESIDE_MIN", 1)  # the SQLite download beside, at this size too
    store, key = make_store(tmp_path, machine=None, hand=0)
    out = tmp_path / "pub"
    cps_before = len(store.checkpoints())
    size_before = store.head().size
    outcome = Publisher(store, out, key, display_hook=double_count_2021, workers=2).publish()  # type: ignore[arg-type]
    assert outcome.status == "refused"
    steps = list(outcome.timings)
    assert "start-pages" in steps and steps.index("start-pages") < steps.index("gate"), steps
    assert "checkpoint" not in steps
    assert multiprocessing.active_children() == []
    assert current_snapshot(out) is None and not (out / "current").exists()
    assert list((out / "snapshots").iterdir()) == []
    assert len(store.checkpoints()) == cps_before and store.head().size == size_before
    ok = Publisher(store, out, key, workers=2).publish()
    assert ok.status == "published" and ok.snapshot == 1 and current_snapshot(out) == 1
    db = out / "current" / "data" / "tallyroom.sqlite"
    listed = json.loads((out / "current" / "manifest.json").read_bytes())["files"]["data/tallyroom.sqlite"]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == listed[0]
    in_force = sum(1 for _ in store.active_protocols())
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM protocols").fetchone()[0] == in_force > 100


def test_a_region_that_does_not_add_up_is_refused(tmp_path: Path) -> None:
    _, failures = _refused(tmp_path, region_only)
    assert any(f.startswith("published-equals-recomputed party-list / chui / machine") for f in failures)
    assert any(f.startswith("children-sum-to-parent party-list / chui / machine") for f in failures)
    assert any(f.startswith("children-sum-to-parent party-list / kg / machine") for f in failures)


def test_a_share_on_the_wrong_base_is_refused(tmp_path: Path) -> None:
    _, failures = _refused(tmp_path, wrong_base)
    assert any(f.startswith("share-matches-base party-list / kg / machine") for f in failures)


def test_a_changed_station_protocol_is_refused(tmp_path: Path) -> None:
    _, failures = _refused(tmp_path, station_line)
    assert any(f.startswith("published-protocol-equals-ledger") for f in failures)


def test_a_changed_choice_of_a_station_protocol_is_refused_by_name(tmp_path: Path) -> None:
    """Station records hold their choices as structs (docs/decisions/0012): the gate still
    compares them and names the choice and field that differ."""
    _, failures = _refused(tmp_path, station_choice)
    found = [f for f in failures if f.startswith("published-protocol-equals-ledger")]
    assert len(found) == 1, failures
    # Named by the choice's id, as for an area row's choice dicts.
    assert re.search(r"choices\.[a-z][\w-]*\.votes is \d+, recomputed \d+", found[0]), found[0]


def test_cli_refuses_a_running_tally_that_differs_from_the_ledger(tmp_path: Path) -> None:
    store, _key = make_store(tmp_path, machine=30, hand=0)
    out = tmp_path / "pub"
    runner = CliRunner()
    db = str(tmp_path / "kg.db")
    assert runner.invoke(main, ["--db", db, "publish", "--out", str(out)]).exit_code == 0
    load(store, "machine", mini().machine[30:40])
    e = store.election()
    tally = store.tally()
    national = tally.totals[TallyKey(e.contest_index["party-list"], e.area_index["kg"], "machine")]
    start = e.contest("party-list").choice_start
    national.counts = [v * 2 if i >= start else v for i, v in enumerate(national.counts)]
    store.replace_tally(tally)
    store.close()
    r = runner.invoke(main, ["--db", db, "publish", "--out", str(out)])
    assert r.exit_code == 1
    assert "REFUSED" in r.output and "running-tally-equals-ledger" in r.output
    assert current_snapshot(out) == 1


def _refused_with_hand_counts(tmp_path: Path, hook: object) -> list[str]:
    """Every machine and hand count: the display step's reconciliation and sensitivity are
    tampered with by ``hook``; the gate makes both again from the ledger and must refuse."""
    store, key = make_store(tmp_path, machine=None, hand=None)
    out = tmp_path / "pub"
    outcome = Publisher(store, out, key, display_hook=hook, workers=1).publish()  # type: ignore[arg-type]
    assert outcome.status == "refused"
    assert current_snapshot(out) is None and not (out / "snapshots" / "1").exists()
    ok = Publisher(store, out, key, workers=1).publish()
    assert ok.status == "published" and ok.snapshot == 1
    return [f"{f.check} {f.where} {f.message}" for f in outcome.failures]


def test_a_wrong_machine_vs_hand_difference_is_refused(tmp_path: Path) -> None:
    changed: dict[str, Any] = {}

    def wrong_difference(results: Results) -> None:
        station = results.reconciliation["party-list"]["stations"][0]
        line = station["lines"][0]
        changed.update(station=station["station"], line=line["line"], was=line["difference"])
        line["difference"] += 1

    failures = _refused_with_hand_counts(tmp_path, wrong_difference)
    assert failures == [
        f"reconciliation-equals-ledger party-list stations.{changed['station']}.lines.{changed['line']}."
        f"difference is {changed['was'] + 1!r}, recomputed {changed['was']!r}"
    ]


def test_a_wrong_seat_sensitivity_is_refused(tmp_path: Path) -> None:
    def fewer_votes(results: Results) -> None:
        move = results.sensitivity[("party-list", "hand")]["seat_move"]
        move["votes"] -= 1

    failures = _refused_with_hand_counts(tmp_path, fewer_votes)
    assert len(failures) == 1
    assert failures[0].startswith("sensitivity-equals-ledger party-list / hand seat_move.votes is ")

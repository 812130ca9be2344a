"""`tallyroom reconcile` and `tallyroom audit …` on a store holding the generated Kyrgyzstan
2021 election with both counts: the scanner count differs from the hand count at a known
small set of stations (tallyroom.simulate.kyrgyzstan.machine_counts)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tallyroom.cli import main
from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.ledger.entry import EntryKind
from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.store.sql import open_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def election_night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    definition = kg.generate_definition(2021)
    raw = kg.definition_yaml(definition)
    folder = tmp_path_factory.mktemp("kgaudit")
    store = open_store(str(folder / "kg.db"))
    store.initialize(load_definition(raw), b"\x03" * 32)
    hand = kg.generate_protocols(definition, 2021)
    machine = kg.machine_counts(hand, 2021)
    kg.load_protocols(store, machine, CountKind.MACHINE)
    kg.load_protocols(store, hand, CountKind.HAND)
    store.close()
    # The stations whose party-list counts differ, computed from the generated data itself.
    by_key = {(p[0], p[1]): p[2] for p in hand}
    differing = {p[0] for p in machine if p[1] == "party-list" and by_key[(p[0], p[1])] != p[2]}
    return folder / "kg.db", differing


def run(db: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["--db", str(db), *args])
    assert "Traceback" not in r.output, r.output
    return r.exit_code, r.output


def test_reconcile_finds_exactly_the_differing_stations(election_night: tuple[Path, set[str]]) -> None:
    db, differing = election_night
    assert differing, "the generator must make the counts differ somewhere"
    code, out = run(db, "reconcile", "--contest", "party-list", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["stations_compared"] == 2494
    assert {s["station_id"] for s in report["stations"]} == differing
    assert report["stations_differing"] == len(differing)
    assert sum(r["stations"] for r in report["regions"]) == 2494


def test_reconcile_threshold_flags_only_large_differences(election_night: tuple[Path, set[str]]) -> None:
    db, differing = election_night
    code, out = run(db, "reconcile", "--threshold", "3", "--format", "csv")
    assert code == 0
    rows = [line.split(",") for line in out.strip().splitlines()[1:]]
    flagged = {r[0] for r in rows if r[5] == "True"}
    for r in rows:
        if abs(int(r[4])) >= 3:
            assert r[0] in flagged
    assert flagged < differing


def test_audit_is_reproducible_from_its_seed_and_confirms_a_right_outcome(
    election_night: tuple[Path, set[str]],
) -> None:
    db, _ = election_night
    code, out = run(
        db, "audit", "start", "--seed", "31415926535897932384", "--risk-limit", "10", "--format", "json"
    )
    assert code == 0, out
    first = json.loads(out)
    assert first["status"] == "awaiting_counts" and first["pending"]
    # The state is a ledger entry: a second store reading the same ledger sees the same draws.
    store = open_store(str(db))
    latest = store.latest_entry(EntryKind.AUDIT)
    assert latest is not None
    state = json.loads(latest[1])
    assert state["action"] == "start" and state["state"]["seed"] == "31415926535897932384"
    store.close()
    for _ in range(5):
        code, out = run(db, "audit", "record", "--from-hand-count", "--format", "json")
        assert code == 0, out
        status = json.loads(out)
        if status["status"] != "continue":
            break
        code, out = run(db, "audit", "next-round")
        assert code == 0, out
    assert status["status"] == "confirmed"


def test_audit_commands_explain_bad_input(election_night: tuple[Path, set[str]], tmp_path: Path) -> None:
    # Its own copy with its own audit: the shared store's audit is another test's to start.
    db = tmp_path / "night.db"
    with sqlite3.connect(election_night[0]) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    code, out = run(db, "audit", "start", "--seed", "7", "--risk-limit", "10")
    assert code == 0, out
    bad = tmp_path / "counts.csv"
    bad.write_text("station,bogus_line\nps-1001,5\n")
    code, out = run(db, "audit", "record", str(bad))
    assert code == 2 and "unknown line(s) bogus_line" in out
    code, out = run(db, "audit", "record")
    assert code == 2 and "--from-hand-count" in out
    empty = tmp_path / "e.db"
    run(empty, "init", str(Path(__file__).parents[1] / "data" / "small.yaml"))
    code, out = run(empty, "audit", "status")
    assert code == 2 and "no audit has been started" in out
    code, out = run(empty, "audit", "start", "--seed", "1", "--risk-limit", "5")
    assert code == 2 and "no machine count to audit" in out

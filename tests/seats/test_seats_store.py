"""`tallyroom seats` for the election in the store: the generated Kyrgyzstan 2021 election,
whose hand count equals the official figures (../shared/data/kg_2021_official/), must give the
official 15/12/9/7/6/5 list seats under the definition's rules (Hare, 5% nationally and 0.5% in
each of the 9 regions of voters who took part, cap 27), and the two Bishkek constituencies
where "against all" won must be failed elections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tallyroom.cli import main
from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.store.sql import open_store

WINNERS = {
    "Ata-Jurt Kyrgyzstan": 15,
    "Ishenim": 12,
    "Yntymak": 9,
    "Alliance": 7,
    "Butun Kyrgyzstan": 6,
    "Yiman Nuru": 5,
}


@pytest.fixture(scope="module")
def kg_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    definition = kg.generate_definition(2021)
    raw = kg.definition_yaml(definition)
    db = str(tmp_path_factory.mktemp("kg") / "kg.db")
    store = open_store(db)
    store.initialize(load_definition(raw), b"\x02" * 32)
    hand = kg.generate_protocols(definition, 2021)
    machine = kg.machine_counts(hand, 2021)
    # Half of the scanner counts are in; the hand count is complete.
    kg.load_protocols(store, machine[: len(machine) // 2], CountKind.MACHINE)
    kg.load_protocols(store, hand, CountKind.HAND)
    store.close()
    return db


def seats_json(db: str, *args: str) -> object:
    r = CliRunner().invoke(main, ["--db", db, "seats", "--format", "json", *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_official_list_seats(kg_db: str) -> None:
    out = seats_json(kg_db, "--contest", "party-list")
    assert isinstance(out, dict)
    assert out["official"] is True and out["count_kind"] == "hand"
    got = {k: v for k, v in out["seats"].items() if v}
    assert got == WINNERS
    checks = out["result"]["explanation"]["thresholds"]
    assert checks, "threshold decisions must be explained"


def test_constituencies_where_against_all_won_fail(kg_db: str) -> None:
    out = seats_json(kg_db)
    assert isinstance(out, list)
    smd = [o for o in out if o["contest"].startswith("smd-")]
    assert len(smd) == 36
    failed = [o for o in smd if o["result"]["outcome"] == "failed election"]
    assert len(failed) == 2
    for o in failed:
        assert o["result"].get("winner") is None


def test_machine_count_gives_only_a_provisional_projection(kg_db: str) -> None:
    out = seats_json(kg_db, "--contest", "party-list", "--count-kind", "machine")
    assert isinstance(out, dict)
    assert out["official"] is False and out["provisional"] is True
    assert out["stations_reporting"] < out["stations_expected"] == 2494
    assert sum(out["seats"].values()) == 54


def test_table_output_names_the_status(kg_db: str) -> None:
    r = CliRunner().invoke(
        main, ["--db", kg_db, "seats", "--contest", "party-list", "--count-kind", "machine"]
    )
    assert r.exit_code == 0
    assert "provisional — machine count" in r.output and "of 2,494 stations reporting" in r.output


def test_unknown_contest(kg_db: str) -> None:
    r = CliRunner().invoke(main, ["--db", kg_db, "seats", "--contest", "nope"])
    assert r.exit_code == 2 and 'unknown contest "nope"' in r.output


def test_calc_still_works_without_a_store(kg_db: str, tmp_path: Path) -> None:
    votes = tmp_path / "v.json"
    r = CliRunner().invoke(main, ["--db", kg_db, "results", "--format", "json"])
    choices = json.loads(r.output)["choices"]
    votes.write_text(json.dumps({c["name"]: c["votes"] for c in choices if not c["against_all"]}))
    r = CliRunner().invoke(
        main,
        [
            "--db",
            str(tmp_path / "none.db"),
            "seats",
            "calc",
            "--method",
            "hare",
            "--seats",
            "54",
            "--threshold",
            "5",
            "--base",
            "1281622",
            "--format",
            "json",
            str(votes),
        ],
    )
    assert r.exit_code == 0, r.output
    assert {k: v for k, v in json.loads(r.output)["seats"].items() if v} == WINNERS

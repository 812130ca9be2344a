"""The CLI contract: commands, formats, and one clear message (no traceback) for bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from support import DATA, kyrgyz_lines
from tallyroom.cli import main
from tallyroom.definition.compiled import compile_election
from tallyroom.definition.load import load_definition
from tallyroom.importers.pipeline import ImportRow, import_rows
from tallyroom.store.sql import open_store


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    assert "Traceback" not in r.output
    return r.exit_code, r.output


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "t.db")
    code, out = run("--db", path, "init", str(DATA / "small.yaml"))
    assert code == 0, out
    return path


def _load(db: str, kind: str, seed: int) -> None:
    store = open_store(db)
    e = store.election()
    rng = random.Random(seed)
    rows = []
    n = 0
    for c in e.contests:
        for s in c.stations:
            n += 1
            lines = kyrgyz_lines(list(c.choice_ids), e.stations[s].registered, rng)
            rows.append(ImportRow(n, e.stations[s].id, c.id, lines))
    from tallyroom.definition.model import CountKind

    import_rows(store, rows, fmt="test", file_name="t", file_hash="0" * 64, count_kind=CountKind(kind))
    store.close()


def test_init_prints_hash_and_refuses_a_second_election(db: str) -> None:
    code, out = run("--db", db, "init", str(DATA / "small.yaml"))
    assert code == 2 and "already holds an election" in out
    loaded = load_definition((DATA / "small.yaml").read_bytes())
    code, out = run("--db", db, "ledger", "show", "--format", "json")
    assert code == 0 and json.loads(out)["definition_sha256"] == loaded.sha256
    # The commission key was written beside the store, readable only by its owner.
    key = Path(db + ".commission-key")
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE+KEY" not in out


def test_init_reports_definition_errors_with_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (DATA / "small.yaml").read_text().replace("areas: [naryn, smd-2]", "areas: [naryn, smd-37]", 1)
    )
    code, out = run("--db", str(tmp_path / "x.db"), "init", str(bad))
    assert code == 2
    assert 'stations[3].areas[1]: unknown area "smd-37"' in out


def test_results_json_has_the_contract_fields(db: str) -> None:
    _load(db, "hand", 1)
    code, out = run("--db", db, "results", "--format", "json")
    assert code == 0
    r = json.loads(out)
    for key in (
        "contest",
        "area",
        "count_kind",
        "stations_reporting",
        "stations_expected",
        "registered",
        "ballots_cast",
        "valid",
        "invalid",
        "choices",
    ):
        assert key in r
    assert r["contest"] == "party-list" and r["area"] == "kg" and r["count_kind"] == "hand"
    assert r["stations_reporting"] == r["stations_expected"] == 6
    for c in r["choices"]:
        assert set(c) >= {"id", "name", "votes", "percent", "percent_base"}
    assert sum(c["votes"] for c in r["choices"]) == r["valid"]


def test_results_by_area_and_kind_and_csv(db: str) -> None:
    _load(db, "hand", 2)
    _load(db, "machine", 3)
    _, hand = run("--db", db, "results", "--area", "naryn", "--format", "json")
    _, machine = run("--db", db, "results", "--area", "naryn", "--count-kind", "machine", "--format", "json")
    h, m = json.loads(hand), json.loads(machine)
    assert h["count_kind"] == "hand" and m["count_kind"] == "machine"
    assert h["stations_expected"] == 3 and h["valid"] != m["valid"]
    code, out = run("--db", db, "results", "--contest", "smd-2-seat", "--format", "csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("contest,area,count_kind")
    assert len(lines) == 1 + 3 and all(x.startswith("smd-2-seat,smd-2,hand") for x in lines[1:])
    code, out = run("--db", db, "results")
    assert code == 0 and "of voters who took part" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["results", "--contest", "nope"], 'unknown contest "nope"'),
        (["results", "--area", "atlantis"], 'unknown area "atlantis"'),
        (["results", "--count-kind", "guess"], "Invalid value for '--count-kind'"),
    ],
)
def test_bad_arguments_get_one_message(db: str, args: list[str], message: str) -> None:
    code, out = run("--db", db, *args)
    assert code == 2 and message in out


def test_commands_on_an_empty_store_say_what_to_do(tmp_path: Path) -> None:
    code, out = run("--db", str(tmp_path / "empty.db"), "results")
    assert code == 2 and "tallyroom init" in out
    code, out = run("--db", str(tmp_path / "no" / "such" / "dir.db"), "results")
    assert code == 2 and "does not exist" in out


def test_rebuild_repairs_a_damaged_running_tally(db: str) -> None:
    _load(db, "hand", 4)
    store = open_store(db)
    e = compile_election(load_definition((DATA / "small.yaml").read_bytes()))
    store._execute("UPDATE tallies SET reporting = reporting + 1 WHERE area = 'kg'")
    store.close()
    code, out = run("--db", db, "rebuild", "--check")
    assert code == 1 and "differs" in out
    code, out = run("--db", db, "rebuild")
    assert code == 0 and "replaced" in out
    code, out = run("--db", db, "rebuild", "--check")
    assert code == 0 and "equals" in out
    assert e.contest("party-list").stations_expected[e.area_index["kg"]] == 6


def test_ledger_checkpoint_and_verify(db: str) -> None:
    _load(db, "hand", 5)
    code, note = run("--db", db, "ledger", "checkpoint")
    assert code == 0
    lines = note.splitlines()
    assert lines[0] == "tallyroom/small-2021" and lines[1] == "10" and lines[3].startswith("time ")
    assert lines[5].startswith("— tallyroom/small-2021 ")
    code, out = run("--db", db, "ledger", "verify")
    assert code == 0 and "1 checkpoint(s) match" in out


def test_python_dash_m_tallyroom_runs_the_same_command_line(tmp_path: Path) -> None:
    """`python -m tallyroom` is the `tallyroom` entry point (no circular import of the
    command modules when run as a module)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tallyroom", "--db", str(tmp_path / "x.db"), "results"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode != 0 and "init" in (done.stdout + done.stderr)  # no election yet
    helped = subprocess.run([sys.executable, "-m", "tallyroom", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for command in ("publish", "verify", "simulate", "serve"):
        assert command in helped.stdout

"""Russia State Duma 2016 from Sergey Shpilkin's polling-station file (dkobak/elections,
data/2016.csv.zip; see ../shared/data/SOURCES.md). Its README: 96,871 stations,
110,061,200 registered voters, sums agreeing with the CEC."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from support import shared_data
from tallyroom.cli import main

pytestmark = pytest.mark.slow


def _independent_sums(path: Path) -> tuple[int, dict[str, int], int, int]:
    """Column sums computed with nothing but the csv module."""
    with zipfile.ZipFile(path) as zf:
        text = zf.read("2016.csv").decode("utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    parties = {i: h for i, h in enumerate(header) if h[:1].isdigit()}
    registered = 0
    sums = {h: 0 for h in parties.values()}
    rows = 0
    in_boxes = 0
    for row in reader:
        rows += 1
        registered += int(row[4])
        in_boxes += int(row[10]) + int(row[11])
        for i, h in parties.items():
            sums[h] += int(row[i])
    return registered, sums, rows, in_boxes


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    path = shared_data("ru_uik_shpilkin", "2016.csv.zip")
    db = str(tmp_path_factory.mktemp("ru") / "ru2016.db")
    result = CliRunner().invoke(main, ["--db", db, "import", "--format", "shpilkin", str(path)])
    assert result.exit_code == 0, result.output
    assert "96,871 rows, 96,871 protocols accepted" in result.output
    assert "0 rejected" in result.output
    return db, path


def test_national_totals_equal_the_official_figures(imported: tuple[str, Path]) -> None:
    db, path = imported
    result = CliRunner().invoke(main, ["--db", db, "results", "--format", "json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output)
    registered, sums, rows, in_boxes = _independent_sums(path)
    assert rows == 96_871
    assert r["stations_reporting"] == r["stations_expected"] == 96_871
    assert r["registered"] == registered == 110_061_200
    assert r["ballots_cast"] == in_boxes
    assert r["valid"] + r["invalid"] == r["ballots_cast"]
    by_name = {c["name"]: c["votes"] for c in r["choices"]}
    for header, total in sums.items():
        assert by_name[header.split(". ", 1)[1]] == total
    assert r["percent_base"] == {
        "figure": "ballots_cast",
        "words": "ballots cast",
        "value": in_boxes,
    }
    # United Russia: 28,527,828 votes, 54.20% of ballots cast (CEC final protocol).
    ur = next(c for c in r["choices"] if "ЕДИНАЯ РОССИЯ" in c["name"])
    assert ur["votes"] == 28_527_828 and ur["percent"] == "54.20"


def test_region_and_district_levels_add_up(imported: tuple[str, Path]) -> None:
    db, _ = imported
    from tallyroom.store.sql import open_store
    from tallyroom.tally.invariants import check_tally
    from tallyroom.tally.rebuild import rebuild

    store = open_store(db)
    election = store.election()
    rebuilt = rebuild(election, ((i, d) for i, _k, d, _h in store.entries()))
    assert rebuilt.tally.nonzero() == store.tally().nonzero()
    stations = {k: v[1] for k, v in rebuilt.active.items()}
    assert check_tally(election, store.tally(), stations) == []
    kinds = {a.kind for a in election.areas}
    assert kinds == {"country", "region", "single-member district", "territorial commission"}
    assert sum(1 for a in election.areas if a.kind == "single-member district") == 225


def test_rebuild_and_ledger_verify_commands(imported: tuple[str, Path]) -> None:
    db, _ = imported
    r = CliRunner().invoke(main, ["--db", db, "rebuild", "--check"])
    assert r.exit_code == 0 and "running tally equals the rebuilt tally" in r.output
    r = CliRunner().invoke(main, ["--db", db, "ledger", "checkpoint"])
    assert r.exit_code == 0 and r.output.splitlines()[1] == "96872"
    r = CliRunner().invoke(main, ["--db", db, "ledger", "verify"])
    assert r.exit_code == 0, r.output
    assert "96,873 entries verified" in r.output and "1 checkpoint(s) match" in r.output


def test_importing_the_same_file_again_changes_nothing(imported: tuple[str, Path]) -> None:
    db, path = imported
    r = CliRunner().invoke(main, ["--db", db, "import", "--format", "shpilkin", str(path)])
    assert r.exit_code == 0, r.output
    assert "0 protocols accepted" in r.output and "96,871 duplicates" in r.output


def _small_copy(path: Path, tmp: Path, rows: int, edit=None) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(path) as zf:
        lines = zf.read("2016.csv").decode("utf-8").splitlines(keepends=True)
    body = lines[: rows + 1]
    if edit is not None:
        body = edit(body)
    out = tmp / "part.csv"
    out.write_text("".join(body), encoding="utf-8")
    return out


def test_bad_rows_are_rejected_by_name_and_the_rest_imported(tmp_path: Path) -> None:
    path = shared_data("ru_uik_shpilkin", "2016.csv.zip")

    def edit(body: list[str]) -> list[str]:
        cells = next(csv.reader([body[3]]))
        cells[13] = str(int(cells[13]) + 5)  # valid ballots (line 10) no longer = Σ parties
        body[3] = ",".join(f'"{c}"' for c in cells) + "\n"
        cells = next(csv.reader([body[5]]))
        cells[22] = "-3"
        body[5] = ",".join(f'"{c}"' for c in cells) + "\n"
        return body

    part = _small_copy(path, tmp_path, 50, edit)
    db = str(tmp_path / "p.db")
    r = CliRunner().invoke(main, ["--db", db, "import", "--format", "shpilkin", str(part)])
    assert r.exit_code == 0, r.output
    assert "50 rows, 48 protocols accepted" in r.output and "2 rejected" in r.output
    assert "row 4 (station r01-3): " in r.output
    assert 'rule "valid-equals-party-lines" (L10 == sum(choices)) fails' in r.output
    assert 'rule "boxes-equal-invalid-plus-valid" (L7 + L8 == L9 + L10) fails' in r.output
    assert "row 6 (station r01-5): lines.p01: must be ≥ 0, got -3" in r.output


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p, t: _small_copy(p, t, 20, lambda b: [*b[:-1], b[-1][:40]]),
            "row 21: 2 columns, the header has 37 (truncated file?)",
        ),
        (
            lambda p, t: _small_copy(p, t, 20, lambda b: [b[0].replace("uik", "station"), *b[1:]]),
            "missing column 'uik'",
        ),
        (
            lambda p, t: (t / "bad.zip").write_bytes(p.read_bytes()[:5000]) and t / "bad.zip",
            "damaged zip file",
        ),
        (
            lambda p, t: (
                (t / "latin.csv").write_bytes("région,ü\n".encode("latin-1")) and t / "latin.csv"
            ),
            "not UTF-8",
        ),
    ],
)
def test_broken_files_import_nothing(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    path = shared_data("ru_uik_shpilkin", "2016.csv.zip")
    bad = make(path, tmp_path)
    db = tmp_path / "b.db"
    r = CliRunner().invoke(main, ["--db", str(db), "import", "--format", "shpilkin", str(bad)])
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output
    # Nothing was created: the store is still empty.
    from tallyroom.store.sql import open_store

    assert not open_store(str(db)).is_initialized()

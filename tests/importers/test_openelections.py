"""OpenElections precinct CSV: Delaware general election, 8 November 2016.

Data: openelections/openelections-data-de, 2016/20161108__de__general__precinct.csv @2c04e63
(copy in ../shared/data/us_de_openelections/; free public use, attribute OpenElections). The file
embeds "Total" rows: the certified totals of each contest and candidate. The precinct rows
imported as protocols must sum to them, for every contest and every candidate.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from support import shared_data
from tallyroom.cli import Ctx
from tallyroom.importers.generic import NotedReport
from tallyroom.importers.pipeline import ImportFileError
from tallyroom.importers.run import import_openelections

FILE = "20161108__de__general__precinct.csv"


def delaware() -> Path:
    return shared_data("us_de_openelections", FILE)


def run(db: Path, path: Path) -> NotedReport:
    ctx = Ctx(str(db))
    try:
        report = import_openelections(ctx, path, None, None, lambda n: None)
    finally:
        ctx.store().close()
    assert isinstance(report, NotedReport)
    return report


def certified(path: Path) -> dict[tuple[str, str, str], int]:
    """(office, district, candidate) -> votes of the Total rows, read here independently."""
    out: dict[tuple[str, str, str], int] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["election_district"] == "Total":
                key = (r["office"], r["district"], r["candidate"])
                assert key not in out
                out[key] = int(r["votes"])
    return out


def imported_sums(db: Path) -> dict[tuple[str, str, str], int]:
    """(office, district, candidate) -> the store's running total over the contest's area."""
    ctx = Ctx(str(db))
    store = ctx.store()
    try:
        election = store.election()
        out: dict[tuple[str, str, str], int] = {}
        for cc in election.contests:
            name = str(cc.contest.name)
            office, _, district = name.rpartition(" ")
            if not district.isdigit():
                office, district = name, ""
            t = store.totals(cc.index, election.area_index[cc.contest.area], "machine")
            assert t is not None, name
            for ch in cc.contest.choices:
                out[(office, district, str(ch.name))] = t.counts[cc.line_index[ch.id]]
        return out
    finally:
        store.close()


def test_delaware_precinct_sums_equal_certified_totals(tmp_path: Path) -> None:
    db = tmp_path / "de.db"
    report = run(db, delaware())
    assert (report.rows, report.accepted, len(report.rejected)) == (2370, 2370, 0)
    want = certified(delaware())
    got = imported_sums(db)
    assert len(want) == 97  # candidate totals in 56 contests
    assert len({(o, d) for o, d, _ in want}) == 56
    assert got.keys() == want.keys()  # every contest and candidate has its certified total
    assert got == want
    assert want[("President", "", "Clinton H")] == 235_603
    assert want[("State Senate", "14", "Ennis B")] == 13_454  # a district across two counties
    assert report.notes[1:3] == [
        "  Governor: 3 of 432 precincts in its area have no rows in the file "
        "(de-new-castle-17-02, de-kent-16-31, de-sussex-16-41)",
        "  Lieutenant Governor: 3 of 432 precincts in its area have no rows in the file "
        "(de-new-castle-17-02, de-kent-16-31, de-sussex-16-41)",
    ]
    assert report.notes[3] == (
        "certified totals: 97 of 97 candidate totals equal the imported precinct sums; "
        "56 of 56 contests match in full"
    )
    assert "  match: State Senate 14: 2 candidate total(s), 22,592 votes" in report.notes
    assert not any("MISMATCH" in n for n in report.notes)


def test_definition_shape(tmp_path: Path) -> None:
    db = tmp_path / "de.db"
    run(db, delaware())
    store = Ctx(str(db)).store()
    try:
        e = store.election()
        d = e.definition
        assert d.election.id == "us-de-2016-11-08-general" and d.election.date == "2016-11-08"
        assert sorted(h.id for h in d.hierarchies) == ["admin", "state-assembly", "state-senate"]
        assert len(d.stations) == 432
        assert len(d.contests) == 56
        st = d.stations[e.station_index["de-new-castle-01-01"]]
        assert set(st.areas) == {"de-new-castle", "state-assembly-1", "state-senate-1"}
        assert d.stations[e.station_index["de-kent-16-31"]].areas == ["de-kent"]  # federal only
        senate14 = e.contest("state-senate-14")
        assert senate14.contest.area == "state-senate-14"
        assert {str(c.name) for c in senate14.contest.choices} == {"Ennis B", "Pace C"}
        assert e.contest("president").contest.area == "de"
        assert e.contest("us-house").contest.area == "de"  # at-large seat
        # Every precinct of a district contest is in that district's area, and only those.
        assert len(senate14.stations) == senate14.stations_expected[e.area_index["state-senate-14"]]
    finally:
        store.close()


def _altered_copy(tmp_path: Path, edit: str, new: str) -> Path:
    text = delaware().read_text(encoding="utf-8")
    assert text.count(edit) == 1
    path = tmp_path / FILE
    path.write_text(text.replace(edit, new), encoding="utf-8")
    return path


def test_altered_precinct_row_is_reported_as_mismatch(tmp_path: Path) -> None:
    # One more vote for Clinton in New Castle 01-01 (election day 636 -> 637, votes 679 -> 680).
    path = _altered_copy(
        tmp_path,
        "New Castle,01-01,President,,DEMOCRATIC,Clinton H,636,43,679\n",
        "New Castle,01-01,President,,DEMOCRATIC,Clinton H,637,43,680\n",
    )
    report = run(tmp_path / "de.db", path)
    assert report.accepted == 2370
    assert report.notes[3] == (
        "certified totals: 96 of 97 candidate totals equal the imported precinct sums; "
        "55 of 56 contests match in full"
    )
    assert report.notes[-1] == (
        "  certified total MISMATCH: President / Clinton H (DEMOCRATIC) (statewide), row 1730: "
        "certified 235,603, imported precinct sum 235,604 (+1)"
    )


def test_inconsistent_row_rejects_that_precinct_contest_only(tmp_path: Path) -> None:
    # votes no longer equal election_day + absentee: that precinct's President protocol is
    # rejected with the line named; its other contests and every other precinct import.
    path = _altered_copy(
        tmp_path,
        "New Castle,01-01,President,,DEMOCRATIC,Clinton H,636,43,679\n",
        "New Castle,01-01,President,,DEMOCRATIC,Clinton H,636,43,680\n",
    )
    report = run(tmp_path / "de.db", path)
    assert report.accepted == 2369
    [problem] = report.rejected
    assert str(problem) == (
        "row 2 (station de-new-castle-01-01): lines.clinton-h: must be a whole number, got "
        "'680 but election_day 636 + absentee 43 = 679 (file row 2)'"
    )
    assert any("President / Clinton H (DEMOCRATIC) (statewide), row 1730: certified 235,603, "
               "imported precinct sum 234,924 (-679)" in n for n in report.notes)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("county,office,candidate,votes\nKent,President,X,1\n",
         "f.csv: row 1: missing column precinct (or election_district)"),
        ("county,precinct,office,candidate\n", "f.csv: row 1: missing column votes"),
        ("county,precinct,office,candidate,votes\nKent,1,President,X,1\nKent,1,Presid",
         "f.csv: row 3: 3 cells, the header has 5 (truncated file?)"),
        ("county,precinct,office,candidate,votes\nKent,1,President,X,1\nKent,1,President,X,2\n",
         "f.csv: row 3: a second row for X (no party) in precinct Kent 1, President (first at"),
        ("county,precinct,office,district,candidate,votes\nKent,1,Senate,1,X,1\nKent,1,Senate,2,Y,1\n",
         "f.csv: row 3: precinct Kent 1 is in two Senate districts (senate-1 and senate-2)"),
        (b"county,precinct,office,candidate,votes\nK\xf6ln,1,President,X,1\n",
         "f.csv: row 2 (line 2, byte 40): not utf-8 text"),
    ],
)  # fmt: skip
def test_fatal_problems_name_file_and_row(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "f.csv"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    with pytest.raises(ImportFileError) as exc:
        run(tmp_path / "x.db", path)
    assert str(exc.value).startswith(message)
    assert not (tmp_path / "x.db.commission-key").exists()  # nothing was initialised


def test_second_import_is_all_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "de.db"
    run(db, delaware())
    copy = tmp_path / "again" / FILE
    copy.parent.mkdir()
    shutil.copy(delaware(), copy)
    report = run(db, copy)
    assert (report.accepted, report.duplicates, len(report.rejected)) == (0, 2370, 0)
    assert report.notes[3].startswith("certified totals: 97 of 97")


def test_county_level_totals(tmp_path: Path) -> None:
    """Total rows given per county (several for one candidate) are checked per county."""
    rows = [
        "county,precinct,office,district,party,candidate,votes",
        "Kent,1,Governor,,D,Ann,10", "Kent,2,Governor,,D,Ann,5", "Sussex,1,Governor,,D,Ann,7",
        "Kent,Total,Governor,,D,Ann,15", "Sussex,Total,Governor,,D,Ann,8",
    ]  # fmt: skip
    path = tmp_path / "20201103__xx__general__precinct.csv"
    path.write_text("\n".join(rows) + "\n")
    report = run(tmp_path / "c.db", path)
    assert report.accepted == 3
    text = "\n".join(report.notes)
    assert "1 of 2 candidate totals equal" in text
    assert "Governor / Ann (D) (Sussex County), row 6: certified 8, imported precinct sum 7 (-1)" in text

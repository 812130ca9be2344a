"""Kloop's station CSV of the Kyrgyz parliamentary election of 4 October 2020 (annulled).

Data: KloopMedia/ParliamentCalculatorV2, src/data/PARTIES_RESULTS_REACT_LEVEL_ONE.csv @1e616c2
(copy in ../shared/data/kg_2020_parl_kloop/). 2,413 stations; 16 parties + against all
(БААРЫНА КАРШЫ) add up to `total` in every row; counts are stored as floats.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from support import shared_data
from tallyroom.cli import Ctx
from tallyroom.definition.model import Figure
from tallyroom.importers import kloop
from tallyroom.importers.pipeline import ImportFileError, ImportReport
from tallyroom.importers.run import import_kloop

FILE = "PARTIES_RESULTS_REACT_LEVEL_ONE.csv"
NOT_VOTES = {"form2_percent", "level_one"}


def kloop_file() -> Path:
    return shared_data("kg_2020_parl_kloop", FILE)


def run(db: Path, path: Path) -> ImportReport:
    ctx = Ctx(str(db))
    try:
        return import_kloop(ctx, path, None, None, lambda n: None)
    finally:
        ctx.store().close()


def column_sums(path: Path) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """National and per-region sums of every vote column, each cell rounded, read here."""
    national: dict[str, int] = {}
    regional: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            region = regional.setdefault(r["level_one"], {})
            for col, value in r.items():
                if col not in NOT_VOTES:
                    v = round(float(value))
                    assert abs(float(value) - v) < 1e-6
                    national[col] = national.get(col, 0) + v
                    region[col] = region.get(col, 0) + v
    return national, regional


def test_national_totals_equal_the_file_and_the_rule_holds_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "kg.db"
    report = run(db, kloop_file())
    assert (report.rows, report.accepted, len(report.rejected)) == (2413, 2413, 0)
    national, regional = column_sums(kloop_file())
    assert national["total"] == 1_887_345
    store = Ctx(str(db)).store()
    try:
        e = store.election()
        cc = e.contest(kloop.CONTEST_ID)
        names = {str(ch.name): ch.id for ch in cc.contest.choices}
        assert len(names) == 17 and names["БААРЫНА КАРШЫ"] == "against-all"
        for area_id, want in [("kg", national)] + [
            (kloop.REGIONS[level][0], sums) for level, sums in regional.items()
        ]:
            t = store.totals(cc.index, e.area_index[area_id], "hand")
            assert t is not None
            got = {h: t.counts[cc.line_index[names.get(h, h)]] for h in want}
            assert got == want, area_id
        # total == sum(choices) at every one of the 2,413 stations.
        protocols = [p for p in store.active_protocols() if p[0] == cc.index]
        assert len(protocols) == 2413
        start, ti = cc.choice_start, cc.line_index["total"]
        assert all(counts[ti] == sum(counts[start:]) for _, _, _, counts in protocols)
    finally:
        store.close()


def test_definition(tmp_path: Path) -> None:
    db = tmp_path / "kg.db"
    run(db, kloop_file())
    store = Ctx(str(db)).store()
    try:
        e = store.election()
        d = e.definition
        regions = [a for a in d.areas if a.parent == "kg"]
        assert [a.id for a in regions] == [
            "batken", "jalal-abad", "issyk-kul", "naryn", "osh-region", "talas", "chui",
            "bishkek", "osh-city", "abroad",
        ]  # fmt: skip
        assert sum(1 for s in d.stations if s.abroad) == 45
        c = e.contest(kloop.CONTEST_ID)
        [against] = [ch for ch in c.contest.choices if ch.against_all]
        assert against.name == "БААРЫНА КАРШЫ"
        assert c.rules[0].rule.expr == "total == sum(choices)"
        al = c.contest.allocation
        assert al is not None
        assert (al.method, al.seats, al.threshold_percent, al.threshold_base, al.cap) == (
            "hare", 120, "7", Figure.VALID, 65,
        )  # fmt: skip
        assert al.regional_threshold is not None
        assert al.regional_threshold.percent == "0.7"
        assert len(al.regional_threshold.areas) == 9 and "abroad" not in al.regional_threshold.areas
        # Bishkek's first row in the file is station bishkek-0001.
        assert e.stations[e.station_index["bishkek-0001"]].areas == ["bishkek"]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("84.99999999999999", 85),
        ("75.00000000000003", 75),
        ("0.0", 0),
        ("12.009", 12),
        ("12.02", "12.02 (more than 0.01 from a whole number)"),
        ("nan", "nan (more than 0.01 from a whole number)"),
        ("abc", "abc"),
        ("-3.0", -3),
    ],
)
def test_rounding_rule(value: str, expected: int | str) -> None:
    assert kloop.count(value) == expected


def test_value_far_from_an_integer_rejects_the_row(tmp_path: Path) -> None:
    lines = kloop_file().read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[1].startswith("84.99999999999999,52.0,")
    lines[1] = lines[1].replace("84.99999999999999,52.0,", "84.5,52.0,", 1)
    lines[2] = lines[2].replace("171.00000000000003,", "171.004,", 1)  # within 0.01: 171
    path = tmp_path / FILE
    path.write_text("".join(lines[:30]), encoding="utf-8")
    report = run(tmp_path / "kg.db", path)
    assert (report.rows, report.accepted) == (29, 28)
    [problem] = report.rejected
    assert str(problem) == (
        "row 2 (station bishkek-0001): lines.birimdik: must be a whole number, got "
        "'84.5 (more than 0.01 from a whole number)'"
    )


def test_unknown_region_and_wrong_file_are_fatal(tmp_path: Path) -> None:
    text = kloop_file().read_text(encoding="utf-8").splitlines(keepends=True)
    bad = tmp_path / "bad.csv"
    bad.write_text(text[0] + text[1] + text[2].replace("БИШКЕК Г.", "ЛУНА"), encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"^bad\.csv: row 3: unknown region \(level_one\) 'ЛУНА'"):
        run(tmp_path / "a.db", bad)
    other = shared_data("kg_2020_parl_kloop", "PARTIES_RESULTS_REACT.csv")
    with pytest.raises(ImportFileError, match="missing column 'level_one'"):
        run(tmp_path / "b.db", other)
    assert not (tmp_path / "a.db.commission-key").exists()

"""Kyrgyzstan, Jogorku Kenesh, 4 Oct 2020 (annulled): the 2020 rules on the station file.

Data: kg_2020_parl_kloop/ (KloopMedia/ParliamentCalculatorV2 src/data @1e616c2), votes per polling
station for 16 parties and "against all" (БААРЫНА КАРШЫ), with ``total`` and the oblast
(``level_one``). Rules of 2020: 120 list seats, 7% nationally and 0.7% in each of the seven
oblasts and the cities of Bishkek and Osh, at most 65 seats per party, Hare largest remainder.

Which file: ``PARTIES_RESULTS_REACT.csv`` has no region column, so the regional threshold cannot
be decided from it (it also holds an earlier/other snapshot: 2,399 rows whose sums differ). The
two ``…_LEVEL_ONE`` files have the region and identical vote columns (only ``form2_percent``, a
derived percentage, differs); we use ``PARTIES_RESULTS_REACT_LEVEL_ONE.csv``.

The file has no invalid ballots and no count of voters who took part — the base the law uses —
so the thresholds are decided on the two bases the file does have:
A. ``total`` = parties + against all (every ballot marked validly),
B. the valid votes for parties only.
"""

from __future__ import annotations

import csv
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import pytest

from support import shared_data
from tallyroom.seats import (
    Base,
    PercentThreshold,
    Region,
    RegionalThreshold,
    ThresholdCheck,
    allocate,
    evaluate_thresholds,
)

FOLDER = "kg_2020_parl_kloop"
AGAINST_ALL = "БААРЫНА КАРШЫ"
ABROAD = "МИД КР"  # stations abroad (Ministry of Foreign Affairs): counted nationally only
PASSING = {
    "«БИРИМДИК»",
    "«МЕКЕНЧИЛ»",
    "«МЕКЕНИМ КЫРГЫЗСТАН»",
    "«БҮТҮН КЫРГЫЗСТАН» саясий партиясы",
    "«КЫРГЫЗСТАН»",
}


def _whole(text: str) -> int:
    """Counts are written as floats ("84.99999999999999"); read them exactly via Decimal."""
    value = Decimal(text)
    rounded = value.to_integral_value()
    assert abs(value - rounded) < Decimal("1e-6"), text
    return int(rounded)


def _read(name: str) -> tuple[list[str], list[list[str]]]:
    with shared_data(FOLDER, name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


class Kg2020:
    def __init__(self) -> None:
        header, rows = _read("PARTIES_RESULTS_REACT_LEVEL_ONE.csv")
        self.choices = header[: header.index("total")]
        assert self.choices[-1] == AGAINST_ALL
        self.parties = self.choices[:-1]
        self.national: Counter[str] = Counter()
        self.regions: dict[str, Counter[str]] = {}
        for row in rows:
            counts = {c: _whole(row[i]) for i, c in enumerate(self.choices)}
            # SOURCES.md: parties + against all = total in every row
            assert sum(counts.values()) == _whole(row[header.index("total")])
            self.national.update(counts)
            self.regions.setdefault(row[header.index("level_one")], Counter()).update(counts)
        self.stations = len(rows)

    def base(self, votes: Counter[str], kind: str) -> Base:
        if kind == "total":
            return Base("parties + against all", sum(votes[c] for c in self.choices))
        return Base("valid votes for parties", sum(votes[p] for p in self.parties))

    def thresholds(self, kind: str) -> list[PercentThreshold | RegionalThreshold]:
        regions = tuple(
            Region(name, dict(votes), self.base(votes, kind))
            for name, votes in self.regions.items()
            if name != ABROAD
        )
        return [
            PercentThreshold(7, self.base(self.national, kind)),
            RegionalThreshold(Fraction("0.7"), regions),
        ]


@pytest.fixture(scope="module")
def kg() -> Kg2020:
    return Kg2020()


def test_file_choice() -> None:
    """LEVEL_ONE and LEVEL_ONE_NEW carry the same votes; REACT has no region column."""
    header, rows = _read("PARTIES_RESULTS_REACT_LEVEL_ONE.csv")
    header_new, rows_new = _read("PARTIES_RESULTS_REACT_LEVEL_ONE_NEW.csv")
    assert header == header_new and len(rows) == len(rows_new) == 2413
    votes_end = header.index("form2_percent")
    assert all(a[:votes_end] == b[:votes_end] for a, b in zip(rows, rows_new, strict=True))
    react_header, react_rows = _read("PARTIES_RESULTS_REACT.csv")
    assert "level_one" not in react_header and len(react_rows) == 2399


def test_nine_regions_plus_abroad(kg: Kg2020) -> None:
    assert kg.stations == 2413
    assert len(kg.regions) == 10 and ABROAD in kg.regions


@pytest.mark.parametrize("kind", ["total", "parties"])
def test_who_passes_on_each_base(kg: Kg2020, kind: str) -> None:
    report = evaluate_thresholds(
        dict(kg.national), kg.thresholds(kind), seats=120, exclude={AGAINST_ALL}
    )
    assert set(report.passed) == PASSING
    # every decision states its base; 9 regions + the nation per party
    assert len(report.checks) == 16 * 10
    assert {c.base.label for c in report.checks if c.base} == {kg.base(kg.national, kind).label}
    # Republic (Республика) clears 0.7% everywhere but not 7% nationally
    republic = [c for c in report.checks if c.choice == "РЕСПУБЛИКА" and not c.passed]
    assert [c.region for c in republic] == [None]


def _national_checks(votes: dict[str, int], base: Base) -> dict[str, ThresholdCheck]:
    report = evaluate_thresholds(
        votes, [PercentThreshold(7, base)], seats=120, exclude={AGAINST_ALL}
    )
    return {check.choice: check for check in report.checks}


def test_why_the_bases_differ(kg: Kg2020) -> None:
    """The same five pass on both bases here, but every share and every margin differs.

    Against all (34,512 ballots) is in base A and not in base B, so each party's share on B is
    larger by exactly A/B. For Mekenchil, the closest to the 7% line, this is the difference
    between a margin of 692.85 votes and one of 3,108.69. The legal base — voters who took part
    — also includes invalid ballots, which this file does not carry: 9,898 more ballots in the
    base than in A would put Mekenchil under 7%, so the pass list cannot be certified from this
    file alone.
    """
    a, b = kg.base(kg.national, "total"), kg.base(kg.national, "parties")
    assert a.value - b.value == kg.national[AGAINST_ALL] == 34_512
    votes = dict(kg.national)
    on_a, on_b = _national_checks(votes, a), _national_checks(votes, b)
    for party in kg.parties:
        share_a, share_b = on_a[party].share, on_b[party].share
        assert share_a is not None and share_b is not None
        assert share_b == share_a * Fraction(a.value, b.value)

    mekenchil = "«МЕКЕНЧИЛ»"
    assert votes[mekenchil] == 132_807
    margin_a = votes[mekenchil] - on_a[mekenchil].required
    margin_b = votes[mekenchil] - on_b[mekenchil].required
    assert round(margin_a, 2) == Fraction("692.85")
    assert round(margin_b, 2) == Fraction("3108.69")
    passed = [c for c in on_a.values() if c.passed]
    assert min(passed, key=lambda c: c.value - c.required).choice == mekenchil

    # the smallest base that fails Mekenchil: 7% of it exceeds 132,807
    tipping = votes[mekenchil] * 100 // 7 + 1
    assert tipping - a.value == 9_898
    bigger = Base("voters who took part (hypothetical)", tipping)
    fails = evaluate_thresholds(
        votes, [PercentThreshold(7, bigger)], seats=120, exclude={AGAINST_ALL}
    )
    assert mekenchil in fails.failed
    assert set(fails.passed) == PASSING - {mekenchil}


def test_seats_under_the_2020_rules(kg: Kg2020) -> None:
    """No official seats exist (the election was annulled); these are the seats the 2020 rules
    give on this file, pinned so a change in method or threshold handling shows up."""
    result = allocate(
        dict(kg.national),
        120,
        "hare",
        thresholds=kg.thresholds("total"),
        cap=65,
        against_all={AGAINST_ALL},
    )
    assert sum(result.seats.values()) == 120
    assert result.seats[AGAINST_ALL] == 0
    assert set(result.winners()) == PASSING
    assert result.explanation.caps == ()  # the largest party is far below 65 of 120
    assert result.explanation.quota == Fraction(sum(kg.national[p] for p in PASSING), 120)
    assert result.winners() == {
        "«БИРИМДИК»": 41,
        "«МЕКЕНЧИЛ»": 12,
        "«МЕКЕНИМ КЫРГЫЗСТАН»": 40,
        "«БҮТҮН КЫРГЫЗСТАН» саясий партиясы": 12,
        "«КЫРГЫЗСТАН»": 15,
    }

"""Seats from real published results (data: ../shared/data, see SOURCES.md there).

Each test reproduces an official outcome from the votes; none of the expected numbers is computed
by the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from support import SHARED, shared_data
from tallyroom.seats import (
    Base,
    FullQuota,
    PercentThreshold,
    allocate,
    evaluate_thresholds,
    plurality,
    two_round,
)
from tallyroom.seats.dutch import allocate_nl, rule_for
from tallyroom.seats.single import Outcome

#: Kiesraad rows that are totals, not lists.
KIESRAAD_TOTALS = {
    "AantalBlancoStemmen",
    "AantalGeldigeStemmen",
    "AantalOngeldigeStemmen",
    "Kiesgerechtigden",
    "Opkomst",
}


def read_kiesraad(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Votes and official seats (AantalZetels) per list from a Kiesraad ``uitslag_*.csv``.

    The 1922 file names each list ("Lijst33;RKSP") because parties then ran several lists that
    were counted separately; the list number is kept in the key so each list stays apart. Some
    rows carry a trailing "# comment" cell, which is ignored.
    """
    votes: dict[str, int] = {}
    seats: dict[str, int] = {}
    with path.open(encoding="utf-8") as handle:
        next(handle)  # header: Regio;Code;Type|Lijst;Partij;AantalStemmen;AantalZetels;
        for line in handle:
            cells = line.rstrip("\n").split(";")
            kind, party = cells[2], cells[3]
            if kind in KIESRAAD_TOTALS:
                continue
            key = f"{kind} {party}" if kind.startswith("Lijst") else party
            assert key not in votes, f"{path.name}: {key} twice"
            votes[key] = int(cells[4] or 0)
            seats[key] = int(cells[5].strip() or 0)
    return votes, seats


def read_semicolon_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def iter_ru_2016() -> Iterator[list[str]]:
    """Rows of Shpilkin's 2016 State Duma file, read from the zip in memory (header first)."""
    path = shared_data("ru_uik_shpilkin", "2016.csv.zip")
    with zipfile.ZipFile(path) as archive, archive.open("2016.csv") as raw:
        yield from csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


# ---------------------------------------------------------------------------------------------
# Kyrgyzstan, Jogorku Kenesh, 28 Nov 2021 — kg_2021_official/results.json (CEC resolution
# No. 836 of 15 Dec 2021 as reported by TRT Kyrgyz, Kabar/Trend.az, Interfax, 24.kg)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kg_2021() -> dict[str, object]:
    data: dict[str, object] = json.loads(
        shared_data("kg_2021_official", "results.json").read_text(encoding="utf-8")
    )
    return data


def test_kyrgyzstan_2021_hare_with_thresholds_and_cap(kg_2021: dict[str, object]) -> None:
    winners = kg_2021["winners"]
    assert isinstance(winners, dict)
    votes = {name: row["votes"] for name, row in winners.items()}
    took_part = Base("voters who took part", 1_281_622)
    assert kg_2021["voters_took_part"] == took_part.value

    result = allocate(
        votes,
        54,
        "hare",
        thresholds=[PercentThreshold(5, took_part)],
        cap=27,
    )

    assert list(result.seats.values()) == [15, 12, 9, 7, 6, 5]
    assert result.seats == {name: row["seats"] for name, row in winners.items()}
    explanation = result.explanation
    # README: "Hare quota = 813,687 / 54 = 15,068.3; floors give 51 seats; the 3 largest
    # remainders go to Butun (.988), Ata-Jurt (.733), Ishenim (.579)"
    assert explanation.quota == Fraction(813_687, 54)
    lines = {line.name: line for line in explanation.lines}
    assert sum(line.full_seats or 0 for line in explanation.lines) == 51
    assert {n for n, line in lines.items() if line.remainder_seat} == {
        "Butun Kyrgyzstan",
        "Ata-Jurt Kyrgyzstan",
        "Ishenim",
    }
    butun = lines["Butun Kyrgyzstan"].quotient
    assert butun is not None and 5.98 < butun < 5.99
    # every threshold decision states its numbers and base
    check = next(c for c in explanation.thresholds if c.choice == "Yiman Nuru")
    assert check.passed and check.base == took_part
    assert check.required == Fraction(5 * 1_281_622, 100)  # 64,081.1 voters
    assert round(check.share or 0, 2) == Fraction(617, 100)  # 6.17%, as published
    assert explanation.caps == () and explanation.ties == ()


def test_kyrgyzstan_2021_same_seats_under_dhondt(kg_2021: dict[str, object]) -> None:
    """README: "2021 gives the same seats under D'Hondt"."""
    winners = kg_2021["winners"]
    assert isinstance(winners, dict)
    votes = {name: row["votes"] for name, row in winners.items()}
    result = allocate(votes, 54, "dhondt", cap=27)
    assert list(result.seats.values()) == [15, 12, 9, 7, 6, 5]


def test_kyrgyzstan_2021_percent_base_matters(kg_2021: dict[str, object]) -> None:
    """The published percentages are of voters who took part, not of the listed votes."""
    winners = kg_2021["winners"]
    assert isinstance(winners, dict)
    votes = {name: row["votes"] for name, row in winners.items()}
    report = evaluate_thresholds(
        votes, [PercentThreshold(5, Base("voters who took part", 1_281_622))], seats=54
    )
    for check in report.checks:
        assert round(check.share or 0, 2) == Fraction(str(winners[check.choice]["percent"]))


def test_kyrgyz_presidential_2021_elected_in_first_round() -> None:
    """10 Jan 2021 (kg_2021_official/README.md): Japarov elected with > 50% of those who voted."""
    votes = {
        "Japarov": 1_105_248,
        "Madumarov": 94_741,
        "Tolbayev": 32_979,
        "Arstanbek": 23_583,
        "Segizbaev": 20_335,
        "Tashov": 16_383,
        "Sooronkulova": 14_005,
        "Kasenov": 12_684,
        "Kochkorov": 9_397,
        "Isaev": 8_038,
        "Abakirov": 6_996,
        "Kalmamatov": 6_893,
        "Asanov": 6_885,
        "Jeenbekov": 2_652,
        "Imanaliev": 2_490,
        "Baiguttiev": 1_327,
        "Abdyldayev": 1_157,
        "against all": 18_673,
    }
    assert sum(votes.values()) == 1_384_466  # valid ballots, as published
    took_part = Base("voters who took part", 1_395_513)
    result = two_round(votes, base=took_part, against_all="against all")
    assert result.outcome is Outcome.ELECTED and result.winner == "Japarov"
    assert result.required == Fraction(1_395_513, 2)
    share = result.lines[0].share
    assert share is not None and round(share, 2) == Fraction("79.20")


# ---------------------------------------------------------------------------------------------
# Russia, State Duma 2016, party list — ru_uik_shpilkin/2016.csv.zip (dkobak/elections,
# scraped from izbirkom by S. Shpilkin); official list seats 140/35/34/16
# ---------------------------------------------------------------------------------------------

RU_INVALID = "Число недействительных избирательных бюллетеней"
RU_VALID = "Число действительных избирательных бюллетеней"


@pytest.fixture(scope="module")
def ru_2016() -> tuple[dict[str, int], int, int]:
    rows = iter_ru_2016()
    header = next(rows)
    first_party = next(i for i, h in enumerate(header) if h.startswith("1. "))
    party_columns = range(first_party, header.index("url"))
    invalid, valid = header.index(RU_INVALID), header.index(RU_VALID)
    totals = [0] * len(header)
    stations = 0
    for row in rows:
        stations += 1
        for i in (*party_columns, invalid, valid):
            totals[i] += int(row[i])
    assert stations == 96_871  # README_dkobak_data.md
    votes = {header[i]: totals[i] for i in party_columns}
    return votes, totals[invalid], totals[valid]


def test_russia_2016_duma_list_seats(ru_2016: tuple[dict[str, int], int, int]) -> None:
    votes, invalid, valid = ru_2016
    assert sum(votes.values()) == valid  # the protocol's control relation holds in the sums
    cast = Base("ballots cast (invalid + valid)", invalid + valid)
    result = allocate(votes, 225, "hare", thresholds=[PercentThreshold(5, cast)])
    winners = {name.split(". ", 1)[1]: n for name, n in result.winners().items()}
    assert winners == {
        'Всероссийская политическая партия "ЕДИНАЯ РОССИЯ"': 140,
        'Политическая партия "КОММУНИСТИЧЕСКАЯ ПАРТИЯ РОССИЙСКОЙ ФЕДЕРАЦИИ"': 35,
        "Политическая партия ЛДПР - Либерально-демократическая партия России": 34,
        "Политическая партия СПРАВЕДЛИВАЯ РОССИЯ": 16,
    }
    # the threshold's base is the ballots cast; four lists passed, the rest did not
    failed = [c for c in result.explanation.thresholds if not c.passed]
    assert len(failed) == 10 and all(c.base == cast for c in failed)
    # quota: the votes of the four admitted lists ÷ 225 (20-FZ art. 88 "first quotient")
    admitted = sum(votes[name] for name, n in result.seats.items() if n)
    assert result.explanation.quota == Fraction(admitted, 225)


# ---------------------------------------------------------------------------------------------
# Netherlands — nl_kiesraad_seats/ (squell/electionchecker data/, Kiesraad open data): every
# file must reproduce AantalZetels under the rule in force that year
# (docs/decisions/0003-seat-rules-by-year.md)
# ---------------------------------------------------------------------------------------------

NL_FILES = sorted((SHARED / "nl_kiesraad_seats").glob("uitslag_*.csv"))


def _nl_body_year(path: Path) -> tuple[str, int]:
    # uitslag_TK19180702_Nederland.csv -> ("TK", 1918)
    stem = path.name.removeprefix("uitslag_")
    return stem[:2], int(stem[2:6])


def test_nl_file_set_is_complete() -> None:
    shared_data("nl_kiesraad_seats")
    years = sorted(_nl_body_year(p) for p in NL_FILES)
    assert [y for b, y in years if b == "TK"] == [
        1918, 1922, 1925, 1929, 1933, 1937, 1946, 1948, 1952, 1956,
        1959, 1963, 1967, 1971, 1972, 2017,
    ]  # fmt: skip
    assert [y for b, y in years if b == "PS"] == [2019] * 12


@pytest.mark.parametrize("path", NL_FILES, ids=lambda p: p.name)
def test_nl_reproduces_official_seats(path: Path) -> None:
    votes, official = read_kiesraad(path)
    body, year = _nl_body_year(path)
    result = allocate_nl(votes, sum(official.values()), body=body, year=year)
    assert result.seats == official, rule_for(body, year).description


@pytest.mark.parametrize("province", ["Flevoland", "Groningen"])
def test_nl_provinces_have_no_kiesdeler_threshold(province: str) -> None:
    """The Tweede Kamer's full-quota threshold would give different seats in these provinces."""
    votes, official = read_kiesraad(
        shared_data("nl_kiesraad_seats", f"uitslag_PS20190320_{province}.csv")
    )
    seats = sum(official.values())
    with_threshold = allocate(votes, seats, "dhondt", thresholds=[FullQuota()])
    assert with_threshold.seats != official
    assert allocate(votes, seats, "dhondt").seats == official


def _nl_file(year: int) -> Path:
    shared_data("nl_kiesraad_seats")  # skips when the real data is not beside the repository
    return next(p for p in NL_FILES if _nl_body_year(p) == ("TK", year))


@pytest.mark.parametrize("year", [1925, 1929, 1933])
def test_nl_1925_1933_need_the_average_rule(year: int) -> None:
    """Plain largest remainders with a ¾-kiesdeler threshold (the 1922 rule) do not reproduce
    1925–1933; the rule that a remainder seat must keep the average at ¾ kiesdeler does."""
    path = _nl_file(year)
    votes, official = read_kiesraad(path)
    assert allocate_nl(votes, 100, body="TK", year=1922).seats != official
    assert allocate_nl(votes, 100, body="TK", year=year).seats == official


def test_nl_1925_leftover_seats_one_per_list() -> None:
    """1925: ten remainder seats, only seven lists may take one; the other three go by largest
    averages at most one per list (RKSP, SDAP, CHU), which unrestricted D'Hondt would not do."""
    path = _nl_file(1925)
    votes, official = read_kiesraad(path)
    result = allocate_nl(votes, 100, body="TK", year=1925)
    assert any("3 seats left" in note for note in result.explanation.notes)
    assert (official["RKSP"], official["SDAP"], official["CHU"]) == (30, 24, 11)
    assert result.seats == official


def test_nl_combination_years_are_refused() -> None:
    from tallyroom.seats import SeatsError

    with pytest.raises(SeatsError, match="lijstencombinaties"):
        allocate_nl({"A": 10}, 150, body="TK", year=1986)


# ---------------------------------------------------------------------------------------------
# Czech Chamber of Deputies 2017 — votelib_real/cz_psp_2017.csv (simberaj/votelib
# tests/real/data, MIT). As votelib's test_real_proportional.py: the 200 seats are apportioned
# to the 14 regions by Hare largest remainder on each region's votes; lists need 5% nationally;
# D'Hondt in each region.
# ---------------------------------------------------------------------------------------------


def test_czech_chamber_2017() -> None:
    rows = read_semicolon_csv(shared_data("votelib_real", "cz_psp_2017.csv"))
    regions = rows[0][1:]
    by_region: dict[str, dict[str, int]] = {region: {} for region in regions}
    for row in rows[1:]:
        for region, count in zip(regions, row[1:], strict=True):
            by_region[region][row[0]] = int(count)
    national = Counter[str]()
    for region_votes in by_region.values():
        national.update(region_votes)

    region_seats = allocate({r: sum(v.values()) for r, v in by_region.items()}, 200, "hare")
    valid = Base("valid votes", sum(national.values()))
    passed = evaluate_thresholds(dict(national), [PercentThreshold(5, valid)], seats=200).passed

    total = Counter[str]()
    per_region = {}
    for region, votes in by_region.items():
        result = allocate({p: votes[p] for p in passed}, region_seats.seats[region], "dhondt")
        per_region[region] = result.winners()
        total.update(result.seats)

    assert +total == {
        "ANO": 78, "ODS": 25, "Piráti": 22, "SPD": 22, "ČSSD": 15, "KSČM": 15,
        "KDU-ČSL": 10, "TOP 09": 7, "STAN": 6,
    }  # fmt: skip
    assert per_region["Hlavní město Praha"] == {
        "ANO": 6, "ODS": 5, "Piráti": 5, "SPD": 1, "ČSSD": 1, "KSČM": 1, "KDU-ČSL": 1,
        "TOP 09": 3, "STAN": 1,
    }  # fmt: skip
    assert per_region["Karlovarský kraj"] == {"ANO": 3, "Piráti": 1, "SPD": 1}


# ---------------------------------------------------------------------------------------------
# German Bundestag 2017 — votelib_real/de_bdt_2017.csv (simberaj/votelib tests/real/data):
# constituency (Erststimmen) winners by plurality
# ---------------------------------------------------------------------------------------------


def test_germany_2017_constituency_winners() -> None:
    rows = read_semicolon_csv(shared_data("votelib_real", "de_bdt_2017.csv"))
    parties = [name for name in rows[0][2:] if name]
    assert rows[1][2:4] == ["Erststimmen", "Zweitstimmen"]
    winners = Counter[str]()
    for row in rows[2:]:
        first_votes = {p: int(v) for p, v in zip(parties, row[2::2], strict=True) if v}
        result = plurality(first_votes, contest=row[0])
        assert result.outcome is Outcome.ELECTED and not result.ties
        assert result.winner is not None
        winners[result.winner] += 1
    assert sum(winners.values()) == 299
    assert winners == {"CDU": 185, "SPD": 59, "CSU": 46, "DIE LINKE": 5, "AfD": 3, "GRÜNE": 1}

"""Methods, thresholds, caps, ties, against-all, open lists and bad input, on small examples.

Worked examples are from the literature where one exists (cited per test); the others are
small enough to check by hand, and the hand computation is in the docstring.
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction

import pytest

from tallyroom.seats import (
    AnyOf,
    Base,
    Candidate,
    CoalitionThreshold,
    FullQuota,
    ListedOrder,
    Lot,
    Method,
    MinimumWins,
    NoEligibleChoicesError,
    PercentThreshold,
    Provisional,
    Region,
    RegionalThreshold,
    SeatsError,
    Status,
    allocate,
    evaluate_thresholds,
    lot_digest,
    open_list,
    plurality,
    two_round,
)
from tallyroom.seats.single import Outcome

# A common textbook example (e.g. the Wikipedia articles on the D'Hondt and Webster/Sainte-Laguë
# methods): 8 seats, parties with 100,000 / 80,000 / 30,000 / 20,000 votes.
TEXTBOOK = {"A": 100_000, "B": 80_000, "C": 30_000, "D": 20_000}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("dhondt", [4, 3, 1, 0]),
        ("sainte-lague", [3, 3, 1, 1]),
        # Hare quota 28,750: floors 3/2/1/0, remainders .48/.78/.04/.70 -> B and D
        ("hare", [3, 3, 1, 1]),
        # Droop quota ⌊230000/9⌋+1 = 25,556: floors 3/3/1/0 (7 seats), remainders A 23,332,
        # B 3,332, C 4,444, D 20,000 -> the 8th seat to A
        ("droop", [4, 3, 1, 0]),
        # Imperiali divisors 1, 1.5, 2, 2.5, 3: the 8 largest quotients are A 100k, B 80k,
        # A 66.7k, B 53.3k, A 50k, A 40k, B 40k, A 33.3k (next B 32k, C 30k)
        ("imperiali", [5, 3, 0, 0]),
        # Danish 1, 4, 7: A 100k, B 80k, C 30k, A 25k, B 20k, D 20k, A 14.3k, B 11.4k
        ("danish", [3, 3, 1, 1]),
    ],
)
def test_textbook_example(method: str, expected: list[int]) -> None:
    assert list(allocate(TEXTBOOK, 8, method).seats.values()) == expected


def test_modified_sainte_lague_raises_the_first_divisor() -> None:
    """Pure Sainte-Laguë (1, 3, 5, 7): the 8 largest quotients are A 100k, B 80k, A 33.3k,
    C 30k, B 26.7k, A 20k, D 20k, B 16k. With 1.4, 3, 5, 7: A 71.4k, B 57.1k, A 33.3k, B 26.7k,
    C 21.4k, A 20k, B 16k and then an exact tie for the 8th seat between A (100,000 / 7) and
    D (20,000 / 1.4 = 100,000 / 7) — decided for A by listed order, and reported."""
    pure = allocate(TEXTBOOK, 8, "sainte-lague")
    modified = allocate(TEXTBOOK, 8, "modified-sainte-lague")
    assert list(pure.seats.values()) == [3, 3, 1, 1]
    assert pure.explanation.ties == ()
    assert list(modified.seats.values()) == [4, 3, 1, 0]
    (tie,) = modified.explanation.ties
    assert tie.tied == ("A", "D") and tie.winners == ("A",) and tie.value == Fraction(100_000, 7)
    assert modified.explanation.divisors == "7/5, 3, 5, 7, …"
    line_d = modified.explanation.lines[3]
    assert line_d.next_quotient == Fraction(20_000 * 5, 7)
    custom = allocate(TEXTBOOK, 8, "modified-sainte-lague", first_divisor="1.2")
    assert custom.explanation.divisors == "6/5, 3, 5, 7, …"


def test_huntington_hill_gives_every_party_a_first_seat() -> None:
    """√(0·1) = 0: every party with votes gets a seat before anyone gets a second."""
    result = allocate({"big": 1_000_000, "small": 1}, 3, "huntington-hill")
    assert result.seats == {"big": 2, "small": 1}
    fewer = allocate({"a": 50, "b": 30, "c": 20}, 2, "huntington-hill")
    assert fewer.seats == {"a": 1, "b": 1, "c": 0}  # first seats in order of votes


def test_huntington_hill_us_style_example() -> None:
    """Priorities v²/(s(s+1)): with 10 seats for 5 states (votes as populations)
    1000/500/300/150/50, after one each the next 5 priorities are 1000²/2 = 500,000,
    1000²/6 = 166,667, 500²/2 = 125,000, 1000²/12 = 83,333, 1000²/20 = 50,000 vs 300²/2 = 45,000."""
    result = allocate({"A": 1000, "B": 500, "C": 300, "D": 150, "E": 50}, 10, "huntington-hill")
    assert list(result.seats.values()) == [5, 2, 1, 1, 1]


def test_largest_remainder_explanation_numbers() -> None:
    result = allocate(TEXTBOOK, 8, "hare")
    explanation = result.explanation
    assert explanation.quota == Fraction(230_000, 8)
    line_b = explanation.lines[1]
    assert line_b.full_seats == 2 and line_b.remainder == 80_000 - 2 * Fraction(230_000, 8)
    assert line_b.remainder_seat and line_b.quotient == Fraction(80_000 * 8, 230_000)
    assert explanation.method.family == "largest remainder"
    assert "Hamilton" in explanation.method.source


def test_divisor_explanation_numbers() -> None:
    result = allocate(TEXTBOOK, 8, "dhondt")
    explanation = result.explanation
    assert explanation.divisors == "1, 2, 3, 4, …"
    # the 8th seat went to A at 100,000/4 = 25,000; next would be 20,000 (A, B and D level)
    assert explanation.electoral_key == 25_000
    line_a = explanation.lines[0]
    assert line_a.last_quotient == 25_000 and line_a.next_quotient == 20_000
    assert explanation.lines[3].last_quotient is None  # D has no seat


def test_imperiali_quota_overaward_is_taken_back() -> None:
    """1 seat, 10 and 9 votes: Imperiali quota 19/3 ≈ 6.33 gives both a full seat (2 for 1);
    the seat is taken back from the smaller surplus (9 − 6.33 < 10 − 6.33)."""
    result = allocate({"A": 10, "B": 9}, 1, "imperiali-quota")
    assert result.seats == {"A": 1, "B": 0}
    assert any("taken back" in note for note in result.explanation.notes)


def test_hagenbach_bischoff_exact_multiple_overaward_is_a_tie() -> None:
    """2 seats, three lists of 2 votes: the quota 6/3 = 2 gives three full seats; one must be
    taken back and all three surpluses are 0 — a tie, broken by the rule and reported."""
    result = allocate({"A": 2, "B": 2, "C": 2}, 2, "hagenbach-bischoff")
    assert result.seats == {"A": 1, "B": 1, "C": 0}
    (tie,) = result.explanation.ties
    assert tie.tied == ("A", "B", "C") and tie.winners == ("A", "B") and tie.places == 2


# --- ties --------------------------------------------------------------------------------------


def test_tie_in_divisor_method_listed_order() -> None:
    result = allocate({"X": 100, "Y": 100}, 1, "dhondt")
    assert result.seats == {"X": 1, "Y": 0}
    (tie,) = result.explanation.ties
    assert tie.tied == ("X", "Y") and tie.winners == ("X",) and tie.value == 100
    assert "listed order" in tie.rule


def test_tie_listed_order_explicit() -> None:
    result = allocate({"X": 100, "Y": 100}, 1, "dhondt", tie_rule=ListedOrder(order=("Y", "X")))
    assert result.seats == {"X": 0, "Y": 1}


def test_tie_by_lot_is_reproducible_and_checkable() -> None:
    """The draw: SHA-256 of "seed\\nname"; computed here independently with `printf '%s\\n%s'
    public-seed-2021 Ishenim | sha256sum` -> b4849cb1…, Yntymak -> 5e1d5f63… (lower wins)."""
    assert lot_digest("public-seed-2021", "Ishenim").startswith("b4849cb12bbb866a")
    assert lot_digest("public-seed-2021", "Yntymak").startswith("5e1d5f63c84c678a")
    votes = {"Ishenim": 500, "Yntymak": 500}
    for _ in range(2):
        result = allocate(votes, 1, "hare", tie_rule=Lot("public-seed-2021"))
        assert result.seats == {"Ishenim": 0, "Yntymak": 1}
    (tie,) = result.explanation.ties
    assert tie.winners == ("Yntymak",)
    assert {d.name: d.sha256 for d in tie.draws}["Ishenim"] == hashlib.sha256(
        b"public-seed-2021\nIshenim"
    ).hexdigest()


def test_tie_in_remainders() -> None:
    result = allocate({"A": 1, "B": 1, "C": 1}, 2, "hare")
    assert sum(result.seats.values()) == 2
    (tie,) = result.explanation.ties
    assert tie.stage == "remainder seats" and tie.places == 2 and len(tie.tied) == 3


def test_ties_that_decide_nothing_are_not_reported() -> None:
    result = allocate({"A": 100, "B": 100, "C": 10}, 2, "dhondt")
    assert result.seats == {"A": 1, "B": 1, "C": 0}
    assert result.explanation.ties == ()


# --- thresholds --------------------------------------------------------------------------------


def test_threshold_checks_carry_numbers_and_base() -> None:
    base = Base("valid votes", 1000)
    report = evaluate_thresholds({"A": 50, "B": 49}, [PercentThreshold(5, base)], seats=10)
    a, b = report.checks
    assert (a.passed, b.passed) == (True, False)
    assert a.required == 50 and a.share == 5 and a.base == base
    strict = evaluate_thresholds({"A": 50}, [PercentThreshold(5, base, strict=True)], seats=10)
    assert not strict.checks[0].passed  # exactly 5% is not "more than 5%"


def test_regional_threshold_each_region() -> None:
    north = Region("North", {"A": 10, "B": 50}, Base("voters who took part", 1000))
    south = Region("South", {"A": 90}, Base("voters who took part", 1000))
    report = evaluate_thresholds(
        {"A": 100, "B": 50}, [RegionalThreshold(Fraction(1), (north, south))], seats=5
    )
    assert report.passed == ("A",)
    b_south = next(c for c in report.checks if c.choice == "B" and c.region == "South")
    assert b_south.value == 0 and not b_south.passed


def test_alternative_qualification_percent_or_wins() -> None:
    """Germany's rule before 2023: 5% of the second votes or 3 constituency seats."""
    base = Base("valid second votes", 1000)
    rule = AnyOf((PercentThreshold(5, base), MinimumWins({"Linke": 3, "CSU": 0}, 3)))
    report = evaluate_thresholds({"CSU": 60, "Linke": 40, "Small": 10}, [rule], seats=10)
    assert report.passed == ("CSU", "Linke")
    linke = next(c for c in report.checks if c.choice == "Linke")
    assert [alt.passed for alt in linke.alternatives] == [False, True]


def test_coalition_thresholds_by_size() -> None:
    base = Base("valid votes", 1000)
    rule = CoalitionThreshold(((1, 5), (2, 7), (4, 10)), {"Duo": 2, "Big four": 4}, base)
    report = evaluate_thresholds(
        {"Single": 50, "Duo": 69, "Big four": 100, "Duo ok": 70}, [rule], seats=10
    )
    assert report.passed == ("Single", "Big four", "Duo ok")
    duo = next(c for c in report.checks if c.choice == "Duo")
    assert duo.percent == 7 and duo.required == 70


def test_full_quota_threshold() -> None:
    """Kiesdeler 1000/10 = 100: C with 99 is out even though D'Hondt alone would seat it."""
    votes = {"A": 500, "B": 402, "C": 99}
    assert allocate(votes, 10, "dhondt").seats["C"] == 1
    result = allocate(votes, 10, "dhondt", thresholds=[FullQuota()])
    assert result.seats == {"A": 6, "B": 4, "C": 0}
    assert result.explanation.lines[2].status is Status.BELOW_THRESHOLD


def test_base_must_include_the_votes() -> None:
    with pytest.raises(SeatsError, match="more than the base"):
        evaluate_thresholds(
            {"A": 600, "B": 500}, [PercentThreshold(5, Base("valid votes", 1000))], seats=10
        )


def test_no_party_over_threshold_is_a_stated_outcome() -> None:
    base = Base("voters who took part", 10_000)
    with pytest.raises(NoEligibleChoicesError) as caught:
        allocate({"A": 400, "B": 300}, 10, "hare", thresholds=[PercentThreshold(5, base)])
    assert "no list passed the thresholds" in str(caught.value)
    assert [c.passed for c in caught.value.checks] == [False, False]


# --- caps ----------------------------------------------------------------------------------------


def test_cap_redistributes_the_excess_by_the_same_method() -> None:
    """54 seats, cap 27 (Kyrgyzstan 2021): A would get 32; it keeps 27 and the other 27 seats
    are allocated among B, C, D by Hare as if they were the only lists."""
    votes = {"A": 600_000, "B": 200_000, "C": 150_000, "D": 60_000}
    uncapped = allocate(votes, 54, "hare")
    assert uncapped.seats["A"] == 32
    result = allocate(votes, 54, "hare", cap=27)
    rest = allocate({"B": 200_000, "C": 150_000, "D": 60_000}, 27, "hare")
    assert result.seats == {"A": 27, **rest.seats}
    (step,) = result.explanation.caps
    assert (step.name, step.cap, step.seats_before, step.excess) == ("A", 27, 32, 5)
    assert step.redistributed_to == ("B", "C", "D")
    assert result.explanation.lines[0].status is Status.CAPPED


def test_cap_in_divisor_method() -> None:
    result = allocate({"A": 900, "B": 100}, 10, "dhondt", cap=6)
    assert result.seats == {"A": 6, "B": 4}


def test_cap_that_makes_seats_impossible() -> None:
    with pytest.raises(SeatsError, match="cap makes 10 seats impossible"):
        allocate({"A": 10, "B": 5}, 10, "hare", cap=4)


def test_cap_cannot_give_seats_to_lists_without_votes() -> None:
    with pytest.raises(SeatsError, match="no votes"):
        allocate({"A": 10, "B": 0}, 4, "dhondt", cap=2)


# --- against all ---------------------------------------------------------------------------------


def test_against_all_never_gets_seats() -> None:
    result = allocate(
        {"A": 300, "against all": 500, "B": 200}, 5, "hare", against_all={"against all"}
    )
    assert result.seats == {"A": 3, "against all": 0, "B": 2}
    assert result.explanation.lines[1].status is Status.AGAINST_ALL


def test_plurality_against_all_beats_leader_fails_the_election() -> None:
    """Kyrgyzstan 2021, Bishkek's Sverdlovsky and Pervomaisky: against all won; no winner."""
    votes = {"Candidate 1": 4_000, "Candidate 2": 3_500, "against all": 4_200}
    result = plurality(votes, against_all="against all", contest="Sverdlovsky")
    assert result.outcome is Outcome.FAILED and result.winner is None
    assert result.leader == "Candidate 1" and "held again" in result.reason
    assert result.to_json_dict()["outcome"] == "failed election"


def test_plurality_against_all_equal_to_leader_does_not_fail() -> None:
    result = plurality({"C1": 4_000, "against all": 4_000}, against_all="against all")
    assert result.outcome is Outcome.ELECTED and result.winner == "C1"


def test_plurality_tie_is_reported() -> None:
    result = plurality({"C1": 10, "C2": 10, "C3": 3}, tie_rule=Lot("seed"))
    assert result.outcome is Outcome.ELECTED
    (tie,) = result.ties
    assert tie.tied == ("C1", "C2") and tie.winners == (result.winner,)


def test_two_round_runoff_and_tie_for_second_place() -> None:
    result = two_round({"A": 40, "B": 25, "C": 25, "D": 10})
    assert result.outcome is Outcome.RUNOFF and result.runoff == ("A", "B")
    (tie,) = result.ties
    assert tie.stage == "runoff places" and tie.tied == ("B", "C")


def test_two_round_majority_needs_more_than_half() -> None:
    assert two_round({"A": 50, "B": 50}).outcome is Outcome.RUNOFF
    assert two_round({"A": 51, "B": 49}).winner == "A"
    # against a larger base (voters who took part) 51 of 110 is not a majority
    took_part = Base("voters who took part", 110)
    assert two_round({"A": 51, "B": 49}, base=took_part).outcome is Outcome.RUNOFF


# --- open lists ----------------------------------------------------------------------------------


def _list(*rows: tuple[str, int, str]) -> list[Candidate]:
    return [Candidate(name, votes, gender, i + 1) for i, (name, votes, gender) in enumerate(rows)]


def test_open_list_women_minimum_share() -> None:
    """10 seats: at least ⌈30% × 10⌉ = 3 women. Only W1 is in the top 10 by votes, so the two
    lowest-ranked men elected (M9, M8) give way to the best women not elected (W2, W3)."""
    men = [(f"M{i}", 1000 - i * 10, "male") for i in range(1, 10)]
    candidates = _list(
        *men, ("W1", 995, "female"), ("W2", 500, "female"), ("W3", 400, "female"),
        ("W4", 300, "female"),
    )  # fmt: skip
    result = open_list(candidates, 10, party="Ata-Jurt")
    names = [seat.name for seat in result.elected]
    assert result.women_required == 3 and result.women_elected == 3
    assert set(names) == {"M1", "M2", "M3", "M4", "M5", "M6", "M7", "W1", "W2", "W3"}
    assert result.replaced == ("M9", "M8")
    reasons = {seat.name: seat.reason for seat in result.elected}
    assert reasons["W2"] == reasons["W3"] == "minimum share for women"
    assert reasons["W1"] == "preference votes"


def test_open_list_rounds_the_minimum_up_and_states_a_shortfall() -> None:
    candidates = _list(("M1", 50, "male"), ("M2", 40, "male"), ("M3", 30, "male"),
                       ("W1", 1, "female"))  # fmt: skip
    result = open_list(candidates, 3)  # ⌈0.9⌉ = 1 woman
    assert [s.name for s in result.elected] == ["M1", "M2", "W1"]
    short = open_list(candidates[:3] + candidates[3:], 4, women_min_share="0.5")
    assert short.women_required == 2 and short.shortfall == 1


def test_open_list_tie_at_the_line_is_reported() -> None:
    candidates = _list(("A", 10, "female"), ("B", 5, "male"), ("C", 5, "male"))
    result = open_list(candidates, 2, women_min_share=0)
    assert [s.name for s in result.elected] == ["A", "B"]  # list order
    (tie,) = result.ties
    assert tie.tied == ("B", "C") and tie.winners == ("B",)


def test_open_list_errors() -> None:
    with pytest.raises(SeatsError, match="occurs more than once"):
        open_list(_list(("A", 1, "f"), ("A", 2, "m")), 1)
    with pytest.raises(SeatsError, match="only 1 candidates"):
        open_list(_list(("A", 1, "f")), 2)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "seats", "message"),
    [
        ({"A": 10}, 0, "number of seats must be at least 1"),
        ({"A": -1, "B": 3}, 2, "votes for 'A' must be at least 0"),
        ({"A": 1.5, "B": 3}, 2, "votes for 'A' must be a whole number"),
        ({"A": "12", "B": 3}, 2, "votes for 'A' must be a whole number"),
        ({"A": True, "B": 3}, 2, "votes for 'A' must be a whole number"),
        ({}, 2, "no choices"),
        ({"A": 0, "B": 0}, 2, "no votes"),
        ({"": 3}, 2, "non-empty name"),
    ],
)
def test_bad_input_is_a_clear_error(votes: dict[str, object], seats: int, message: str) -> None:
    with pytest.raises(SeatsError, match=message):
        allocate(votes, seats, "hare")  # type: ignore[arg-type]


def test_bad_options() -> None:
    with pytest.raises(SeatsError, match="unknown method 'hondt'; methods are: hare"):
        allocate({"A": 1}, 1, "hondt")
    with pytest.raises(SeatsError, match="only to modified-sainte-lague"):
        allocate({"A": 1}, 1, "dhondt", first_divisor="1.4")
    with pytest.raises(SeatsError, match="at most 3"):
        allocate({"A": 1}, 1, "modified-sainte-lague", first_divisor=4)
    with pytest.raises(SeatsError, match="not the float"):
        PercentThreshold(0.7, Base("valid votes", 10))  # type: ignore[arg-type]
    with pytest.raises(SeatsError, match="between 0 and 100"):
        PercentThreshold(120, Base("valid votes", 10))
    with pytest.raises(SeatsError, match="against-all"):
        allocate({"A": 1}, 1, "hare", against_all={"B"})
    with pytest.raises(SeatsError, match="seat cap must be at least 1"):
        allocate({"A": 1}, 1, "hare", cap=0)
    with pytest.raises(SeatsError, match="exceed stations expected"):
        Provisional(stations_reporting=5, stations_expected=4)


def test_errors_are_value_errors() -> None:
    assert issubclass(SeatsError, ValueError)
    assert issubclass(NoEligibleChoicesError, SeatsError)


# --- projections and JSON ------------------------------------------------------------------------


def test_provisional_flag_and_json_shape() -> None:
    base = Base("voters who took part", 1_000)
    result = allocate(
        {"A": 500, "B": 300, "against all": 50, "C": 20},
        10,
        "hare",
        thresholds=[PercentThreshold(5, base)],
        against_all={"against all"},
        provisional=Provisional(stations_reporting=2_247, stations_expected=2_494),
    )
    data = json.loads(json.dumps(result.to_json_dict(), ensure_ascii=False))
    assert data["seats"] == {"A": 6, "B": 4, "against all": 0, "C": 0}
    assert data["method"] == "hare" and data["provisional"] is True
    assert data["stations"] == {"stations_reporting": 2_247, "stations_expected": 2_494}
    explanation = data["explanation"]
    assert explanation["quota"] == {"fraction": "80", "decimal": "80"}
    line_a = explanation["lines"][0]
    assert line_a["remainder"] == {"fraction": "20", "decimal": "20"}
    check_c = next(c for c in explanation["thresholds"] if c["choice"] == "C")
    assert check_c["passed"] is False
    assert check_c["base"] == {"label": "voters who took part", "value": 1_000}
    assert check_c["required"] == {"fraction": "50", "decimal": "50"}
    assert check_c["share_percent"] == {"fraction": "2", "decimal": "2"}
    assert {"method", "seats", "votes_considered", "lines", "thresholds", "caps", "ties"} <= set(
        explanation
    )


def test_fractions_in_json_are_exact_with_a_rounded_decimal() -> None:
    data = allocate({"A": 2, "B": 1}, 3, "sainte-lague").to_json_dict()
    assert data["explanation"]["electoral_key"] == {"fraction": "2/3", "decimal": "0.666667"}


@pytest.mark.parametrize("method", [m.value for m in Method])
def test_every_method_serialises(method: str) -> None:
    result = allocate(TEXTBOOK, 8, method, cap=4, tie_rule=Lot("x"))
    assert sum(result.seats.values()) == 8 and max(result.seats.values()) <= 4
    json.dumps(result.to_json_dict())

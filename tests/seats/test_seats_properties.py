"""Properties: agreement with votelib, house monotonicity, quota, totals, thresholds and caps.

votelib (simberaj/votelib, a test-only dependency) is an independent implementation; a naive
seat-by-seat highest-averages loop written here is a second oracle that also pins tie handling.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from votelib.component.divisor import modified_first_coef, sainte_lague
from votelib.evaluate.core import Tie
from votelib.evaluate.proportional import HighestAverages, LargestRemainder

from tallyroom.seats import (
    Base,
    MinimumWins,
    NoEligibleChoicesError,
    PercentThreshold,
    SeatsError,
    allocate,
)
from tallyroom.seats.divisor import divisor_rule
from tallyroom.seats.model import DIVISOR_METHODS, QUOTA_METHODS, Method

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

votes_maps = st.dictionaries(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=3),
    st.integers(min_value=0, max_value=1_000_000),
    min_size=1,
    max_size=12,
).filter(lambda v: sum(v.values()) > 0)
seat_counts = st.integers(min_value=1, max_value=80)

VOTELIB_QUOTA = {
    Method.HARE: "hare",
    Method.DROOP: "droop",
    Method.HAGENBACH_BISCHOFF: "hagenbach_bischoff",
    Method.IMPERIALI_QUOTA: "imperiali",
}
VOTELIB_DIVISOR: dict[Method, Any] = {
    Method.DHONDT: "d_hondt",
    Method.SAINTE_LAGUE: "sainte_lague",
    Method.MODIFIED_SAINTE_LAGUE: modified_first_coef(sainte_lague, Fraction(7, 5)),
    Method.DANISH: "danish",
    Method.IMPERIALI: "imperiali",
    # votelib 0.4.0's own "huntington_hill" divisor is a Decimal, which its Fraction(votes,
    # divisor) rejects (TypeError); the same √(s(s+1)) as a Fraction of a 28-digit Decimal works
    Method.HUNTINGTON_HILL: lambda order: Fraction(Decimal(order * (order + 1)).sqrt()),
}


def _has_tie(result: dict[Any, int]) -> bool:
    return any(isinstance(key, Tie) for key in result)


@pytest.mark.parametrize("method", sorted(QUOTA_METHODS))
@PROPERTY
@given(votes=votes_maps, seats=seat_counts)
def test_largest_remainder_agrees_with_votelib(
    method: Method, votes: dict[str, int], seats: int
) -> None:
    total = sum(votes.values())
    low_quota = {Method.HAGENBACH_BISCHOFF: seats + 1, Method.IMPERIALI_QUOTA: seats + 2}
    if method in low_quota:
        # votelib drops a list whose full quotas alone exceed the seats (its per-list maximum
        # defaults to the seat count): outside its domain
        assume(all(v * low_quota[method] // total <= seats for v in votes.values()))
    evaluator = LargestRemainder(VOTELIB_QUOTA[method], on_overaward="subtract")
    try:
        oracle = evaluator.evaluate(votes, seats)
    except ZeroDivisionError:  # votelib divides by a list's zero surplus in rare take-backs
        assume(False)
        raise
    assume(not _has_tie(oracle))
    # votelib leaves seats empty when more remain than there are lists (Droop, tiny counts)
    assume(sum(oracle.values()) == seats)
    ours = allocate(votes, seats, method)
    assume(not ours.explanation.ties)
    assert ours.winners() == {k: v for k, v in oracle.items() if v}


@pytest.mark.parametrize("method", sorted(DIVISOR_METHODS))
@PROPERTY
@given(votes=votes_maps, seats=seat_counts)
def test_highest_averages_agrees_with_votelib(
    method: Method, votes: dict[str, int], seats: int
) -> None:
    ours = allocate(votes, seats, method)
    assume(not ours.explanation.ties)
    evaluator = HighestAverages(VOTELIB_DIVISOR[method])
    if method is Method.HUNTINGTON_HILL:
        # votelib needs the first seats given in advance (its divisor 0 cannot divide)
        with_votes = [name for name, v in votes.items() if v > 0]
        assume(seats > len(with_votes))  # votelib fails when nothing is left after first seats
        first = dict.fromkeys(with_votes, 1)
        oracle = evaluator.evaluate(votes, seats, prev_gains=first)
        assume(not _has_tie(oracle))
        expected = {name: first.get(name, 0) + oracle.get(name, 0) for name in votes}
    else:
        oracle = evaluator.evaluate(votes, seats)
        assume(not _has_tie(oracle))
        expected = {name: oracle.get(name, 0) for name in votes}
    assert ours.seats == expected


def _naive_highest_averages(method: Method, votes: dict[str, int], seats: int) -> dict[str, int]:
    """Seat by seat: the largest quotient wins; level quotients go to the earlier name."""
    rule = divisor_rule(method)
    alloc = dict.fromkeys(votes, 0)

    def priority(name: str) -> tuple[int, Fraction]:
        v, s = votes[name], alloc[name]
        if v == 0:
            return (0, Fraction(0))
        if rule.squared:
            return (1, Fraction(0)) if s == 0 else (0, Fraction(v * v, s * (s + 1)))
        return (0, Fraction(v * rule.scale, rule.num(s)))

    order = list(votes)
    for _ in range(seats):
        best = max(order, key=lambda name: (priority(name), -order.index(name)))
        if rule.squared and priority(best)[0] == 1:  # first seats in order of votes
            firsts = [n for n in order if priority(n)[0] == 1]
            best = max(firsts, key=lambda n: (votes[n], -order.index(n)))
        alloc[best] += 1
    return alloc


@pytest.mark.parametrize("method", sorted(DIVISOR_METHODS))
@PROPERTY
@given(
    votes=st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=40).filter(any),
    seats=st.integers(min_value=1, max_value=120),
)
def test_jump_and_step_equals_seat_by_seat(method: Method, votes: list[int], seats: int) -> None:
    """Small vote counts make exact ties common, so this also checks tie handling."""
    named = {f"P{i}": v for i, v in enumerate(votes)}
    assert allocate(named, seats, method).seats == _naive_highest_averages(method, named, seats)


@pytest.mark.parametrize("method", sorted(DIVISOR_METHODS))
@PROPERTY
@given(votes=votes_maps, seats=seat_counts)
def test_divisor_methods_are_house_monotone(
    method: Method, votes: dict[str, int], seats: int
) -> None:
    smaller = allocate(votes, seats, method).seats
    larger = allocate(votes, seats + 1, method).seats
    assert all(larger[name] >= smaller[name] for name in votes)


@PROPERTY
@given(votes=votes_maps, seats=seat_counts)
def test_hare_largest_remainder_satisfies_quota(votes: dict[str, int], seats: int) -> None:
    total = sum(votes.values())
    result = allocate(votes, seats, "hare").seats
    for name, v in votes.items():
        exact = Fraction(v * seats, total)
        assert math.floor(exact) <= result[name] <= math.ceil(exact)


@pytest.mark.parametrize("method", [m.value for m in Method])
@PROPERTY
@given(
    votes=votes_maps,
    seats=seat_counts,
    percent=st.integers(min_value=0, max_value=30),
    cap=st.none() | st.integers(min_value=1, max_value=80),
    wins=st.integers(min_value=0, max_value=5),
)
def test_totals_are_exact_with_thresholds_and_caps(
    method: str,
    votes: dict[str, int],
    seats: int,
    percent: int,
    cap: int | None,
    wins: int,
) -> None:
    """Every outcome is N seats exactly, within the cap, only to lists that passed — or a
    clear SeatsError; never another exception."""
    base = Base("valid votes", sum(votes.values()))
    first = next(iter(votes))
    thresholds = [PercentThreshold(percent, base)]
    if wins:
        from tallyroom.seats import AnyOf

        thresholds = [AnyOf((thresholds[0], MinimumWins({first: wins}, 3)))]  # type: ignore[list-item]
    try:
        result = allocate(votes, seats, method, thresholds=thresholds, cap=cap)
    except NoEligibleChoicesError:
        assert all(v * 100 < percent * base.value for v in votes.values()) or wins < 3
        return
    except SeatsError as exc:
        assert "cap" in str(exc) or "no votes" in str(exc)
        return
    assert sum(result.seats.values()) == seats
    if cap is not None:
        assert max(result.seats.values()) <= cap
    passed = {c.choice for c in result.explanation.thresholds if c.passed}
    assert {name for name, n in result.seats.items() if n} <= passed

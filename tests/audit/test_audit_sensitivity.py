"""Outcome sensitivity on the official Kyrgyzstan 2021 party-list result."""

from __future__ import annotations

import json
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import pytest

from tallyroom.audit.sensitivity import (
    min_transfer,
    seat_sensitivity,
    smallest_seat_move,
    threshold_margin,
    threshold_margins,
    transfer,
)

DATA = Path("/work/shared/data/kg_2021_official/results.json")
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="shared Kyrgyzstan data not present")


def kg() -> dict[str, object]:
    data: dict[str, object] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def winners_votes() -> dict[str, int]:
    winners = kg()["winners"]
    assert isinstance(winners, dict)
    return {party: int(row["votes"]) for party, row in winners.items()}


TOOK_PART = 1_281_622
SEATS = 54
THRESHOLD = Fraction(5, 100)


def hare(votes: Mapping[str, int], seats: int) -> dict[str, int]:
    """Largest remainder with the Hare quota (test oracle; the seats package owns the real one)."""
    total = sum(votes.values())
    quotas = {p: Fraction(v * seats, total) for p, v in votes.items()}
    out = {p: int(q) for p, q in quotas.items()}
    rest = seats - sum(out.values())
    for p in sorted(votes, key=lambda p: (-(quotas[p] - out[p]), p))[:rest]:
        out[p] += 1
    return out


def dhondt(votes: Mapping[str, int], seats: int) -> dict[str, int]:
    out = dict.fromkeys(votes, 0)
    for _ in range(seats):
        best = max(votes, key=lambda p: (Fraction(votes[p], out[p] + 1), p))
        out[best] += 1
    return out


def kg_allocate(votes: Mapping[str, int], seats: int) -> dict[str, int]:
    """Kyrgyz rule: parties with ≥ 5% of voters who took part share the seats by Hare."""
    eligible = {p: v for p, v in votes.items() if v >= THRESHOLD * TOOK_PART}
    return hare(eligible, seats)


def test_data_is_what_we_think() -> None:
    data = kg()
    assert data["seats"] == SEATS
    assert data["voters_took_part"] == TOOK_PART
    assert data["national_threshold_percent"] == 5.0


def test_threshold_margins_match_hand_computation() -> None:
    # 5% of 1,281,622 voters who took part = 64,081.1 votes (exactly 1,281,622 / 20).
    # Each margin is votes − 64,081.1; a party falls below after losing ⌊margin⌋ + 1 votes.
    expected = {
        "Ata-Jurt Kyrgyzstan": (Fraction(1_579_239, 10), 157_924),
        "Ishenim": (Fraction(1_103_889, 10), 110_389),
        "Yntymak": (Fraction(769_279, 10), 76_928),
        "Alliance": (Fraction(428_739, 10), 42_874),
        "Butun Kyrgyzstan": (Fraction(261_419, 10), 26_142),
        "Yiman Nuru": (Fraction(149_439, 10), 14_944),
    }
    margins = threshold_margins(winners_votes(), TOOK_PART, THRESHOLD)
    assert [m.party for m in margins] == list(expected)
    for m in margins:
        assert m.required == Fraction(640_811, 10)
        assert m.passes
        assert (m.margin, m.votes_to_change) == expected[m.party]
        # losing votes_to_change votes crosses the threshold, one fewer does not
        assert m.votes - m.votes_to_change < m.required <= m.votes - m.votes_to_change + 1
    yiman = margins[-1]
    assert yiman.describe() == (
        "Yiman Nuru is 14,943.9 votes above 5% of voters who took part (64,081.1); "
        "it would fall below with 14,944 fewer votes"
    )


def test_threshold_below_and_exactly_at() -> None:
    below = threshold_margin("Ata-Meken", 44_600, TOOK_PART, THRESHOLD)
    assert not below.passes
    assert below.votes_to_change == 19_482  # 64,081.1 − 44,600 = 19,481.1 → 19,482 more
    assert "below" in below.describe() and "19,482 more" in below.describe()
    exact = threshold_margin("P", 50, 1000, THRESHOLD)  # exactly 5%: passes ("at least")
    assert exact.passes and exact.margin == 0 and exact.votes_to_change == 1
    with pytest.raises(ValueError):
        threshold_margin("P", 1, 10, Fraction(0))


def test_reported_seats_reproduce_the_official_result() -> None:
    votes = winners_votes()
    winners = kg()["winners"]
    assert isinstance(winners, dict)
    official = {p: int(row["seats"]) for p, row in winners.items()}
    assert kg_allocate(votes, SEATS) == official
    assert dhondt(votes, SEATS) == official  # the data README: D'Hondt gives the same seats


def test_smallest_seat_move_by_hand() -> None:
    # Hare quota = 813,687 / 54. Remainders in units of 1/813,687 of a seat (votes·54 mod
    # 813,687): Ishenim 174,470·54 − 11·813,687 = 470,823; Yntymak 141,009·54 − 9·813,687 =
    # 291,303. The third remainder seat goes to Ishenim (Butun .988, Ata-Jurt .733, Ishenim
    # .579 > Yntymak .358). Each vote moved from Ishenim to Yntymak shifts both remainders by
    # 54 units, so Yntymak overtakes when 291,303 + 54k > 470,823 − 54k, i.e. k > 1,662.2:
    # k = 1,663 votes move the last seat from Ishenim to Yntymak.
    votes = winners_votes()
    move = min_transfer(votes, SEATS, kg_allocate, "Ishenim", "Yntymak", prove_minimal=True)
    assert move is not None
    assert move.votes == 1_663
    assert kg_allocate(transfer(votes, "Ishenim", "Yntymak", 1_663), SEATS) != kg_allocate(
        votes, SEATS
    )
    assert kg_allocate(transfer(votes, "Ishenim", "Yntymak", 1_662), SEATS) == kg_allocate(
        votes, SEATS
    )
    assert move.seats_after["Ishenim"] == 11 and move.seats_after["Yntymak"] == 10
    assert move.describe().startswith("a seat would move if 1,663 votes moved from Ishenim")


def test_every_reported_minimum_really_is_the_minimum() -> None:
    votes = winners_votes()
    before = kg_allocate(votes, SEATS)
    moves = seat_sensitivity(votes, SEATS, kg_allocate)
    assert moves[0].votes == 1_663
    assert (moves[0].source, moves[0].target) == ("Ishenim", "Yntymak")
    assert len(moves) == 30  # every ordered pair of the six parties can move a seat
    assert [m.votes for m in moves] == sorted(m.votes for m in moves)
    for m in moves:
        moved = kg_allocate(transfer(votes, m.source, m.target, m.votes), SEATS)
        assert moved != before
        assert {p: n for p, n in moved.items() if n} == dict(m.seats_after)
        assert kg_allocate(transfer(votes, m.source, m.target, m.votes - 1), SEATS) == before


def test_smallest_seat_move_is_the_first_of_every_pair() -> None:
    votes = winners_votes()
    calls = 0

    def counted(v: Mapping[str, int], seats: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        return kg_allocate(v, seats)

    best = smallest_seat_move(votes, SEATS, counted)
    assert best is not None
    assert (best.source, best.target, best.votes) == ("Ishenim", "Yntymak", 1_663)
    assert calls < 200  # seat_sensitivity needs 840 allocations here
    for method in (kg_allocate, dhondt):
        for parties in (None, ["Yntymak", "Alliance", "Ishenim"]):
            first = seat_sensitivity(votes, SEATS, method, parties=parties)[0]
            got = smallest_seat_move(votes, SEATS, method, parties=parties)
            assert got == first
    assert smallest_seat_move({"A": 100, "B": 1}, 1, hare) is not None
    assert smallest_seat_move({"A": 100, "B": 0}, 1, hare, parties=["B"]) is None


def test_pluggable_method_dhondt() -> None:
    votes = winners_votes()
    moves = seat_sensitivity(votes, SEATS, dhondt, parties=["Ishenim", "Yntymak", "Alliance"])
    for m in moves:
        assert dhondt(transfer(votes, m.source, m.target, m.votes), SEATS) != dhondt(votes, SEATS)
        assert dhondt(transfer(votes, m.source, m.target, m.votes - 1), SEATS) == dhondt(
            votes, SEATS
        )


def test_transfer_validation_and_no_change() -> None:
    with pytest.raises(ValueError):
        transfer({"A": 5}, "A", "A", 1)
    with pytest.raises(ValueError):
        transfer({"A": 5}, "A", "B", 6)
    # one seat, a party far ahead: moving all of a tiny party's votes changes nothing
    assert min_transfer({"A": 100, "B": 1}, 1, hare, "B", "A") is None
    with pytest.raises(ValueError, match="unknown"):
        min_transfer({"A": 1}, 1, hare, "Z", "A")

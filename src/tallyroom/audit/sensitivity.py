"""How many votes each decision of a party-list contest rests on.

Two questions, answered exactly in integers from the totals:

* **Thresholds** — how far each party is above (or below) its threshold, in votes:
  "Party X is 3,214 votes above 5% of voters who took part". The base (voters who took part,
  or valid votes) is held fixed, as when votes move between parties.
* **Seats** — the fewest votes that must move from party A to party B for the seat
  allocation to change: "the last seat would move if 812 votes moved from A to B". The seat
  method is pluggable (``allocate(votes, seats) -> seats per party``, thresholds and caps
  included), so this works with whatever the seats package provides.

These are the margins that a batch-comparison audit's assertions rest on (Stark 2008, "A
sharper discrepancy measure for post-election audits"; Lindeman & Stark 2012, "A Gentle
Introduction to Risk-limiting Audits", on margins and the diluted margin).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import msgspec

from tallyroom.audit.assertions import percent

Allocate = Callable[[Mapping[str, int], int], Mapping[str, int]]


class ThresholdMargin(msgspec.Struct, frozen=True):
    """One party against one threshold.

    ``required = threshold · base``; ``passes`` iff ``votes ≥ required``; ``margin = votes -
    required`` (negative below the threshold); ``votes_to_change`` is the fewest whole votes
    that flip the decision: votes to lose to fall below (``⌊margin⌋ + 1``) or votes to gain to
    reach it (``⌈-margin⌉``).
    """

    party: str
    votes: int
    base: int
    base_label: str
    threshold: Fraction
    required: Fraction
    passes: bool
    margin: Fraction
    votes_to_change: int

    def describe(self) -> str:
        """One sentence for the results page."""
        where = f"{percent(self.threshold)} of {self.base_label} ({_fmt(self.required)})"
        if self.passes:
            return (
                f"{self.party} is {_fmt(self.margin)} votes above {where}; "
                f"it would fall below with {self.votes_to_change:,} fewer votes"
            )
        return (
            f"{self.party} is {_fmt(-self.margin)} votes below {where}; "
            f"it would pass with {self.votes_to_change:,} more votes"
        )


def _fmt(x: Fraction) -> str:
    if x.denominator == 1:
        return f"{x.numerator:,}"
    return f"{float(x):,.1f}"


def threshold_margin(
    party: str,
    votes: int,
    base: int,
    threshold: Fraction,
    *,
    base_label: str = "voters who took part",
) -> ThresholdMargin:
    """Margin of one party above ``threshold · base`` (passing means ``votes ≥ t·base``)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if votes < 0 or base < 0:
        raise ValueError("votes and base must be non-negative")
    required = threshold * base
    margin = votes - required
    passes = margin >= 0
    to_change = math.floor(margin) + 1 if passes else math.ceil(-margin)
    return ThresholdMargin(
        party, votes, base, base_label, threshold, required, passes, margin, to_change
    )


def threshold_margins(
    votes: Mapping[str, int],
    base: int,
    threshold: Fraction,
    *,
    base_label: str = "voters who took part",
) -> tuple[ThresholdMargin, ...]:
    """:func:`threshold_margin` for every party, in the order of ``votes``.

    For a per-region threshold (e.g. 0.5% in each oblast) call it once per region with that
    region's votes and base.
    """
    return tuple(
        threshold_margin(p, v, base, threshold, base_label=base_label) for p, v in votes.items()
    )


class SeatMove(msgspec.Struct, frozen=True):
    """Moving ``votes`` votes from ``source`` to ``target`` changes the allocation.

    ``seats_before`` / ``seats_after`` are the allocations without and with the move; moving
    one vote fewer leaves the allocation unchanged.
    """

    source: str
    target: str
    votes: int
    seats_before: Mapping[str, int]
    seats_after: Mapping[str, int]

    def describe(self) -> str:
        """One sentence for the results page."""
        changes = ", ".join(
            f"{p} {self.seats_before.get(p, 0)}→{self.seats_after.get(p, 0)}"
            for p in sorted(set(self.seats_before) | set(self.seats_after))
            if self.seats_before.get(p, 0) != self.seats_after.get(p, 0)
        )
        return (
            f"a seat would move if {self.votes:,} votes moved from {self.source} "
            f"to {self.target} ({changes})"
        )


def transfer(votes: Mapping[str, int], source: str, target: str, amount: int) -> dict[str, int]:
    """Totals after moving ``amount`` votes from ``source`` to ``target``."""
    if source == target:
        raise ValueError("source and target must differ")
    if not 0 <= amount <= votes[source]:
        raise ValueError(f"cannot move {amount} votes from {source} ({votes[source]})")
    out = dict(votes)
    out[source] -= amount
    out[target] = out.get(target, 0) + amount
    return out


def _seats(allocate: Allocate, votes: Mapping[str, int], seats: int) -> dict[str, int]:
    return {p: n for p, n in allocate(votes, seats).items() if n}


def min_transfer(
    votes: Mapping[str, int],
    seats: int,
    allocate: Allocate,
    source: str,
    target: str,
    *,
    prove_minimal: bool = False,
) -> SeatMove | None:
    """Fewest votes moved from ``source`` to ``target`` that change the seat allocation.

    Exact integer search: doubling then bisection on k ∈ [1, votes[source]] for the first k
    whose allocation differs from the reported one. This is exact for methods under which a
    party losing votes to another never gains seats and the receiver never loses any (every
    divisor method such as D'Hondt or Sainte-Laguë; largest remainder with a fixed total, as
    in a transfer). For any other method pass ``prove_minimal=True``: every k below the
    bisection result is then tried too (cost: k allocations). Returns ``None`` if moving all
    of ``source``'s votes changes nothing.
    """
    if source not in votes:
        raise ValueError(f"unknown party {source!r}")
    before = _seats(allocate, votes, seats)

    def after(k: int) -> dict[str, int]:
        return _seats(allocate, transfer(votes, source, target, k), seats)

    limit = votes[source]
    lo, hi = 0, 1
    while True:
        if hi > limit:
            if limit == lo or after(limit) == before:
                return None
            hi = limit
            break
        if after(hi) != before:
            break
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if after(mid) != before:
            hi = mid
        else:
            lo = mid
    if prove_minimal:
        for k in range(1, hi):
            if after(k) != before:
                hi = k
                break
    return SeatMove(source, target, hi, before, after(hi))


def seat_sensitivity(
    votes: Mapping[str, int],
    seats: int,
    allocate: Allocate,
    *,
    parties: Sequence[str] | None = None,
    prove_minimal: bool = False,
) -> tuple[SeatMove, ...]:
    """:func:`min_transfer` for every ordered pair of ``parties`` (default: all), fewest first.

    Pairs whose transfer never changes the allocation are left out; the first entry is the
    smallest change of votes that would move a seat.
    """
    names = list(votes) if parties is None else list(parties)
    moves = [
        move
        for source in names
        for target in names
        if source != target and votes.get(source, 0) > 0
        for move in [
            min_transfer(votes, seats, allocate, source, target, prove_minimal=prove_minimal)
        ]
        if move is not None
    ]
    return tuple(sorted(moves, key=lambda m: (m.votes, m.source, m.target)))


def smallest_seat_move(
    votes: Mapping[str, int],
    seats: int,
    allocate: Allocate,
    *,
    parties: Sequence[str] | None = None,
) -> SeatMove | None:
    """The first entry of :func:`seat_sensitivity` — the fewest votes that, moved from one
    party to another, change the allocation ("the last seat would move if 812 votes moved from
    A to B") — at a fraction of its cost.

    Pairs are taken in (source, target) order. Once a move of ``b`` votes is known, another pair
    can only do better if moving ``b - 1`` votes between them already changes the allocation;
    under the monotonicity :func:`min_transfer` relies on, one allocation tells, so most pairs
    cost one allocation instead of a search. Ties keep the first pair, as the sort in
    :func:`seat_sensitivity` does. Returns ``None`` when no transfer changes anything.
    """
    names = sorted(votes if parties is None else parties)
    before = _seats(allocate, votes, seats)
    best: SeatMove | None = None
    for source in names:
        if votes.get(source, 0) <= 0:
            continue
        for target in names:
            if target == source:
                continue
            if best is None:
                best = min_transfer(votes, seats, allocate, source, target)
                continue
            if best.votes == 1:
                return best
            hi = min(best.votes - 1, votes[source])
            after = _seats(allocate, transfer(votes, source, target, hi), seats)
            if after == before:
                continue
            lo = 0  # moving nothing changes nothing; moving hi votes does: bisect in between
            while hi - lo > 1:
                mid = (lo + hi) // 2
                moved = _seats(allocate, transfer(votes, source, target, mid), seats)
                if moved != before:
                    hi, after = mid, moved
                else:
                    lo = mid
            best = SeatMove(source, target, hi, before, after)
    return best

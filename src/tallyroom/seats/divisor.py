"""Highest averages (divisor) methods.

Each choice's votes are divided by a sequence of divisors; the seats go to the largest quotients
(Balinski & Young, *Fair Representation*, 2nd ed. 2001; Pukelsheim, *Proportional
Representation*, 2nd ed. 2017, ch. 4 "Divisor methods of apportionment"). With s seats already
held, the next divisor is:

* D'Hondt (V. D'Hondt, 1882; Jefferson's method): s + 1 → 1, 2, 3, …
* Sainte-Laguë (A. Sainte-Laguë, 1910; Webster's method): 2s + 1 → 1, 3, 5, …
* modified Sainte-Laguë: first divisor f (default 1.4: Norway, Nepal; Sweden 1.4 until 2018,
  1.2 since), then 3, 5, 7, … (f must be in (0, 3] so quotients keep falling)
* Danish: 3s + 1 → 1, 4, 7, … (the Folketing's distribution of compensatory seats to areas)
* Imperiali: (s + 2) / 2 → 1, 1.5, 2, … (Belgian municipal elections)
* Huntington–Hill (E. V. Huntington 1921, J. Hill; US House apportionment since 1941): √(s(s+1))
  → 0, √2, √6, … A zero divisor gives every choice with votes its first seat before anyone gets a
  second; with fewer seats than such choices, first seats go in order of votes. Quotients are
  compared squared, v² / (s(s+1)), so everything stays rational.

Speed without floats (1,000 parties × 1,000 seats in well under 5 ms): the "jump-and-step"
procedure described by Pukelsheim (2017). First a divisor x is estimated (V / (N + P(δ − ½)) for
divisors s + δ) and every choice gets all seats whose quotient is ≥ x, computed with integer
floor division; the choices' seat sets are then all the quotients above one common value, so the
result is reached by adding (or removing) the next best (worst) quotients one at a time from a
heap. Quotients are compared through exact integer keys ⌊w·2^k / divisor⌋ with 2^k larger than
the square of every divisor numerator, which orders distinct rational quotients strictly and
equal ones equally (two distinct quotients w₁/n₁ ≠ w₂/n₂ differ by at least 1/(n₁n₂)).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from tallyroom.seats.errors import SeatsError
from tallyroom.seats.model import Method, PartyLine, RoundResult, Status
from tallyroom.seats.ties import TieRecord, TieRule, settle

__all__ = ["DivisorRule", "divisor_rule", "highest_averages"]

#: A quotient's exact ordering key (tier, value) and its exact value, for choice i holding s seats.
_Key = Callable[[int, int], tuple[int, int]]
_Quotient = Callable[[int, int], Fraction | None]

#: Default first divisor of the modified Sainte-Laguë method.
DEFAULT_FIRST_DIVISOR = Fraction(7, 5)


@dataclass(frozen=True, slots=True)
class DivisorRule:
    """Divisors as integers: ``num(0) = first``, ``num(s) = a·s + b`` for s ≥ 1.

    The true divisor is ``num(s) / scale`` (scaling all divisors alike changes no ranking). For
    Huntington–Hill (``squared``) ``num(s) = s(s+1)`` and quotients are votes² / num(s).
    """

    method: Method
    a: int
    b: int
    first: int
    scale: int
    sequence: str
    squared: bool = False

    def num(self, s: int) -> int:
        if self.squared:
            return s * (s + 1)
        return self.first if s == 0 else self.a * s + self.b

    def divisor(self, s: int) -> Fraction:
        """The true divisor for a choice holding ``s`` seats (squared for Huntington–Hill)."""
        return Fraction(self.num(s), self.scale)


def divisor_rule(method: Method, first_divisor: Fraction = DEFAULT_FIRST_DIVISOR) -> DivisorRule:
    """The :class:`DivisorRule` of ``method`` (``first_divisor`` for modified Sainte-Laguë)."""
    if method is Method.DHONDT:
        return DivisorRule(method, 1, 1, 1, 1, "1, 2, 3, 4, …")
    if method is Method.SAINTE_LAGUE:
        return DivisorRule(method, 2, 1, 1, 1, "1, 3, 5, 7, …")
    if method is Method.MODIFIED_SAINTE_LAGUE:
        if not 0 < first_divisor <= 3:
            raise SeatsError(
                f"the first divisor of modified Sainte-Laguë must be above 0 and at most 3 "
                f"(the next divisor), got {first_divisor}"
            )
        p, q = first_divisor.numerator, first_divisor.denominator
        return DivisorRule(method, 2 * q, q, p, q, f"{first_divisor}, 3, 5, 7, …")
    if method is Method.DANISH:
        return DivisorRule(method, 3, 1, 1, 1, "1, 4, 7, 10, …")
    if method is Method.IMPERIALI:
        return DivisorRule(method, 1, 2, 2, 2, "1, 3/2, 2, 5/2, …")
    if method is Method.HUNTINGTON_HILL:
        return DivisorRule(
            method, 0, 0, 0, 1, "√(s(s+1)): 0, √2, √6, √12, … (quotients compared squared)", True
        )
    raise ValueError(f"{method} is not a divisor method")


def _seats_at(rule: DivisorRule, w: int, xn: int, xd: int) -> int:
    """How many of w's quotients w / num(s), s = 0, 1, …, are ≥ xn/xd."""
    if w == 0:
        return 0
    if rule.squared:
        m = (w * xd) // xn  # s(s+1) <= w·xd/xn  <=>  s(s+1) <= m, s(s+1) being whole
        return 1 + (math.isqrt(4 * m + 1) - 1) // 2
    if rule.first * xn > w * xd:
        return 0
    return 1 + max(0, (w * xd - rule.b * xn) // (rule.a * xn))


def highest_averages(
    names: Sequence[str],
    votes: Sequence[int],
    seats: int,
    rule: DivisorRule,
    *,
    tie_rule: TieRule,
    position: Mapping[str, int],
) -> RoundResult:
    """Allocate ``seats`` among ``names`` by the divisor ``rule``.

    ``votes`` are whole, non-negative and not all zero (the caller checks); a choice with no
    votes never gets a seat. ``position`` is each name's place in the input (tie rule).
    """
    n = len(names)
    w = [v * v for v in votes] if rule.squared else list(votes)
    active = [i for i in range(n) if votes[i] > 0]
    total = sum(votes)
    parties = len(active)

    # jump: a first divisor estimate (Pukelsheim 2017), as a fraction xn/xd of quotient units
    if rule.squared:
        xn, xd = total * total, seats * seats
    else:
        denominator = 2 * rule.a * seats + parties * (2 * rule.b - rule.a)
        if denominator <= 0:
            denominator = 2 * rule.a * seats
        xn, xd = 2 * total, denominator
    alloc = [0] * n
    for i in active:
        alloc[i] = _seats_at(rule, w[i], xn, xd)

    # exact integer keys for quotients: (tier, value); tier 1 = infinite (a zero divisor)
    biggest = max(max(alloc), seats) + 1
    shift = 2 * rule.num(biggest).bit_length() + 2

    def key(i: int, s: int) -> tuple[int, int]:
        d = rule.num(s)
        if d == 0:
            return (1, w[i])
        return (0, (w[i] << shift) // d)

    def quotient(i: int, s: int) -> Fraction | None:
        d = rule.num(s)
        return None if d == 0 else Fraction(w[i] * rule.scale, d)

    ties: list[TieRecord] = []
    given = sum(alloc)
    if given < seats:
        _step_up(names, alloc, seats - given, active, key, quotient, tie_rule, position, ties)
    elif given > seats:
        _step_down(names, alloc, given - seats, active, key, quotient, tie_rule, position, ties)

    # the electoral key: the smallest quotient that won a seat
    winners = [i for i in active if alloc[i] > 0]
    last = min(winners, key=lambda i: key(i, alloc[i] - 1))
    electoral_key = quotient(last, alloc[last] - 1)

    lines = [
        PartyLine(
            name=names[i],
            votes=votes[i],
            seats=alloc[i],
            status=Status.ALLOCATED,
            last_quotient=quotient(i, alloc[i] - 1) if alloc[i] > 0 else None,
            next_quotient=quotient(i, alloc[i]) if votes[i] > 0 else Fraction(0),
        )
        for i in range(n)
    ]
    notes = [f"divisors {rule.sequence}"]
    if electoral_key is not None:
        notes.append(f"smallest quotient that won a seat: {electoral_key}")
    return RoundResult(
        seats=alloc,
        lines=lines,
        divisors=rule.sequence,
        electoral_key=electoral_key,
        ties=ties,
        notes=notes,
    )


def _step_up(
    names: Sequence[str],
    alloc: list[int],
    missing: int,
    active: Sequence[int],
    key: _Key,
    quotient: _Quotient,
    tie_rule: TieRule,
    position: Mapping[str, int],
    ties: list[TieRecord],
) -> None:
    """Give ``missing`` more seats to the largest next quotients."""
    heap = []
    for i in active:
        tier, value = key(i, alloc[i])
        heap.append((-tier, -value, position[names[i]], i))
    heapq.heapify(heap)
    while missing > 0:
        neg_tier, neg_value, _, first = heapq.heappop(heap)
        level = [first]
        while heap and heap[0][0] == neg_tier and heap[0][1] == neg_value:
            level.append(heapq.heappop(heap)[3])
        if len(level) > missing:
            level.sort(key=lambda i: position[names[i]])
            winners, record = settle(
                stage="highest averages: last seats",
                value=quotient(level[0], alloc[level[0]]),
                tied=[names[i] for i in level],
                places=missing,
                rule=tie_rule,
                input_position=position,
            )
            ties.append(record)
            won = set(winners)
            level = [i for i in level if names[i] in won]
        for i in level:
            alloc[i] += 1
            tier, value = key(i, alloc[i])
            heapq.heappush(heap, (-tier, -value, position[names[i]], i))
        missing -= len(level)


def _step_down(
    names: Sequence[str],
    alloc: list[int],
    excess: int,
    active: Sequence[int],
    key: _Key,
    quotient: _Quotient,
    tie_rule: TieRule,
    position: Mapping[str, int],
    ties: list[TieRecord],
) -> None:
    """Take back ``excess`` seats won with the smallest quotients."""
    heap = []
    for i in active:
        if alloc[i] > 0:
            tier, value = key(i, alloc[i] - 1)
            heap.append((tier, value, position[names[i]], i))
    heapq.heapify(heap)
    while excess > 0:
        tier, value, _, first = heapq.heappop(heap)
        level = [first]
        while heap and heap[0][0] == tier and heap[0][1] == value:
            level.append(heapq.heappop(heap)[3])
        if len(level) > excess:
            level.sort(key=lambda i: position[names[i]])
            keepers, record = settle(
                stage="highest averages: last seats",
                value=quotient(level[0], alloc[level[0]] - 1),
                tied=[names[i] for i in level],
                places=len(level) - excess,
                rule=tie_rule,
                input_position=position,
            )
            ties.append(record)
            kept = set(keepers)
            level = [i for i in level if names[i] not in kept]
        for i in level:
            alloc[i] -= 1
            if alloc[i] > 0:
                tier, value = key(i, alloc[i] - 1)
                heapq.heappush(heap, (tier, value, position[names[i]], i))
        excess -= len(level)

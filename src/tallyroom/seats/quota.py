"""Largest remainder (quota) methods: Hare, Droop, Hagenbach-Bischoff, Imperiali quota.

Each choice gets one seat per full quota in its votes; the seats left go one each to the choices
with the largest remainders (Hamilton's method when the quota is Hare's; Balinski & Young,
*Fair Representation*, 2nd ed. 2001, ch. 2; Pukelsheim, *Proportional Representation*, 2nd ed.
2017, ch. 5 "Quota methods").

Quotas, with V the votes of the choices taking part and N the seats:

* Hare (T. Hare, 1859): V / N — Kyrgyzstan (Constitutional Law "On elections of the President and
  deputies of the Jogorku Kenesh", art. 60) and Russia's State Duma (Federal Law No. 20-FZ,
  art. 88: the "first electoral quotient" is the sum of the votes of the admitted lists ÷ 225).
* Droop (H. R. Droop, 1881): ⌊V / (N + 1)⌋ + 1.
* Hagenbach-Bischoff (1888): V / (N + 1), exact.
* Imperiali quota: V / (N + 2), exact.

The low quotas (Hagenbach-Bischoff when every share is an exact multiple, and Imperiali) can give
more full seats than N. Then seats are taken back one at a time from the choice whose votes exceed
its full seats × quota by the least (recorded in the notes; ties by the tie rule) — the
"subtract" rule of votelib's ``QuotaDistributor``.

Droop's quota is rounded up, so on tiny counts (one list with 1 vote, 3 seats) more seats can be
left than there are lists; then every list takes one more seat per round until none is left, so
the total always comes out.

All arithmetic is on integers: with the quota q = n/d, full seats are ⌊v·d / n⌋ and the remainders
v·d − seats·n are compared as integers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from tallyroom.seats.model import Method, PartyLine, RoundResult, Status
from tallyroom.seats.ties import TieRecord, TieRule, settle

__all__ = ["largest_remainder", "quota_for", "quota_rule"]


def quota_for(method: Method, total: int, seats: int) -> Fraction:
    """The quota of ``method`` for ``total`` votes and ``seats`` seats."""
    if method is Method.HARE:
        return Fraction(total, seats)
    if method is Method.DROOP:
        return Fraction(total // (seats + 1) + 1)
    if method is Method.HAGENBACH_BISCHOFF:
        return Fraction(total, seats + 1)
    if method is Method.IMPERIALI_QUOTA:
        return Fraction(total, seats + 2)
    raise ValueError(f"{method} is not a quota method")


def quota_rule(method: Method) -> str:
    """The quota formula in words."""
    return {
        Method.HARE: "Hare quota = votes ÷ seats",
        Method.DROOP: "Droop quota = ⌊votes ÷ (seats + 1)⌋ + 1",
        Method.HAGENBACH_BISCHOFF: "Hagenbach-Bischoff quota = votes ÷ (seats + 1)",
        Method.IMPERIALI_QUOTA: "Imperiali quota = votes ÷ (seats + 2)",
    }[method] + "; full quotas first, then one seat each to the largest remainders"


def largest_remainder(
    names: Sequence[str],
    votes: Sequence[int],
    seats: int,
    method: Method,
    *,
    tie_rule: TieRule,
    position: Mapping[str, int],
) -> RoundResult:
    """Allocate ``seats`` among ``names`` by largest remainder with ``method``'s quota.

    ``votes`` are whole, non-negative and not all zero (the caller checks). ``position`` is each
    name's place in the original input, for the listed-order tie rule.
    """
    n = len(names)
    total = sum(votes)
    quota = quota_for(method, total, seats)
    qn, qd = quota.numerator, quota.denominator
    full = [v * qd // qn for v in votes]
    alloc = full[:]
    ties: list[TieRecord] = []
    notes: list[str] = [f"quota = {quota} votes per seat ({total} votes, {seats} seats)"]

    given = sum(alloc)
    if given > seats:
        notes.append(
            f"the quota gives {given} full seats for {seats}: {given - seats} taken back from the "
            "lists with the smallest surplus over their full quotas"
        )
        _take_back(names, votes, alloc, given - seats, qn, qd, tie_rule, position, ties, notes)

    rem = [v * qd - f * qn for v, f in zip(votes, full, strict=True)]
    won_remainder = [False] * n
    left = seats - sum(alloc)
    if left:
        notes.append(f"{left} remainder seat{'s' if left != 1 else ''}")
    while left > 0:
        order = sorted(range(n), key=lambda i: (-rem[i], position[names[i]]))
        if left >= n:  # only Droop's rounded-up quota on tiny counts (1 vote, 3 seats): a round
            for i in order:
                alloc[i] += 1
                won_remainder[i] = True
            left -= n
            continue
        cut = rem[order[left - 1]]
        above = [i for i in order if rem[i] > cut]
        level = [i for i in order if rem[i] == cut]
        places = left - len(above)
        chosen = above[:]
        if len(level) > places:
            winners, record = settle(
                stage="remainder seats",
                value=Fraction(cut, qd),
                tied=[names[i] for i in level],
                places=places,
                rule=tie_rule,
                input_position=position,
            )
            ties.append(record)
            won = set(winners)
            chosen += [i for i in level if names[i] in won]
        else:
            chosen += level
        for i in chosen:
            alloc[i] += 1
            won_remainder[i] = True
        left = 0

    lines = [
        PartyLine(
            name=names[i],
            votes=votes[i],
            seats=alloc[i],
            status=Status.ALLOCATED,
            quotient=Fraction(votes[i] * qd, qn),
            full_seats=full[i],
            remainder=Fraction(rem[i], qd),
            remainder_seat=won_remainder[i],
        )
        for i in range(n)
    ]
    return RoundResult(seats=alloc, lines=lines, quota=quota, ties=ties, notes=notes)


def _take_back(
    names: Sequence[str],
    votes: Sequence[int],
    alloc: list[int],
    excess: int,
    qn: int,
    qd: int,
    tie_rule: TieRule,
    position: Mapping[str, int],
    ties: list[TieRecord],
    notes: list[str],
) -> None:
    """Remove ``excess`` seats, one at a time, from the smallest surplus v − seats × quota."""
    while excess > 0:
        surplus = {i: votes[i] * qd - alloc[i] * qn for i in range(len(names)) if alloc[i] > 0}
        low = min(surplus.values())
        level = sorted(
            (i for i, s in surplus.items() if s == low), key=lambda i: position[names[i]]
        )
        if len(level) > excess:
            keepers, record = settle(
                stage="seats taken back (quota gave too many)",
                value=Fraction(low, qd),
                tied=[names[i] for i in level],
                places=len(level) - excess,
                rule=tie_rule,
                input_position=position,
            )
            ties.append(record)
            kept = set(keepers)
            level = [i for i in level if names[i] not in kept]
        for i in level[:excess]:
            alloc[i] -= 1
            notes.append(f"one seat taken back from {names[i]!r}")
            excess -= 1

"""Within a list: who takes a party's seats, by preference votes, with a minimum share for women.

Kyrgyzstan (Constitutional Law "On elections of the President and deputies of the Jogorku
Kenesh", as applied in 2021): a party's seats go to its candidates with the most preference
votes, but at least 30% of each party's seats go to its women candidates with the most votes.

Procedure, for ``seats`` seats and a minimum share ``m``:

1. rank the candidates by votes (equal votes: the tie rule, by default the list order);
2. the ``seats`` best-ranked are elected;
3. ``required = ⌈m × seats⌉`` ("at least"); if fewer women are elected, the lowest-ranked
   men elected give way, one by one, to the best-ranked women not elected;
4. if the list has too few women, every woman on it is elected and the shortfall is stated.

A tie is recorded when candidates with equal votes end up on both sides of the line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import msgspec

from tallyroom.seats.errors import SeatsError
from tallyroom.seats.exact import as_count, as_fraction, check_unique
from tallyroom.seats.ties import ListedOrder, LotDraw, TieRecord, TieRule, rank_tied

__all__ = ["Candidate", "ListSeat", "OpenListResult", "open_list"]

#: Kyrgyzstan's minimum share of a party's seats for women.
KYRGYZ_WOMEN_SHARE = Fraction(30, 100)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate on a party list: name, preference votes, gender, place on the list."""

    name: str
    votes: int
    gender: str
    list_position: int | None = None


class ListSeat(msgspec.Struct, frozen=True):
    """An elected candidate: rank by votes within the list, and why elected."""

    name: str
    votes: int
    gender: str
    rank: int
    reason: str  # "preference votes" or "minimum share for women"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "votes": self.votes,
            "gender": self.gender,
            "rank": self.rank,
            "reason": self.reason,
        }


class OpenListResult(msgspec.Struct, frozen=True):
    """Who takes a party's seats, and how the minimum share for women was met."""

    party: str | None
    seats: int
    elected: tuple[ListSeat, ...]
    women_required: int
    women_elected: int
    replaced: tuple[str, ...]
    shortfall: int
    ties: tuple[TieRecord, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "seats": self.seats,
            "elected": [seat.to_json_dict() for seat in self.elected],
            "women_required": self.women_required,
            "women_elected": self.women_elected,
            "replaced": list(self.replaced),
            "shortfall": self.shortfall,
            "ties": [tie.to_json_dict() for tie in self.ties],
            "notes": list(self.notes),
        }


def open_list(
    candidates: Sequence[Candidate],
    seats: int,
    *,
    party: str | None = None,
    women_min_share: Fraction | str | int = KYRGYZ_WOMEN_SHARE,
    women: str = "female",
    tie_rule: TieRule | None = None,
) -> OpenListResult:
    """Choose who takes ``seats`` seats of a list; ``women`` is the gender value counted.

    ``tie_rule`` defaults to the list order (``list_position``, else input order).
    """
    count = as_count(seats, "number of seats")
    share = as_fraction(women_min_share, "minimum share for women")
    if not 0 <= share <= 1:
        raise SeatsError(f"minimum share for women must be between 0 and 1, got {share}")
    check_unique((c.name for c in candidates), "candidates")
    for c in candidates:
        as_count(c.votes, f"preference votes for {c.name!r}")
    if count > len(candidates):
        raise SeatsError(
            f"{party or 'the list'} has {count} seats but only {len(candidates)} candidates"
        )
    by_name = {c.name: c for c in candidates}
    position = {
        c.name: (c.list_position if c.list_position is not None else i)
        for i, c in enumerate(candidates)
    }
    rule = tie_rule if tie_rule is not None else ListedOrder()

    # 1. rank by votes; equal votes ordered by the tie rule
    groups: dict[int, list[str]] = {}
    for c in candidates:
        groups.setdefault(c.votes, []).append(c.name)
    ranked: list[str] = []
    draws_by_group: dict[int, tuple[list[str], tuple[LotDraw, ...]]] = {}
    for votes in sorted(groups, reverse=True):
        names = sorted(groups[votes], key=position.__getitem__)
        order, draws = rank_tied(names, rule, position) if len(names) > 1 else (names, ())
        draws_by_group[votes] = (order, draws)
        ranked.extend(order)
    rank = {name: i + 1 for i, name in enumerate(ranked)}

    # 2. the best-ranked are elected
    elected = ranked[:count]
    required = math.ceil(share * count)
    is_woman = {name: by_name[name].gender == women for name in ranked}
    women_in = sum(is_woman[name] for name in elected)
    replaced: list[str] = []
    promoted: set[str] = set()
    notes: list[str] = []

    # 3. men ranked lowest give way to the best-ranked women not elected
    if women_in < required:
        waiting = [name for name in ranked[count:] if is_woman[name]]
        men = [name for name in reversed(elected) if not is_woman[name]]
        for woman, man in zip(waiting, men, strict=False):
            if women_in >= required:
                break
            elected.remove(man)
            elected.append(woman)
            replaced.append(man)
            promoted.add(woman)
            women_in += 1
        notes.append(
            f"{len(promoted)} women elected in place of the lowest-ranked men to reach "
            f"{required} of {count} seats ({share * 100}% minimum)"
        )
    shortfall = max(0, required - women_in)
    if shortfall:
        notes.append(f"the list has too few women: {shortfall} short of the minimum {required}")

    # ties that decided something: equal votes on both sides of the line
    chosen = set(elected)
    ties: list[TieRecord] = []
    for votes, (order, draws) in draws_by_group.items():
        inside = [name for name in order if name in chosen]
        if inside and len(inside) < len(order):
            ties.append(
                TieRecord(
                    stage="open list: preference votes",
                    value=Fraction(votes),
                    tied=tuple(sorted(order, key=position.__getitem__)),
                    places=len(inside),
                    winners=tuple(inside),
                    rule=rule.describe(),
                    draws=draws,
                )
            )

    seats_out = tuple(
        ListSeat(
            name=name,
            votes=by_name[name].votes,
            gender=by_name[name].gender,
            rank=rank[name],
            reason="minimum share for women" if name in promoted else "preference votes",
        )
        for name in sorted(elected, key=rank.__getitem__)
    )
    return OpenListResult(
        party=party,
        seats=count,
        elected=seats_out,
        women_required=required,
        women_elected=women_in,
        replaced=tuple(replaced),
        shortfall=shortfall,
        ties=tuple(ties),
        notes=tuple(notes),
    )

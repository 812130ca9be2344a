"""Ties: never resolved silently.

When two or more choices are level on the number that decides a seat (a remainder, a quotient,
a vote count) and not all of them can have it, the tie is broken by the contest's rule and
recorded as a :class:`TieRecord` in the explanation. Two rules exist:

* :class:`ListedOrder` — the law names an order (ballot position, registration order); the
  earlier choice wins. Without an explicit order, the order of the input is used.
* :class:`Lot` — a lot drawn reproducibly from a public seed. Each tied name gets the SHA-256
  digest of ``seed + "\\n" + name`` (UTF-8); the lowest digest is drawn first. Anyone can check a
  draw with ``printf '%s\\n%s' SEED NAME | sha256sum``. The seed must be fixed in public before
  the count is known (for instance drawn at a public session), or the lot is not a lot.

Ties that do not decide anything (every tied choice gets the seat, or none does) are not
recorded: they change nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import msgspec

from tallyroom.seats.errors import SeatsError
from tallyroom.seats.exact import optional_rational_json

__all__ = ["ListedOrder", "Lot", "LotDraw", "TieRecord", "TieRule", "lot_digest", "rank_tied"]


@dataclass(frozen=True, slots=True)
class ListedOrder:
    """The earlier choice in ``order`` wins a tie; an empty ``order`` means the input order."""

    order: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.order:
            return "listed order (earlier in the stated order wins)"
        return "listed order (earlier in the input wins)"


@dataclass(frozen=True, slots=True)
class Lot:
    """A lot drawn from a public ``seed``: lowest SHA-256 of ``seed + "\\n" + name`` wins."""

    seed: str

    def describe(self) -> str:
        return f"lot: lowest SHA-256(seed + '\\n' + name) wins, seed {self.seed!r}"


TieRule = ListedOrder | Lot


class LotDraw(msgspec.Struct, frozen=True):
    """One tied name's draw: the SHA-256 hex digest that ranked it."""

    name: str
    sha256: str


class TieRecord(msgspec.Struct, frozen=True):
    """A tie that decided a seat, and how it was broken.

    ``value`` is the tied quantity (remainder, quotient or votes) and ``places`` how many of the
    ``tied`` choices could have what was at stake; ``winners`` got it.
    """

    stage: str
    value: Fraction | None
    tied: tuple[str, ...]
    places: int
    winners: tuple[str, ...]
    rule: str
    draws: tuple[LotDraw, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "value": optional_rational_json(self.value),
            "tied": list(self.tied),
            "places": self.places,
            "winners": list(self.winners),
            "rule": self.rule,
            "draws": [{"name": d.name, "sha256": d.sha256} for d in self.draws],
        }


def lot_digest(seed: str, name: str) -> str:
    """SHA-256 hex digest of ``seed + "\\n" + name`` in UTF-8: one name's ticket in a lot."""
    return hashlib.sha256(f"{seed}\n{name}".encode()).hexdigest()


def rank_tied(
    tied: Sequence[str], rule: TieRule, input_position: Mapping[str, int]
) -> tuple[list[str], tuple[LotDraw, ...]]:
    """Order tied names best first under ``rule``; return the order and any lot draws.

    ``input_position`` gives each name's position in the input, used by an empty
    :class:`ListedOrder`.
    """
    if isinstance(rule, Lot):
        draws = tuple(LotDraw(name, lot_digest(rule.seed, name)) for name in tied)
        ranked = sorted(draws, key=lambda d: (d.sha256, d.name))
        return [d.name for d in ranked], draws
    if rule.order:
        position = {name: i for i, name in enumerate(rule.order)}
        missing = [name for name in tied if name not in position]
        if missing:
            raise SeatsError(
                f"tie between {', '.join(map(repr, tied))} cannot be broken: "
                f"{', '.join(map(repr, missing))} not in the stated tie-break order"
            )
        return sorted(tied, key=position.__getitem__), ()
    return sorted(tied, key=input_position.__getitem__), ()


def settle(
    *,
    stage: str,
    value: Fraction | None,
    tied: Sequence[str],
    places: int,
    rule: TieRule,
    input_position: Mapping[str, int],
) -> tuple[list[str], TieRecord]:
    """Give ``places`` of the ``tied`` choices what is at stake; return winners and the record."""
    ranked, draws = rank_tied(tied, rule, input_position)
    winners = ranked[:places]
    record = TieRecord(
        stage=stage,
        value=value,
        tied=tuple(tied),
        places=places,
        winners=tuple(winners),
        rule=rule.describe(),
        draws=draws,
    )
    return winners, record

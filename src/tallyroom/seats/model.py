"""The shapes of a seat allocation: methods, per-choice lines, explanation, result.

Inputs (thresholds, tie rules, bases) are frozen dataclasses validated on construction; results
are frozen ``msgspec.Struct`` objects, cheap to build for a thousand parties, and each has a
``to_json_dict()`` giving the JSON the public site renders. Exact numbers appear in JSON as
``{"fraction": "813687/54", "decimal": "15068.277778"}`` (see :func:`exact.rational_json`).
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction
from typing import Any

import msgspec

from tallyroom.seats.errors import SeatsError
from tallyroom.seats.exact import as_count, optional_rational_json
from tallyroom.seats.thresholds import ThresholdCheck
from tallyroom.seats.ties import TieRecord

__all__ = [
    "DIVISOR_METHODS",
    "QUOTA_METHODS",
    "Allocation",
    "CapStep",
    "Explanation",
    "Method",
    "MethodInfo",
    "PartyLine",
    "Provisional",
    "Status",
    "parse_method",
]


class Method(StrEnum):
    """Apportionment methods, by the names the CLI uses."""

    HARE = "hare"
    DROOP = "droop"
    HAGENBACH_BISCHOFF = "hagenbach-bischoff"
    IMPERIALI_QUOTA = "imperiali-quota"
    DHONDT = "dhondt"
    SAINTE_LAGUE = "sainte-lague"
    MODIFIED_SAINTE_LAGUE = "modified-sainte-lague"
    DANISH = "danish"
    IMPERIALI = "imperiali"
    HUNTINGTON_HILL = "huntington-hill"


#: Largest-remainder (quota) methods.
QUOTA_METHODS = frozenset(
    {Method.HARE, Method.DROOP, Method.HAGENBACH_BISCHOFF, Method.IMPERIALI_QUOTA}
)
#: Highest-averages (divisor) methods.
DIVISOR_METHODS = frozenset(set(Method) - QUOTA_METHODS)


def parse_method(value: Method | str) -> Method:
    """Return the :class:`Method` named ``value``, or raise a :class:`SeatsError` listing names."""
    try:
        return Method(value)
    except ValueError:
        names = ", ".join(m.value for m in Method)
        raise SeatsError(f"unknown method {value!r}; methods are: {names}") from None


class Status(StrEnum):
    """Why a choice has the seats it has."""

    ALLOCATED = "allocated"  # took part in the allocation
    CAPPED = "capped"  # held at the cap; the excess went to the others
    BELOW_THRESHOLD = "below threshold"
    AGAINST_ALL = "against all"  # never takes seats


class MethodInfo(msgspec.Struct, frozen=True):
    """The method used, its rule in words, and where it is defined."""

    name: str
    family: str
    rule: str
    source: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "rule": self.rule, "source": self.source}


class PartyLine(msgspec.Struct, frozen=True):
    """One choice's line in an allocation.

    Largest remainder: ``quotient`` = votes ÷ quota, ``full_seats`` its whole part, ``remainder``
    the votes left after the full seats (votes − full_seats × quota), ``remainder_seat`` whether a
    remainder seat was won. Highest averages: ``last_quotient`` is the quotient that won the
    choice's last seat and ``next_quotient`` the one it would need for another (for
    Huntington–Hill both are squared, votes² ÷ (s(s+1)), to stay exact).
    """

    name: str
    votes: int
    seats: int
    status: Status
    quotient: Fraction | None = None
    full_seats: int | None = None
    remainder: Fraction | None = None
    remainder_seat: bool = False
    last_quotient: Fraction | None = None
    next_quotient: Fraction | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "votes": self.votes,
            "seats": self.seats,
            "status": self.status.value,
            "quotient": optional_rational_json(self.quotient),
            "full_seats": self.full_seats,
            "remainder": optional_rational_json(self.remainder),
            "remainder_seat": self.remainder_seat,
            "last_quotient": optional_rational_json(self.last_quotient),
            "next_quotient": optional_rational_json(self.next_quotient),
        }


class CapStep(msgspec.Struct, frozen=True):
    """A cap redistribution: ``name`` would have had ``seats_before``; it keeps ``cap``.

    The ``excess`` seats, with all others not yet fixed, were allocated again among
    ``redistributed_to`` by the same method (round ``round`` + 1).
    """

    round: int
    name: str
    cap: int
    seats_before: int
    excess: int
    redistributed_to: tuple[str, ...]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "name": self.name,
            "cap": self.cap,
            "seats_before": self.seats_before,
            "excess": self.excess,
            "redistributed_to": list(self.redistributed_to),
        }


class Provisional(msgspec.Struct, frozen=True):
    """Seats computed on an incomplete count: how many stations have reported so far.

    Passed through by the caller; an allocation carrying it is a projection, not a result.
    """

    stations_reporting: int
    stations_expected: int

    def __post_init__(self) -> None:
        as_count(self.stations_reporting, "stations reporting")
        as_count(self.stations_expected, "stations expected", minimum=1)
        if self.stations_reporting > self.stations_expected:
            raise SeatsError(
                f"stations reporting ({self.stations_reporting}) exceed stations expected "
                f"({self.stations_expected})"
            )

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "stations_reporting": self.stations_reporting,
            "stations_expected": self.stations_expected,
        }


class Explanation(msgspec.Struct, frozen=True):
    """Everything needed to check an allocation by hand.

    ``votes_considered`` are the votes of the choices that passed the thresholds; ``quota``
    (largest remainder) or ``divisors`` and ``electoral_key`` (highest averages: the smallest
    quotient that won a seat) are those of the final round (after any cap redistribution); then a
    line per choice, every threshold decision, cap redistributions, ties, and ``notes`` in words.
    """

    method: MethodInfo
    seats: int
    votes_considered: int
    lines: tuple[PartyLine, ...]
    quota: Fraction | None = None
    divisors: str | None = None
    electoral_key: Fraction | None = None
    thresholds: tuple[ThresholdCheck, ...] = ()
    caps: tuple[CapStep, ...] = ()
    ties: tuple[TieRecord, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.to_json_dict(),
            "seats": self.seats,
            "votes_considered": self.votes_considered,
            "quota": optional_rational_json(self.quota),
            "divisors": self.divisors,
            "electoral_key": optional_rational_json(self.electoral_key),
            "lines": [line.to_json_dict() for line in self.lines],
            "thresholds": [check.to_json_dict() for check in self.thresholds],
            "caps": [step.to_json_dict() for step in self.caps],
            "ties": [tie.to_json_dict() for tie in self.ties],
            "notes": list(self.notes),
        }


class Allocation(msgspec.Struct, frozen=True):
    """Seats per choice (every choice, in input order, zero included) and their explanation."""

    method: str
    seats_total: int
    seats: dict[str, int]
    explanation: Explanation
    provisional: Provisional | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"seats": {name: n}, "method": ..., "explanation": {...}, ...}``."""
        return {
            "method": self.method,
            "seats_total": self.seats_total,
            "seats": dict(self.seats),
            "provisional": self.provisional is not None,
            "stations": None if self.provisional is None else self.provisional.to_json_dict(),
            "explanation": self.explanation.to_json_dict(),
        }

    def winners(self) -> dict[str, int]:
        """Only the choices with at least one seat."""
        return {name: n for name, n in self.seats.items() if n}


class RoundResult(msgspec.Struct, frozen=True):
    """One run of a method over some choices (internal; caps may need several rounds)."""

    seats: list[int]
    lines: list[PartyLine]
    quota: Fraction | None = None
    divisors: str | None = None
    electoral_key: Fraction | None = None
    ties: list[TieRecord] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)

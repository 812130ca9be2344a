"""Thresholds: which choices may take part in the seat allocation.

Every threshold states its base — the number its percentage is taken of — because laws differ
and the difference decides seats (DESIGN invariant 6). Kyrgyzstan takes 5% (2021; 7% in 2020)
of the *voters who took part* and 0.5% (0.7%) of them in each of the seven oblasts and the cities
of Bishkek and Osh (Constitutional Law "On elections of the President and deputies of the
Jogorku Kenesh", art. 60); Russia takes 5% of the voters who took part, i.e. the ballots found in
the boxes (Federal Law No. 20-FZ of 22 Feb 2014 "On elections of deputies of the State Duma",
art. 88); the Netherlands requires one full quota, the *kiesdeler* (Kieswet art. P 7(2), since
1937).

Each decision is returned as a :class:`ThresholdCheck` with the votes, the base (label and
value), the required number and pass/fail, so the explanation can show it.

Kinds of threshold (all listed thresholds must be passed; use :class:`AnyOf` for "either"):

* :class:`PercentThreshold` — a percentage of a stated base, nationally.
* :class:`RegionalThreshold` — a percentage in *each* of a list of regions, each region with its
  own votes and its own base.
* :class:`MinimumWins` — a number of single-member seats won (e.g. Germany's three constituency
  seats, Bundeswahlgesetz § 6(3) as in force in 2017; New Zealand's one electorate seat).
* :class:`AnyOf` — alternative qualifications ("5% or 3 single-member wins").
* :class:`CoalitionThreshold` — a percentage that depends on how many parties form the list
  (Slovakia: 5% for a party, 7% for two or three, 10% for four or more).
* :class:`FullQuota` — a fraction of the Hare quota (total votes ÷ seats); the Dutch *kiesdeler*.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgspec

from tallyroom.seats.errors import SeatsError
from tallyroom.seats.exact import as_count, as_fraction, optional_rational_json, rational_json

__all__ = [
    "AnyOf",
    "Base",
    "CoalitionThreshold",
    "FullQuota",
    "MinimumWins",
    "PercentThreshold",
    "Region",
    "RegionalThreshold",
    "Threshold",
    "ThresholdCheck",
    "ThresholdReport",
    "evaluate_thresholds",
]


@dataclass(frozen=True, slots=True)
class Base:
    """The number a percentage is taken of, with what it counts.

    ``label`` is what the law calls it: ``"valid votes"``, ``"ballots cast"``, ``"voters who took
    part"``. ``value`` is the number itself, given by the caller from the tally.
    """

    label: str
    value: int

    def __post_init__(self) -> None:
        if not self.label.strip():
            raise SeatsError("a threshold base needs a label, e.g. 'valid votes'")
        as_count(self.value, f"threshold base {self.label!r}", minimum=1)

    def to_json_dict(self) -> dict[str, Any]:
        return {"label": self.label, "value": self.value}


#: An exact number as callers may give it (floats are refused, see :mod:`exact`).
Exact = Fraction | int | str | Decimal


def _percent(value: object, what: str) -> Fraction:
    percent = as_fraction(value, what)
    if not 0 <= percent <= 100:
        raise SeatsError(f"{what} must be between 0 and 100, got {percent}")
    return percent


@dataclass(frozen=True, slots=True, init=False)
class PercentThreshold:
    """At least ``percent`` % of ``base`` nationally (more than, if ``strict``).

    ``percent`` may be given as ``5``, ``"0.7"``, ``Fraction(7, 10)`` or a ``Decimal``; it is
    stored as a :class:`~fractions.Fraction`.
    """

    percent: Fraction
    base: Base
    strict: bool
    label: str

    def __init__(
        self, percent: Exact, base: Base, strict: bool = False, label: str = "national"
    ) -> None:
        object.__setattr__(self, "percent", _percent(percent, "threshold percent"))
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "strict", strict)
        object.__setattr__(self, "label", label)


@dataclass(frozen=True, slots=True)
class Region:
    """One region's votes per choice and its own base (e.g. its voters who took part)."""

    name: str
    votes: Mapping[str, int]
    base: Base


@dataclass(frozen=True, slots=True, init=False)
class RegionalThreshold:
    """At least ``percent`` % of each region's base in *every* region listed."""

    percent: Fraction
    regions: tuple[Region, ...]
    strict: bool
    label: str

    def __init__(
        self,
        percent: Exact,
        regions: Sequence[Region],
        strict: bool = False,
        label: str = "each region",
    ) -> None:
        object.__setattr__(self, "percent", _percent(percent, "regional threshold percent"))
        object.__setattr__(self, "regions", tuple(regions))
        object.__setattr__(self, "strict", strict)
        object.__setattr__(self, "label", label)
        if not self.regions:
            raise SeatsError("a regional threshold needs at least one region")
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise SeatsError("regional threshold: a region is listed twice")


@dataclass(frozen=True, slots=True)
class MinimumWins:
    """At least ``minimum`` single-member seats won; ``wins`` maps choice -> seats won."""

    wins: Mapping[str, int]
    minimum: int
    label: str = "single-member wins"

    def __post_init__(self) -> None:
        as_count(self.minimum, "minimum number of wins", minimum=1)
        for name, count in self.wins.items():
            as_count(count, f"single-member wins for {name!r}")


@dataclass(frozen=True, slots=True, init=False)
class AnyOf:
    """Passed if any one of ``options`` is passed (alternative qualifications)."""

    options: tuple[Threshold, ...]
    label: str

    def __init__(self, options: Sequence[Threshold], label: str = "any of") -> None:
        object.__setattr__(self, "options", tuple(options))
        object.__setattr__(self, "label", label)
        if not self.options:
            raise SeatsError("AnyOf needs at least one alternative")


@dataclass(frozen=True, slots=True, init=False)
class CoalitionThreshold:
    """A percentage of ``base`` that depends on the number of parties in the list.

    ``brackets`` are ``(minimum members, percent)`` pairs, the first starting at 1: with
    ``((1, 5), (2, 7), (4, 10))`` a party needs 5%, a list of two or three parties 7%, of four or
    more 10% (the Slovak National Council rule, as in votelib's test of the 2020 election).
    ``members`` maps a list's name to its number of parties; lists not named are single parties.
    """

    brackets: tuple[tuple[int, Fraction], ...]
    members: Mapping[str, int]
    base: Base
    strict: bool
    label: str

    def __init__(
        self,
        brackets: Sequence[tuple[int, Exact]],
        members: Mapping[str, int],
        base: Base,
        strict: bool = False,
        label: str = "by coalition size",
    ) -> None:
        checked = tuple(
            (as_count(size, "coalition bracket size", minimum=1), _percent(p, "bracket percent"))
            for size, p in brackets
        )
        if not checked or checked[0][0] != 1:
            raise SeatsError("coalition thresholds must start with a bracket for 1 party")
        sizes = [size for size, _ in checked]
        if sizes != sorted(set(sizes)):
            raise SeatsError("coalition bracket sizes must be increasing")
        for name, count in members.items():
            as_count(count, f"number of parties in {name!r}", minimum=1)
        object.__setattr__(self, "brackets", checked)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "strict", strict)
        object.__setattr__(self, "label", label)

    def percent_for(self, name: str) -> Fraction:
        size = self.members.get(name, 1)
        percent = self.brackets[0][1]
        for minimum, bracket_percent in self.brackets:
            if size >= minimum:
                percent = bracket_percent
        return percent


@dataclass(frozen=True, slots=True, init=False)
class FullQuota:
    """At least ``fraction`` of the Hare quota (votes for all lists ÷ seats).

    With ``fraction = 1`` this is the Dutch *kiesdeler* threshold for the Tweede Kamer (Kieswet
    art. P 7(2)); ``Fraction(3, 4)`` is the 75% rule of the 1922–1933 Tweede Kamer and of Dutch
    councils under 19 seats.
    """

    fraction: Fraction
    label: str

    def __init__(self, fraction: Exact = 1, label: str = "full quota") -> None:
        value = as_fraction(fraction, "full-quota fraction")
        if value < 0:
            raise SeatsError(f"full-quota fraction must not be negative, got {value}")
        object.__setattr__(self, "fraction", value)
        object.__setattr__(self, "label", label)


Threshold = (
    PercentThreshold | RegionalThreshold | MinimumWins | AnyOf | CoalitionThreshold | FullQuota
)


class ThresholdCheck(msgspec.Struct, frozen=True):
    """One threshold decision for one choice, with the numbers that decided it.

    ``value`` is what was measured (votes, or seats won for :class:`MinimumWins`), ``required``
    the number it had to reach (``>=``, or ``>`` when ``strict``), ``share`` the value as a
    percentage of ``base``. For :class:`AnyOf` the alternatives are in ``alternatives``.
    """

    threshold: str
    choice: str
    passed: bool
    measure: str
    value: int
    required: Fraction
    strict: bool = False
    base: Base | None = None
    percent: Fraction | None = None
    share: Fraction | None = None
    region: str | None = None
    alternatives: tuple[ThresholdCheck, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "choice": self.choice,
            "region": self.region,
            "measure": self.measure,
            "value": self.value,
            "comparison": ">" if self.strict else ">=",
            "required": rational_json(self.required),
            "percent": optional_rational_json(self.percent),
            "share_percent": optional_rational_json(self.share),
            "base": None if self.base is None else self.base.to_json_dict(),
            "passed": self.passed,
            "alternatives": [a.to_json_dict() for a in self.alternatives],
        }


class ThresholdReport(msgspec.Struct, frozen=True):
    """All threshold decisions and the choices that passed every one (in input order)."""

    checks: tuple[ThresholdCheck, ...]
    passed: tuple[str, ...]
    failed: tuple[str, ...]


def _describe_percent(percent: Fraction, base: Base, strict: bool, where: str) -> str:
    sign = "more than" if strict else "at least"
    return f"{where}: {sign} {_fmt(percent)}% of {base.label}"


def _fmt(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    for places in range(1, 7):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, frac = divmod(abs(scaled.numerator), 10**places)
            sign = "-" if value < 0 else ""
            return f"{sign}{whole}.{frac:0{places}d}"
    return f"{value.numerator}/{value.denominator}"


def _percent_check(
    *,
    label: str,
    choice: str,
    votes: int,
    percent: Fraction,
    base: Base,
    strict: bool,
    region: str | None = None,
) -> ThresholdCheck:
    required = percent * base.value / 100
    passed = votes > required if strict else votes >= required
    return ThresholdCheck(
        threshold=label,
        choice=choice,
        passed=passed,
        measure="votes",
        value=votes,
        required=required,
        strict=strict,
        base=base,
        percent=percent,
        share=Fraction(votes * 100, base.value),
        region=region,
    )


def _check_base_holds(
    votes: Mapping[str, int], names: Sequence[str], base: Base, where: str
) -> None:
    total = sum(votes.get(name, 0) for name in names)
    if total > base.value:
        raise SeatsError(
            f"{where}: the votes of the choices checked add up to {total}, more than the base "
            f"{base.label!r} ({base.value}); a base must include the votes it is a base for"
        )


def _evaluate_one(
    threshold: Threshold,
    votes: Mapping[str, int],
    names: Sequence[str],
    seats: int,
) -> dict[str, list[ThresholdCheck]]:
    """Checks for one threshold, per choice (several per choice for regional thresholds)."""
    out: dict[str, list[ThresholdCheck]] = {name: [] for name in names}
    if isinstance(threshold, PercentThreshold):
        label = _describe_percent(
            threshold.percent, threshold.base, threshold.strict, threshold.label
        )
        _check_base_holds(votes, names, threshold.base, label)
        for name in names:
            out[name].append(
                _percent_check(
                    label=label,
                    choice=name,
                    votes=votes[name],
                    percent=threshold.percent,
                    base=threshold.base,
                    strict=threshold.strict,
                )
            )
    elif isinstance(threshold, RegionalThreshold):
        for region in threshold.regions:
            label = _describe_percent(
                threshold.percent, region.base, threshold.strict, threshold.label
            )
            region_votes = {}
            for name in names:
                count = region.votes.get(name, 0)
                region_votes[name] = as_count(count, f"votes for {name!r} in {region.name!r}")
            _check_base_holds(region_votes, names, region.base, f"region {region.name!r}")
            for name in names:
                out[name].append(
                    _percent_check(
                        label=label,
                        choice=name,
                        votes=region_votes[name],
                        percent=threshold.percent,
                        base=region.base,
                        strict=threshold.strict,
                        region=region.name,
                    )
                )
    elif isinstance(threshold, MinimumWins):
        label = f"{threshold.label}: at least {threshold.minimum}"
        for name in names:
            won = threshold.wins.get(name, 0)
            out[name].append(
                ThresholdCheck(
                    threshold=label,
                    choice=name,
                    passed=won >= threshold.minimum,
                    measure="single-member seats won",
                    value=won,
                    required=Fraction(threshold.minimum),
                )
            )
    elif isinstance(threshold, CoalitionThreshold):
        _check_base_holds(votes, names, threshold.base, threshold.label)
        for name in names:
            percent = threshold.percent_for(name)
            size = threshold.members.get(name, 1)
            label = _describe_percent(
                percent,
                threshold.base,
                threshold.strict,
                f"{threshold.label} ({size} part{'y' if size == 1 else 'ies'})",
            )
            out[name].append(
                _percent_check(
                    label=label,
                    choice=name,
                    votes=votes[name],
                    percent=percent,
                    base=threshold.base,
                    strict=threshold.strict,
                )
            )
    elif isinstance(threshold, FullQuota):
        total = sum(votes[name] for name in names)
        if total == 0:
            raise SeatsError("full-quota threshold: no votes for any list")
        base = Base("votes for all lists", total)
        percent = threshold.fraction * 100 / seats
        label = (
            f"{threshold.label}: at least {_fmt(threshold.fraction)} × "
            f"({total} votes ÷ {seats} seats)"
        )
        for name in names:
            out[name].append(
                _percent_check(
                    label=label,
                    choice=name,
                    votes=votes[name],
                    percent=percent,
                    base=base,
                    strict=False,
                )
            )
    else:  # AnyOf
        per_option = [_evaluate_one(option, votes, names, seats) for option in threshold.options]
        for name in names:
            alternatives = tuple(check for option in per_option for check in option[name])
            # an option passes if all its checks pass (a regional option has several)
            passed = any(all(check.passed for check in option[name]) for option in per_option)
            out[name].append(
                ThresholdCheck(
                    threshold=threshold.label,
                    choice=name,
                    passed=passed,
                    measure="alternatives passed",
                    value=sum(all(c.passed for c in option[name]) for option in per_option),
                    required=Fraction(1),
                    alternatives=alternatives,
                )
            )
    return out


def evaluate_thresholds(
    votes: Mapping[str, int],
    thresholds: Sequence[Threshold],
    *,
    seats: int,
    exclude: Collection[str] = (),
) -> ThresholdReport:
    """Decide every threshold for every choice not in ``exclude``.

    A choice passes if it passes all ``thresholds`` (an empty list passes everyone). ``seats`` is
    needed by :class:`FullQuota`. Raises :class:`SeatsError` if a base is smaller than the votes
    it is supposed to include.
    """
    names = [name for name in votes if name not in exclude]
    checks: list[ThresholdCheck] = []
    ok = dict.fromkeys(names, True)
    for threshold in thresholds:
        result = _evaluate_one(threshold, votes, names, seats)
        for name in names:
            for check in result[name]:
                checks.append(check)
                if not check.passed:
                    ok[name] = False
    return ThresholdReport(
        checks=tuple(checks),
        passed=tuple(name for name in names if ok[name]),
        failed=tuple(name for name in names if not ok[name]),
    )

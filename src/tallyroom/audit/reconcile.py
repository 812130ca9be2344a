"""Reconciliation of machine (scanner) counts with hand counts, station by station.

Plain data in, plain data out: for each station present in both counts, the difference on
every line (``hand - machine``, absolute and relative to the machine count), the
overstatement of each outcome assertion (``margin(machine) - margin(hand)``, the quantity
batch-comparison audits use — Stark 2008, "A sharper discrepancy measure for post-election
audits"), and the recount flags raised by configurable rules. Summaries by region and a
histogram of differences feed the public pages.

A line missing from one side counts as 0 there and is listed in ``missing_in_machine`` /
``missing_in_hand``, so a protocol that drops a line is itself a discrepancy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Protocol

import msgspec

from tallyroom.audit.assertions import LinearAssertion

Allocate = Callable[[Mapping[str, int], int], Mapping[str, int]]


class StationCounts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One station's protocol lines (choices and other lines) for one count kind."""

    station_id: str
    lines: Mapping[str, int]


class LineDifference(msgspec.Struct, frozen=True):
    """One line: ``difference = hand - machine``; ``relative = difference / machine``.

    ``relative`` is 0 when both are 0 and ``None`` (unbounded) when the machine count is 0
    but the hand count is not.
    """

    line: str
    machine: int
    hand: int
    difference: int
    relative: Fraction | None


class Overstatement(msgspec.Struct, frozen=True):
    """How much the machine count overstated an assertion's margin at this station (votes).

    Positive: the machine count made the reported outcome look safer than the hand count.
    """

    assertion: str
    machine_margin: Fraction
    hand_margin: Fraction
    overstatement: Fraction


class RecountFlag(msgspec.Struct, frozen=True):
    """Why a rule marks a station for recount; ``line`` or ``assertion`` says what tripped it."""

    rule: str
    detail: str
    line: str | None = None
    assertion: str | None = None


class StationReconciliation(msgspec.Struct, frozen=True):
    """Everything known about one station's machine-vs-hand comparison."""

    station_id: str
    machine: Mapping[str, int]
    hand: Mapping[str, int]
    differences: tuple[LineDifference, ...]
    missing_in_machine: tuple[str, ...]
    missing_in_hand: tuple[str, ...]
    overstatements: tuple[Overstatement, ...]
    flags: tuple[RecountFlag, ...] = ()

    def differing_lines(self) -> tuple[str, ...]:
        """Lines whose counts differ (missing lines included)."""
        missing = set(self.missing_in_hand) | set(self.missing_in_machine)
        return tuple(d.line for d in self.differences if d.difference or d.line in missing)

    def difference(self, line: str) -> LineDifference | None:
        """The comparison of ``line``, or ``None`` if neither side has it."""
        return next((d for d in self.differences if d.line == line), None)

    def largest_difference(self, lines: Collection[str] | None = None) -> int:
        """The largest ``|hand - machine|`` over ``lines`` (default: every line); 0 if none."""
        return max(
            (abs(d.difference) for d in self.differences if lines is None or d.line in lines),
            default=0,
        )

    @property
    def flagged(self) -> bool:
        """Whether any rule marked the station for recount."""
        return bool(self.flags)


class Reconciliation(msgspec.Struct, frozen=True):
    """The comparison of all stations; stations present on one side only are listed apart."""

    stations: tuple[StationReconciliation, ...]
    machine_only: tuple[str, ...]
    hand_only: tuple[str, ...]

    def flagged(self) -> tuple[StationReconciliation, ...]:
        """Stations marked for recount."""
        return tuple(s for s in self.stations if s.flagged)

    def differing(self) -> tuple[StationReconciliation, ...]:
        """Stations with at least one differing line."""
        return tuple(s for s in self.stations if s.differing_lines())


# --- recount rules --------------------------------------------------------------------------


class RecountRule(Protocol):
    """A rule that inspects one station's comparison and returns the flags it raises."""

    def check(self, station: StationReconciliation) -> tuple[RecountFlag, ...]:
        """Return the flags this rule raises for ``station`` (empty if none)."""
        ...


class AnyDifference(msgspec.Struct, frozen=True):
    """Flag any difference (or missing line) on ``lines``; empty ``lines`` means every line."""

    lines: tuple[str, ...] = ()

    def check(self, station: StationReconciliation) -> tuple[RecountFlag, ...]:
        """One flag per differing line."""
        wanted = set(self.lines)
        out: list[RecountFlag] = []
        for line in station.differing_lines():
            if wanted and line not in wanted:
                continue
            d = station.difference(line)
            assert d is not None
            out.append(
                RecountFlag(
                    "any_difference",
                    f"{line}: machine {d.machine}, hand {d.hand} ({d.difference:+d})",
                    line=line,
                )
            )
        return tuple(out)


class AbsoluteDifference(msgspec.Struct, frozen=True):
    """Flag when ``|hand - machine| > threshold`` on ``line``."""

    line: str
    threshold: int

    def check(self, station: StationReconciliation) -> tuple[RecountFlag, ...]:
        """A flag if the line's absolute difference exceeds the threshold."""
        d = station.difference(self.line)
        if d is None or abs(d.difference) <= self.threshold:
            return ()
        detail = f"{self.line}: |{d.hand} - {d.machine}| = {abs(d.difference)} > {self.threshold}"
        return (RecountFlag("absolute_difference", detail, line=self.line),)


class RelativeDifference(msgspec.Struct, frozen=True):
    """Flag when ``|hand - machine| / machine > threshold`` on ``line`` (machine 0: any change)."""

    line: str
    threshold: Fraction

    def check(self, station: StationReconciliation) -> tuple[RecountFlag, ...]:
        """A flag if the line's relative difference exceeds the threshold."""
        d = station.difference(self.line)
        if d is None or d.difference == 0:
            return ()
        if d.relative is not None and abs(d.relative) <= self.threshold:
            return ()
        shown = "∞" if d.relative is None else f"{float(abs(d.relative)):.4%}"
        detail = (
            f"{self.line}: machine {d.machine}, hand {d.hand}, relative difference {shown} "
            f"> {float(self.threshold):.4%}"
        )
        return (RecountFlag("relative_difference", detail, line=self.line),)


class OutcomeAtRisk(msgspec.Struct, frozen=True):
    """Flag when this station's overstatement of an assertion reaches ``share`` of its margin.

    ``margins`` are the contest-wide reported margins of the assertions (in votes) — e.g.
    from :func:`tallyroom.audit.macro.contest_margins`. With ``share = 1`` a station is flagged
    when its difference alone could flip a winner–loser order or a threshold decision.
    """

    assertions: tuple[LinearAssertion, ...]
    margins: Mapping[str, Fraction]
    share: Fraction = Fraction(1)

    def check(self, station: StationReconciliation) -> tuple[RecountFlag, ...]:
        """One flag per assertion whose margin this station's difference could overturn."""
        out: list[RecountFlag] = []
        # compare_station has already computed the overstatements of its assertions.
        known = {o.assertion: o.overstatement for o in station.overstatements}
        for a in self.assertions:
            over = known.get(a.name)
            if over is None:
                over = a.overstatement(station.machine, station.hand)
            margin = self.margins[a.name]
            if over > 0 and over >= self.share * margin:
                detail = (
                    f"{a.name}: the machine count overstates the margin by {_votes(over)} "
                    f"votes; the contest margin is {_votes(margin)}"
                )
                out.append(RecountFlag("outcome_at_risk", detail, assertion=a.name))
        return tuple(out)


class SeatChange:
    """Flag when correcting the totals by this station's differences changes the seats.

    ``totals`` are the reported (machine) votes per party, ``allocate`` the contest's seat
    method (thresholds included), e.g. from the seats package. Not serialisable (holds a
    callable); it is configuration, not audit state.
    """

    def __init__(self, totals: Mapping[str, int], seats: int, allocate: Allocate) -> None:
        self.totals = dict(totals)
        self.seats = seats
        self.allocate = allocate
        self.reported = dict(allocate(self.totals, seats))

    def check(self, station: StationReconciliation) -> tuple[RecountFlag, ...]:
        """A flag if the corrected totals allocate seats differently."""
        corrected = {
            party: votes + (station.hand.get(party, 0) - station.machine.get(party, 0))
            for party, votes in self.totals.items()
        }
        if any(v < 0 for v in corrected.values()):
            return (RecountFlag("seat_change", "corrected totals would be negative"),)
        after = dict(self.allocate(corrected, self.seats))
        if after == self.reported:
            return ()
        moved = ", ".join(
            f"{p} {self.reported.get(p, 0)}→{after.get(p, 0)}"
            for p in sorted(set(after) | set(self.reported))
            if after.get(p, 0) != self.reported.get(p, 0)
        )
        return (RecountFlag("seat_change", f"this station's differences move seats: {moved}"),)


def _votes(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):.1f}"


# --- reconciliation -------------------------------------------------------------------------


def compare_station(
    machine: StationCounts,
    hand: StationCounts,
    assertions: Sequence[LinearAssertion] = (),
    rules: Sequence[RecountRule] = (),
) -> StationReconciliation:
    """Compare one station's machine and hand counts, evaluate assertions and rules."""
    if machine.station_id != hand.station_id:
        raise ValueError(f"station ids differ: {machine.station_id!r} vs {hand.station_id!r}")
    for side, counts in (("machine", machine), ("hand", hand)):
        negative = [line for line, v in counts.lines.items() if v < 0]
        if negative:
            raise ValueError(
                f"station {counts.station_id!r}: negative {side} counts on {', '.join(negative)}"
            )
    lines = list(machine.lines) + [line for line in hand.lines if line not in machine.lines]
    differences = []
    for line in lines:
        m, h = machine.lines.get(line, 0), hand.lines.get(line, 0)
        diff = h - m
        relative = Fraction(diff, m) if m else (Fraction(0) if diff == 0 else None)
        differences.append(LineDifference(line, m, h, diff, relative))
    overstatements = tuple(
        Overstatement(
            a.name,
            a.margin(machine.lines),
            a.margin(hand.lines),
            a.overstatement(machine.lines, hand.lines),
        )
        for a in assertions
    )
    station = StationReconciliation(
        station_id=machine.station_id,
        machine=dict(machine.lines),
        hand=dict(hand.lines),
        differences=tuple(differences),
        missing_in_machine=tuple(line for line in hand.lines if line not in machine.lines),
        missing_in_hand=tuple(line for line in machine.lines if line not in hand.lines),
        overstatements=overstatements,
    )
    flags = tuple(flag for rule in rules for flag in rule.check(station))
    return msgspec.structs.replace(station, flags=flags)


def reconcile(
    machine: Sequence[StationCounts],
    hand: Sequence[StationCounts],
    *,
    assertions: Sequence[LinearAssertion] = (),
    rules: Sequence[RecountRule] = (),
) -> Reconciliation:
    """Compare every station that has both counts; list the ones that have only one.

    Stations come out in the order of ``machine``. Duplicate station ids are refused.
    """
    by_hand: dict[str, StationCounts] = {}
    for h in hand:
        if h.station_id in by_hand:
            raise ValueError(f"station {h.station_id!r} appears twice in the hand count")
        by_hand[h.station_id] = h
    seen: set[str] = set()
    stations: list[StationReconciliation] = []
    machine_only: list[str] = []
    for m in machine:
        if m.station_id in seen:
            raise ValueError(f"station {m.station_id!r} appears twice in the machine count")
        seen.add(m.station_id)
        counted = by_hand.get(m.station_id)
        if counted is None:
            machine_only.append(m.station_id)
        else:
            stations.append(compare_station(m, counted, assertions, rules))
    hand_only = tuple(x.station_id for x in hand if x.station_id not in seen)
    return Reconciliation(tuple(stations), tuple(machine_only), hand_only)


# --- summaries ------------------------------------------------------------------------------


class RegionSummary(msgspec.Struct, frozen=True):
    """Totals for the stations of one region.

    ``net_difference`` sums ``hand - machine`` per line; ``absolute_difference`` sums
    ``|hand - machine|``; ``overstatement`` sums each assertion's overstatement (votes).
    """

    region: str
    stations: int
    stations_differing: int
    stations_flagged: int
    net_difference: Mapping[str, int]
    absolute_difference: Mapping[str, int]
    overstatement: Mapping[str, Fraction]


def summarize_by_region(
    result: Reconciliation,
    region_of: Mapping[str, str],
    *,
    unknown_region: str = "(no region)",
) -> tuple[RegionSummary, ...]:
    """Aggregate a reconciliation by region (``station id → region``), sorted by region."""
    groups: dict[str, list[StationReconciliation]] = {}
    for s in result.stations:
        groups.setdefault(region_of.get(s.station_id, unknown_region), []).append(s)
    out: list[RegionSummary] = []
    for region in sorted(groups):
        members = groups[region]
        net: dict[str, int] = {}
        absolute: dict[str, int] = {}
        over: dict[str, Fraction] = {}
        for s in members:
            for d in s.differences:
                net[d.line] = net.get(d.line, 0) + d.difference
                absolute[d.line] = absolute.get(d.line, 0) + abs(d.difference)
            for o in s.overstatements:
                over[o.assertion] = over.get(o.assertion, Fraction(0)) + o.overstatement
        out.append(
            RegionSummary(
                region=region,
                stations=len(members),
                stations_differing=sum(1 for s in members if s.differing_lines()),
                stations_flagged=sum(1 for s in members if s.flagged),
                net_difference=net,
                absolute_difference=absolute,
                overstatement=over,
            )
        )
    return tuple(out)


class HistogramBin(msgspec.Struct, frozen=True):
    """Stations whose difference on a line lies in ``[low, high)``."""

    low: int
    high: int
    count: int


def difference_histogram(
    result: Reconciliation, line: str, bin_width: int = 1
) -> tuple[HistogramBin, ...]:
    """Histogram of ``hand - machine`` on ``line`` over all compared stations.

    Bins are ``[k·w, (k+1)·w)`` for integers k, contiguous from the lowest to the highest
    occupied bin (empty bins in between are kept so the chart has no gaps). Stations where
    neither count has the line are left out.
    """
    values = (d.difference for s in result.stations if (d := s.difference(line)) is not None)
    return histogram(values, bin_width)


def histogram(values: Iterable[int], bin_width: int = 1) -> tuple[HistogramBin, ...]:
    """Counts of integer ``values`` in bins ``[k·w, (k+1)·w)``, contiguous from the lowest to
    the highest occupied bin (empty bins in between are kept). The counts add up to the
    number of values."""
    if bin_width < 1:
        raise ValueError("bin width must be a positive integer")
    counts: dict[int, int] = {}
    for v in values:
        k = v // bin_width
        counts[k] = counts.get(k, 0) + 1
    if not counts:
        return ()
    return tuple(
        HistogramBin(k * bin_width, (k + 1) * bin_width, counts.get(k, 0))
        for k in range(min(counts), max(counts) + 1)
    )

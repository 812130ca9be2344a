"""Audit inputs from an election: station counts, the assertions an outcome rests on.

Turns a contest's protocols (plain vectors in form order) into the `StationCounts` and
`ReportedBatch` shapes the audit mathematics works on, adding each station's figures (voters
who took part, ballots cast, …) as lines so that threshold assertions can use them as their
base. Pure: no store, no web.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from tallyroom.audit.assertions import LinearAssertion, pairwise_assertions, threshold_assertions
from tallyroom.audit.macro import ReportedBatch
from tallyroom.audit.reconcile import StationCounts
from tallyroom.definition.compiled import CompiledContest, CompiledElection
from tallyroom.definition.model import Figure

#: Figures are added to a station's lines under these names.
FIGURE_PREFIX = "figure:"


def station_lines(contest: CompiledContest, counts: Sequence[int]) -> dict[str, int]:
    """A protocol's lines by id, plus its figures as `figure:<name>`."""
    lines = dict(zip(contest.line_ids, counts, strict=True))
    for fig in Figure:
        value = contest.figure(fig, counts)
        if value is not None:
            lines[FIGURE_PREFIX + str(fig)] = value
    return lines


def station_counts(
    election: CompiledElection, contest: CompiledContest, protocols: Iterable[tuple[int, Sequence[int]]]
) -> list[StationCounts]:
    """(station index, counts) pairs as StationCounts, in the given order."""
    return [StationCounts(election.stations[s].id, station_lines(contest, counts)) for s, counts in protocols]


def ballots(contest: CompiledContest, counts: Sequence[int]) -> int:
    """The most ballots a station's count of this contest can involve (its error bound)."""
    for fig in (Figure.TOOK_PART, Figure.BALLOTS_CAST):
        value = contest.figure(fig, counts)
        if value is not None:
            return value
    return sum(counts[contest.choice_start :])


def reported_batches(
    election: CompiledElection, contest: CompiledContest, protocols: Iterable[tuple[int, Sequence[int]]]
) -> list[ReportedBatch]:
    """Stations as MACRO batches: id, ballots, and the reported lines (choices and figures)."""
    return [
        ReportedBatch(election.stations[s].id, ballots(contest, counts), station_lines(contest, counts))
        for s, counts in protocols
    ]


def contest_assertions(contest: CompiledContest, totals: Mapping[str, int]) -> tuple[LinearAssertion, ...]:
    """The assertions a contest's reported outcome rests on.

    A party-list contest with a threshold: each party passed (or failed) the threshold of the
    law's base (Kyrgyz law: voters who took part). A single-member contest: the leader beat
    every other line, "against all" included (in Kyrgyzstan the election fails otherwise).
    `totals` are the contest's reported totals by line id, figures included.
    """
    choices = [c.id for c in contest.contest.choices if not c.against_all]
    rules = contest.contest.allocation
    if rules is not None and rules.method in ("plurality", "two-round"):
        all_lines = {c: totals.get(c, 0) for c in contest.choice_ids}
        leader = max(choices, key=lambda c: totals.get(c, 0))
        return pairwise_assertions(contest.id, all_lines, [leader])
    if rules is not None and rules.threshold_percent is not None:
        base = FIGURE_PREFIX + str(rules.threshold_base)
        threshold = Fraction(rules.threshold_percent) / 100
        return threshold_assertions(
            contest.id, totals, choices, threshold, base_line=base if base in totals else None
        )
    leader = max(choices, key=lambda c: totals.get(c, 0))
    return pairwise_assertions(contest.id, {c: totals.get(c, 0) for c in choices}, [leader])

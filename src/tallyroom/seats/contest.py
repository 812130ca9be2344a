"""Seats of a contest from its tally, under the allocation rules of the election definition.

Bridges the definition (`Allocation`: method, seats, thresholds with their base, regional
thresholds, cap) and the tally (totals per area and count kind) to `allocate` and
`plurality`. Official seats come only from the count kind the definition declares official
and only when every station has reported; anything else is a provisional projection that
says how many stations it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tallyroom.definition.compiled import CompiledContest, CompiledElection, name_in
from tallyroom.definition.model import ContestKind, Figure
from tallyroom.seats.allocate import allocate
from tallyroom.seats.errors import NoEligibleChoicesError, SeatsError
from tallyroom.seats.model import Allocation, Provisional
from tallyroom.seats.single import MajorityResult, SingleMemberResult, plurality, two_round
from tallyroom.seats.thresholds import Base, PercentThreshold, Region, RegionalThreshold, Threshold
from tallyroom.seats.ties import ListedOrder, Lot, TieRule
from tallyroom.tally.report import BASE_WORDS
from tallyroom.tally.running import Tally, Totals


@dataclass(frozen=True)
class ContestSeats:
    """The seat outcome of one contest for one count kind."""

    contest: str
    count_kind: str
    official: bool
    stations_reporting: int
    stations_expected: int
    result: Allocation | SingleMemberResult | MajorityResult | None
    #: Why there is no result (no votes yet, nobody over the threshold…), or None.
    outcome_note: str | None = None
    no_eligible: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "contest": self.contest,
            "count_kind": self.count_kind,
            "official": self.official,
            "provisional": not self.official,
            "stations_reporting": self.stations_reporting,
            "stations_expected": self.stations_expected,
        }
        if self.result is not None:
            out["result"] = self.result.to_json_dict()
            if isinstance(self.result, Allocation):
                out["seats"] = dict(self.result.seats)
        if self.outcome_note:
            out["note"] = self.outcome_note
        if self.no_eligible is not None:
            out["thresholds"] = self.no_eligible
        return out


def _tie_rule(rule: str, election: CompiledElection) -> TieRule:
    # "lot:SEED" draws lots reproducibly from a public seed; "lot" alone uses the definition's
    # hash as the seed, which is public and fixed before any vote is counted.
    if rule.startswith("lot"):
        _, _, seed = rule.partition(":")
        return Lot(seed or election.sha256)
    return ListedOrder()


def _figure(contest: CompiledContest, fig: Figure, totals: Totals) -> int:
    value = contest.figure(fig, totals.counts)
    if value is None:
        raise SeatsError(
            f'contest "{contest.id}": the form has no figure "{fig}" for the threshold base'
        )
    return value


def contest_seats(
    election: CompiledElection, contest: CompiledContest, tally: Tally, count_kind: str
) -> ContestSeats:
    """Allocate the seats of one contest from the tally of one count kind."""
    rules = contest.contest.allocation
    root = election.area_index[contest.contest.area]
    totals = tally.get(contest.index, root, count_kind)
    expected = contest.stations_expected.get(root, 0)
    reporting = totals.reporting if totals is not None else 0
    official = count_kind == str(contest.official_count) and reporting == expected

    def outcome(
        result: Allocation | SingleMemberResult | MajorityResult | None,
        note: str | None = None,
        no_eligible: dict[str, Any] | None = None,
    ) -> ContestSeats:
        return ContestSeats(
            contest.id, count_kind, official, reporting, expected, result, note, no_eligible
        )

    if rules is None:
        return outcome(None, "the definition gives no allocation rules")
    if totals is None or reporting == 0:
        return outcome(None, "no protocols counted yet")
    provisional = None if official else Provisional(reporting, max(expected, 1))
    start = contest.choice_start
    names = [name_in(ch.name) for ch in contest.contest.choices]
    votes = {names[j]: totals.counts[start + j] for j in range(len(names))}
    against = [names[j] for j, ch in enumerate(contest.contest.choices) if ch.against_all]
    tie = _tie_rule(rules.tie_break, election)

    if rules.method in ("plurality", "two-round"):
        base = Base(
            BASE_WORDS.get(str(rules.threshold_base), str(rules.threshold_base)),
            _figure(contest, rules.threshold_base, totals),
        )
        aa = against[0] if against else None
        single: SingleMemberResult | MajorityResult
        if rules.method == "plurality":
            single = plurality(
                votes, against_all=aa, tie_rule=tie, contest=contest.id, provisional=provisional
            )
        else:
            single = two_round(
                votes,
                base=base,
                against_all=aa,
                tie_rule=tie,
                contest=contest.id,
                provisional=provisional,
            )
        return outcome(single)

    thresholds: list[Threshold] = []
    base_words = BASE_WORDS.get(str(rules.threshold_base), str(rules.threshold_base))
    if rules.threshold_percent is not None:
        base = Base(base_words, _figure(contest, rules.threshold_base, totals))
        thresholds.append(PercentThreshold(Fraction(rules.threshold_percent), base))
    notes: list[str] = []
    if rules.regional_threshold is not None:
        regions = []
        for area_id in rules.regional_threshold.areas:
            area = election.area_index[area_id]
            t = tally.get(contest.index, area, count_kind) or Totals([0] * len(contest.line_ids))
            if _figure(contest, rules.threshold_base, t) == 0:
                # A region with nothing counted yet cannot be judged: leave it out and say so.
                notes.append(
                    f"regional threshold not applied in {name_in(election.areas[area].name)}: "
                    f"no {base_words} counted there yet"
                )
                continue
            regions.append(
                Region(
                    name_in(election.areas[area].name),
                    {names[j]: t.counts[start + j] for j in range(len(names))},
                    Base(base_words, _figure(contest, rules.threshold_base, t)),
                )
            )
        if regions:
            thresholds.append(
                RegionalThreshold(Fraction(rules.regional_threshold.percent), regions)
            )
    try:
        result = allocate(
            votes,
            rules.seats,
            rules.method,
            thresholds=thresholds,
            cap=rules.cap,
            against_all=against,
            tie_rule=tie,
            provisional=provisional,
        )
    except NoEligibleChoicesError as exc:
        checks = {"checks": [c.to_json_dict() for c in exc.checks]}
        return outcome(None, "; ".join([str(exc), *notes]), checks)
    return outcome(result, "; ".join(notes) or None)


def party_list_kind(contest: CompiledContest) -> bool:
    return contest.contest.kind == ContestKind.PARTY_LIST

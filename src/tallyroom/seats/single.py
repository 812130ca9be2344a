"""Single-member contests: plurality, and two-round majority.

* :func:`plurality` — the candidate with the most votes wins (first past the post; e.g. the
  German *Erststimme*, Bundeswahlgesetz § 5). Where the ballot has an "against all" line and it
  has *more* votes than the leader, there is no winner: the election fails and is held again.
  That is the Kyrgyz rule (Constitutional Law "On elections of the President and deputies of the
  Jogorku Kenesh"), applied on 28 November 2021 in Bishkek's Sverdlovsky and Pervomaisky
  constituencies. Against-all equal to the leader does not fail the election (it must exceed).
* :func:`two_round` — a candidate with more than half of a stated base is elected in the first
  round; otherwise the leading candidates (two by default) go to a runoff. The base is given by
  the caller: the Kyrgyz President needs more than half of the *voters who took part*.

Ties for a place that matters (the lead, a runoff place) are broken by the tie rule and reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from fractions import Fraction
from typing import Any

import msgspec

from tallyroom.seats.errors import SeatsError
from tallyroom.seats.exact import as_count, check_votes, optional_rational_json, rational_json
from tallyroom.seats.model import Provisional
from tallyroom.seats.thresholds import Base
from tallyroom.seats.ties import ListedOrder, TieRecord, TieRule, settle

__all__ = [
    "CandidateVotes",
    "MajorityResult",
    "Outcome",
    "SingleMemberResult",
    "plurality",
    "two_round",
]


class Outcome(StrEnum):
    ELECTED = "elected"
    FAILED = "failed election"  # against all beat the leader: no winner, the election is rerun
    RUNOFF = "runoff"


class CandidateVotes(msgspec.Struct, frozen=True):
    """One line of a single-member result; ``share`` is a percentage of the result's base."""

    name: str
    votes: int
    share: Fraction | None
    against_all: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "votes": self.votes,
            "share_percent": optional_rational_json(self.share),
            "against_all": self.against_all,
        }


class SingleMemberResult(msgspec.Struct, frozen=True):
    """A plurality contest: the winner, or a failed election, with the reason in words."""

    outcome: Outcome
    winner: str | None
    leader: str
    lines: tuple[CandidateVotes, ...]
    base: Base
    reason: str
    ties: tuple[TieRecord, ...] = ()
    contest: str | None = None
    provisional: Provisional | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "contest": self.contest,
            "method": "plurality",
            "outcome": self.outcome.value,
            "winner": self.winner,
            "leader": self.leader,
            "reason": self.reason,
            "base": self.base.to_json_dict(),
            "lines": [line.to_json_dict() for line in self.lines],
            "ties": [tie.to_json_dict() for tie in self.ties],
            "provisional": self.provisional is not None,
            "stations": None if self.provisional is None else self.provisional.to_json_dict(),
        }


class MajorityResult(msgspec.Struct, frozen=True):
    """A two-round contest after its first round: elected outright, a runoff, or failed."""

    outcome: Outcome
    winner: str | None
    runoff: tuple[str, ...]
    leader: str
    lines: tuple[CandidateVotes, ...]
    base: Base
    required: Fraction
    reason: str
    ties: tuple[TieRecord, ...] = ()
    contest: str | None = None
    provisional: Provisional | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "contest": self.contest,
            "method": "two-round majority",
            "outcome": self.outcome.value,
            "winner": self.winner,
            "runoff": list(self.runoff),
            "leader": self.leader,
            "reason": self.reason,
            "base": self.base.to_json_dict(),
            "required_more_than": rational_json(self.required),
            "lines": [line.to_json_dict() for line in self.lines],
            "ties": [tie.to_json_dict() for tie in self.ties],
            "provisional": self.provisional is not None,
            "stations": None if self.provisional is None else self.provisional.to_json_dict(),
        }


def _prepare(
    votes: Mapping[str, int], against_all: str | None, base: Base | None
) -> tuple[dict[str, int], list[str], Base, dict[str, int]]:
    counts = check_votes(votes)
    if against_all is not None and against_all not in counts:
        raise SeatsError(f"against-all line {against_all!r} not in the votes")
    candidates = [name for name in counts if name != against_all]
    if not candidates:
        raise SeatsError("no candidates: nothing to decide")
    total = sum(counts.values())
    if total == 0:
        raise SeatsError("no votes for any candidate: nothing to decide")
    chosen_base = base if base is not None else Base("valid votes", total)
    if total > chosen_base.value:
        raise SeatsError(
            f"the votes add up to {total}, more than the base {chosen_base.label!r} "
            f"({chosen_base.value})"
        )
    position = {name: i for i, name in enumerate(counts)}
    return counts, candidates, chosen_base, position


def _lines(
    counts: Mapping[str, int], against_all: str | None, base: Base
) -> tuple[CandidateVotes, ...]:
    order = sorted(counts, key=lambda name: -counts[name])
    return tuple(
        CandidateVotes(
            name=name,
            votes=counts[name],
            share=Fraction(counts[name] * 100, base.value),
            against_all=name == against_all,
        )
        for name in order
    )


def _top(
    candidates: Sequence[str],
    counts: Mapping[str, int],
    places: int,
    stage: str,
    tie_rule: TieRule,
    position: Mapping[str, int],
) -> tuple[list[str], list[TieRecord]]:
    """The ``places`` candidates with the most votes, ties at the cut settled by the rule."""
    order = sorted(candidates, key=lambda name: (-counts[name], position[name]))
    if places >= len(order):
        return order, []
    cut = counts[order[places - 1]]
    above = [name for name in order if counts[name] > cut]
    level = [name for name in order if counts[name] == cut]
    room = places - len(above)
    if len(level) <= room:
        return above + level, []
    winners, record = settle(
        stage=stage,
        value=Fraction(cut),
        tied=level,
        places=room,
        rule=tie_rule,
        input_position=position,
    )
    return above + winners, [record]


def plurality(
    votes: Mapping[str, int],
    *,
    against_all: str | None = None,
    tie_rule: TieRule | None = None,
    base: Base | None = None,
    contest: str | None = None,
    provisional: Provisional | None = None,
) -> SingleMemberResult:
    """Decide a single-member plurality contest.

    ``votes`` maps candidate (and the against-all line, named by ``against_all``) to votes. The
    result is :attr:`Outcome.ELECTED` with a ``winner``, or :attr:`Outcome.FAILED` when against
    all has more votes than the leader. ``base`` (default: the sum of the votes, labelled "valid
    votes") is what the shares are percentages of.
    """
    counts, candidates, chosen_base, position = _prepare(votes, against_all, base)
    rule = tie_rule if tie_rule is not None else ListedOrder()
    lines = _lines(counts, against_all, chosen_base)
    top = max(counts[name] for name in candidates)
    if against_all is not None and counts[against_all] > top:
        leaders = [name for name in candidates if counts[name] == top]
        return SingleMemberResult(
            outcome=Outcome.FAILED,
            winner=None,
            leader=leaders[0],
            lines=lines,
            base=chosen_base,
            reason=(
                f"against all ({counts[against_all]} votes) has more votes than the leading "
                f"candidate{'s' if len(leaders) > 1 else ''} {', '.join(leaders)} ({top}): "
                "no one is elected and the election is held again"
            ),
            contest=contest,
            provisional=provisional,
        )
    winners, ties = _top(candidates, counts, 1, "plurality: most votes", rule, position)
    winner = winners[0]
    reason = f"{winner} has the most votes ({counts[winner]})"
    if ties:
        others = ", ".join(n for n in ties[0].tied if n != winner)
        reason += f"; tied with {others}, decided by {rule.describe()}"
    return SingleMemberResult(
        outcome=Outcome.ELECTED,
        winner=winner,
        leader=winner,
        lines=lines,
        base=chosen_base,
        reason=reason,
        ties=tuple(ties),
        contest=contest,
        provisional=provisional,
    )


def two_round(
    votes: Mapping[str, int],
    *,
    base: Base | None = None,
    against_all: str | None = None,
    runoff_size: int = 2,
    tie_rule: TieRule | None = None,
    contest: str | None = None,
    provisional: Provisional | None = None,
) -> MajorityResult:
    """Decide the first round of a two-round majority contest.

    A candidate with more than half of ``base`` (default: the sum of the votes, "valid votes";
    Kyrgyzstan's President needs more than half of the voters who took part) is elected.
    Otherwise the ``runoff_size`` leading candidates go to the runoff. If an against-all line
    has more votes than the leader, the election fails.
    """
    counts, candidates, chosen_base, position = _prepare(votes, against_all, base)
    places = as_count(runoff_size, "runoff size", minimum=2)
    rule = tie_rule if tie_rule is not None else ListedOrder()
    lines = _lines(counts, against_all, chosen_base)
    required = Fraction(chosen_base.value, 2)
    top = max(counts[name] for name in candidates)
    leaders = [name for name in candidates if counts[name] == top]
    if against_all is not None and counts[against_all] > top:
        return MajorityResult(
            outcome=Outcome.FAILED,
            winner=None,
            runoff=(),
            leader=leaders[0],
            lines=lines,
            base=chosen_base,
            required=required,
            reason=(
                f"against all ({counts[against_all]}) has more votes than the leader "
                f"{leaders[0]} ({top}): the election fails"
            ),
            contest=contest,
            provisional=provisional,
        )
    if top > required:  # only one candidate can have more than half
        winner = leaders[0]
        return MajorityResult(
            outcome=Outcome.ELECTED,
            winner=winner,
            runoff=(),
            leader=winner,
            lines=lines,
            base=chosen_base,
            required=required,
            reason=(
                f"{winner} has {counts[winner]} votes, more than half of the "
                f"{chosen_base.label} ({chosen_base.value})"
            ),
            contest=contest,
            provisional=provisional,
        )
    runoff, ties = _top(candidates, counts, places, "runoff places", rule, position)
    return MajorityResult(
        outcome=Outcome.RUNOFF,
        winner=None,
        runoff=tuple(runoff),
        leader=runoff[0],
        lines=lines,
        base=chosen_base,
        required=required,
        reason=(
            f"no candidate has more than half of the {chosen_base.label} ({chosen_base.value}); "
            f"runoff between {', '.join(runoff)}"
        ),
        ties=tuple(ties),
        contest=contest,
        provisional=provisional,
    )

"""Tally rows as published: figures, choices with exact percentages and their stated base.

Percentages are derived from exact integers with the base named (DESIGN invariant 6): a share
is `votes / base` rounded half-up to two decimals, computed in integers so that 17.315 never
becomes 17.31 through binary floating point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tallyroom.definition.compiled import CompiledContest, CompiledElection, name_in
from tallyroom.definition.model import Figure
from tallyroom.tally.running import Totals

#: How each base is named in words on pages and in JSON.
BASE_WORDS: dict[str, str] = {
    "valid": "valid votes",
    "ballots_cast": "ballots cast",
    "took_part": "voters who took part",
    "registered": "registered voters",
    "invalid": "invalid ballots",
}


def percent(part: int, whole: int, decimals: int = 2) -> str | None:
    """`part / whole` as a percentage string rounded half-up; None when whole is 0."""
    if whole <= 0:
        return None
    scale = 10**decimals
    q = (part * 100 * scale * 2 + whole) // (whole * 2)
    whole_part, frac = divmod(q, scale)
    return f"{whole_part}.{frac:0{decimals}d}" if decimals else str(whole_part)


@dataclass(frozen=True)
class ChoiceResult:
    id: str
    name: str
    votes: int
    percent: str | None
    percent_base: str
    against_all: bool


@dataclass(frozen=True)
class TallyRow:
    contest: str
    area: str
    area_name: str
    count_kind: str
    stations_reporting: int
    stations_expected: int
    registered: int | None
    took_part: int | None
    ballots_cast: int | None
    valid: int | None
    invalid: int | None
    turnout_percent: str | None
    percent_base: str
    percent_base_value: int | None
    choices: tuple[ChoiceResult, ...]
    lines: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contest": self.contest,
            "area": self.area,
            "area_name": self.area_name,
            "count_kind": self.count_kind,
            "stations_reporting": self.stations_reporting,
            "stations_expected": self.stations_expected,
            "registered": self.registered,
            "took_part": self.took_part,
            "ballots_cast": self.ballots_cast,
            "valid": self.valid,
            "invalid": self.invalid,
            "turnout_percent": self.turnout_percent,
            "percent_base": {
                "figure": self.percent_base,
                "words": BASE_WORDS.get(self.percent_base, self.percent_base),
                "value": self.percent_base_value,
            },
            "choices": [
                {
                    "id": c.id,
                    "name": c.name,
                    "votes": c.votes,
                    "percent": c.percent,
                    "percent_base": c.percent_base,
                    "against_all": c.against_all,
                }
                for c in self.choices
            ],
            "lines": self.lines,
        }


def tally_row(
    election: CompiledElection,
    contest: CompiledContest,
    area: int,
    count_kind: str,
    totals: Totals | None,
    lang: str = "en",
) -> TallyRow:
    counts = totals.counts if totals is not None else [0] * len(contest.line_ids)
    fig = {f: contest.figure(f, counts) for f in Figure}
    base_fig = contest.contest.percent_base
    base = fig[base_fig]
    took_part = fig[Figure.TOOK_PART]
    turnout_num = took_part if took_part is not None else fig[Figure.BALLOTS_CAST]
    registered = fig[Figure.REGISTERED]
    choices = tuple(
        ChoiceResult(
            id=ch.id,
            name=name_in(ch.name, lang),
            votes=counts[contest.choice_start + j],
            percent=percent(counts[contest.choice_start + j], base or 0),
            percent_base=str(base_fig),
            against_all=ch.against_all,
        )
        for j, ch in enumerate(contest.contest.choices)
    )
    return TallyRow(
        contest=contest.id,
        area=election.areas[area].id,
        area_name=name_in(election.areas[area].name, lang),
        count_kind=count_kind,
        stations_reporting=totals.reporting if totals is not None else 0,
        stations_expected=contest.stations_expected.get(area, 0),
        registered=registered,
        took_part=took_part,
        ballots_cast=fig[Figure.BALLOTS_CAST],
        valid=fig[Figure.VALID],
        invalid=fig[Figure.INVALID],
        turnout_percent=(
            None if turnout_num is None or registered is None else percent(turnout_num, registered)
        ),
        percent_base=str(base_fig),
        percent_base_value=base,
        choices=choices,
        lines=dict(zip(contest.line_ids, counts, strict=True)),
    )

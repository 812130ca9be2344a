"""The invariants every tally must satisfy before anything is published (DESIGN invariant 2).

- children sum to parent, in every hierarchy, line by line and in stations reporting;
- Σ choices ≤ valid ≤ ballots cast ≤ registered, and took part ≤ registered, at every level;
- every share ≤ 100% of its stated base, and the shares of one base sum to at most 100%;
- stations reporting ≤ stations expected.

The 2021 Kyrgyz results page broke the third one (shares summing to over 150%). The checker
is pure: the publish gate and the verifier run it on tallies they recomputed themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.model import Figure
from tallyroom.tally.report import TallyRow
from tallyroom.tally.running import Tally, TallyKey, Totals, column_sums

#: (contest index, station index, count kind) -> the station's active counts vector.
StationCounts = Mapping[tuple[int, int, str], Sequence[int]]


@dataclass(frozen=True, slots=True)
class InvariantFailure:
    invariant: str
    contest: str
    area: str
    count_kind: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.invariant} [{self.contest} / {self.area} / {self.count_kind}]: {self.message}"
        )


_ORDER = (
    (Figure.VALID, Figure.BALLOTS_CAST),
    (Figure.BALLOTS_CAST, Figure.REGISTERED),
    (Figure.TOOK_PART, Figure.REGISTERED),
)


def check_tally(
    election: CompiledElection, tally: Tally, stations: StationCounts
) -> list[InvariantFailure]:
    """Check the structural invariants of a whole tally against the stations' protocols."""
    failures: list[InvariantFailure] = []
    own_areas = [[election.area_index[aid] for aid in st.areas] for st in election.stations]
    # The protocols summed once into the areas that list their station directly: looking each
    # (contest, station, count kind) up for every area's own stations made this 37 × 2 × 100,000
    # lookups at 100,000 Kyrgyz-shaped stations, most of them for contests the station is not in.
    # Column sums in C (zip + sum) per group of vectors, not a list per protocol and area.
    groups: dict[tuple[int, int, str], list[Sequence[int]]] = {}
    for (ci, si, kind), c in stations.items():
        if not 0 <= si < len(own_areas):
            continue
        for area in own_areas[si]:
            g = groups.get((ci, area, kind))
            if g is None:
                groups[(ci, area, kind)] = [c]
            else:
                g.append(c)
    direct = {key: Totals(list(column_sums(vecs)), len(vecs)) for key, vecs in groups.items()}
    kinds = sorted({k.count_kind for k in tally.totals} | {k[2] for k in stations})
    for contest in election.contests:
        width = len(contest.line_ids)
        for kind in kinds:
            for area in range(len(election.areas)):
                parts = [
                    t
                    for child in election.children[area]
                    if (t := tally.totals.get(TallyKey(contest.index, child, kind))) is not None
                ]
                own = direct.get((contest.index, area, kind))
                if own is not None:
                    parts.append(own)
                expected = Totals(
                    list(column_sums([t.counts for t in parts])) if parts else [0] * width,
                    sum(t.reporting for t in parts),
                )
                got = tally.totals.get(TallyKey(contest.index, area, kind)) or Totals([0] * width)
                aid = election.areas[area].id
                if got.counts != expected.counts:
                    diffs = [
                        f"{contest.line_ids[i]} {got.counts[i]:,} ≠ {expected.counts[i]:,}"
                        for i in range(width)
                        if got.counts[i] != expected.counts[i]
                    ]
                    failures.append(
                        InvariantFailure(
                            "children-sum-to-parent",
                            contest.id,
                            aid,
                            kind,
                            "total ≠ sum of its parts: " + "; ".join(diffs[:5]),
                        )
                    )
                if got.reporting != expected.reporting:
                    failures.append(
                        InvariantFailure(
                            "children-sum-to-parent",
                            contest.id,
                            aid,
                            kind,
                            f"stations reporting {got.reporting} ≠ {expected.reporting} below it",
                        )
                    )
                if got.reporting > contest.stations_expected.get(area, 0):
                    failures.append(
                        InvariantFailure(
                            "reporting-le-expected",
                            contest.id,
                            aid,
                            kind,
                            f"{got.reporting} stations reporting of "
                            f"{contest.stations_expected.get(area, 0)} expected",
                        )
                    )
                failures.extend(
                    _order_failures(
                        contest.id, aid, kind, contest.figure, got.counts, contest.choice_start
                    )
                )
    return failures


def _order_failures(
    contest_id: str,
    area_id: str,
    kind: str,
    figure: object,
    counts: Sequence[int],
    choice_start: int,
) -> list[InvariantFailure]:
    out: list[InvariantFailure] = []
    fig = {f: figure(f, counts) for f in Figure}  # type: ignore[operator]
    choices = sum(counts[choice_start:])
    valid = fig[Figure.VALID]
    if valid is not None and choices > valid:
        out.append(
            InvariantFailure(
                "choices-le-valid",
                contest_id,
                area_id,
                kind,
                f"Σ choices {choices:,} > valid {valid:,}",
            )
        )
    for small, big in _ORDER:
        a, b = fig[small], fig[big]
        if a is not None and b is not None and a > b:
            out.append(
                InvariantFailure(
                    f"{small}-le-{big}", contest_id, area_id, kind, f"{small} {a:,} > {big} {b:,}"
                )
            )
    return out


def check_row(row: TallyRow) -> list[InvariantFailure]:
    """Check a published row: shares ≤ 100% of their base, and figures in order."""
    out: list[InvariantFailure] = []

    def fail(name: str, msg: str) -> None:
        out.append(InvariantFailure(name, row.contest, row.area, row.count_kind, msg))

    base = row.percent_base_value
    total_votes = sum(c.votes for c in row.choices)
    if base is not None and total_votes > base:
        fail(
            "shares-le-100",
            f"Σ votes {total_votes:,} > {row.percent_base} {base:,}: shares exceed 100%",
        )
    hundredths = 0
    for c in row.choices:
        if c.percent is None:
            continue
        whole, _, frac = c.percent.partition(".")
        h = int(whole) * 100 + int(frac or 0)
        hundredths += h
        if h > 10_000:
            fail("share-le-100", f"{c.id} {c.percent}% of {row.percent_base}")
        if base:
            from tallyroom.tally.report import percent

            if c.percent != percent(c.votes, base):
                fail(
                    "share-matches-base",
                    f"{c.id} shows {c.percent}% but {c.votes:,} of {base:,} is {percent(c.votes, base)}%",
                )
    # Each share is rounded to 0.01, so the sum may exceed 100 by at most half a hundredth each.
    if hundredths > 10_000 + (len(row.choices) + 1) // 2:
        fail("shares-sum-le-100", f"shares sum to {hundredths / 100:.2f}% of {row.percent_base}")
    if row.valid is not None and total_votes > row.valid:
        fail("choices-le-valid", f"Σ choices {total_votes:,} > valid {row.valid:,}")
    if row.stations_reporting > row.stations_expected:
        fail("reporting-le-expected", f"{row.stations_reporting} of {row.stations_expected}")
    return out

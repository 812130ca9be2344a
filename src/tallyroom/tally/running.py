"""Running totals per (contest, area, count kind): the tally, as plain in-memory data.

Totals are exact integers (DESIGN: never floats in a tally). A station's protocol adds its
counts vector to every area the station counts towards, in every hierarchy; a correction
subtracts the old vector and adds the new one; an annulment subtracts. Machine, hand and
recount totals live under different keys and are never added together.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tallyroom.definition.compiled import CompiledElection


class TallyKey(NamedTuple):
    """(contest index, area index, count kind): a tuple, so hashing and comparing it (millions
    of times in a fold) happen in C, not in a dataclass's generated Python methods."""

    contest: int
    area: int
    count_kind: str


@dataclass(slots=True)
class Totals:
    counts: list[int]
    reporting: int = 0

    def copy(self) -> Totals:
        return Totals(list(self.counts), self.reporting)


def column_sums(vectors: Sequence[Sequence[int]]) -> Sequence[int]:
    """The element-wise sum of equally long vectors (zip + sum, in C); a lone one as it is."""
    if len(vectors) == 1:
        return vectors[0]
    return list(map(sum, zip(*vectors, strict=True)))


class Tally:
    """Totals for every (contest, area, count kind) that has at least one protocol."""

    def __init__(self, election: CompiledElection) -> None:
        self.election = election
        self.totals: dict[TallyKey, Totals] = {}

    def apply(
        self, contest: int, station: int, count_kind: str, counts: Sequence[int], sign: int = 1
    ) -> None:
        """Add (sign=+1) or remove (sign=-1) one station's protocol."""
        width = len(counts)
        totals = self.totals
        for area in self.election.station_areas[station]:
            key = TallyKey(contest, area, count_kind)
            t = totals.get(key)
            if t is None:
                t = totals[key] = Totals([0] * width)
            c = t.counts
            for i in range(width):
                c[i] += sign * counts[i]
            t.reporting += sign

    def apply_batch(
        self, items: Iterable[tuple[int, int, str, Sequence[int]]], sign: int = 1
    ) -> int:
        """Add many (contest, station, count kind, counts) at once; returns how many.

        Sums each station's vector into its own areas first, then adds each of those sums to
        the area's ancestors once, instead of once per station: a 20,000-protocol batch then
        costs one vector addition per station plus one per touched area and ancestor.
        """
        e = self.election
        groups: dict[tuple[int, int, str], list[Sequence[int]]] = {}
        n = 0
        for contest, station, kind, counts in items:
            n += 1
            for area in e.station_direct[station]:
                key = (contest, area, kind)
                g = groups.get(key)
                if g is None:
                    groups[key] = [counts]
                else:
                    g.append(counts)
        # Column sums in C (zip + sum) instead of a Python loop per station and line: first
        # per station area, then per area and ancestor over those sums.
        sums: dict[tuple[int, int, str], list[Sequence[int]]] = {}
        stations: dict[tuple[int, int, str], int] = {}
        chain = e.area_chain
        for (contest, area, kind), vecs in groups.items():
            total = column_sums(vecs)
            for anc in chain[area]:
                key = (contest, anc, kind)
                got = sums.get(key)
                if got is None:
                    sums[key] = [total]
                    stations[key] = len(vecs)
                else:
                    got.append(total)
                    stations[key] += len(vecs)
        totals = self.totals
        for key, vecs in sums.items():
            vec = column_sums(vecs)
            if sign != 1:
                vec = [sign * x for x in vec]
            t = totals.get(key)  # type: ignore[call-overload]  # a plain tuple equals its TallyKey
            if t is None:
                totals[TallyKey(*key)] = Totals(list(vec), sign * stations[key])
            else:
                t.counts = list(map(operator.add, t.counts, vec))
                t.reporting += sign * stations[key]
        return n

    def merge(self, other: Tally) -> None:
        for key, t in other.totals.items():
            mine = self.totals.get(key)
            if mine is None:
                self.totals[key] = t.copy()
            else:
                mine.counts = [a + b for a, b in zip(mine.counts, t.counts, strict=True)]
                mine.reporting += t.reporting

    def get(self, contest: int, area: int, count_kind: str) -> Totals | None:
        return self.totals.get(TallyKey(contest, area, count_kind))

    def items(self) -> Iterator[tuple[TallyKey, Totals]]:
        return iter(sorted(self.totals.items()))

    def nonzero(self) -> dict[TallyKey, Totals]:
        """Totals without rows that corrections or annulments brought back to nothing."""
        return {k: t for k, t in self.totals.items() if t.reporting or any(t.counts)}

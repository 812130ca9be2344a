"""Large synthetic elections (a million stations and more) for scale tests and benchmarks.

Shaped like a Russian State Duma election — the `russia-duma` form, regions, single-member
districts and territorial commissions — because that form has the most control
relationships of the profiles; every protocol generated satisfies all of them. The output is
written as it is generated, so memory stays flat whatever the size.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec

from tallyroom.definition.model import (
    Allocation,
    Area,
    Choice,
    Contest,
    ContestKind,
    CountKind,
    Definition,
    Election,
    Figure,
    Hierarchy,
    Station,
)

CONTEST = "federal-list"
FORM_LINES = [f"L{i}" for i in range(1, 13)]


def large_definition(stations: int, parties: int = 14, regions: int = 85, seed: int = 1) -> bytes:
    """A definition (JSON bytes) with `stations` stations under regions, districts and TIKs."""
    rng = random.Random(seed)
    districts = max(regions, min(450, stations // 200))
    tiks = max(districts, stations // 40)
    areas = [Area(id="c", name="Country", hierarchy="admin", kind="country")]
    areas += [
        Area(id=f"r{r}", name=f"Region {r}", hierarchy="admin", parent="c", kind="region")
        for r in range(regions)
    ]
    areas += [
        Area(id=f"d{d}", name=f"District {d}", hierarchy="admin", parent=f"r{d % regions}", kind="district")
        for d in range(districts)
    ]
    areas += [
        Area(
            id=f"t{t}",
            name=f"Commission {t}",
            hierarchy="admin",
            parent=f"d{t % districts}",
            kind="commission",
        )
        for t in range(tiks)
    ]
    station_list = [
        Station(id=f"s{i}", name=f"Station {i}", areas=[f"t{i % tiks}"], registered=rng.randint(200, 3000))
        for i in range(stations)
    ]
    contest = Contest(
        id=CONTEST,
        name="Federal list",
        kind=ContestKind.PARTY_LIST,
        area="c",
        form="federal-list",
        official_count=CountKind.HAND,
        percent_base=Figure.BALLOTS_CAST,
        choices=[Choice(id=f"p{j}", name=f"Party {j}") for j in range(parties)],
        allocation=Allocation(
            method="hare", seats=225, threshold_percent="5", threshold_base=Figure.BALLOTS_CAST
        ),
    )
    definition = Definition(
        election=Election(
            id=f"synthetic-{stations}", name=f"Synthetic election, {stations:,} stations", date="2026-01-01"
        ),
        profile="russia-duma",
        hierarchies=[Hierarchy(id="admin", name="Regions")],
        areas=areas,
        stations=station_list,
        contests=[contest],
    )
    return msgspec.json.encode(definition)


def protocol_rows(definition: Definition, seed: int = 1) -> Iterator[list[int | str]]:
    """One valid `federal-list` protocol per station: station id, L1..L12, then each party."""
    rng = random.Random(seed)
    parties = len(definition.contests[0].choices)
    weights = [rng.random() ** 2 for _ in range(parties)]
    total_w = sum(weights)
    cum = []
    acc = 0.0
    for w in weights:
        acc += w / total_w
        cum.append(acc)
    for s in definition.stations:
        registered = s.registered
        issued = rng.randint(registered // 4, registered * 3 // 4)
        early = rng.randint(0, issued // 50)
        outside = rng.randint(0, issued // 20)
        station = issued - early - outside
        cancelled = rng.randint(0, 200)
        received = issued + cancelled
        mobile = outside
        stationary = issued - outside - rng.randint(0, 3)
        cast = mobile + stationary
        invalid = rng.randint(0, cast // 40)
        valid = cast - invalid
        votes = [0] * parties
        # Split the valid votes by the weights with exact integers (largest remainder).
        shares = [int(valid * (cum[j] - (cum[j - 1] if j else 0.0))) for j in range(parties)]
        shares[-1] += valid - sum(shares)
        votes = shares
        yield [
            s.id,
            registered,
            received,
            early,
            station,
            outside,
            cancelled,
            mobile,
            stationary,
            invalid,
            valid,
            0,
            0,
            *votes,
        ]


def write_protocols_csv(definition: Definition, path: Path, seed: int = 1) -> int:
    parties = [c.id for c in definition.contests[0].choices]
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["station", *FORM_LINES, *parties])
        for row in protocol_rows(definition, seed):
            w.writerow(row)
            n += 1
    return n


def mapping_yaml(definition: Definition) -> str:
    parties = [c.id for c in definition.contests[0].choices]
    lines = "\n".join(f"  {x}: {x}" for x in [*FORM_LINES, *parties])
    return f"station_column: station\ncontest: {CONTEST}\nlines:\n{lines}\n"

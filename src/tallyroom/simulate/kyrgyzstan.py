"""A synthetic election shaped like Kyrgyzstan's Jogorku Kenesh election of 28 November 2021.

Everything here is pure and seeded (`random.Random`, exact integers), so the same seed gives
the same bytes on every machine:

* :func:`generate_definition` — the definition: the country, 7 oblasts, Bishkek, Osh and the
  stations abroad (hierarchy ``admin``); 36 single-member constituencies (``smd``); 2,494
  stations (59 abroad) with exactly 3,703,420 registered voters; the nationwide party-list
  contest (21 real parties + against all, Hare, 54 seats, 5% nationally and 0.5% in each of the
  9 units of voters who took part, cap 27) and one plurality contest per constituency.
* :func:`generate_protocols` — one protocol per station and contest that passes every rule of
  the Kyrgyz form, with national party-list totals equal to the official result: 1,281,622
  voters took part and the six winners have exactly their official votes; the other parties and
  "against all" follow the election-night scanner shares, invalid ballots are 9.6%.
* :func:`machine_count_from` — scanner counts that differ from the hand count by a few ballots
  at a small share of stations, as the preliminary count did.
* :func:`write_definition_yaml`, :func:`write_protocols_csv`, :func:`read_protocols_csv` and
  :func:`load_protocols` (which feeds protocols through the import pipeline, like any file).

The official figures and the stated assumptions are in :mod:`.kyrgyzstan_data`. Counts are split
from national totals to regions to stations by exact apportionment (:mod:`.apportion`), so every
sum is exact by construction, not by luck.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
import yaml

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
    Name,
    RegionalThreshold,
    Station,
)
from tallyroom.simulate import kyrgyzstan_data as data
from tallyroom.simulate.apportion import fit_matrix, int_weights, largest_remainder

if TYPE_CHECKING:
    from tallyroom.importers.pipeline import ImportReport
    from tallyroom.store.sql import Store

ELECTION_ID = "kg-2021-parliament"
COUNTRY = "kg"
PARTY_LIST = "party-list"
FORM = "jogorku-kenesh"
ADMIN = "admin"
SMD = "smd"
#: The lines of the Kyrgyz form (profile `kyrgyzstan`), in order; choices follow them.
FORM_LINES: tuple[str, ...] = (
    "registered_main",
    "registered_additional",
    "ballots_received",
    "issued_early",
    "issued_station",
    "issued_outside",
    "cancelled",
    "in_stationary_boxes",
    "in_mobile_boxes",
    "invalid",
    "valid",
)
#: Share of stations whose scanner count differs from the hand count (per mille).
MACHINE_DIFF_PER_MILLE = 30
#: Largest station roll at home and abroad (assumed; the biggest Bishkek stations of 2020 had
#: about 1,700 voters who voted at about 40% turnout).
MAX_STATION = 4_000
MAX_STATION_ABROAD = 6_000


class Shape(NamedTuple):
    """The size of a generated country: the official 2021 figures, or those scaled to N stations."""

    stations: int
    stations_abroad: int
    registered: int
    registered_abroad: int
    smd_count: int


OFFICIAL_SHAPE = Shape(
    data.STATIONS, data.STATIONS_ABROAD, data.REGISTERED, data.REGISTERED_ABROAD, data.SMD_COUNT
)
#: Fewest stations a scaled country may have (every constituency needs stations).
MIN_STATIONS = 100


def _scaled(value: int, stations: int) -> int:
    """`value * stations / 2,494` rounded half up, in exact integers."""
    return (2 * value * stations + data.STATIONS) // (2 * data.STATIONS)


def shape_for(stations: int) -> Shape:
    """The official shape for 2,494 stations; otherwise the same regions, parties, list seats
    and thresholds with `stations` stations, the voter roll and the stations abroad scaled in
    proportion (so station sizes and turnout stay realistic), and the 36 constituencies kept
    (20 below 360 stations, so that each still has several stations).
    """
    if stations == data.STATIONS:
        return OFFICIAL_SHAPE
    if stations < MIN_STATIONS:
        raise ValueError(f"a Kyrgyz-shaped election needs at least {MIN_STATIONS} stations")
    return Shape(
        stations,
        max(1, _scaled(data.STATIONS_ABROAD, stations)),
        _scaled(data.REGISTERED, stations),
        _scaled(data.REGISTERED_ABROAD, stations),
        min(data.SMD_COUNT, max(2 * len(data.REGIONS), stations // 10)),
    )


def took_part_for(registered: int) -> int:
    """Voters who took part in a country of `registered` voters: the official 1,281,622 for
    the official roll, the same national turnout (exact, rounded half up) otherwise."""
    if registered == data.REGISTERED:
        return data.TOOK_PART
    return (2 * data.TOOK_PART * registered + data.REGISTERED) // (2 * data.REGISTERED)


class GeneratedProtocol(NamedTuple):
    """One station's counts for one contest: `lines` has every form line, then every choice."""

    station: str
    contest: str
    lines: dict[str, int]


def _rng(seed: int, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512 by `random.seed` (version 2): stable everywhere.
    return random.Random(f"kg-2021:{purpose}:{seed}")


def _name(en: str, ru: str, ky: str) -> dict[str, str]:
    return {"ky": ky, "ru": ru, "en": en}


def _lognormal(rng: random.Random, sigma: float) -> float:
    """exp(N(0, sigma)), the normal cut at ±2.5 sigma so that no draw is absurd."""
    return math.exp(max(-2.5, min(2.5, rng.gauss(0.0, 1.0))) * sigma)


# -- the definition ----------------------------------------------------------------------------


def generate_definition(seed: int = 2021, stations: int | None = None) -> Definition:
    """The election definition (stations, constituencies, contests); deterministic in `seed`.

    `stations` (default: the official 2,494) scales the country: see :func:`shape_for`.
    """
    shape = shape_for(data.STATIONS if stations is None else stations)
    rng = _rng(seed, "definition")
    regions = data.REGIONS
    home = [r for r in regions if r.id != "abroad"]

    station_counts = dict(
        zip(
            (r.id for r in home),
            largest_remainder(
                shape.stations - shape.stations_abroad, [r.stations_2020 for r in home]
            ),
            strict=True,
        )
    )
    station_counts["abroad"] = shape.stations_abroad
    rolls = dict(
        zip(
            (r.id for r in home),
            largest_remainder(
                shape.registered - shape.registered_abroad, [r.roll_thousands for r in home]
            ),
            strict=True,
        )
    )
    rolls["abroad"] = shape.registered_abroad

    # Registered voters per station: log-normal sizes with each region's 2020 spread, capped.
    sizes: dict[str, list[int]] = {}
    for r in regions:
        sd = r.size_log_sd / 100
        n = station_counts[r.id]
        weights = int_weights([_lognormal(rng, sd) for _ in range(n)])
        cap = MAX_STATION_ABROAD if r.id == "abroad" else MAX_STATION
        sizes[r.id] = largest_remainder(rolls[r.id], weights, [cap] * n)

    # Constituencies: 36 seats over the regions by registered voters (abroad votes in Bishkek).
    districted = list(home)
    seat_weights = [
        rolls[r.id] + (rolls["abroad"] if r.id == "bishkek" else 0) for r in districted
    ]
    seats = largest_remainder(shape.smd_count, seat_weights)
    bishkek_min = 4 if shape.smd_count == data.SMD_COUNT else len(data.AGAINST_ALL_WINS)
    if (
        min(seats) < 1
        or seats[[r.id for r in districted].index("bishkek")] < bishkek_min
        or any(k > station_counts[r.id] for r, k in zip(districted, seats, strict=True))
    ):
        raise RuntimeError(f"constituencies per region came out as {seats}")
    # Station numbers: region number, then the station's number in the region (3 digits for
    # the real country, more when a region has a thousand stations or more).
    width = max(3, len(str(max(station_counts.values()))))

    areas: list[Area] = [
        Area(
            id=COUNTRY,
            name=_name("Kyrgyz Republic", "Кыргызская Республика", "Кыргыз Республикасы"),
            hierarchy=ADMIN,
            kind="country",
            code="KG",
        )
    ]
    for r in regions:
        areas.append(
            Area(id=r.id, name=_name(r.en, r.ru, r.ky), hierarchy=ADMIN, parent=COUNTRY,
                 kind=r.kind, code=r.code)
        )

    smd_of_region: dict[str, list[str]] = {}
    number = 0
    for r, k in zip(districted, seats, strict=True):
        labels = _bishkek_labels(k) if r.id == "bishkek" else [None] * k
        ids = []
        for label in labels:
            number += 1
            smd_id = f"smd-{number:02d}"
            ids.append(smd_id)
            areas.append(
                Area(id=smd_id, name=_smd_name(number, r, label), hierarchy=SMD,
                     kind="constituency")
            )
        smd_of_region[r.id] = ids

    station_list: list[Station] = []
    for ri, r in enumerate(regions):
        if r.id == "abroad":
            cities = [c for c in data.ABROAD_CITIES for _ in range(c[3])]
            bishkek = smd_of_region["bishkek"]
            for k, registered in enumerate(sizes[r.id]):
                num = (ri + 1) * 10**width + k + 1
                en, ru, ky, _ = cities[k % len(cities)]
                station_list.append(
                    Station(
                        id=f"ps-{num}",
                        name=_name(
                            f"Polling station No. {num} ({en})",
                            f"Избирательный участок № {num} ({ru})",
                            f"№{num} шайлоо участкасы ({ky})",
                        ),
                        areas=[r.id, bishkek[k % len(bishkek)]],
                        registered=registered,
                        abroad=True,
                    )
                )
            continue
        smds = smd_of_region[r.id]
        total = sum(sizes[r.id])
        before = 0
        for k, registered in enumerate(sizes[r.id]):
            num = (ri + 1) * 10**width + k + 1
            # Contiguous blocks of stations of about equal size form each constituency.
            which = min(len(smds) - 1, (2 * before + registered) * len(smds) // (2 * total))
            before += registered
            station_list.append(
                Station(
                    id=f"ps-{num}",
                    name=_name(
                        f"Polling station No. {num}",
                        f"Избирательный участок № {num}",
                        f"№{num} шайлоо участкасы",
                    ),
                    areas=[r.id, smds[which]],
                    registered=registered,
                )
            )

    contests = [_party_list_contest()]
    for area in areas:
        if area.hierarchy == SMD:
            contests.append(_smd_contest(area, rng))

    return Definition(
        election=Election(
            id=ELECTION_ID,
            name=_name(
                "Election of deputies of the Jogorku Kenesh, 28 November 2021 (synthetic)",
                "Выборы депутатов Жогорку Кенеша, 28 ноября 2021 года (синтетические данные)",
                "Жогорку Кеңештин депутаттарын шайлоо, 2021-жылдын 28-ноябры (синтетикалык)",
            ),
            date="2021-11-28",
            country="KG",
            languages=["ky", "ru", "en"],
        ),
        profile="kyrgyzstan",
        hierarchies=[
            Hierarchy(
                id=ADMIN,
                name=_name("Oblasts and cities", "Области и города", "Облустар жана шаарлар"),
            ),
            Hierarchy(
                id=SMD,
                name=_name(
                    "Single-member constituencies",
                    "Одномандатные избирательные округа",
                    "Бир мандаттуу шайлоо округдары",
                ),
            ),
        ],
        areas=areas,
        stations=station_list,
        contests=contests,
    )


def _bishkek_labels(k: int) -> list[tuple[str, str, str]]:
    """Bishkek's k constituencies named by district; one each where against all won in 2021."""
    fixed = [d for d in data.BISHKEK_DISTRICTS if d[0] in data.AGAINST_ALL_WINS]
    others = [d for d in data.BISHKEK_DISTRICTS if d[0] not in data.AGAINST_ALL_WINS]
    per = largest_remainder(k - len(fixed), [1] * len(others))
    out: list[tuple[str, str, str]] = []
    for d in data.BISHKEK_DISTRICTS:
        if d in fixed:
            out.append(d)
            continue
        n = per[others.index(d)]
        out.extend(d if n == 1 else (f"{d[0]}-{i}", f"{d[1]}-{i}", f"{d[2]}-{i}")
                   for i in range(1, n + 1))
    return out


def _smd_name(number: int, r: data.Region, label: tuple[str, str, str] | None) -> Name:
    en, ru, ky = r.en, r.ru, r.ky
    if label is not None:
        en, ru, ky = f"{en}, {label[0]}", f"{ru}, {label[1]}", f"{ky}, {label[2]}"
    return _name(
        f"Constituency No. {number} ({en})",
        f"Одномандатный округ № {number} ({ru})",
        f"№{number} бир мандаттуу округ ({ky})",
    )


def _party_choice(p: data.Party) -> Choice:
    return Choice(
        id=p.id, name=_name(p.en, p.ru, p.ky), against_all=p.id == data.AGAINST_ALL.id,
        color=p.color,
    )


def _party_list_contest() -> Contest:
    return Contest(
        id=PARTY_LIST,
        name=_name(
            "Party lists (nationwide constituency)",
            "Партийные списки (единый республиканский округ)",
            "Партиялык тизмелер (бирдиктүү республикалык округ)",
        ),
        kind=ContestKind.PARTY_LIST,
        area=COUNTRY,
        choices=[_party_choice(p) for p in (*data.PARTIES, data.AGAINST_ALL)],
        form=FORM,
        official_count=CountKind.HAND,
        percent_base=Figure.TOOK_PART,
        allocation=Allocation(
            method="hare",
            seats=data.LIST_SEATS,
            threshold_percent="5",
            threshold_base=Figure.TOOK_PART,
            regional_threshold=RegionalThreshold(
                percent="0.5", areas=list(data.THRESHOLD_REGIONS)
            ),
            cap=27,
            women_min_share_percent="30",
        ),
    )


def _smd_contest(area: Area, rng: random.Random) -> Contest:
    n = rng.randint(3, 8)
    used: set[str] = set()
    choices: list[Choice] = []
    party_ids = [p.id for p in data.PARTIES]
    while len(choices) < n:
        surname_ky, surname_en = rng.choice(data.SURNAMES)
        female = rng.random() < 0.3
        given_ky, given_ru, given_en = rng.choice(data.FEMALE_NAMES if female else data.MALE_NAMES)
        if female:
            surname_ky, surname_en = surname_ky + "а", surname_en + "a"
        en = f"{given_en} {surname_en}"
        if en in used:
            continue
        used.add(en)
        party = rng.choice(party_ids) if rng.random() < 0.4 else None
        choices.append(
            Choice(
                id=f"cand_{len(choices) + 1}",
                name=_name(
                    en,
                    f"{data.russian_spelling(surname_ky)} {given_ru}",
                    f"{surname_ky} {given_ky}",
                ),
                party=party,
            )
        )
    choices.append(_party_choice(data.AGAINST_ALL))
    return Contest(
        id=area.id,
        name=area.name,
        kind=ContestKind.CANDIDATES,
        area=area.id,
        choices=choices,
        form=FORM,
        official_count=CountKind.HAND,
        percent_base=Figure.TOOK_PART,
        allocation=Allocation(method="plurality", seats=1),
    )


# -- YAML --------------------------------------------------------------------------------------

_HEADER = """\
# A synthetic election shaped like the Jogorku Kenesh election of 28 November 2021
# (Kyrgyz Republic): real party names, the official numbers of stations, constituencies and
# registered voters; invented station sizes and candidates. Generated by
# tallyroom.simulate.kyrgyzstan; do not edit by hand (the file's SHA-256 is the election hash).
"""


def _clean(value: Any) -> Any:
    """Drop None, False and empty values (all defaults of the model) for a readable file."""
    if isinstance(value, dict):
        return {
            k: _clean(v) for k, v in value.items() if v is not None and v is not False
            and v != [] and v != {}
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


try:  # libyaml when available: same output, ten times faster
    _Dumper: Any = yaml.CSafeDumper
except AttributeError:  # pragma: no cover
    _Dumper = yaml.SafeDumper


def _dump(value: Any, flow: bool | None) -> str:
    return str(
        yaml.dump(
            value, Dumper=_Dumper, default_flow_style=flow, allow_unicode=True,
            sort_keys=False, width=1_000_000,
        )
    )


def definition_yaml(definition: Definition) -> bytes:
    """The definition as YAML: block style, one line per area and per station."""
    doc = _clean(msgspec.to_builtins(definition))
    out = [_HEADER]
    out.append(_dump({"election": doc["election"]}, None))
    out.append(_dump({"profile": doc["profile"]}, False))
    for section in ("hierarchies", "areas", "stations"):
        out.append(f"{section}:\n")
        out.extend(f"- {_dump(item, True)}" for item in doc[section])
    out.append(_dump({"contests": doc["contests"]}, None))
    return "".join(out).encode("utf-8")


def write_definition_yaml(definition: Definition, path: Path | str) -> None:
    """Write the definition as readable YAML (keys: election, profile, hierarchies, areas,
    stations, contests)."""
    Path(path).write_bytes(definition_yaml(definition))


# -- protocols ---------------------------------------------------------------------------------


class _Turnout(NamedTuple):
    """Per station: the ballot account shared by all contests of the station."""

    registered: int
    additional: int
    received: int
    took_part: int
    outside: int
    not_in_boxes: int


def party_list_totals(took_part: int = data.TOOK_PART) -> dict[str, int]:
    """National hand-count totals of the party list: official where known, shaped elsewhere.

    The six winners have their official votes; the other 15 parties and against all share the
    rest of the valid votes in proportion to their election-night scanner shares. For a scaled
    country (`took_part` other than the official figure) every choice's votes are the official
    totals scaled by exact largest-remainder apportionment.
    """
    invalid = (took_part * data.INVALID_PER_MILLE + 500) // 1000
    missing = took_part * data.NOT_IN_BOXES_PER_10000 // 10_000
    valid = took_part - invalid - missing
    if took_part != data.TOOK_PART:
        official = party_list_totals()
        ids = [p.id for p in (*data.PARTIES, data.AGAINST_ALL)]
        scaled = largest_remainder(valid, [official[i] for i in ids])
        return {"took_part": took_part, "not_in_boxes": missing, "invalid": invalid,
                "valid": valid, **dict(zip(ids, scaled, strict=True))}
    rest = [p for p in (*data.PARTIES, data.AGAINST_ALL) if p.id not in data.WINNER_VOTES]
    shares = largest_remainder(valid - sum(data.WINNER_VOTES.values()), [p.asu_share for p in rest])
    votes = dict(zip((p.id for p in rest), shares, strict=True))
    return {
        "took_part": took_part,
        "not_in_boxes": missing,
        "invalid": invalid,
        "valid": valid,
        **{p.id: data.WINNER_VOTES.get(p.id, votes.get(p.id, 0))
           for p in (*data.PARTIES, data.AGAINST_ALL)},
    }


def generate_protocols(
    definition: Definition, seed: int = 2021, count_kind: CountKind | str = CountKind.HAND
) -> list[GeneratedProtocol]:
    """Every station's protocol for every contest it votes in (station by station).

    `count_kind` "hand" (or "recount") gives the ground truth; "machine" gives the scanner
    count derived from it by :func:`machine_count_from` at :data:`MACHINE_DIFF_PER_MILLE`.
    """
    kind = CountKind(count_kind)
    hand = _hand_protocols(definition, seed)
    return machine_counts(hand, seed) if kind == CountKind.MACHINE else hand


def machine_counts(hand: Sequence[GeneratedProtocol], seed: int = 2021) -> list[GeneratedProtocol]:
    """The scanner counts that go with `generate_protocols(definition, seed)`."""
    return machine_count_from(hand, _rng(seed, "machine"), MACHINE_DIFF_PER_MILLE / 1000)


def _hand_protocols(definition: Definition, seed: int) -> list[GeneratedProtocol]:
    areas = {a.id: a for a in definition.areas}
    regions = {r.id: r for r in data.REGIONS}
    stations = definition.stations

    def area_in(s: Station, hierarchy: str) -> str:
        for a in s.areas:
            if areas[a].hierarchy == hierarchy:
                return a
        raise ValueError(f'station "{s.id}" has no area in hierarchy "{hierarchy}"')

    station_region = [area_in(s, ADMIN) for s in stations]
    unknown = sorted(set(station_region) - set(regions))
    if unknown:
        raise ValueError(f"not a region of the Kyrgyz model: {', '.join(unknown)}")
    region_ids = [r.id for r in data.REGIONS if r.id in set(station_region)]
    members: dict[str, list[int]] = {r: [] for r in region_ids}
    for i, r in enumerate(station_region):
        members[r].append(i)

    took_part = took_part_for(sum(s.registered for s in stations))
    turnout = _turnout(stations, station_region, region_ids, members, seed, took_part)
    party_list = next(c for c in definition.contests if c.kind == ContestKind.PARTY_LIST)
    list_votes, list_invalid = _party_list_votes(
        party_list, turnout, region_ids, members, seed, took_part
    )

    by_station: list[list[GeneratedProtocol]] = [[] for _ in stations]
    list_choices = [c.id for c in party_list.choices]
    for i, s in enumerate(stations):
        by_station[i].append(
            GeneratedProtocol(
                s.id, party_list.id,
                _lines(turnout[i], list_invalid[i], dict(zip(list_choices, list_votes[i],
                                                             strict=True))),
            )
        )
    station_smd = [area_in(s, SMD) for s in stations]
    for contest in definition.contests:
        if contest.kind != ContestKind.CANDIDATES:
            continue
        voters = [i for i, a in enumerate(station_smd) if a == contest.area]
        for i, invalid, votes in _candidate_votes(contest, areas[contest.area], voters, turnout,
                                                  seed):
            by_station[i].append(
                GeneratedProtocol(stations[i].id, contest.id, _lines(turnout[i], invalid, votes))
            )
    return [p for ps in by_station for p in ps]


def _lines(t: _Turnout, invalid: int, votes: dict[str, int]) -> dict[str, int]:
    in_boxes = t.took_part - t.not_in_boxes
    valid = in_boxes - invalid
    if valid != sum(votes.values()) or invalid < 0:
        raise RuntimeError("generated votes do not add up")  # a bug, never the input
    return {
        "registered_main": t.registered - t.additional,
        "registered_additional": t.additional,
        "ballots_received": t.received,
        "issued_early": 0,
        "issued_station": t.took_part - t.outside,
        "issued_outside": t.outside,
        "cancelled": t.received - t.took_part,
        "in_stationary_boxes": t.took_part - t.outside - t.not_in_boxes,
        "in_mobile_boxes": t.outside,
        "invalid": invalid,
        "valid": valid,
        **votes,
    }


def _turnout(
    stations: Sequence[Station],
    station_region: Sequence[str],
    region_ids: Sequence[str],
    members: dict[str, list[int]],
    seed: int,
    national: int = data.TOOK_PART,
) -> list[_Turnout]:
    rng = _rng(seed, "turnout")
    regions = {r.id: r for r in data.REGIONS}
    rolls = [sum(stations[i].registered for i in members[r]) for r in region_ids]
    took_part_r = largest_remainder(
        national,
        [roll * regions[r].turnout_per_mille for roll, r in zip(rolls, region_ids, strict=True)],
        rolls,
    )
    took_part = [0] * len(stations)
    for r, total in zip(region_ids, took_part_r, strict=True):
        idx = members[r]
        weights = int_weights([stations[i].registered * _lognormal(rng, 0.18) for i in idx])
        for i, v in zip(idx, largest_remainder(total, weights, [stations[i].registered
                                                                  for i in idx]), strict=True):
            took_part[i] = v
    outside = []
    for i, t in enumerate(took_part):
        share = 0.0 if stations[i].abroad else rng.uniform(0.0, 0.05)
        outside.append(min(t, round(t * share)))
    at_station = [t - o for t, o in zip(took_part, outside, strict=True)]
    missing_total = national * data.NOT_IN_BOXES_PER_10000 // 10_000
    missing = largest_remainder(missing_total, int_weights([t * rng.random() for t in at_station]),
                                at_station)
    out = []
    for i, s in enumerate(stations):
        city = regions[station_region[i]].kind != "oblast"
        additional = round(s.registered * rng.uniform(0.01, 0.05) if city
                           else s.registered * rng.uniform(0.002, 0.02))
        out.append(
            _Turnout(
                registered=s.registered,
                additional=additional,
                received=-(-s.registered // 10) * 10,
                took_part=took_part[i],
                outside=outside[i],
                not_in_boxes=missing[i],
            )
        )
    return out


def _party_list_votes(
    contest: Contest,
    turnout: Sequence[_Turnout],
    region_ids: Sequence[str],
    members: dict[str, list[int]],
    seed: int,
    took_part: int = data.TOOK_PART,
) -> tuple[list[list[int]], list[int]]:
    """Votes per station and choice, and invalid ballots per station, summing to the totals."""
    rng = _rng(seed, "party-list")
    totals = party_list_totals(took_part)
    choices = [c.id for c in contest.choices]
    missing = sorted(set(choices) - set(totals))
    if missing:
        raise ValueError(f"no 2021 figures for the choices {', '.join(missing)}")
    regions = {r.id: r for r in data.REGIONS}
    region_pos = {r.id: k for k, r in enumerate(data.REGIONS)}

    # Invalid ballots: 9.6% nationally, varying by region and station.
    inv_factor = {r: _lognormal(rng, 0.25) for r in region_ids}
    room = [t.took_part - t.not_in_boxes for t in turnout]
    station_region = {i: r for r in region_ids for i in members[r]}
    invalid = largest_remainder(
        totals["invalid"],
        int_weights([t.took_part * inv_factor[station_region[i]] * _lognormal(rng, 0.35)
                     for i, t in enumerate(turnout)]),
        room,
    )
    valid = [r - v for r, v in zip(room, invalid, strict=True)]
    valid_r = [sum(valid[i] for i in members[r]) for r in region_ids]

    # Regions x choices: national totals exact, regional shape from 2020 where a party ran.
    national = [totals[c] for c in choices]
    national_valid = sum(national)
    seed_matrix = []
    for r, v in zip(region_ids, valid_r, strict=True):
        row = []
        for c, n in zip(choices, national, strict=True):
            strength = data.REGIONAL_STRENGTH_2020.get(c)
            if strength is not None:
                aff = max(0.03, min(3.0, strength[region_pos[r]] / 100))
            elif c in data.WINNER_VOTES:
                aff = max(0.4, _lognormal(rng, 0.3))
            elif c == data.AGAINST_ALL.id:
                aff = _lognormal(rng, 0.2) * (1.6 if regions[r].kind == "city" else 1.0)
            else:
                aff = _lognormal(rng, 0.45)
            row.append(v * n / national_valid * aff)
        seed_matrix.append(row)
    by_region = fit_matrix(seed_matrix, valid_r, national)
    _check_regional_threshold(region_ids, by_region, choices, turnout, members)

    # Stations x choices within each region: the region's totals exact, station noise.
    votes: list[list[int]] = [[] for _ in turnout]
    for r, region_votes in zip(region_ids, by_region, strict=True):
        idx = members[r]
        v_r = sum(region_votes)
        seed_matrix = [
            [valid[i] * x / v_r * _lognormal(rng, 0.3) if v_r else 0.0 for x in region_votes]
            for i in idx
        ]
        fitted = fit_matrix(seed_matrix, [valid[i] for i in idx], region_votes)
        for i, station_votes in zip(idx, fitted, strict=True):
            votes[i] = station_votes
    return votes, invalid


def _check_regional_threshold(
    region_ids: Sequence[str],
    by_region: Sequence[Sequence[int]],
    choices: Sequence[str],
    turnout: Sequence[_Turnout],
    members: dict[str, list[int]],
) -> None:
    for r, row in zip(region_ids, by_region, strict=True):
        if r not in data.THRESHOLD_REGIONS:
            continue
        took_part = sum(turnout[i].took_part for i in members[r])
        for c, v in zip(choices, row, strict=True):
            if c in data.WINNER_VOTES and v * 200 < took_part:
                raise RuntimeError(f"{c} has {v} of {took_part} in {r}: under 0.5%")


def _candidate_votes(
    contest: Contest,
    area: Area,
    voters: Sequence[int],
    turnout: Sequence[_Turnout],
    seed: int,
) -> Iterable[tuple[int, int, dict[str, int]]]:
    """(station index, invalid, votes) for one constituency's stations."""
    rng = _rng(seed, f"contest:{contest.id}")
    ids = [c.id for c in contest.choices]
    against = [c.against_all for c in contest.choices]
    strength = [0.0 if a else rng.gammavariate(1.5, 1.0) for a in against]
    best = max(strength)
    en = area.name if isinstance(area.name, str) else area.name.get("en", "")
    aa_wins = any(f", {d})" in en for d in data.AGAINST_ALL_WINS)
    for k, a in enumerate(against):
        if a:
            strength[k] = 1.3 * best if aa_wins else sum(strength) * rng.uniform(0.03, 0.09)
    invalid_rate = rng.uniform(0.02, 0.06)
    for i in voters:
        t = turnout[i]
        room = t.took_part - t.not_in_boxes
        invalid = min(room, round(t.took_part * invalid_rate * _lognormal(rng, 0.3)))
        weights = int_weights([s * _lognormal(rng, 0.3) for s in strength])
        votes = largest_remainder(room - invalid, weights)
        yield i, invalid, dict(zip(ids, votes, strict=True))


# -- scanner counts ----------------------------------------------------------------------------


def machine_count_from(
    hand: Sequence[GeneratedProtocol], rng: random.Random, rate: float = 0.03
) -> list[GeneratedProtocol]:
    """Scanner counts: the hand count, except at about `rate` of the stations where the scanner
    read a few ballots (1-4 per contest) differently — one choice for another, a mark it took
    as invalid, or an invalid ballot it counted. Every control rule still holds; the ballot
    account (issued, in boxes) is the same, as it is in reality.
    """
    order = list(dict.fromkeys(p.station for p in hand))
    chosen = {s for s in order if rng.random() < rate}
    out = []
    for p in hand:
        out.append(
            GeneratedProtocol(p.station, p.contest, _misread(p.lines, rng))
            if p.station in chosen else p
        )
    return out


def _misread(lines: dict[str, int], rng: random.Random) -> dict[str, int]:
    out = dict(lines)
    choices = [k for k in lines if k not in FORM_LINES]
    k = rng.randint(1, 4)
    with_votes = [c for c in choices if out[c] > 0]
    modes = []
    if with_votes and len(choices) > 1:
        modes.append("swap")
    if with_votes:
        modes.append("to_invalid")
    if out["invalid"] > 0 and choices:
        modes.append("from_invalid")
    if not modes:
        return out
    mode = rng.choice(modes)
    if mode == "from_invalid":
        k = min(k, out["invalid"])
        target = rng.choice(choices)
        out["invalid"] -= k
        out["valid"] += k
        out[target] += k
        return out
    donor = rng.choice(with_votes)
    k = min(k, out[donor])
    out[donor] -= k
    if mode == "swap":
        out[rng.choice([c for c in choices if c != donor])] += k
    else:
        out["invalid"] += k
        out["valid"] -= k
    return out


# -- CSV ---------------------------------------------------------------------------------------


def csv_columns(protocols: Iterable[GeneratedProtocol]) -> list[str]:
    """`station`, `contest`, then every line id in order of first appearance."""
    seen: dict[str, None] = {}
    for p in protocols:
        for k in p.lines:
            seen.setdefault(k, None)
    return ["station", "contest", *seen]


def protocols_csv(protocols: Sequence[GeneratedProtocol]) -> bytes:
    """One row per protocol; a line that is not in a row's contest is left empty."""
    columns = csv_columns(protocols)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for p in protocols:
        w.writerow([p.station, p.contest, *(p.lines.get(c, "") for c in columns[2:])])
    return buf.getvalue().encode("utf-8")


def write_protocols_csv(protocols: Sequence[GeneratedProtocol], path: Path | str) -> None:
    Path(path).write_bytes(protocols_csv(protocols))


def read_protocols_csv(path: Path | str) -> list[GeneratedProtocol]:
    """Read a file written by :func:`write_protocols_csv` back (empty cells are absent lines)."""
    text = Path(path).read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    if header[:2] != ["station", "contest"]:
        raise ValueError(f"{path}: the header must start with station,contest")
    out = []
    for n, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: row {n}: {len(row)} columns, the header has {len(header)}")
        lines = {k: int(v) for k, v in zip(header[2:], row[2:], strict=True) if v != ""}
        out.append(GeneratedProtocol(row[0], row[1], lines))
    return out


# -- loading into a store ----------------------------------------------------------------------


def load_protocols(
    store: Store,
    protocols: Sequence[GeneratedProtocol],
    count_kind: CountKind | str,
    *,
    file_name: str = "kyrgyzstan-2021-generated.csv",
    file_hash: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Append the protocols to an initialised store through the import pipeline (the same
    checks, ledger and tally as any import). Row numbers and the hash are those of the CSV
    that :func:`write_protocols_csv` writes for these protocols, unless `file_hash` is given.
    """
    from tallyroom.importers.pipeline import ImportRow, import_rows

    if file_hash is None:
        file_hash = hashlib.sha256(protocols_csv(protocols)).hexdigest()
    rows = (
        ImportRow(row=n, station=p.station, contest=p.contest, lines=p.lines)
        for n, p in enumerate(protocols, start=2)
    )
    return import_rows(
        store,
        rows,
        fmt="simulate",
        file_name=file_name,
        file_hash=file_hash,
        count_kind=CountKind(count_kind),
        progress=progress,
    )


# -- the example folder ------------------------------------------------------------------------

#: Column mapping for `tallyroom import --format csv` (docs/import-formats.md): the station and
#: contest columns by name, every other column named like a line id of the row's contest.
CSV_MAPPING = """\
# Column mapping for `tallyroom import --format csv --mapping mapping.yaml protocols-*.csv`.
# Every other column is named like a line id; a line of another contest is left empty.
station_column: station
contest_column: contest
"""


def write_example(out: Path | str, seed: int = 2021) -> dict[str, Path]:
    """Write definition.yaml, protocols-hand.csv, protocols-machine.csv and mapping.yaml."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    definition = generate_definition(seed)
    hand = generate_protocols(definition, seed, CountKind.HAND)
    paths = {
        "definition": folder / "definition.yaml",
        "hand": folder / "protocols-hand.csv",
        "machine": folder / "protocols-machine.csv",
        "mapping": folder / "mapping.yaml",
    }
    write_definition_yaml(definition, paths["definition"])
    write_protocols_csv(hand, paths["hand"])
    write_protocols_csv(machine_counts(hand, seed), paths["machine"])
    paths["mapping"].write_text(CSV_MAPPING, encoding="utf-8")
    return paths

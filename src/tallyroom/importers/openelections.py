"""US precinct returns in the OpenElections CSV layout.

One row per (precinct, office, district, candidate): `county`, `precinct` (or
`election_district`), `office`, `district`, `party`, `candidate`, `votes`, optionally
`election_day` and `absentee` (https://github.com/openelections/openelections-data-de and the
layout notes of the OpenElections project). A protocol is the group of rows of one precinct
and one contest (office + district): one line per candidate.

Rows whose precinct (or county) is `Total` are certified totals, not protocols. They are
collected and, after the import, compared with the imported precinct sums. A total that is the
only one of its (office, district, candidate) is the contest's total (in the Delaware 2016 file
such rows carry the county of the preceding block, but are statewide or district-wide); when
one candidate has Total rows for several counties, each is that county's total.

The definition built from the file: hierarchy `admin` state → county → precinct (stations);
one more hierarchy per districted office (`state-senate`, `state-house`, …) with one area per
district, so that a precinct sits in its county and in each of its districts; one contest per
(office, district) whose area is the state (no district: statewide or at-large) or the district.
The file has no registered voters or ballot counts, so the form has no lines: see FORM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec

from tallyroom.definition.compiled import CompiledElection
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
    Form,
    Hierarchy,
    Station,
)
from tallyroom.importers.generic import decode, iter_records, read_header
from tallyroom.importers.pipeline import ImportFileError, ImportRow
from tallyroom.tally.running import Totals

#: US precinct returns state votes per candidate only: valid votes are the sum of the choices;
#: the file has no registered voters or ballots cast, so neither figure (nor turnout) exists.
FORM = Form(lines=[], figures={Figure.VALID: "sum(choices)"})

_PRECINCT_COLUMNS = ("precinct", "election_district")
_REQUIRED = ("county", "office", "candidate", "votes")
#: The Delaware layout, where votes = election_day + absentee is checked for every row.
_DE_COLUMNS = frozenset(
    {
        "county",
        "election_district",
        "office",
        "district",
        "party",
        "candidate",
        "election_day",
        "absentee",
        "votes",
    }
)
_FILE_NAME = re.compile(r"^(\d{4})(\d{2})(\d{2})__([a-z]{2})__([a-z_]+?)(?:__.*)?\.csv$")

STATES = {
    "al": "Alabama", "ak": "Alaska", "az": "Arizona", "ar": "Arkansas", "ca": "California",
    "co": "Colorado", "ct": "Connecticut", "de": "Delaware", "dc": "District of Columbia",
    "fl": "Florida", "ga": "Georgia", "hi": "Hawaii", "id": "Idaho", "il": "Illinois",
    "in": "Indiana", "ia": "Iowa", "ks": "Kansas", "ky": "Kentucky", "la": "Louisiana",
    "me": "Maine", "md": "Maryland", "ma": "Massachusetts", "mi": "Michigan", "mn": "Minnesota",
    "ms": "Mississippi", "mo": "Missouri", "mt": "Montana", "ne": "Nebraska", "nv": "Nevada",
    "nh": "New Hampshire", "nj": "New Jersey", "nm": "New Mexico", "ny": "New York",
    "nc": "North Carolina", "nd": "North Dakota", "oh": "Ohio", "ok": "Oklahoma", "or": "Oregon",
    "pa": "Pennsylvania", "ri": "Rhode Island", "sc": "South Carolina", "sd": "South Dakota",
    "tn": "Tennessee", "tx": "Texas", "ut": "Utah", "vt": "Vermont", "va": "Virginia",
    "wa": "Washington", "wv": "West Virginia", "wi": "Wisconsin", "wy": "Wyoming",
}  # fmt: skip


def slug(text: str) -> str:
    """An identifier fragment: lower-case ASCII letters and digits joined by '-'."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower().replace(".", "").replace("'", "")).strip("-")
    return s[:60].rstrip("-") or "x"


@dataclass
class OEContest:
    id: str
    office: str
    district: str
    area: str  # the state, or a district area
    #: (candidate, party) -> choice id, in order of first appearance.
    choices: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class CertifiedTotal:
    row: int
    county: str
    contest: str
    choice: str | None  # None: the candidate is on no precinct row of the contest
    candidate: str
    party: str
    votes: str


@dataclass
class OEFile:
    name: str
    state: str
    date: str
    kind: str
    counties: dict[str, str] = field(default_factory=dict)  # county name -> area id
    #: station id -> (name, county area, {hierarchy: district area}).
    stations: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    #: office name -> (hierarchy id, {district: area id}) for districted offices.
    districts: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    contests: dict[tuple[str, str], OEContest] = field(default_factory=dict)
    #: (station, contest) -> (first row, {choice id: votes or the text to reject}).
    groups: dict[tuple[str, str], tuple[int, dict[str, int | str]]] = field(default_factory=dict)
    totals: list[CertifiedTotal] = field(default_factory=list)
    rows: int = 0


def parse(name: str, raw: bytes) -> OEFile:
    """Read the whole file; raise ImportFileError naming the row for anything that stops it."""
    text = decode(name, raw)
    header = [h.lower() for h in read_header(name, text)]
    col = {h: i for i, h in enumerate(header)}
    missing = [c for c in _REQUIRED if c not in col]
    pcol = next((col[c] for c in _PRECINCT_COLUMNS if c in col), None)
    if pcol is None:
        missing.insert(1, "precinct (or election_district)")
    if missing:
        raise ImportFileError(
            f"{name}: row 1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            "(not an OpenElections precinct file?)"
        )
    assert pcol is not None
    ci, oi, ki, vi = (col[c] for c in _REQUIRED)
    di, pi = col.get("district"), col.get("party")
    parts = (col["election_day"], col["absentee"]) if set(header) == _DE_COLUMNS else None

    m = _FILE_NAME.match(name)
    state = m.group(4) if m else "us"
    f = OEFile(name, state, f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else "", m.group(5) if m else "")
    station_keys: dict[str, tuple[str, str]] = {}
    seen_choice: dict[tuple[str, str, str], int] = {}
    for n, row in iter_records(name, text, len(header)):
        f.rows += 1
        county, precinct = row[ci].strip(), row[pcol].strip()
        office, candidate = row[oi].strip(), row[ki].strip()
        district = row[di].strip() if di is not None else ""
        party = row[pi].strip() if pi is not None else ""
        votes = row[vi].strip()
        if not office or not candidate:
            raise ImportFileError(f"{name}: row {n}: empty {'office' if not office else 'candidate'}")
        contest = _contest(f, office, district, n)
        if precinct.lower() == "total" or county.lower() == "total":
            key = (candidate, party)
            f.totals.append(
                CertifiedTotal(n, county, contest.id, contest.choices.get(key), candidate, party, votes)
            )
            continue
        if not county or not precinct:
            raise ImportFileError(f"{name}: row {n}: empty {'county' if not county else 'precinct'}")
        station = _station(f, station_keys, county, precinct, n)
        if contest.area != state and district:
            hier, _ = f.districts[office]
            areas = f.stations[station][2]
            prior = areas.setdefault(hier, contest.area)
            if prior != contest.area:
                raise ImportFileError(
                    f"{name}: row {n}: precinct {county} {precinct} is in two {office} districts "
                    f"({prior} and {contest.area}); a station belongs to one district per office"
                )
        choice = contest.choices.get((candidate, party))
        if choice is None:
            choice = _new_choice(contest, candidate, party)
        first = seen_choice.setdefault((station, contest.id, choice), n)
        if first != n:
            raise ImportFileError(
                f"{name}: row {n}: a second row for {candidate} ({party or 'no party'}) in "
                f"precinct {county} {precinct}, {office} {district}".rstrip()
                + f" (first at row {first})"
            )
        value = _votes(votes, n)
        if parts is not None and isinstance(value, int) and value >= 0:
            a, b = row[parts[0]].strip(), row[parts[1]].strip()
            if a.isascii() and a.isdigit() and b.isascii() and b.isdigit() and int(a) + int(b) != value:
                value = f"{votes} but election_day {a} + absentee {b} = {int(a) + int(b)} (file row {n})"
        group = f.groups.setdefault((station, contest.id), (n, {}))
        group[1][choice] = value
    if not f.groups:
        raise ImportFileError(f"{name}: no precinct rows (only {len(f.totals)} Total rows)")
    # Totals for a candidate first seen on a precinct row after its Total row.
    by_id = {c.id: c for c in f.contests.values()}
    f.totals = [
        t
        if t.choice is not None
        else CertifiedTotal(
            t.row,
            t.county,
            t.contest,
            by_id[t.contest].choices.get((t.candidate, t.party)),
            t.candidate,
            t.party,
            t.votes,
        )
        for t in f.totals
    ]
    return f


def _votes(votes: str, n: int) -> int | str:
    """The count, or text naming the row for the pipeline to reject (negatives stay numbers
    so that the form check rejects them with their value)."""
    body = votes[1:] if votes.startswith("-") else votes
    if body.isascii() and body.isdigit():
        return int(votes)
    return f"{votes!r} (file row {n})"


def _contest(f: OEFile, office: str, district: str, n: int) -> OEContest:
    c = f.contests.get((office, district))
    if c is not None:
        return c
    if district:
        hier, areas = f.districts.setdefault(office, (slug(office), {}))
        area = areas.setdefault(district, f"{hier}-{slug(district)}")
        cid = area
    else:
        area, cid = f.state, slug(office)
    if any(o.id == cid for o in f.contests.values()):
        raise ImportFileError(
            f"{f.name}: row {n}: contest {office} {district} gets the id {cid!r} of another contest"
        )
    c = f.contests[(office, district)] = OEContest(cid, office, district, area)
    return c


def _station(f: OEFile, keys: dict[str, tuple[str, str]], county: str, precinct: str, n: int) -> str:
    cid = f.counties.get(county)
    if cid is None:
        cid = f.counties[county] = f"{f.state}-{slug(county)}"
    sid = f"{cid}-{slug(precinct)}"
    prior = keys.setdefault(sid, (county, precinct))
    if prior != (county, precinct):
        raise ImportFileError(
            f"{f.name}: row {n}: precinct {county} {precinct} gets the id {sid!r} of precinct "
            f"{prior[0]} {prior[1]}"
        )
    if sid not in f.stations:
        f.stations[sid] = (f"{county} {precinct}", cid, {})
    return sid


def _new_choice(contest: OEContest, candidate: str, party: str) -> str:
    taken = set(contest.choices.values())
    cid = slug(candidate)
    if cid in taken and party:
        cid = f"{cid}-{slug(party)}"
    base, k = cid, 2
    while cid in taken:
        cid, k = f"{base}-{k}", k + 1
    contest.choices[(candidate, party)] = cid
    return cid


def contest_name(c: OEContest) -> str:
    return f"{c.office} {c.district}" if c.district else c.office


def build_definition(f: OEFile) -> bytes:
    """The election definition (JSON bytes) for the precincts and contests in the file."""
    state_name = STATES.get(f.state, f.state.upper())
    hierarchies = [Hierarchy(id="admin", name={"en": "State and counties"})]
    areas = [Area(id=f.state, name=state_name, hierarchy="admin", kind="state")]
    areas += [
        Area(id=aid, name=f"{county} County", hierarchy="admin", parent=f.state, kind="county")
        for county, aid in f.counties.items()
    ]
    for office, (hier, districts) in f.districts.items():
        hierarchies.append(Hierarchy(id=hier, name=f"{office} districts"))
        areas += [
            Area(id=aid, name=f"{office} district {d}", hierarchy=hier, kind="district")
            for d, aid in districts.items()
        ]
    stations = [
        Station(id=sid, name=name, areas=[county, *dist.values()], registered=0)
        for sid, (name, county, dist) in f.stations.items()
    ]
    contests = [
        Contest(
            id=c.id,
            name=contest_name(c),
            kind=ContestKind.CANDIDATES,
            area=c.area,
            choices=[
                Choice(id=cid, name=cand, party=party or None) for (cand, party), cid in c.choices.items()
            ],
            form=FORM,
            # Delaware (and most US states) count on machines; the certified count is theirs.
            official_count=CountKind.MACHINE,
            percent_base=Figure.VALID,
            allocation=Allocation(method="plurality", seats=1),
        )
        for c in f.contests.values()
        if c.choices
    ]
    kind = f.kind.replace("_", " ") or "election"
    definition = Definition(
        election=Election(
            id=f"us-{f.state}-{f.date or 'import'}-{slug(f.kind or 'election')}",
            name={"en": f"{state_name} {kind} {f.date} (OpenElections precinct returns)".replace("  ", " ")},
            date=f.date,
            country="US",
            languages=["en"],
        ),
        hierarchies=hierarchies,
        areas=areas,
        stations=stations,
        contests=contests,
    )
    return msgspec.json.encode(definition)


def iter_rows(f: OEFile) -> Iterator[ImportRow]:
    """One ImportRow per (precinct, contest), numbered by its first row in the file."""
    for (station, contest), (n, lines) in f.groups.items():
        yield ImportRow(n, station, contest, lines)  # a text value is rejected by line


def check_totals(
    f: OEFile, election: CompiledElection, totals: dict[tuple[str, str], Totals | None]
) -> list[str]:
    """Compare every certified Total row with the imported precinct sums; one note per finding.

    `totals` maps (contest id, area id) to the store's running totals for the count kind of
    the import. Returns a summary line, one line per matching contest, and one line per
    mismatching candidate total.
    """
    if not f.totals:
        return ["certified totals: the file has no Total rows to check against"]
    per_key: dict[tuple[str, str, str], list[CertifiedTotal]] = {}
    for t in f.totals:
        per_key.setdefault((t.contest, t.candidate, t.party), []).append(t)
    contests = {c.id: c for c in f.contests.values()}
    matched: dict[str, list[int]] = {}
    bad: list[str] = []
    bad_contests: set[str] = set()
    for group in per_key.values():
        by_county = len({t.county for t in group}) > 1
        for t in group:
            c = contests[t.contest]
            area = f.counties.get(t.county, "") if by_county else c.area
            scope = f"{t.county} County" if by_county else ("statewide" if c.area == f.state else "district")
            label = f"{contest_name(c)} / {t.candidate}" + (f" ({t.party})" if t.party else "")
            certified = int(t.votes) if t.votes.isascii() and t.votes.isdigit() else None
            imported = _sum(election, totals, t.contest, area, t.choice)
            if certified is None:
                bad.append(f"certified total unreadable: {label}, row {t.row}: votes {t.votes!r}")
            elif imported is None:
                bad.append(
                    f"certified total MISMATCH: {label}, row {t.row}: certified {certified:,}, "
                    f"but the candidate is on no imported precinct row"
                )
            elif imported != certified:
                bad.append(
                    f"certified total MISMATCH: {label} ({scope}), row {t.row}: certified "
                    f"{certified:,}, imported precinct sum {imported:,} ({imported - certified:+,})"
                )
            else:
                matched.setdefault(t.contest, []).append(certified)
                continue
            bad_contests.add(t.contest)
    n_ok = sum(len(v) for v in matched.values())
    checked = {t.contest for t in f.totals}
    unchecked = [contest_name(c) for c in f.contests.values() if c.id not in checked]
    notes = [
        f"certified totals: {n_ok} of {len(f.totals)} candidate totals equal the imported precinct "
        f"sums; {len(checked) - len(bad_contests)} of {len(checked)} contests match in full"
        + (f"; {len(unchecked)} contest(s) have no Total rows" if unchecked else "")
    ]
    for cid, votes in matched.items():
        if cid not in bad_contests:
            notes.append(
                f"  match: {contest_name(contests[cid])}: {len(votes)} candidate total(s), "
                f"{sum(votes):,} votes"
            )
    notes += [f"  {b}" for b in bad]
    if unchecked:
        notes.append(f"  no Total rows for: {', '.join(unchecked)}")
    return notes


def summary(f: OEFile, election: CompiledElection) -> list[str]:
    """What the file held, and the precincts of a contest's area that have no rows for it."""
    precinct_rows = f.rows - len(f.totals)
    notes = [
        f"{f.name}: {f.rows:,} file rows: {precinct_rows:,} precinct rows, grouped into "
        f"{len(f.groups):,} protocols (one per precinct and contest), and {len(f.totals)} "
        "certified Total rows"
    ]
    reported: dict[str, set[str]] = {}
    for station, contest in f.groups:
        reported.setdefault(contest, set()).add(station)
    for c in f.contests.values():
        if c.id not in election.contest_index:
            continue
        cc = election.contest(c.id)
        absent = [
            election.stations[i].id
            for i in cc.stations
            if election.stations[i].id not in reported.get(c.id, set())
        ]
        if absent:
            shown = ", ".join(absent[:10]) + (" …" if len(absent) > 10 else "")
            notes.append(
                f"  {contest_name(c)}: {len(absent)} of {len(cc.stations)} precincts in its "
                f"area have no rows in the file ({shown})"
            )
    return notes


def _sum(
    election: CompiledElection,
    totals: dict[tuple[str, str], Totals | None],
    contest: str,
    area: str,
    choice: str | None,
) -> int | None:
    if choice is None or contest not in election.contest_index:
        return None
    cc = election.contest(contest)
    if choice not in cc.line_index:
        return None
    t = totals.get((contest, area))
    return 0 if t is None else t.counts[cc.line_index[choice]]


def total_keys(f: OEFile) -> set[tuple[str, str]]:
    """The (contest id, area id) totals `check_totals` needs from the store."""
    contests = {c.id: c for c in f.contests.values()}
    keys = {(t.contest, contests[t.contest].area) for t in f.totals}
    keys |= {(t.contest, f.counties[t.county]) for t in f.totals if t.county in f.counties}
    return keys

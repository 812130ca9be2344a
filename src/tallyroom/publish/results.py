"""The published numbers: every (contest, area, count kind) row and every station's protocol.

This is the *display step*: it turns a tally into the rows that JSON, CSV, NIST, SQLite and
HTML are written from. The 2021 Kyrgyz failure was a fault in exactly such a step (a figure
added twice), so nothing produced here is published before the gate (:mod:`.gate`) has
recomputed it from the ledger by another path and compared every number.

Rows are plain JSON-ready dicts (the format is specified in docs/bulletin.md):

* an **area row** is :meth:`tallyroom.tally.report.TallyRow.to_dict` plus ``official`` (is this
  the contest's official count kind) and ``stations_reporting_percent``;
* a **station protocol** is the same shape for one station (``stations_reporting`` 1 of 1) plus
  its ledger index, leaf hash, envelope and the outcome of every control rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tallyroom.definition.compiled import CompiledContest, CompiledElection
from tallyroom.tally.report import percent, tally_row
from tallyroom.tally.running import Tally, Totals

#: (contest id, area id, count kind)
RowKey = tuple[str, str, str]
#: (contest id, station id, count kind)
StationKey = tuple[str, str, str]
Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProtocolEntry:
    """One counted protocol as the ledger holds it."""

    contest: int
    station: int
    count_kind: str
    ledger_index: int
    leaf_hash: bytes
    counts: Sequence[int]
    envelope: Mapping[str, Any]
    body_sha256: str


@dataclass
class Results:
    """Everything a snapshot publishes as numbers."""

    #: contest id -> the count kinds published for it (official first).
    kinds: dict[str, list[str]]
    rows: dict[RowKey, Row] = field(default_factory=dict)
    stations: dict[StationKey, Row] = field(default_factory=dict)


def published_kinds(election: CompiledElection, present: Iterable[str]) -> dict[str, list[str]]:
    """Per contest: its official count kind, then every other kind that has protocols."""
    seen = sorted(set(present))
    out: dict[str, list[str]] = {}
    for c in election.contests:
        official = str(c.official_count)
        out[c.id] = [official, *(k for k in seen if k != official)]
    return out


def area_row(
    election: CompiledElection,
    contest: CompiledContest,
    area: int,
    kind: str,
    totals: Totals | None,
) -> Row:
    """The published row of one contest in one area for one count kind."""
    row = tally_row(election, contest, area, kind, totals).to_dict()
    row["official"] = kind == str(contest.official_count)
    row["stations_reporting_percent"] = percent(row["stations_reporting"], row["stations_expected"])
    return row


def rule_checks(contest: CompiledContest, counts: Sequence[int]) -> list[dict[str, Any]]:
    """Every control rule of the contest with its two sides and whether it holds."""
    out = []
    for r in contest.rules:
        values = {contest.line_ids[i]: counts[i] for i in r.line_indices}
        out.append(
            {
                "rule": r.rule.id,
                "expr": r.rule.expr,
                "severity": str(r.rule.severity),
                "left": r.comparison.left.value(values),
                "right": r.comparison.right.value(values),
                "holds": r.holds(counts),
            }
        )
    return out


def station_protocol(election: CompiledElection, p: ProtocolEntry) -> Row:
    """The published record of one counted station protocol."""
    contest = election.contests[p.contest]
    station = election.stations[p.station]
    # A station's own first area gives the names; the station overrides them below.
    row = tally_row(
        election,
        contest,
        election.station_direct[p.station][0],
        p.count_kind,
        Totals(list(p.counts), 1),
    ).to_dict()
    row.pop("area")
    row.pop("area_name")
    row = {
        "contest": contest.id,
        "station": station.id,
        "count_kind": p.count_kind,
        "official": p.count_kind == str(contest.official_count),
        "ledger_index": p.ledger_index,
        "leaf_hash": p.leaf_hash.hex(),
        "body_sha256": p.body_sha256,
        "envelope": dict(p.envelope),
        **{k: v for k, v in row.items() if k not in ("contest", "count_kind")},
        "stations_reporting": 1,
        "stations_expected": 1,
        "rules": rule_checks(contest, p.counts),
    }
    return row


def station_protocols(
    election: CompiledElection,
    protocols: Iterable[ProtocolEntry],
    cache: dict[bytes, Row] | None = None,
) -> dict[StationKey, Row]:
    """Every station record. A record is a pure function of its ledger entry's bytes, so a
    long-running publisher may pass a ``cache`` keyed by leaf hash (SHA-256 of those bytes)."""
    out: dict[StationKey, Row] = {}
    for p in protocols:
        key = (election.contests[p.contest].id, election.stations[p.station].id, p.count_kind)
        if cache is None:
            out[key] = station_protocol(election, p)
            continue
        row = cache.get(p.leaf_hash)
        if row is None:
            row = cache[p.leaf_hash] = station_protocol(election, p)
        out[key] = row
    return out


def area_rows(election: CompiledElection, tally: Tally, kinds: Mapping[str, list[str]]) -> dict[RowKey, Row]:
    """Every area row of every contest (areas where the contest has stations) and kind."""
    out: dict[RowKey, Row] = {}
    for contest in election.contests:
        for kind in kinds[contest.id]:
            for area in sorted(contest.stations_expected):
                totals = tally.get(contest.index, area, kind)
                out[(contest.id, election.areas[area].id, kind)] = area_row(
                    election, contest, area, kind, totals
                )
    return out


#: A display hook: gets the rows about to be published and may change them. Only tests use it,
#: to inject the 2021 fault and prove that the gate refuses it.
DisplayHook = Callable[[Results], None]


def present(
    election: CompiledElection,
    running: Tally,
    protocols: Iterable[ProtocolEntry],
    present_kinds: Iterable[str],
    hook: DisplayHook | None = None,
    cache: dict[bytes, Row] | None = None,
) -> Results:
    """The display step: rows from the running tally, station records from the ledger."""
    kinds = published_kinds(election, present_kinds)
    stations = station_protocols(election, protocols, cache)
    results = Results(kinds, area_rows(election, running, kinds), stations)
    if hook is not None:
        hook(results)
    return results

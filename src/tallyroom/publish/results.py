"""The published numbers: every (contest, area, count kind) row and every station's protocol.

This is the *display step*: it turns a tally into the rows that JSON, CSV, NIST, SQLite and
HTML are written from. The 2021 Kyrgyz failure was a fault in exactly such a step (a figure
added twice), so nothing produced here is published before the gate (:mod:`.gate`) has
recomputed it from the ledger by another path and compared every number.

Rows are plain JSON-ready dicts (the format is specified in docs/bulletin.md):

* an **area row** is :meth:`tallyroom.tally.report.TallyRow.to_dict` plus ``official`` (is this
  the contest's official count kind) and ``stations_reporting_percent``;
* a **station protocol** is the same shape for one station (``stations_reporting`` 1 of 1) plus
  its ledger index, leaf hash, envelope and the outcome of every control rule. Its choices
  and rule checks are :class:`~tallyroom.tally.record.Choice` and :class:`RuleCheck`
  structs, read like dicts and encoded as the same JSON objects: there is one record per
  protocol, kept for the publisher's life, and a dict per choice was half of a record's
  memory (docs/decisions/0012).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledContest, CompiledElection, name_in
from tallyroom.definition.model import Figure
from tallyroom.protocol.expr import compile_rule_sides
from tallyroom.publish.audit_view import AuditView
from tallyroom.tally.record import Choice, Fields
from tallyroom.tally.report import BASE_WORDS, percent, tally_row
from tallyroom.tally.running import Tally, Totals

#: (contest id, area id, count kind)
RowKey = tuple[str, str, str]
#: (contest id, station id, count kind)
StationKey = tuple[str, str, str]
Row = dict[str, Any]
#: Area rows by key, with the totals they were made from: (reporting, *counts) or (None,).
RowCache = dict[RowKey, tuple[tuple[Any, ...], Row]]


class RuleCheck(Fields, gc=False):
    """One control rule of a station record: its two sides and whether it holds (fields in
    alphabetical order, as for :class:`~tallyroom.tally.record.Choice`)."""

    expr: str
    holds: bool
    left: int
    right: int
    rule: str
    severity: str


def plain(value: Any) -> Any:
    """A record (or any value holding one) with its structs as dicts: what its JSON decodes to."""
    return msgspec.to_builtins(value)


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
    #: contest id -> machine-vs-hand reconciliation (:mod:`.audit_view`, docs/bulletin.md §14).
    reconciliation: dict[str, Row] = field(default_factory=dict)
    #: (contest id, count kind) -> outcome sensitivity of a party-list count.
    sensitivity: dict[tuple[str, str], Row] = field(default_factory=dict)


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


def rule_checks_reference(contest: CompiledContest, counts: Sequence[int]) -> list[dict[str, Any]]:
    """Every control rule of the contest with its two sides and whether it holds, through the
    rules' own expressions (the reference :func:`rule_checks` is tested against)."""
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


#: Per contest: each rule's (id, expression, severity), and one compiled function giving both
#: sides of every rule and whether it holds (:func:`tallyroom.protocol.expr.compile_rule_sides`).
_RulePlan = tuple[list[tuple[str, str, str]], Callable[[Sequence[int]], tuple[Any, ...]]]
_RULE_PLANS: dict[int, tuple[CompiledContest, _RulePlan]] = {}


def _rule_plan(contest: CompiledContest) -> _RulePlan:
    got = _RULE_PLANS.get(id(contest))
    if got is None or got[0] is not contest:
        index = {name: i for i, name in enumerate(contest.line_ids)}
        names = [(r.rule.id, r.rule.expr, str(r.rule.severity)) for r in contest.rules]
        sides = compile_rule_sides([r.comparison for r in contest.rules], index)
        got = _RULE_PLANS[id(contest)] = (contest, (names, sides))
    return got[1]


def rule_checks(contest: CompiledContest, counts: Sequence[int]) -> list[RuleCheck]:
    """Every control rule of the contest with its two sides and whether it holds: one call
    of a function compiled per contest for all its rules (the same sums as the expressions'
    own, :func:`rule_checks_reference`): one record per protocol, made by the display step
    and again by the gate."""
    names, sides = _rule_plan(contest)
    v = sides(counts)
    return [
        RuleCheck(expr=expr, holds=v[i + 2], left=v[i], right=v[i + 1], rule=rid, severity=severity)
        for i, (rid, expr, severity) in zip(range(0, len(v), 3), names, strict=True)
    ]


def station_protocol(election: CompiledElection, p: ProtocolEntry) -> Row:
    """The published record of one counted station protocol: the fields of
    :func:`tallyroom.tally.report.tally_row` for the station's counts (English names, one
    station of one) plus its ledger facts and rule checks. Written out instead of going
    through ``tally_row`` because there is one per protocol (tests compare the two)."""
    contest = election.contests[p.contest]
    counts = p.counts
    figures = contest.figures
    values = {f: (None if (fn := figures.get(f)) is None else fn(counts)) for f in _FIGURES}
    base_fig = contest.contest.percent_base
    base = values[base_fig]
    took_part = values[Figure.TOOK_PART]
    ballots_cast = values[Figure.BALLOTS_CAST]
    registered = values[Figure.REGISTERED]
    turnout_num = took_part if took_part is not None else ballots_cast
    base_name = str(base_fig)
    start = contest.choice_start
    whole = base or 0
    choices = _choices_en(contest)
    return {
        "contest": contest.id,
        "station": election.stations[p.station].id,
        "count_kind": p.count_kind,
        "official": p.count_kind == str(contest.official_count),
        "ledger_index": p.ledger_index,
        "leaf_hash": p.leaf_hash.hex(),
        "body_sha256": p.body_sha256,
        "envelope": dict(p.envelope),
        "stations_reporting": 1,
        "stations_expected": 1,
        "registered": registered,
        "took_part": took_part,
        "ballots_cast": ballots_cast,
        "valid": values[Figure.VALID],
        "invalid": values[Figure.INVALID],
        "turnout_percent": (
            None if turnout_num is None or registered is None else _shared(percent(turnout_num, registered))
        ),
        "percent_base": {
            "figure": base_name,
            "words": BASE_WORDS.get(base_name, base_name),
            "value": base,
        },
        "choices": [
            Choice(
                against_all=against_all, id=cid, name=name, percent=pct, percent_base=base_name, votes=votes
            )
            for (cid, name, against_all), votes, pct in zip(
                choices,
                counts[start : start + len(choices)],
                _percents(counts, start, len(choices), whole),
                strict=True,
            )
        ],
        "lines": dict(zip(contest.line_ids, counts, strict=True)),
        "rules": rule_checks(contest, counts),
    }


_FIGURES = tuple(Figure)
#: Percentages as strings ("0.00" … "100.00"), one object each for all records instead of one
#: per choice of every record: records are kept for the publisher's life (by leaf hash), and
#: this saves about 1 kB per record (docs/decisions/0005).
_PERCENTS: dict[str, str] = {}


#: Every percentage with two decimals from 0.00 to 100.00, by its value in hundredths.
_PERCENT_TEXT: list[str] = [f"{q // 100}.{q % 100:02d}" for q in range(10_001)]


def _percents(counts: Sequence[int], start: int, n: int, whole: int) -> list[str | None]:
    """``percent(counts[i], whole)`` of the ``n`` counts from ``start``, each a shared string:
    the rounding of :func:`tallyroom.tally.report.percent` (half up, two decimals) done here
    and the text picked from a table (a record has a share per choice: this is a third of the
    cost of making it). Shares outside 0–100% (faulty data) go through ``percent`` itself."""
    if whole <= 0:
        return [None] * n
    twice = whole * 2
    out: list[str | None] = []
    for v in counts[start : start + n]:
        q = (v * 20000 + whole) // twice
        out.append(_PERCENT_TEXT[q] if 0 <= q <= 10_000 else _shared(percent(v, whole)))
    return out


def _shared(text: str | None) -> str | None:
    if text is None:
        return None
    got = _PERCENTS.get(text)
    if got is None:
        if len(_PERCENTS) >= 100_000:  # only faulty data gets here (shares above 100%)
            return text
        got = _PERCENTS[text] = text
    return got
_CHOICES_EN: dict[int, tuple[CompiledContest, list[tuple[str, str, bool]]]] = {}


def _choices_en(contest: CompiledContest) -> list[tuple[str, str, bool]]:
    """(id, English name, against all) of each choice, in ballot order (kept per contest)."""
    got = _CHOICES_EN.get(id(contest))
    if got is None or got[0] is not contest:
        got = _CHOICES_EN[id(contest)] = (
            contest,
            [(ch.id, name_in(ch.name, "en"), ch.against_all) for ch in contest.contest.choices],
        )
    return got[1]


def station_protocol_reference(election: CompiledElection, p: ProtocolEntry) -> Row:
    """:func:`station_protocol` through ``tally_row`` (the reference the tests compare with)."""
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
    return {
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
        "rules": rule_checks_reference(contest, p.counts),
    }


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


def area_rows(
    election: CompiledElection,
    tally: Tally,
    kinds: Mapping[str, list[str]],
    cache: RowCache | None = None,
) -> dict[RowKey, Row]:
    """Every area row of every contest (areas where the contest has stations) and kind.

    A row is a pure function of its key and its totals; with a ``cache`` a row whose totals
    did not change is the row made before (the same object)."""
    out: dict[RowKey, Row] = {}
    for contest in election.contests:
        for kind in kinds[contest.id]:
            for area in sorted(contest.stations_expected):
                totals = tally.get(contest.index, area, kind)
                key = (contest.id, election.areas[area].id, kind)
                if cache is None:
                    out[key] = area_row(election, contest, area, kind, totals)
                    continue
                sig = (None,) if totals is None else (totals.reporting, *totals.counts)
                got = cache.get(key)
                if got is None or got[0] != sig:
                    got = cache[key] = (sig, area_row(election, contest, area, kind, totals))
                out[key] = got[1]
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
    row_cache: RowCache | None = None,
    audit: AuditView | None = None,
) -> Results:
    """The display step: rows from the running tally, station records from the ledger, and
    the reconciliation and sensitivity made from them.

    The caches (never used together with a ``hook``, which may change what it is given)
    keep the records, rows and audit documents of a long-running publisher between
    snapshots."""
    kinds = published_kinds(election, present_kinds)
    stations = station_protocols(election, protocols, cache)
    results = Results(kinds, area_rows(election, running, kinds, row_cache), stations)
    view = audit if audit is not None else AuditView()
    results.reconciliation = view.reconciliation(election, kinds, stations, results.rows)
    results.sensitivity = view.sensitivity(election, kinds, results.rows)
    if hook is not None:
        hook(results)
    return results

"""Machine-vs-hand reconciliation and outcome sensitivity, as the public site publishes them.

Both are part of the display step (:mod:`.results`): they are made from the published station
records and area rows with the audit mathematics — :mod:`tallyroom.audit.reconcile` for the
station-by-station comparison, the recount rules and the histogram, :mod:`tallyroom.audit.
sensitivity` for threshold margins and the smallest seat move — and the publish gate makes them
again from the records and rows it recomputed from the ledger, refusing a snapshot whose
documents differ (:mod:`.gate`). Formats: docs/bulletin.md §14.

**Reconciliation** of a contest compares, for every station with both counts, the machine
(scanner) protocol with the hand-count protocol: every line's ``hand - machine``, absolute and
relative to the machine count, the overstatement of each assertion the reported (machine)
outcome rests on (Stark 2008, "A sharper discrepancy measure for post-election audits"), and the
site's recount rule (:data:`RECOUNT_RELATIVE`, plus any station whose difference alone could
overturn an assertion). Only stations that differ are listed; the others are counted.

**Sensitivity** of a party-list count: how many votes each threshold decision rests on, with
the base held fixed, and the fewest votes that, moved from one party eligible for seats to
another, change the seats (regional threshold decisions held as they are).

Cost: a station whose two protocols have the same lines contributes one dict comparison; the
audit mathematics runs only on the few that differ. A contest whose records and totals are the
very objects of the previous snapshot (the display step keeps unchanged records and rows) keeps
its document, and so does an unchanged sensitivity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from tallyroom.audit.assertions import LinearAssertion
from tallyroom.audit.from_election import FIGURE_PREFIX, contest_assertions
from tallyroom.audit.reconcile import (
    OutcomeAtRisk,
    RecountRule,
    RelativeDifference,
    StationCounts,
    StationReconciliation,
    compare_station,
    histogram,
)
from tallyroom.audit.sensitivity import smallest_seat_move, threshold_margins
from tallyroom.definition.compiled import CompiledContest, CompiledElection
from tallyroom.definition.model import ContestKind
from tallyroom.tally.report import BASE_WORDS, percent

Row = dict[str, Any]
Allocate = Callable[[Mapping[str, int], int], Mapping[str, int]]

MACHINE = "machine"
HAND = "hand"
FORMAT = "tallyroom-reconciliation/1"
#: The site's recount rule: a protocol line whose hand count differs from the machine count by
#: more than this share of the machine count (any change where the machine counted 0).
RECOUNT_RELATIVE = Fraction(1, 100)
#: The histogram of the largest difference per station has at most this many bins.
HISTOGRAM_BINS = 20
#: Orderings of the station list: each is a page of its own (the first is the main page).
ORDERS = ("difference", "overstatement", "region", "station")
_FIGURES = ("registered", "took_part", "ballots_cast", "valid", "invalid")


def exact(value: Fraction | int) -> str:
    """An exact decimal string of a number that has one (thresholds are decimal percentages,
    so every margin here does); otherwise rounded half up to six places."""
    x = Fraction(value)
    if x.denominator == 1:
        return str(x.numerator)
    sign = "-" if x < 0 else ""
    x = abs(x)
    for places in range(1, 13):
        scaled = x * 10**places
        if scaled.denominator == 1:
            whole, frac = divmod(scaled.numerator, 10**places)
            return f"{sign}{whole}.{frac:0{places}d}"
    q = (x.numerator * 10**6 * 2 + x.denominator) // (x.denominator * 2)
    whole, frac = divmod(q, 10**6)
    return f"{sign}{whole}.{frac:06d}"


def signed_percent(difference: int, machine: int) -> str | None:
    """``difference / machine × 100`` with two decimals, rounded half up away from zero in
    magnitude; ``None`` (unbounded) when the machine counted 0 and the hand count did not."""
    if machine == 0:
        return "0.00" if difference == 0 else None
    shown = percent(abs(difference), machine)
    assert shown is not None
    return f"-{shown}" if difference < 0 and shown != "0.00" else shown


def record_lines(record: Row) -> dict[str, int]:
    """A published station record's lines plus its figures as ``figure:<name>`` (the shape the
    audit package's assertions read, :func:`tallyroom.audit.from_election.station_lines`)."""
    lines = dict(record["lines"])
    for f in _FIGURES:
        v = record.get(f)
        if v is not None:
            lines[FIGURE_PREFIX + f] = v
    return lines


def _region_ids(election: CompiledElection) -> list[str]:
    """Each station's region: the area just below the root of its first hierarchy."""
    out = []
    for si in range(len(election.stations)):
        chain = election.area_chain[election.station_direct[si][0]]
        out.append(election.areas[chain[-2] if len(chain) > 1 else chain[-1]].id)
    return out


def has_reconciliation(kinds: Sequence[str]) -> bool:
    """Whether a contest with these published count kinds gets a reconciliation page."""
    return MACHINE in kinds and HAND in kinds


def _assertion_entry(a: LinearAssertion, margin: Fraction) -> Row:
    """An assertion as the page names it: "w > l", "X ≥ t", "X < t"."""
    if a.kind == "pairwise":
        choice = next(k for k, c in a.terms.items() if c > 0)
        other: str | None = next(k for k, c in a.terms.items() if c < 0)
    else:
        # With a base line the party is the only term; on valid votes it has the largest
        # coefficient when it passed and the smallest when it failed.
        pick = max if a.kind == "threshold_passed" else min
        choice = pick(a.terms, key=lambda k: a.terms[k])
        other = None
    return {"name": a.name, "kind": a.kind, "choice": choice, "other": other, "margin": exact(margin)}


def contest_reconciliation(
    election: CompiledElection,
    contest: CompiledContest,
    records: Mapping[tuple[str, str, str], Row],
    totals: Row | None,
    regions: Sequence[str],
    memo: dict[tuple[str, str, tuple[str, ...]], tuple[StationReconciliation, Row]] | None = None,
    found: Sequence[Row | None] | None = None,
) -> Row:
    """The reconciliation document of one contest (docs/bulletin.md §14.1).

    ``records`` are station records (:func:`tallyroom.publish.results.station_protocol`) by
    (contest, station, count kind); ``totals`` is the machine count's row of the contest's own
    area, whose lines and figures are the reported outcome the assertions come from. ``memo``
    keeps each differing station's comparison by the leaf hashes of its two protocols and the
    assertions (a pure function of them); only the outcome-at-risk flags, which depend on the
    contest-wide margins, are evaluated again. ``found`` may give the records already looked
    up: machine and hand of each of the contest's stations in turn.
    """
    cid = contest.id
    lines_shown = contest.line_ids
    assertions: tuple[LinearAssertion, ...] = ()
    margins: dict[str, Fraction] = {}
    if totals is not None and totals["stations_reporting"] > 0:
        reported = record_lines(totals)
        assertions = contest_assertions(contest, reported)
        margins = {a.name: a.margin(reported) for a in assertions}
    rules: list[RecountRule] = [RelativeDifference(line, RECOUNT_RELATIVE) for line in lines_shown]
    at_risk = OutcomeAtRisk(assertions, margins) if assertions else None
    names = tuple(a.name for a in assertions)
    kept: dict[tuple[str, str, tuple[str, ...]], tuple[StationReconciliation, Row]] = {}
    machine_n = hand_n = 0
    compared: dict[str, int] = {}
    largest: list[int] = []
    stations: list[Row] = []
    shown = frozenset(lines_shown)
    if found is None:
        found = []
        for si in contest.stations:
            sid = election.stations[si].id
            found += (records.get((cid, sid, MACHINE)), records.get((cid, sid, HAND)))
    for i, si in enumerate(contest.stations):
        m, h = found[2 * i], found[2 * i + 1]
        machine_n += m is not None
        hand_n += h is not None
        if m is None or h is None:
            continue
        region = regions[si]
        compared[region] = compared.get(region, 0) + 1
        if m["lines"] == h["lines"]:
            largest.append(0)
            continue
        key = (m["leaf_hash"], h["leaf_hash"], names)
        got = memo.get(key) if memo is not None else None
        if got is None:
            sid = election.stations[si].id
            station = compare_station(
                StationCounts(sid, record_lines(m)), StationCounts(sid, record_lines(h)), assertions, rules
            )
            got = (station, _station_entry(region, station, shown))
        kept[key] = got
        station, entry = got
        risk = at_risk.check(station) if at_risk is not None else ()
        if risk:
            flags = [
                *entry["flags"],
                *({"rule": f.rule, "line": f.line, "assertion": f.assertion} for f in risk),
            ]
            entry = {**entry, "flagged": True, "flags": flags}
        stations.append(entry)
        largest.append(entry["largest_difference"])
    if memo is not None:
        memo.clear()
        memo.update(kept)
    n_compared = len(largest)
    stations.sort(key=lambda s: (-s["largest_difference"], s["station"]))
    per_region: dict[str, list[int]] = {}  # region -> [differing, flagged, Σ |difference|]
    for st in stations:
        acc = per_region.setdefault(st["region"], [0, 0, 0])
        acc[0] += 1
        acc[1] += st["flagged"]
        acc[2] += st["absolute_difference"]
    region_rows = []
    order = sorted({regions[si] for si in contest.stations}, key=lambda a: election.area_index[a])
    for region in order:
        n = compared.get(region, 0)
        k, flagged, absolute = per_region.get(region, (0, 0, 0))
        region_rows.append(
            {
                "area": region,
                "stations_compared": n,
                "stations_differing": k,
                "stations_flagged": flagged,
                "differing_percent": percent(k, n),
                "absolute_difference": absolute,
            }
        )
    top = max(largest, default=0)
    width = max(1, math.ceil((top + 1) / HISTOGRAM_BINS))
    bins = histogram(largest, width)
    rules_doc: Row = {"relative_percent": exact(RECOUNT_RELATIVE * 100), "outcome_at_risk": bool(assertions)}
    allocation = contest.contest.allocation
    return {
        "contest": cid,
        "machine_kind": MACHINE,
        "hand_kind": HAND,
        "stations_expected": len(contest.stations),
        "stations_machine": machine_n,
        "stations_hand": hand_n,
        "stations_compared": n_compared,
        "stations_differing": len(stations),
        "stations_flagged": sum(1 for s in stations if s["flagged"]),
        "recount_rule": rules_doc,
        "threshold_percent": allocation.threshold_percent if allocation is not None else None,
        "assertions": [_assertion_entry(a, margins[a.name]) for a in assertions],
        "histogram": {
            "measure": "largest_difference",
            "bin_width": width,
            "bins": [{"low": b.low, "high": b.high, "count": b.count} for b in bins],
        },
        "regions": region_rows,
        "stations": stations,
    }


def _station_entry(region: str, s: StationReconciliation, shown: frozenset[str]) -> Row:
    """A differing station as the document lists it (its own recount flags only: the
    outcome-at-risk flags depend on the contest's margins and are added by the caller)."""
    lines: list[Row] = [
        {
            "line": d.line,
            "machine": d.machine,
            "hand": d.hand,
            "difference": d.difference,
            "relative_percent": signed_percent(d.difference, d.machine),
        }
        for d in s.differences
        if d.line in shown and d.difference
    ]
    worst = max(s.overstatements, key=lambda o: o.overstatement, default=None)
    return {
        "station": s.station_id,
        "region": region,
        "largest_difference": max((abs(x["difference"]) for x in lines), default=0),
        "absolute_difference": sum(abs(x["difference"]) for x in lines),
        "lines": lines,
        "overstatement": (
            {"assertion": worst.assertion, "votes": exact(worst.overstatement)}
            if worst is not None and worst.overstatement > 0
            else None
        ),
        "flagged": s.flagged,
        "flags": [{"rule": f.rule, "line": f.line, "assertion": f.assertion} for f in s.flags],
    }


# -- sensitivity -------------------------------------------------------------------------------


def _allocator(contest: CompiledContest, base: int, held_out: set[str], order: Sequence[str]) -> Allocate:
    """Seats as the contest's rules give them, with the threshold base fixed and the choices in
    ``held_out`` (against all, failed regional thresholds) never taking seats. The common path
    runs the method alone (``tallyroom.seats.allocate`` builds a full explanation, about six
    times slower); a cap that binds goes through ``allocate`` itself."""
    from tallyroom import seats as s
    from tallyroom.seats.allocate import run_method

    rules = contest.contest.allocation
    assert rules is not None
    method = s.parse_method(rules.method)
    tie = s.ListedOrder()
    position = {p: i for i, p in enumerate(order)}
    pct = Fraction(rules.threshold_percent) if rules.threshold_percent is not None else None
    label = BASE_WORDS.get(str(rules.threshold_base), str(rules.threshold_base))
    # votes ≥ pct/100 · base, in integers: votes · 100 · d ≥ n · base for pct = n/d.
    scale = 0 if pct is None else 100 * pct.denominator
    required = 0 if pct is None else pct.numerator * base
    candidates = [p for p in order if p not in held_out]

    def allocate(votes: Mapping[str, int], seats: int) -> Mapping[str, int]:
        names = [p for p in candidates if votes[p] * scale >= required]
        if not names or not any(votes[p] for p in names):
            return {}
        got = dict(
            zip(
                names,
                run_method(
                    names, [votes[p] for p in names], seats, method, tie_rule=tie, position=position
                ).seats,
                strict=True,
            )
        )
        if rules.cap is not None and max(got.values()) > rules.cap:
            thresholds = [] if pct is None else [s.PercentThreshold(pct, s.Base(label, base))]
            return dict(
                s.allocate(
                    votes, seats, method, thresholds=thresholds, cap=rules.cap, against_all=sorted(held_out)
                ).seats
            )
        return got

    return allocate


def contest_sensitivity(
    contest: CompiledContest, kind: str, rows: Mapping[tuple[str, str, str], Row]
) -> Row | None:
    """How many votes the threshold decisions and the seats of a party-list count rest on
    (docs/bulletin.md §14.2); ``None`` for other contests and before any station reported."""
    rules = contest.contest.allocation
    if (
        rules is None
        or contest.contest.kind != ContestKind.PARTY_LIST
        or rules.method
        in (
            "plurality",
            "two-round",
        )
    ):
        return None
    row = rows.get((contest.id, contest.contest.area, kind))
    if row is None or row["stations_reporting"] == 0:
        return None
    fig = str(rules.threshold_base)
    base = row.get(fig) or 0
    votes = {c["id"]: c["votes"] for c in row["choices"]}
    order = list(votes)
    against = {c["id"] for c in row["choices"] if c["against_all"]}
    parties = [p for p in order if p not in against]
    out: Row = {
        "contest": contest.id,
        "count_kind": kind,
        "official": row["official"],
        "stations_reporting": row["stations_reporting"],
        "stations_expected": row["stations_expected"],
        "method": rules.method,
        "seats_total": rules.seats,
        "threshold": None,
        "parties": [],
        "regions_left_out": [],
        "regional_held": rules.regional_threshold is not None,
        "seat_move": None,
    }
    if rules.threshold_percent is not None:
        if base <= 0:
            return out
        t = Fraction(rules.threshold_percent) / 100
        out["threshold"] = {
            "percent": rules.threshold_percent,
            "figure": fig,
            "base": base,
            "required": exact(t * base),
        }
        margins = threshold_margins({p: votes[p] for p in parties}, base, t)
        out["parties"] = [
            {
                "id": m.party,
                "votes": m.votes,
                "passes": m.passes,
                "margin": exact(abs(m.margin)),
                "votes_to_change": m.votes_to_change,
            }
            for m in sorted(margins, key=lambda m: (-m.votes, m.party))
        ]
    held_out = set(against)
    if rules.regional_threshold is not None:
        rpct = Fraction(rules.regional_threshold.percent)
        for aid in rules.regional_threshold.areas:
            r = rows.get((contest.id, aid, kind))
            rbase = 0 if r is None else (r.get(fig) or 0)
            if r is None or rbase <= 0:
                out["regions_left_out"].append(aid)
                continue
            for c in r["choices"]:
                if c["id"] in votes and c["votes"] * 100 < rpct * rbase:
                    held_out.add(c["id"])
    allocate = _allocator(contest, base, held_out, order)
    from tallyroom.seats import SeatsError

    try:
        seated = allocate(votes, rules.seats)
        eligible = [
            p
            for p in parties
            if p not in held_out
            and (
                rules.threshold_percent is None or votes[p] * 100 >= Fraction(rules.threshold_percent) * base
            )
        ]
        move = smallest_seat_move(votes, rules.seats, allocate, parties=eligible) if seated else None
    except SeatsError:
        move = None
    if move is not None:
        out["seat_move"] = {
            "source": move.source,
            "target": move.target,
            "votes": move.votes,
            "seats_before": dict(sorted(move.seats_before.items())),
            "seats_after": dict(sorted(move.seats_after.items())),
            "changes": [
                {"id": p, "before": move.seats_before.get(p, 0), "after": move.seats_after.get(p, 0)}
                for p in order
                if move.seats_before.get(p, 0) != move.seats_after.get(p, 0)
            ],
        }
    return out


# -- all contests, remembered between snapshots ---------------------------------------------


@dataclass
class AuditView:
    """Reconciliation and sensitivity documents of a long-running publisher (or gate), each
    kept with the very records and rows it was made from: unchanged inputs (the same objects,
    which the display step and the gate keep for unchanged entries) give the same document."""

    _recon: dict[str, tuple[tuple[Any, ...], Row]] = field(default_factory=dict)
    _stations: dict[str, dict[tuple[str, str, tuple[str, ...]], tuple[StationReconciliation, Row]]] = field(
        default_factory=dict
    )
    _sens: dict[tuple[str, str], tuple[tuple[Any, ...], Row | None]] = field(default_factory=dict)
    _regions: tuple[CompiledElection, list[str]] | None = None
    _keys_of: (
        tuple[CompiledElection, dict[str, list[tuple[tuple[str, str, str], tuple[str, str, str]]]]] | None
    ) = None

    def _keys(
        self, election: CompiledElection, contest: CompiledContest
    ) -> list[tuple[tuple[str, str, str], tuple[str, str, str]]]:
        """The record keys of a contest's stations, (machine, hand), made once."""
        if self._keys_of is None or self._keys_of[0] is not election:
            self._keys_of = (election, {})
        got = self._keys_of[1].get(contest.id)
        if got is None:
            sids = [election.stations[si].id for si in contest.stations]
            got = self._keys_of[1][contest.id] = [
                ((contest.id, sid, MACHINE), (contest.id, sid, HAND)) for sid in sids
            ]
        return got

    def regions(self, election: CompiledElection) -> list[str]:
        if self._regions is None or self._regions[0] is not election:
            self._regions = (election, _region_ids(election))
        return self._regions[1]

    def reconciliation(
        self,
        election: CompiledElection,
        kinds: Mapping[str, Sequence[str]],
        records: Mapping[tuple[str, str, str], Row],
        rows: Mapping[tuple[str, str, str], Row],
    ) -> dict[str, Row]:
        out: dict[str, Row] = {}
        regions = self.regions(election)
        for contest in election.contests:
            cid = contest.id
            if not has_reconciliation(kinds.get(cid, ())):
                continue
            totals = rows.get((cid, contest.contest.area, MACHINE))
            inputs: list[Any] = [totals]
            get = records.get
            for machine_key, hand_key in self._keys(election, contest):
                inputs.append(get(machine_key))
                inputs.append(get(hand_key))
            got = self._recon.get(cid)
            if got is None or not _same(got[0], inputs):
                memo = self._stations.setdefault(cid, {})
                doc = contest_reconciliation(election, contest, records, totals, regions, memo, inputs[1:])
                got = (tuple(inputs), doc)
                self._recon[cid] = got
            out[cid] = got[1]
        return out

    def sensitivity(
        self,
        election: CompiledElection,
        kinds: Mapping[str, Sequence[str]],
        rows: Mapping[tuple[str, str, str], Row],
    ) -> dict[tuple[str, str], Row]:
        out: dict[tuple[str, str], Row] = {}
        for contest in election.contests:
            rules = contest.contest.allocation
            if rules is None or contest.contest.kind != ContestKind.PARTY_LIST:
                continue
            areas = [contest.contest.area]
            if rules.regional_threshold is not None:
                areas.extend(rules.regional_threshold.areas)
            for kind in kinds.get(contest.id, ()):
                inputs = [rows.get((contest.id, a, kind)) for a in areas]
                got = self._sens.get((contest.id, kind))
                if got is None or not _same(got[0], inputs):
                    got = (tuple(inputs), contest_sensitivity(contest, kind, rows))
                    self._sens[(contest.id, kind)] = got
                if got[1] is not None:
                    out[(contest.id, kind)] = got[1]
        return out


def _same(old: Sequence[Any], new: Sequence[Any]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))

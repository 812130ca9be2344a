"""Every number a snapshot must publish, recomputed from the protocols in force (§6–§7).

Built from the specification, not from the publisher's code: totals per (contest, area, count
kind) are sums of the protocols in force of the stations that count towards the area; figures
are the form's expressions; shares and turnout follow §6.5; seats follow §7.4 through
``tallyroom.seats``. Each recomputed number can say *why* it is what it is
(:meth:`Expected.why`), which is what a mismatch message quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from tallyroom.definition.compiled import CompiledContest, CompiledElection, name_in
from tallyroom.definition.model import ContestKind, Figure
from tallyroom.tally.running import Tally, Totals
from tallyroom.verify.ledger import InForce, Walk, protocol_event
from tallyroom.verify.numbers import figure_words, percent

T = TypeVar("T")
RowKey = tuple[str, str, str]  # (contest, area, count kind)
StationKey = tuple[str, str, str]  # (contest, station, count kind)
Row = dict[str, Any]
FIGURES = ("registered", "took_part", "ballots_cast", "valid", "invalid")
#: §12: the order of count kinds in a station's history.
HISTORY_KINDS = ("machine", "hand", "recount")
OTHER_BASES = ("took_part", "valid", "ballots_cast", "registered")

#: How many rebuilt station records (and their rule checks) a process keeps at most. A record
#: is read by up to seven files (its JSON page, three HTML pages, its region's station file,
#: CSV and SQLite rows), so keeping them all halves the time (decision 0009); but at
#: 1,000,000 stations each worker kept about 12 GB and the kernel killed one, and keeping
#: 500,000 left the machine 1 GB short of it. Above this many the oldest half is dropped and
#: rebuilt when asked for again (decision 0013).
RECORDS_KEPT = 250_000


def forget_oldest(cache: dict[Any, Any], kept: int) -> None:
    """Drop the older half of `cache` (insertion order) once it holds `kept` entries: the
    files of one station, and of one region, are checked close together, so what was built
    longest ago is what is least likely to be read again."""
    if len(cache) >= kept:
        for key in list(islice(cache, len(cache) - kept // 2)):
            del cache[key]


def published_kinds(
    election: CompiledElection, active: Iterable[tuple[int, int, str]]
) -> dict[str, list[str]]:
    """§6: the official count kind, then every other kind with a protocol in force anywhere."""
    present = sorted({k[2] for k in active})
    return {
        c.id: [str(c.official_count), *(k for k in present if k != str(c.official_count))]
        for c in election.contests
    }


_FIGURES = tuple((f, Figure(f)) for f in FIGURES)


def figures_of(contest: CompiledContest, counts: list[int]) -> dict[str, int | None]:
    return dict(zip(FIGURES, figure_values(contest, counts), strict=True))


#: Each contest's figure expressions in the order of :data:`FIGURES` (None: the form has no
#: such figure).
_FIGURE_FNS: dict[int, tuple[CompiledContest, tuple[Any, ...]]] = {}


def figure_values(contest: CompiledContest, counts: list[int]) -> tuple[int | None, ...]:
    """The §6.4 figures of a protocol or total, in the order of :data:`FIGURES`."""
    fns = _per_contest(_FIGURE_FNS, contest, lambda c: tuple(c.figures.get(fig) for _f, fig in _FIGURES))
    return tuple([None if fn is None else fn(counts) for fn in fns])


def turnout_of_values(figures: tuple[int | None, ...]) -> str | None:
    """:func:`turnout_of` for :func:`figure_values`."""
    registered, took_part, ballots_cast = figures[0], figures[1], figures[2]
    num = took_part if took_part is not None else ballots_cast
    return None if num is None or registered is None else percent(num, registered)


def turnout_of(fig: Mapping[str, int | None]) -> str | None:
    """§6.5: voters who took part (or, on a form without that line, ballots cast) of the
    registered voters."""
    return turnout_of_values((fig["registered"], fig["took_part"], fig["ballots_cast"]))


def _per_contest(
    cache: dict[int, tuple[CompiledContest, T]],
    contest: CompiledContest,
    make: Callable[[CompiledContest], T],
) -> T:
    """``make(contest)``, kept in ``cache`` by ``id(contest)`` beside the contest itself (so that
    an id reused by another contest is not taken for it): what every protocol of a contest
    shares is made once, not 400,000 times at 100,000 stations."""
    got = cache.get(id(contest))
    if got is None or got[0] is not contest:
        if len(cache) > 10_000:
            cache.clear()
        got = cache[id(contest)] = (contest, make(contest))
    return got[1]


#: Each contest's choices as records name them (id, English name, against all).
_CHOICES: dict[int, tuple[CompiledContest, tuple[tuple[str, str, bool], ...]]] = {}


def _choices_of(contest: CompiledContest) -> tuple[tuple[str, str, bool], ...]:
    return _per_contest(
        _CHOICES,
        contest,
        lambda c: tuple((ch.id, name_in(ch.name, "en"), ch.against_all) for ch in c.contest.choices),
    )


def build_row(
    election: CompiledElection,
    contest: CompiledContest,
    area_or_station: str,
    name: str,
    kind: str,
    counts: list[int],
    reporting: int,
    expected: int,
) -> Row:
    """One published row (§7.1) from summed lines."""
    fig = figures_of(contest, counts)
    base_fig = str(contest.contest.percent_base)
    base = fig.get(base_fig)
    start = contest.choice_start
    choices = _choices_of(contest)
    return {
        "area": area_or_station,
        "area_name": name,
        "contest": contest.id,
        "count_kind": kind,
        "official": kind == str(contest.official_count),
        "stations_reporting": reporting,
        "stations_expected": expected,
        "stations_reporting_percent": percent(reporting, expected),
        **fig,
        "turnout_percent": turnout_of(fig),
        "percent_base": {"figure": base_fig, "value": base, "words": figure_words(base_fig)},
        "choices": [
            {
                "id": cid,
                "name": name,
                "votes": counts[start + j],
                "percent": percent(counts[start + j], base),
                "percent_base": base_fig,
                "against_all": against_all,
            }
            for j, (cid, name, against_all) in enumerate(choices)
        ],
        "lines": dict(zip(contest.line_ids, counts, strict=True)),
    }


#: Each contest's rule checks when every rule holds: the same list for almost every protocol,
#: so it is built once and shared (read only).
_ALL_HOLD: dict[int, tuple[CompiledContest, list[dict[str, Any]]]] = {}


def rule_checks(contest: CompiledContest, counts: list[int]) -> list[dict[str, Any]]:
    """Every control rule on a protocol: whether it holds and, when it does not, both sides
    (what pages show for a failed rule). The list is shared between protocols: read only."""
    if contest.all_rules_hold(counts):
        return _per_contest(_ALL_HOLD, contest, lambda c: _checks(c, counts, every=True))
    return _checks(contest, counts, every=False)


def _checks(contest: CompiledContest, counts: list[int], *, every: bool) -> list[dict[str, Any]]:
    out = []
    for r in contest.rules:
        holds = True if every else r.holds(counts)
        left = right = None
        if not holds:
            values = {contest.line_ids[i]: counts[i] for i in r.line_indices}
            left, right = r.comparison.left.value(values), r.comparison.right.value(values)
        out.append(
            {
                "rule": r.rule.id,
                "expr": r.rule.expr,
                "severity": str(r.rule.severity),
                "left": left,
                "right": right,
                "holds": holds,
            }
        )
    return out


def station_group(election: CompiledElection, station: int) -> str:
    """§7.3: the station's area just below the root of its first hierarchy."""
    chain = election.area_chain[election.station_direct[station][0]]
    return election.areas[chain[-2] if len(chain) > 1 else chain[-1]].id


def area_level(election: CompiledElection, area: int) -> str:
    """§8: ``<hierarchy>-<depth>``."""
    return f"{election.areas[area].hierarchy}-{len(election.area_chain[area]) - 1}"


@dataclass(frozen=True, slots=True)
class ProtocolFacts:
    """One protocol in force as its station's pages show it (§12): the receipt, the figures,
    and the lines, votes and shares as lists (lines up to the first choice, choices in the
    definition's order). The same values as its published record (:class:`StationRows`),
    without building that record: a station's four pages read 400,000 of them at 100,000
    stations, and the record's dictionaries cost more than the checks that read them."""

    index: int
    official: bool
    leaf_hash: str
    body_sha256: str
    envelope: dict[str, Any]
    #: The §6.4 figures, in the order of :data:`FIGURES`.
    figures: tuple[int | None, ...]
    turnout_percent: str | None
    base_figure: str
    base_value: int | None
    lines: list[int]
    votes: list[int]
    percents: list[str | None]

    @property
    def took_part(self) -> int | None:
        return self.figures[1]


def protocol_facts(contest: CompiledContest, p: InForce) -> ProtocolFacts:
    """:class:`ProtocolFacts` of ``p`` (a protocol of ``contest``), as :func:`build_row` and
    :class:`StationRows` would publish them (§6.5, §7.3)."""
    counts = p.counts
    start = contest.choice_start
    figures = figure_values(contest, counts)
    base_figure = str(contest.contest.percent_base)
    # The base is one of the §6.4 figures (as in build_row, none if it were not).
    base = figures[FIGURES.index(base_figure)] if base_figure in FIGURES else None
    votes = counts[start:]  # the choices' lines close the vector (CompiledContest)
    return ProtocolFacts(
        p.index,
        p.count_kind == str(contest.official_count),
        p.leaf.hex(),
        p.body_sha256,
        p.envelope,
        figures,
        turnout_of_values(figures),
        base_figure,
        base,
        counts[:start],
        votes,
        [percent(v, base) for v in votes],
    )


@dataclass(frozen=True, slots=True)
class StationView:
    """What an area's page shows of one protocol of a station it lists (§13): its turnout and
    its leading choices, each ``(id, votes, share)`` (none when no choice has a vote)."""

    turnout_percent: str | None
    leaders: tuple[tuple[str, int, str | None], ...]


@dataclass
class Expected:
    election: CompiledElection
    walk: Walk
    kinds: dict[str, list[str]]
    tally: Tally
    rows: dict[RowKey, Row] = field(default_factory=dict)
    #: Station records, built when first asked for (each worker builds the ones it needs).
    stations: Mapping[StationKey, Row] = field(default_factory=dict)
    by_station: dict[str, list[StationKey]] = field(default_factory=dict)
    seats: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: Groups of station records: region id -> sorted station keys.
    groups: dict[str, list[StationKey]] = field(default_factory=dict)
    levels: dict[str, list[RowKey]] = field(default_factory=dict)
    in_force: dict[StationKey, InForce] = field(default_factory=dict)
    #: §14: machine-vs-hand reconciliation by contest; sensitivity by (contest, count kind).
    reconciliation: dict[str, Row] = field(default_factory=dict)
    sensitivity: dict[tuple[str, str], Row] = field(default_factory=dict)
    #: ``bulletin/journal.json``'s counts per station, once read (None: not published or not
    #: readable); station pages must show the same (docs/bulletin.md §12).
    journal: dict[str, Any] | None = None
    #: Photos published in the snapshot: SHA-256 -> ``images/<sha256>.<ext>``, for each such
    #: file whose manifest SHA-256 is the one in its name.
    images: dict[str, str] = field(default_factory=dict)
    _rules: dict[StationKey, list[dict[str, Any]]] = field(default_factory=dict)
    _facts: dict[StationKey, ProtocolFacts] = field(default_factory=dict)
    _views: dict[StationKey, StationView] = field(default_factory=dict)

    _direct: dict[int, list[int]] | None = None

    def direct_stations(self) -> dict[int, list[int]]:
        """For each area, the stations that list it as their own (cached)."""
        if self._direct is None:
            out: dict[int, list[int]] = {}
            for si, areas in enumerate(self.election.station_direct):
                for a in areas:
                    out.setdefault(a, []).append(si)
            self._direct = out
        return self._direct

    def station_rules(self, key: StationKey) -> list[dict[str, Any]]:
        """Every control rule of the contest evaluated on a protocol in force (cached)."""
        got = self._rules.get(key)
        if got is None:
            forget_oldest(self._rules, RECORDS_KEPT)
            p = self.in_force[key]
            got = self._rules[key] = rule_checks(self.election.contests[p.contest], p.counts)
        return got

    def protocol(self, key: StationKey) -> ProtocolFacts | None:
        """:class:`ProtocolFacts` of the protocol in force under ``key`` (None: none), cached
        like the records."""
        got = self._facts.get(key)
        if got is None:
            p = self.in_force.get(key)
            if p is None:
                return None
            forget_oldest(self._facts, RECORDS_KEPT)
            got = self._facts[key] = protocol_facts(self.election.contests[p.contest], p)
        return got

    def station_view(self, key: StationKey) -> StationView | None:
        """The turnout and leaders of a protocol in force (None: not in force), from its counts:
        area pages list tens of thousands of stations, in four files each, and the full record
        of each (every choice's share) cost most of their check."""
        got = self._views.get(key)
        if got is None:
            p = self.in_force.get(key)
            if p is None:
                return None
            forget_oldest(self._views, RECORDS_KEPT)
            contest = self.election.contests[p.contest]
            fig = figures_of(contest, p.counts)
            base = fig.get(str(contest.contest.percent_base))
            votes = p.counts[contest.choice_start :]
            top = max(votes, default=0)
            leaders = (
                ()
                if top == 0
                else tuple(
                    (cid, v, percent(v, base))
                    for cid, v in zip(contest.choice_ids, votes, strict=True)
                    if v == top
                )
            )
            got = self._views[key] = StationView(turnout_of(fig), leaders)
        return got

    def history(self, station_id: str) -> list[dict[str, Any]]:
        """§12 ``history`` of a station page: per contest (definition order) and count kind
        (machine, hand, recount), every entry acting on it in ledger order."""
        e = self.election
        si = e.station_index[station_id]
        out = []
        for c in e.contests:
            if si not in c.station_set:
                continue
            for kind in HISTORY_KINDS:
                events = self.walk.history.get((c.index, si, kind))
                p = self.walk.active.get((c.index, si, kind))
                if not events:
                    if p is None:
                        continue
                    events = [protocol_event(p)]
                out.append(
                    {
                        "contest": c.id,
                        "count_kind": kind,
                        "in_force": None if p is None else p.index,
                        "entries": events,
                    }
                )
        return out

    # -- explanations --------------------------------------------------------------------------

    def why(self, key: RowKey, field_name: str, choice: str | None = None) -> str:
        """Why the recomputed value of a row's field is what it is."""
        cid, aid, kind = key
        row = self.rows.get(key) or self.stations.get(key)
        if row is None:
            return "no such row in the recomputed results"
        contest = self.election.contest(cid)
        n = row["stations_reporting"]
        station = key not in self.rows
        where = f"station {aid}" if station else f"{aid}"
        protocols = f"the {n:,} {kind}-count protocol{'s' if n != 1 else ''} in force in {where}"
        if station:
            protocols = (
                f"the protocol in force for station {aid} ({kind} count, ledger entry {row['ledger_index']})"
            )
            if choice is not None and field_name == "votes":
                return f"line {choice} of {protocols}"
            if field_name.startswith("lines."):
                return f"line {field_name[6:]} of {protocols}"
        if choice is not None:
            if field_name == "votes":
                return f"sum of line {choice} over {protocols}"
            if field_name == "percent":
                return self._why_share(row, choice)
        if field_name in FIGURES:
            expr = contest.figure_exprs.get(Figure(field_name))
            if expr is None:
                return f"the form defines no {field_name} figure"
            if expr.strip() == field_name:
                return (
                    f"sum of line {field_name} over {protocols}"
                    if not station
                    else f"line {expr} of {protocols}"
                )
            return f"{field_name} = {expr} on the lines {'of' if station else 'summed over'} {protocols}"
        if field_name == "stations_reporting":
            return f"{kind}-count protocols in force of stations in {where} (ledger)"
        if field_name == "stations_expected":
            return f"stations of contest {cid} that lie in {aid} (definition)"
        if field_name == "stations_reporting_percent":
            return f"{n:,} of {row['stations_expected']:,} stations, rounded half up to 0.01"
        if field_name == "turnout_percent":
            num = "took_part" if row["took_part"] is not None else "ballots_cast"
            return (
                f"{num} {row[num] if row[num] is not None else 0:,} of registered "
                f"{row['registered'] if row['registered'] is not None else 0:,}, rounded half up to 0.01"
            )
        if field_name.startswith("lines."):
            return f"sum of line {field_name[6:]} over {protocols}"
        if field_name.startswith("percent_base"):
            return (
                f"the contest's percent_base is {contest.contest.percent_base}: "
                f"{row['percent_base']['value']} on the summed lines"
            )
        return f"recomputed from {protocols}"

    def _why_share(self, row: Row, choice: str) -> str:
        base = row["percent_base"]
        votes = row["lines"][choice]
        text = (
            f"{votes:,} of {base['value'] if base['value'] is not None else 0:,} {base['words']} "
            f"(the stated base, {base['figure']}) × 100, rounded half up"
        )
        return text

    def wrong_base(self, row: Row, choice: str, shown: Any) -> str:
        """If ``shown`` is the choice's share of another figure, say which (the 2021 kind of bug)."""
        votes = row["lines"].get(choice)
        if votes is None or not isinstance(shown, str):
            return ""
        for fig in OTHER_BASES:
            if fig == row["percent_base"]["figure"] or row.get(fig) in (None, 0):
                continue
            if percent(votes, row[fig]) == shown:
                return (
                    f"; the published {shown}% is {votes:,} of {row[fig]:,} {figure_words(fig)} — "
                    f"a share computed on the wrong base"
                )
        return ""


class StationRows(Mapping[StationKey, Row]):
    """The published record of every protocol in force (§7.3 and the station pages), computed
    on first use: a worker that checks a region's files builds only that region's records,
    and keeps at most :data:`RECORDS_KEPT` of them."""

    def __init__(self, ex: Expected) -> None:
        self._ex = ex
        self._rows: dict[StationKey, Row] = {}

    def __getitem__(self, key: StationKey) -> Row:
        row = self._rows.get(key)
        if row is None:
            forget_oldest(self._rows, RECORDS_KEPT)
            p = self._ex.in_force[key]  # KeyError: not in force
            e = self._ex.election
            contest = e.contests[p.contest]
            st = e.stations[p.station]
            row = build_row(e, contest, st.id, name_in(st.name, "en"), p.count_kind, p.counts, 1, 1)
            row["station"] = st.id
            row["ledger_index"] = p.index
            row["leaf_hash"] = p.leaf.hex()
            row["body_sha256"] = p.body_sha256
            row["envelope"] = p.envelope
            self._rows[key] = row
        return row

    def get(self, key: StationKey, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and an exception for every key not in force;
        # the file checks look records up millions of times.
        if key in self._rows:
            return self._rows[key]
        return self[key] if key in self._ex.in_force else default

    def __contains__(self, key: object) -> bool:
        return key in self._ex.in_force

    def __iter__(self) -> Iterator[StationKey]:
        return iter(self._ex.in_force)

    def __len__(self) -> int:
        return len(self._ex.in_force)


def compute(walk: Walk) -> Expected:
    election = walk.election
    assert election is not None
    kinds = published_kinds(election, walk.active)
    tally = Tally(election)
    tally.apply_batch((p.contest, p.station, p.count_kind, p.counts) for p in walk.active.values())
    ex = Expected(election, walk, kinds, tally)
    for contest in election.contests:
        for kind in kinds[contest.id]:
            for area in sorted(contest.stations_expected):
                t = tally.get(contest.index, area, kind) or Totals([0] * len(contest.line_ids))
                a = election.areas[area]
                key = (contest.id, a.id, kind)
                ex.rows[key] = build_row(
                    election,
                    contest,
                    a.id,
                    name_in(a.name, "en"),
                    kind,
                    list(t.counts),
                    t.reporting,
                    contest.stations_expected[area],
                )
                ex.levels.setdefault(area_level(election, area), []).append(key)
    for p in walk.active.values():
        key = (election.contests[p.contest].id, election.stations[p.station].id, p.count_kind)
        ex.in_force[key] = p
        ex.by_station.setdefault(key[1], []).append(key)
        ex.groups.setdefault(station_group(election, p.station), []).append(key)
    ex.stations = StationRows(ex)
    for keys in ex.groups.values():
        keys.sort()
    for keys in ex.levels.values():
        keys.sort()
    for contest in election.contests:
        for kind in kinds[contest.id]:
            proj = projection(ex, contest, kind)
            if proj is not None:
                ex.seats[(contest.id, kind)] = proj
    from tallyroom.verify import reconcile

    ex.reconciliation = reconcile.reconciliation(ex)
    ex.sensitivity = reconcile.sensitivity(ex)
    return ex


# -- seats (§7.4) -----------------------------------------------------------------------------


def projection(ex: Expected, contest: CompiledContest, kind: str) -> dict[str, Any] | None:
    from fractions import Fraction

    from tallyroom import seats as s

    rules = contest.contest.allocation
    if rules is None:
        return None
    row = ex.rows.get((contest.id, contest.contest.area, kind))
    if row is None:
        return None
    complete = row["stations_reporting"] == row["stations_expected"]
    provisional = not (complete and row["official"])
    out: dict[str, Any] = {
        "contest": contest.id,
        "count_kind": kind,
        "official": row["official"],
        "provisional": provisional,
        "stations_reporting": row["stations_reporting"],
        "stations_expected": row["stations_expected"],
        "method": rules.method,
        "seats_total": rules.seats,
        "status": "ok",
        "allocation": None,
        "left_out": [],
        "votes": {c["id"]: c["votes"] for c in row["choices"]},
    }
    if row["stations_reporting"] == 0:
        out["status"] = "no-data"
        return out
    votes = {c["id"]: c["votes"] for c in row["choices"]}
    against = [c["id"] for c in row["choices"] if c["against_all"]]
    prov = (
        s.Provisional(row["stations_reporting"], row["stations_expected"])
        if provisional and row["stations_expected"] > 0
        else None
    )
    try:
        if contest.contest.kind == ContestKind.CANDIDATES or rules.method == "plurality":
            base_value = row["percent_base"]["value"] or 0
            base = s.Base(figure_words(row["percent_base"]["figure"]), base_value) if base_value > 0 else None
            result = s.plurality(
                votes,
                against_all=against[0] if against else None,
                base=base,
                contest=contest.id,
                provisional=prov,
            )
            out["allocation"] = result.to_json_dict()
            out["outcome"] = result.outcome.value
            out["winner"] = result.winner
            out["leader"] = result.leader
            out["seats"] = {c: (1 if c == result.winner else 0) for c in votes}
            return out
        fig = str(rules.threshold_base)
        label = figure_words(fig)
        thresholds: list[Any] = []
        if rules.threshold_percent is not None:
            value = row.get(fig) or 0
            if value > 0:
                thresholds.append(s.PercentThreshold(Fraction(rules.threshold_percent), s.Base(label, value)))
        out["threshold_base"] = {"figure": fig, "value": row.get(fig)}
        if rules.regional_threshold is not None:
            regions = []
            for aid in rules.regional_threshold.areas:
                r = ex.rows.get((contest.id, aid, kind))
                value = 0 if r is None else (r.get(fig) or 0)
                if r is None or value <= 0:
                    out["left_out"].append(aid)
                    continue
                regions.append(
                    s.Region(aid, {c["id"]: c["votes"] for c in r["choices"]}, s.Base(label, value))
                )
            if regions:
                thresholds.append(s.RegionalThreshold(Fraction(rules.regional_threshold.percent), regions))
        allocation = s.allocate(
            votes,
            rules.seats,
            rules.method,
            thresholds=thresholds,
            cap=rules.cap,
            against_all=against,
            provisional=prov,
        )
    except s.NoEligibleChoicesError:
        out["status"] = "no-eligible"
        return out
    except s.SeatsError as exc:
        out["status"] = "error"
        out["message"] = str(exc)
        return out
    out["allocation"] = allocation.to_json_dict()
    out["seats"] = {c: allocation.seats.get(c, 0) for c in votes}
    ties = allocation.explanation.ties
    if ties and rules.tie_break != "listed":
        out["tie_note"] = (
            f"a tie decided a seat in {contest.id} ({kind}); docs/bulletin.md §7.4 does not say how "
            f"ties are broken: recomputed in ballot order, the definition says tie_break {rules.tie_break!r}"
        )
    return out

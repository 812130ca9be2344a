"""The public pages of a snapshot: page data (the JSON API) and HTML rendered from it.

Each page is a *job*: a key, its data (plain JSON, language-independent; names stay
``{"ky": …, "ru": …, "en": …}``) and the files it produces — one HTML page per language and
its JSON twin under ``api/v1/results/``. The data is assembled here from gate-checked rows
only; templates (``tallyroom/web/templates``) format numbers and pick names, they never
compute (DESIGN: the 2021 bug was a display formula).

The builder hashes each job's data: a job whose data did not change since the previous
snapshot is not rendered again; its files are hard-linked.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from markupsafe import Markup

from tallyroom.definition.compiled import CompiledContest, CompiledElection, name_in
from tallyroom.definition.model import Name
from tallyroom.publish import fastpages, station_facts, svg
from tallyroom.publish.audit_view import ORDERS
from tallyroom.publish.i18n import LANGUAGES, number_format, translations
from tallyroom.publish.neutral import NeutralPhrases
from tallyroom.publish.results import Results, Row, RuleCheck
from tallyroom.publish.station_facts import StationExtras, station_history
from tallyroom.tally.record import Choice

_enc = msgspec.json.Encoder(order="deterministic")
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
AGAINST_ALL_COLOUR = "#555555"


def template_dir() -> Path:
    return Path(str(files("tallyroom.web"))) / "templates"


def static_dir() -> Path:
    return Path(str(files("tallyroom.web"))) / "static"


@dataclass
class Job:
    key: str
    template: str
    #: Page path under each language folder, e.g. ``area/chui.html``.
    page: str
    #: JSON twin under the snapshot root, e.g. ``api/v1/results/area/chui.json``.
    api: str
    data: dict[str, Any] | None
    #: Data that changes every snapshot but is not part of the digest (e.g. its number).
    volatile: bool = False
    #: A digest of everything the data is made from, when cheaper than the data itself
    #: (station pages): an unchanged page is then linked without building its data.
    inputs: str | None = None
    make: Callable[[], dict[str, Any]] | None = None
    #: The digest, when known to equal the previous snapshot's (inputs unchanged).
    known: str | None = None
    #: Whose station records ``make`` reads: ("station", station index) or ("area", area
    #: index); see :meth:`Site.records_read`. A page worker is sent just these records.
    reads: tuple[str, int] | None = None

    def materialize(self) -> dict[str, Any]:
        if self.data is None:
            assert self.make is not None
            self.data = self.make()
        return self.data

    def digest(self, salt: bytes) -> str:
        if self.known is not None:
            return self.known
        if self.inputs is not None:
            return hashlib.sha256(salt + b"inputs:" + self.inputs.encode()).hexdigest()
        return hashlib.sha256(salt + _enc.encode(self.materialize())).hexdigest()


# A station record's rule checks and choices are structs read like dicts (tallyroom.tally.record),
# where reading a field by key costs a call: station_data, run for every station page, reads
# them as attributes (and as dicts, for a record that went through JSON).


#: The keys of the shaded maps as their page data lists them (one shared list each): each class
#: of the scale, then the grey of an area with no figure yet (no bounds).
_KEYS = {
    name: [s.to_dict() for s in scale] + [{"from": None, "to": None, "fill": svg.NO_DATA_FILL}]
    for name, scale in (("turnout", svg.TURNOUT_SCALE), ("difference", svg.DIFFERENCE_SCALE))
}


def _rule_tuples(checks: Sequence[Any]) -> list[tuple[str, str, str, bool, int, int]]:
    """(rule, expr, severity, holds, left, right) of each rule check of a record."""
    if checks and checks[0].__class__ is RuleCheck:
        return [(r.rule, r.expr, r.severity, r.holds, r.left, r.right) for r in checks]
    return [(r["rule"], r["expr"], r["severity"], r["holds"], r["left"], r["right"]) for r in checks]


def _percents(choices: Sequence[Any]) -> dict[str, str | None]:
    """Each choice's share of a record, by choice id."""
    if choices and choices[0].__class__ is Choice:
        return {ch.id: ch.percent for ch in choices}
    return {ch["id"]: ch["percent"] for ch in choices}


#: Templates with a specialised renderer that writes the same bytes (see :mod:`.fastpages`).
FAST_RENDERERS: dict[str, Callable[[fastpages.Phrases, fastpages.PageContext, dict[str, Any]], str]] = {
    "station.html": fastpages.station_page,
    "area.html": fastpages.area_page,
    "national.html": fastpages.national_page,
    "changes.html": fastpages.changes_page,
    "snapshots.html": fastpages.snapshots_page,
    "downloads.html": fastpages.downloads_page,
    "reconcile.html": fastpages.reconcile_page,
}


#: The counts every reconciliation page states (docs/bulletin.md §14.1).
_RECONCILE_COUNTS = (
    "machine_kind",
    "hand_kind",
    "stations_expected",
    "stations_machine",
    "stations_hand",
    "stations_compared",
    "stations_differing",
    "stations_flagged",
)


def _over(station: dict[str, Any]) -> tuple[int, Fraction]:
    """Sort key: the largest overstatement first, stations without one last."""
    o = station["overstatement"]
    return (1, Fraction(0)) if o is None else (0, -Fraction(o["votes"]))


def _depth_prefix(page: str) -> str:
    return "../" * (page.count("/") + 1)


class Site:
    """Everything about one election's pages that does not change between snapshots."""

    def __init__(
        self,
        election: CompiledElection,
        languages: Sequence[str] = LANGUAGES,
        boundaries: Sequence[str] = (),
        *,
        fast: bool = True,
    ) -> None:
        self.election = election
        self.languages = tuple(languages)
        self.boundaries = tuple(boundaries)
        self._envs: dict[str, jinja2.Environment] = {}
        self._phrases: dict[str, fastpages.Phrases] = {}
        self._neutral: NeutralPhrases | None = None
        #: Render the pages that have a specialised renderer with it (same bytes, faster).
        self.fast = fast

    # -- static facts of the election ------------------------------------------------------

    @cached_property
    def salt(self) -> bytes:
        """Changes whenever templates, catalogs or the definition change: re-render all."""
        h = hashlib.sha256(self.election.sha256.encode())
        for folder in (template_dir(), Path(str(files("tallyroom.web"))) / "locale"):
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix in (".html", ".po", ".svg", ".css"):
                    h.update(path.name.encode() + path.read_bytes())
        h.update(",".join(self.languages).encode())
        h.update(Path(__file__).read_bytes())
        h.update(Path(fastpages.__file__).read_bytes())
        h.update(Path(station_facts.__file__).read_bytes())
        return h.digest()

    @cached_property
    def colours(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for c in self.election.contests:
            out[c.id] = {
                ch.id: ch.color or (AGAINST_ALL_COLOUR if ch.against_all else PALETTE[i % len(PALETTE)])
                for i, ch in enumerate(c.contest.choices)
            }
        return out

    @cached_property
    def choice_names(self) -> dict[str, dict[str, Name]]:
        return {c.id: {ch.id: ch.name for ch in c.contest.choices} for c in self.election.contests}

    @cached_property
    def line_names(self) -> dict[str, dict[str, Name]]:
        return {
            c.id: {**{ln.id: ln.name for ln in c.form.lines}, **{ch.id: ch.name for ch in c.contest.choices}}
            for c in self.election.contests
        }

    @cached_property
    def direct_stations(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for si, areas in enumerate(self.election.station_direct):
            for a in areas:
                out.setdefault(a, []).append(si)
        return out

    @cached_property
    def map_shape(self) -> svg.MapShape | None:
        codes = frozenset(
            a.code
            for i, a in enumerate(self.election.areas)
            if a.code and len(self.election.area_chain[i]) == 2
        )
        return svg.map_for(codes, self.boundaries) if codes else None

    def contests_for(self, area: int) -> list[CompiledContest]:
        """Contests shown on an area's page: those whose whole area contains it, own first."""
        chain = {self.election.areas[a].id for a in self.election.area_chain[area]}
        own = [c for c in self.election.contests if c.contest.area == self.election.areas[area].id]
        wider = [c for c in self.election.contests if c.contest.area in chain and c not in own]
        return [*own, *wider]

    # -- page data ---------------------------------------------------------------------------

    def _choices(self, contest_id: str, row: Row) -> list[dict[str, Any]]:
        colours = self.colours[contest_id]
        ordered = sorted(row["choices"], key=lambda c: (-c["votes"], c["id"]))
        return [
            {
                "id": c["id"],
                "votes": c["votes"],
                "percent": c["percent"],
                "against_all": c["against_all"],
                "colour": colours.get(c["id"], "#999999"),
            }
            for c in ordered
        ]

    def _leader(self, contest_id: str, row: Row | None) -> dict[str, Any] | None:
        if row is None or row["stations_reporting"] == 0:
            return None
        # The first of the largest (ballot order breaks ties), without a key per choice:
        # this runs for every area and contest on the map of every snapshot.
        best = None
        for c in row["choices"]:
            if best is None or c["votes"] > best["votes"]:
                best = c
        if best is None or best["votes"] == 0:
            return None
        return {
            "id": best["id"],
            "percent": best["percent"],
            "votes": best["votes"],
            "colour": self.colours[contest_id].get(best["id"], "#999999"),
            "text_colour": svg.text_colour(self.colours[contest_id].get(best["id"], "#999999")),
        }

    def section(
        self,
        contest: CompiledContest,
        kind: str,
        row: Row,
        seats: dict[str, Any] | None,
        sensitivity: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "contest": contest.id,
            "count_kind": kind,
            "official": row["official"],
            "stations_reporting": row["stations_reporting"],
            "stations_expected": row["stations_expected"],
            "stations_reporting_percent": row["stations_reporting_percent"],
            "registered": row["registered"],
            "took_part": row["took_part"],
            "ballots_cast": row["ballots_cast"],
            "valid": row["valid"],
            "invalid": row["invalid"],
            "turnout_percent": row["turnout_percent"],
            "percent_base": row["percent_base"]["figure"],
            "percent_base_value": row["percent_base"]["value"],
            "choices": self._choices(contest.id, row),
            "seats": None if seats is None else self._seats_view(contest, seats),
            # What the thresholds and the last seat rest on (audit_view.contest_sensitivity).
            "sensitivity": sensitivity if seats is not None else None,
        }

    def _seats_view(self, contest: CompiledContest, p: dict[str, Any]) -> dict[str, Any]:
        colours = self.colours[contest.id]
        view: dict[str, Any] = {
            "status": p["status"],
            "message": p.get("message"),
            "provisional": p["provisional"],
            "stations_reporting": p["stations_reporting"],
            "stations_expected": p["stations_expected"],
            "seats_total": p["seats_total"],
            "method": p["method"],
            "notes": p.get("notes", []),
            "outcome": p.get("outcome"),
            "winner": p.get("winner"),
            "leader": p.get("leader"),
            "parties": p.get("parties", []),
            "has_thresholds": any(q.get("national_percent") is not None for q in p.get("parties", [])),
        }
        winners = [(q["id"], q["seats"]) for q in p.get("parties", []) if q["seats"] > 0]
        if p["status"] == "ok" and contest.contest.kind == "party_list" and winners:
            seats_xy, w, h = svg.hemicycle(winners)
            view["hemicycle"] = {
                "width": w,
                "height": h,
                "r": svg.seat_radius(p["seats_total"]),
                "seats": [
                    {"x": s.x, "y": s.y, "colour": colours.get(s.party, "#999"), "party": s.party}
                    for s in seats_xy
                ],
            }
            view["legend"] = [
                {"id": pid, "seats": n, "colour": colours.get(pid, "#999")} for pid, n in winners
            ]
        return view

    def primary_kind(self, contest: CompiledContest, area_id: str, results: Results) -> str:
        kinds = results.kinds[contest.id]
        for k in kinds:
            row = results.rows.get((contest.id, area_id, k))
            if row is not None and row["stations_reporting"] > 0:
                return k
        return kinds[0]

    def area_data(
        self, area: int, results: Results, seats: Mapping[tuple[str, str], dict[str, Any]]
    ) -> dict[str, Any]:
        e = self.election
        a = e.areas[area]
        contests = self.contests_for(area)
        sections = []
        for c in contests:
            for kind in results.kinds[c.id]:
                row = results.rows.get((c.id, a.id, kind))
                if row is None:
                    continue
                own = c.contest.area == a.id
                proj = seats.get((c.id, kind)) if own else None
                sens = results.sensitivity.get((c.id, kind)) if own else None
                sections.append(self.section(c, kind, row, proj, sens))
        main = contests[0] if contests else None
        kind = self.primary_kind(main, a.id, results) if main else ""
        children = []
        for child in e.children[area]:
            cid = e.areas[child].id
            row = results.rows.get((main.id, cid, kind)) if main else None
            if row is None:
                continue
            children.append(self._summary(main.id if main else "", cid, row, e.areas[child].code))
        stations = []
        for si in self.direct_stations.get(area, []):
            st = e.stations[si]
            entry: dict[str, Any] = {"id": st.id, "registered": st.registered, "kinds": {}}
            for c in contests[:1]:
                for k in results.kinds[c.id]:
                    srow = results.stations.get((c.id, st.id, k))
                    entry["kinds"][k] = (
                        None
                        if srow is None
                        else {
                            "turnout_percent": srow["turnout_percent"],
                            "leader": self._leader(c.id, srow),
                        }
                    )
            stations.append(entry)
        related = self._related(area)
        return {
            "area": a.id,
            "kind": a.kind,
            "hierarchy": a.hierarchy,
            "chain": [e.areas[x].id for x in reversed(e.area_chain[area][1:])],
            "contests": [c.id for c in contests],
            "primary_kind": kind,
            "main_contest": main.id if main else None,
            "sections": sections,
            "children": children,
            "stations": stations,
            "related": related,
            "reconciliation": self._reconciliation_links(a.id, contests, results),
        }

    def _reconciliation_links(
        self, area_id: str, contests: Sequence[CompiledContest], results: Results
    ) -> list[dict[str, Any]]:
        """Reconciliation pages of the contests shown on an area's page; for a region, the
        anchor of its stations on the page ordered by region."""
        out = []
        for c in contests:
            doc = results.reconciliation.get(c.id)
            if doc is None:
                continue
            region = area_id if any(r["area"] == area_id for r in doc["regions"]) else None
            out.append({"contest": c.id, "region": region})
        return out

    def _summary(self, contest_id: str, area_id: str, row: Row, code: str | None) -> dict[str, Any]:
        return {
            "area": area_id,
            "code": code,
            "stations_reporting": row["stations_reporting"],
            "stations_expected": row["stations_expected"],
            "stations_reporting_percent": row["stations_reporting_percent"],
            "turnout_percent": row["turnout_percent"],
            "leader": self._leader(contest_id, row),
        }

    @cached_property
    def _related_map(self) -> dict[int, list[str]]:
        """For each area, the areas of other hierarchies that share its stations."""
        e = self.election
        out: dict[int, dict[str, None]] = {}
        for si, direct in enumerate(e.station_direct):
            chain_all = e.station_areas[si]
            for a in chain_all:
                for b in direct:
                    if e.areas[b].hierarchy != e.areas[a].hierarchy:
                        out.setdefault(a, {})[e.areas[b].id] = None
        return {k: list(v) for k, v in out.items()}

    def _related(self, area: int) -> list[str]:
        e = self.election
        if len(e.area_chain[area]) == 1 and not e.areas[area].parent and e.children[area]:
            return []  # the root lists its children instead
        return self._related_map.get(area, [])[:100]

    def national_data(
        self, results: Results, seats: Mapping[tuple[str, str], dict[str, Any]]
    ) -> dict[str, Any]:
        e = self.election
        root = e.roots[0]
        data = self.area_data(root, results, seats)
        data["page"] = "national"
        data["map"] = self._map(root, data)
        data["other_roots"] = [e.areas[r].id for r in e.roots[1:]]
        data["other_areas"] = {
            e.areas[r].id: [e.areas[c].id for c in e.children[r]] or [e.areas[r].id] for r in e.roots[1:]
        }
        # Constituencies are roots of their own hierarchy: list them all.
        data["constituencies"] = [
            e.areas[i].id
            for i in range(len(e.areas))
            if e.areas[i].hierarchy != e.areas[root].hierarchy and not e.children[i]
        ]
        return data

    def _map(self, root: int, data: dict[str, Any]) -> dict[str, Any] | None:
        shape = self.map_shape
        if shape is None:
            return None
        regions = []
        for child in data["children"]:
            d = shape.paths.get(child["code"] or "")
            if d is None:
                continue
            leader = child["leader"]
            regions.append(
                {
                    "area": child["area"],
                    "d": d,
                    "leader": leader,
                    "leader_fill": leader["colour"] if leader else "#eeeeee",
                    "turnout_percent": child["turnout_percent"],
                    "turnout_fill": svg.turnout_colour(child["turnout_percent"]),
                }
            )
        return {
            "width": shape.width,
            "height": shape.height,
            "regions": regions,
            "attribution": shape.attribution,
            "turnout_key": _KEYS["turnout"],
        }

    def station_data(self, si: int, results: Results, extras: StationExtras | None = None) -> dict[str, Any]:
        """One station: per contest, its protocols of every count kind side by side (columns,
        never added together), receipts, photos of the paper protocols, control rules, the
        history of every version (``extras``) and its intake attempts."""
        e = self.election
        st = e.stations[si]
        contests: list[dict[str, Any]] = []
        rule_rows: dict[str, dict[str, Any]] = {}
        rule_columns: list[str] = []
        for c in e.contests:
            if si not in c.station_set:
                continue
            kinds = results.kinds[c.id]
            rows = [results.stations.get((c.id, st.id, k)) for k in kinds]
            columns = []
            for kind, row in zip(kinds, rows, strict=True):
                if row is None:
                    columns.append({"count_kind": kind, "reported": False})
                    continue
                checks = _rule_tuples(row["rules"])
                columns.append(
                    {
                        "count_kind": kind,
                        "reported": True,
                        "official": row["official"],
                        "ledger_index": row["ledger_index"],
                        "leaf_hash": row["leaf_hash"],
                        "body_sha256": row["body_sha256"],
                        "envelope": row["envelope"],
                        "took_part": row["took_part"],
                        "turnout_percent": row["turnout_percent"],
                        "percent_base": row["percent_base"]["figure"],
                        "percent_base_value": row["percent_base"]["value"],
                        "rules_failed": sum(1 for r in checks if not r[3]),
                        "image": None if extras is None else extras.image(row["ledger_index"]),
                    }
                )
                col = f"{c.id}/{kind}"
                rule_columns.append(col)
                for rid, expr, severity, holds, left, right in checks:
                    entry = rule_rows.get(rid)
                    if entry is None:
                        entry = {"rule": rid, "expr": expr, "severity": severity, "checks": {}}
                        rule_rows[rid] = entry
                    entry["checks"][col] = None if holds else {"left": left, "right": right}
            lines = [None if r is None else r["lines"] for r in rows]
            reported = [x for x in lines if x is not None]
            choice_ids = c.choice_ids
            first = reported[0] if reported else None
            order = sorted(
                range(len(choice_ids)),
                key=lambda j: (-(first[choice_ids[j]] if first is not None else 0), j),
            )
            percents = [_percents(r["choices"]) if r else {} for r in rows]
            colours = self.colours[c.id]
            cells = list(zip(lines, percents, strict=True))
            contests.append(
                {
                    "contest": c.id,
                    "columns": columns,
                    "any_reported": bool(reported),
                    "lines": [
                        [lid, [None if x is None else x[lid] for x in lines]]
                        for lid in c.line_ids[: c.choice_start]
                    ],
                    "choices": [
                        [
                            ch,
                            colours.get(ch, "#999999"),
                            [None if x is None else [x[ch], pc[ch]] for x, pc in cells],
                        ]
                        for ch in (choice_ids[j] for j in order)
                    ],
                }
            )
        return {
            "page": "station",
            "station": st.id,
            "registered": st.registered,
            "abroad": st.abroad,
            "key": st.key,
            "areas": [[e.areas[x].id for x in reversed(e.area_chain[a])] for a in e.station_direct[si]],
            "contests": contests,
            "rule_columns": rule_columns,
            "rules": list(rule_rows.values()),
            "history": station_history(e, si, results, None if extras is None else extras.facts),
            "intake": None if extras is None else extras.intake(st.id),
        }

    def records_read(self, job: Job, results: Results) -> list[tuple[str, str, str]]:
        """The keys of every station record that ``job.make`` may read from ``results``
        (:meth:`station_data` and :func:`station_history` for a station page, the listed
        stations of :meth:`area_data` for an area page)."""
        if job.reads is None:
            return []
        what, index = job.reads
        e = self.election
        if what == "station":
            sid = e.stations[index].id
            return [
                (c.id, sid, k)
                for c in e.contests
                if index in c.station_set
                for k in dict.fromkeys([*results.kinds[c.id], *station_facts.COUNT_KINDS])
            ]
        contests = self.contests_for(index)
        if not contests:
            return []
        main = contests[0]
        return [
            (main.id, e.stations[si].id, k)
            for si in self.direct_stations.get(index, [])
            for k in results.kinds[main.id]
        ]

    def jobs(
        self,
        results: Results,
        seats: Mapping[tuple[str, str], dict[str, Any]],
        snapshot: dict[str, Any],
        changes: dict[str, Any],
        snapshots: list[dict[str, Any]],
        downloads: list[dict[str, Any]] | None,
        station_digests: Mapping[tuple[str, str, str], str] | None = None,
        row_digests: Mapping[tuple[str, str, str], str] | None = None,
        seat_digests: Mapping[tuple[str, str], str] | None = None,
        known: Mapping[str, str] | None = None,
        extras: StationExtras | None = None,
        extras_digests: Mapping[str, str] | None = None,
        skip: Container[str] = (),
    ) -> Iterator[Job]:
        """Every page of the snapshot. Digests of what pages are made from — a digest per
        station record (``station_digests``), per area row (``row_digests``) and per seat
        projection (``seat_digests``) — let an unchanged station or area page be recognised
        without building its data; ``known`` gives the digests of station pages whose inputs
        are known to be unchanged (then not even their inputs are assembled).
        ``extras_digests`` (station id -> digest) covers what ``extras`` adds to a station
        page: history, photos, intake figures. No job is made for the station pages in
        ``skip`` (station ids: pages the caller took over unchanged)."""
        e = self.election
        national = self.national_data(results, seats)
        national["snapshot"] = snapshot
        yield Job("page:index", "national.html", "index.html", "api/v1/results/index.json", national, True)
        by_inputs = station_digests is not None and row_digests is not None and seat_digests is not None
        for i, a in enumerate(e.areas):
            if i == e.roots[0]:
                continue
            if by_inputs:
                assert station_digests is not None and row_digests is not None and seat_digests is not None
                yield Job(
                    f"page:area:{a.id}",
                    "area.html",
                    f"area/{a.id}.html",
                    f"api/v1/results/area/{a.id}.json",
                    None,
                    inputs=self._area_inputs(i, results, station_digests, row_digests, seat_digests),
                    make=functools.partial(self._area_page_data, i, results, seats),
                    reads=("area", i),
                )
                continue
            yield Job(
                f"page:area:{a.id}",
                "area.html",
                f"area/{a.id}.html",
                f"api/v1/results/area/{a.id}.json",
                self._area_page_data(i, results, seats),
            )
        for si, st in enumerate(e.stations):
            if st.id in skip:
                continue
            key = f"page:station:{st.id}"
            same = known.get(key) if known is not None else None
            inputs = None
            if station_digests is not None and same is None:
                parts = [st.id]
                for c in e.contests:
                    if si in c.station_set:
                        for k in results.kinds[c.id]:
                            parts.append(f"{c.id}/{k}={station_digests.get((c.id, st.id, k), '-')}")
                if extras_digests is not None:
                    parts.append(f"x={extras_digests.get(st.id, '-')}")
                inputs = "|".join(parts)
            yield Job(
                key,
                "station.html",
                f"station/{st.id}.html",
                f"api/v1/results/station/{st.id}.json",
                None,
                inputs=inputs,
                make=functools.partial(self.station_data, si, results, extras),
                reads=("station", si),
                known=same,
            )
        for cid in sorted(results.reconciliation):
            yield from self.reconcile_jobs(results.reconciliation[cid])
        yield Job(
            "page:changes",
            "changes.html",
            "changes.html",
            "api/v1/changes.json",
            {"page": "changes", "snapshot": snapshot, "changes": changes},
            True,
        )
        yield Job(
            "page:snapshots",
            "snapshots.html",
            "snapshots.html",
            "api/v1/snapshots.json",
            {"page": "snapshots", "snapshot": snapshot, "snapshots": snapshots},
            True,
        )
        if downloads is not None:
            yield self.downloads_job(snapshot, downloads)

    def station_files(self, station_id: str) -> list[str]:
        """The files of a station page: one per language and its JSON twin (as :meth:`jobs`
        names them)."""
        return [f"{lang}/station/{station_id}.html" for lang in self.languages] + [
            f"api/v1/results/station/{station_id}.json"
        ]

    def downloads_job(self, snapshot: dict[str, Any], downloads: list[dict[str, Any]]) -> Job:
        """The downloads page (its data lists the export files, so it is made after them)."""
        return Job(
            "page:downloads",
            "downloads.html",
            "downloads.html",
            "api/v1/downloads.json",
            {"page": "downloads", "snapshot": snapshot, "downloads": downloads},
            True,
        )

    def _area_page_data(
        self, area: int, results: Results, seats: Mapping[tuple[str, str], dict[str, Any]]
    ) -> dict[str, Any]:
        data = self.area_data(area, results, seats)
        data["page"] = "area"
        return data

    def _area_inputs(
        self,
        area: int,
        results: Results,
        station_digests: Mapping[tuple[str, str, str], str],
        row_digests: Mapping[tuple[str, str, str], str],
        seat_digests: Mapping[tuple[str, str], str],
    ) -> str:
        """Everything :meth:`area_data` reads, as digests: the rows of every contest shown
        here (with their seat projections at a contest's own area), the rows of the children
        and the records of the stations listed, for every count kind."""
        e = self.election
        a = e.areas[area]
        contests = self.contests_for(area)
        parts = ["area", a.id]
        for c in contests:
            kinds = results.kinds[c.id]
            parts.append(f"{c.id}:{','.join(kinds)}")
            for k in kinds:
                parts.append(row_digests.get((c.id, a.id, k), "-"))
                if c.contest.area == a.id:
                    parts.append(seat_digests.get((c.id, k), "-"))
        if contests:
            main = contests[0]
            kinds = results.kinds[main.id]
            for child in e.children[area]:
                cid = e.areas[child].id
                parts.extend(row_digests.get((main.id, cid, k), "-") for k in kinds)
            for si in self.direct_stations.get(area, []):
                sid = e.stations[si].id
                parts.extend(station_digests.get((main.id, sid, k), "-") for k in kinds)
        links = self._reconciliation_links(a.id, contests, results)
        parts.append("recon:" + ",".join(f"{x['contest']}/{x['region']}" for x in links))
        for c in contests:
            if c.contest.area == a.id:
                for k in results.kinds[c.id]:
                    sens = results.sensitivity.get((c.id, k))
                    parts.append("-" if sens is None else hashlib.sha256(_enc.encode(sens)).hexdigest())
        return "|".join(parts)

    # -- reconciliation pages ------------------------------------------------------------------

    def reconcile_jobs(self, doc: dict[str, Any]) -> Iterator[Job]:
        """The pages of one contest's machine-vs-hand reconciliation: the main page (stations
        by largest difference, with the histogram, the map and the region totals) and one page
        per other ordering of the station list (sorting without JavaScript)."""
        cid = doc["contest"]
        for order in ORDERS:
            yield Job(
                f"page:reconcile:{cid}:{order}",
                "reconcile.html",
                f"reconcile/{cid}/{order}.html",
                f"api/v1/reconcile/{cid}/{order}.json",
                self.reconcile_data(doc, order),
            )

    def reconcile_data(self, doc: dict[str, Any], order: str) -> dict[str, Any]:
        """Page data of one ordering: the document's counts and station list (sorted), and on
        the main page the histogram, the map and the region totals."""
        stations = list(doc["stations"])
        if order == "overstatement":
            stations.sort(key=lambda s: (_over(s), -s["largest_difference"], s["station"]))
        elif order == "station":
            stations.sort(key=lambda s: s["station"])
        regions = [r["area"] for r in doc["regions"]]
        if order == "region":
            place = {a: i for i, a in enumerate(regions)}
            stations.sort(
                key=lambda s: (place.get(s["region"], len(place)), -s["largest_difference"], s["station"])
            )
            # Every region gets its anchor (the map links to it), with or without differences.
            groups = [{"area": a, "stations": [s for s in stations if s["region"] == a]} for a in regions]
        else:
            groups = [{"area": None, "stations": stations}]
        data: dict[str, Any] = {
            "page": "reconcile",
            "contest": doc["contest"],
            "order": order,
            "orders": list(ORDERS),
            **{k: doc[k] for k in _RECONCILE_COUNTS},
            "recount_rule": doc["recount_rule"],
            "threshold_percent": doc["threshold_percent"],
            "assertions": {a["name"]: a for a in doc["assertions"]},
            "groups": groups,
            "histogram": None,
            "regions": None,
            "map": None,
        }
        if order == ORDERS[0]:
            hist = doc["histogram"]
            bars = svg.histogram_bars([b["count"] for b in hist["bins"]])
            data["histogram"] = {
                **hist,
                "width": 480,
                "height": 160,
                "view_height": 180,
                "label_y": 174,
                "bars": [
                    {
                        "x": bar.x,
                        "y": bar.y,
                        "w": bar.width,
                        "h": bar.height,
                        "cx": round(bar.x + bar.width / 2, 1),
                        "last": b["high"] - 1,
                        **b,
                    }
                    for bar, b in zip(bars, hist["bins"], strict=True)
                ],
            }
            data["regions"] = doc["regions"]
            data["map"] = self._reconcile_map(doc["regions"])
        return data

    def _reconcile_map(self, regions: list[dict[str, Any]]) -> dict[str, Any] | None:
        shape = self.map_shape
        if shape is None:
            return None
        e = self.election
        out = []
        for r in regions:
            d = shape.paths.get(e.areas[e.area_index[r["area"]]].code or "")
            if d is None:
                continue
            out.append(
                {
                    "area": r["area"],
                    "d": d,
                    "fill": svg.difference_colour(r["differing_percent"]),
                    "stations_compared": r["stations_compared"],
                    "stations_differing": r["stations_differing"],
                    "differing_percent": r["differing_percent"],
                }
            )
        return {
            "width": shape.width,
            "height": shape.height,
            "regions": out,
            "attribution": shape.attribution,
            "key": _KEYS["difference"],
        }

    def prepare(self) -> None:
        """Build what every page needs once (before forking workers that render pages)."""
        if self.fast and len(self.languages) > 1:
            self.neutral()
        for lang in self.languages:
            self.phrases(lang)
            for template in ("national.html", "area.html", "station.html", "changes.html"):
                if not self.fast or template not in FAST_RENDERERS:
                    self.env(lang).get_template(template)

    # -- rendering ---------------------------------------------------------------------------

    def env(self, lang: str) -> jinja2.Environment:
        got = self._envs.get(lang)
        if got is not None:
            return got
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(template_dir())),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
        fmt = number_format(lang)
        e = self.election
        area_names = {a.id: a.name for a in e.areas}
        station_names = {s.id: s.name for s in e.stations}
        contest_names = {c.id: c.contest.name for c in e.contests}
        election_name = e.definition.election.name

        def tr(name: Name | None) -> str:
            return "" if name is None else name_in(name, lang)

        env.filters.update(
            num=fmt.integer,
            pct=fmt.decimal_text,
            tr=tr,
            area=lambda aid: name_in(area_names[aid], lang) if aid in area_names else aid,
            station=lambda sid: name_in(station_names[sid], lang) if sid in station_names else sid,
            contest=lambda cid: name_in(contest_names[cid], lang),
            short=lambda h, n=12: h[:n] + "…" if isinstance(h, str) and len(h) > n else h,
        )
        env.globals.update(
            lang=lang,
            languages=[(code, number_format(code).language_name) for code in self.languages],
            election_name=name_in(election_name, lang),
            election_date=e.definition.election.date,
            choice_names=self.choice_names,
            line_names=self.line_names,
            contest_kinds={c.id: str(c.contest.kind) for c in e.contests},
            area_kinds={a.id: a.kind for a in e.areas},
            area_codes={a.id: a.code for a in e.areas},
            Markup=Markup,
        )
        self._envs[lang] = env
        return env

    def phrases(self, lang: str) -> fastpages.Phrases:
        got = self._phrases.get(lang)
        if got is None:
            got = self._phrases[lang] = fastpages.Phrases(self.election, lang, self.languages)
        return got

    def neutral(self) -> NeutralPhrases:
        """The phrases of every language at once (see :mod:`.neutral`)."""
        if self._neutral is None:
            self._neutral = NeutralPhrases([self.phrases(lang) for lang in self.languages])
        return self._neutral

    def render_languages(self, job: Job, api: bytes) -> dict[str, bytes]:
        """The job's page in every language, rendered once for all of them when neither its
        data (``api``, its JSON) nor the names hold a NUL (see :mod:`.neutral`)."""
        fast = FAST_RENDERERS.get(job.template) if self.fast else None
        if fast is not None and len(self.languages) > 1 and b"\\u0000" not in api:
            neutral = self.neutral()
            if neutral.usable:
                ctx = fastpages.PageContext(job.page, job.api, self.languages)
                pages = neutral.resolve(fast(neutral, ctx, job.materialize()))
                if pages is not None:
                    return {f"{lang}/{job.page}": b for lang, b in zip(self.languages, pages, strict=True)}
        return {f"{lang}/{job.page}": self.render(job, lang) for lang in self.languages}

    def render(self, job: Job, lang: str) -> bytes:
        fast = FAST_RENDERERS.get(job.template) if self.fast else None
        if fast is not None:
            ctx = fastpages.PageContext(job.page, job.api, self.languages)
            return fast(self.phrases(lang), ctx, job.materialize()).encode("utf-8")
        return self.render_jinja(job, lang)

    def render_jinja(self, job: Job, lang: str) -> bytes:
        """The page as its Jinja2 template writes it (the reference for the fast renderers)."""
        template = self.env(lang).get_template(job.template)
        prefix = _depth_prefix(job.page)
        html = template.render(
            d=job.materialize(),
            root=prefix,
            page=job.page,
            api=prefix + job.api,
            lang_root="../" * job.page.count("/"),
            lang_href={code: f"{prefix}{code}/{job.page}" for code in self.languages},
        )
        return html.encode("utf-8")

    def not_found_page(self, lang: str) -> bytes:
        """The "page not found" page in ``lang``, for any address: its links start at the
        site's root (``/``), where both servers put the site. Not part of a snapshot: the
        servers send it with a 404 (see :func:`write_error_pages`)."""
        html = (
            self.env(lang)
            .get_template("notfound.html")
            .render(
                d={},
                root="/",
                page="404.html",
                api="/api/v1/results/index.json",
                lang_root="/",
                lang_href={code: f"/{code}/" for code in self.languages},
            )
        )
        return html.encode("utf-8")

    def produce(self, job: Job, snapshot: dict[str, Any] | None = None) -> dict[str, bytes]:
        """The job's files; a page that is not volatile is stamped with the snapshot in which
        its data last changed (this one: it is being rendered because it changed)."""
        data = job.materialize()
        if snapshot is not None and "snapshot" not in data:
            data["changed_in"] = snapshot
        api = _enc.encode(data) + b"\n"
        out = self.render_languages(job, api)
        out[job.api] = api
        return out

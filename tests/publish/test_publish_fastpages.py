"""The specialised page renderers (tallyroom.publish.fastpages) write exactly the bytes of the
Jinja2 templates, for every page of a published election and for page data in every state a
template distinguishes (nothing reported, failed rules, corrections, device signatures, seat
outcomes, thresholds, missing figures, characters that must be escaped)."""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import Published
from tallyroom.publish import gate
from tallyroom.publish.ledger_view import election_of, protocol_entries, read_prefix
from tallyroom.publish.pages import FAST_RENDERERS, Job, Site
from tallyroom.publish.results import present
from tallyroom.publish.seats import all_projections

SNAPSHOT = {
    "number": 7,
    "previous": 6,
    "ledger_size": 1234,
    "root": "ab" * 32,
    "published_at": "2021-11-28T20:00:00Z",
    "definition_sha256": "cd" * 32,
}


@pytest.fixture(scope="module")
def site_jobs(published: Published) -> tuple[Site, list[Job]]:
    store = published.store
    prefix = read_prefix(store, store.head().size)
    election = election_of(prefix)
    rebuilt = gate.recompute(election, prefix).rebuilt
    assert rebuilt is not None
    results = present(
        election,
        store.tally(),
        protocol_entries(election, prefix, rebuilt.active),
        {k[2] for k in rebuilt.active},
    )
    site = Site(election)
    pub = published.out / "current"
    changes = json.loads((pub / "changes.json").read_bytes())
    snapshots = json.loads((pub / "api/v1/snapshots.json").read_bytes())["snapshots"]
    downloads = json.loads((pub / "api/v1/downloads.json").read_bytes())["downloads"]
    jobs = [
        j
        for j in site.jobs(
            results, all_projections(election, results), SNAPSHOT, changes, snapshots, downloads
        )
        if j.template in FAST_RENDERERS
    ]
    for j in jobs:
        data = j.materialize()
        if "snapshot" not in data:
            data["changed_in"] = SNAPSHOT
    return site, jobs


def _same(site: Site, job: Job) -> None:
    for lang in site.languages:
        want = site.render_jinja(job, lang).decode()
        got = site.render(job, lang).decode()
        if got != want:
            diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), lineterm="", n=1))
            pytest.fail(f"{lang}/{job.page} differs from its template:\n{diff[:3000]}")


def test_every_page_equals_its_template(site_jobs: tuple[Site, list[Job]]) -> None:
    site, jobs = site_jobs
    assert {j.template for j in jobs} == set(FAST_RENDERERS)
    for job in jobs:
        _same(site, job)


def _variant(job: Job, change: Callable[[dict[str, Any]], None]) -> Job:
    data = copy.deepcopy(job.materialize())
    change(data)
    return Job(job.key, job.template, job.page, job.api, data)


def _station_variants(d: dict[str, Any]) -> Iterator[Callable[[dict[str, Any]], None]]:
    def envelopes(x: dict[str, Any]) -> None:
        envs = [
            {"key_id": "dev<1>&'\""},
            {"action": "supersede", "target": 17},
            {"action": "annul"},
            {},
            {"via": "import"},
        ]
        i = 0
        for c in x["contests"]:
            for col in c["columns"]:
                if col["reported"]:
                    col["envelope"] = envs[i % len(envs)]
                    i += 1

    def failed_rules(x: dict[str, Any]) -> None:
        for c in x["contests"]:
            for col in c["columns"]:
                if col["reported"]:
                    col["rules_failed"] = 2
        for r in x["rules"][:3]:
            for col in list(r["checks"])[:1]:
                r["checks"][col] = {"left": 1_234_567, "right": None}
            r["expr"] = "a < b & c > 'd'"

    def unreported(x: dict[str, Any]) -> None:
        x["abroad"] = True
        for c in x["contests"]:
            c["columns"].append({"count_kind": "recount", "reported": False})
            for _lid, vals in c["lines"]:
                vals.append(None)
            for ch in c["choices"]:
                ch[2].append(None)

    def nothing(x: dict[str, Any]) -> None:
        x["rules"] = []
        x["history"] = []
        x["rule_columns"] = []
        for c in x["contests"]:
            c["any_reported"] = False
            for col in c["columns"]:
                col.clear()
                col.update({"count_kind": "odd<kind>", "reported": False})

    def other_contest_rules(x: dict[str, Any]) -> None:
        if x["rules"] and len(x["contests"]) > 1:
            other = x["contests"][1]["contest"]
            x["rule_columns"].append(f"{other}/hand")
            x["rules"][0]["checks"][f"{other}/hand"] = None
        for c in x["contests"]:
            for ch in c["choices"]:
                ch[2] = [None if cell is None else [cell[0], None] for cell in ch[2]]

    yield from (envelopes, failed_rules, unreported, nothing, other_contest_rules)


def _area_variants(d: dict[str, Any]) -> Iterator[Callable[[dict[str, Any]], None]]:
    def seat_states(x: dict[str, Any]) -> None:
        for i, s in enumerate(x["sections"]):
            if s.get("seats"):
                s["seats"]["status"] = ["no-data", "no-eligible", "error"][i % 3]

    def outcomes(x: dict[str, Any]) -> None:
        for i, s in enumerate(x["sections"]):
            p = s.get("seats")
            if p:
                p.pop("hemicycle", None)
                p["status"] = "ok"
                p["outcome"] = ["elected", "failed election"][i % 2]
                p["provisional"] = i % 3 == 0
                p["winner"] = s["choices"][0]["id"]

    def thresholds(x: dict[str, Any]) -> None:
        for s in x["sections"]:
            p = s.get("seats")
            if p and p.get("parties"):
                p["has_thresholds"] = True
                p["status"] = "ok"
                for j, q in enumerate(p["parties"]):
                    q["national_percent"] = None if j == 1 else "4.5"
                    q["national_required_percent"] = "5"
                    q["national_passed"] = j % 2 == 0
                    q["regions_failed"] = ["chui"] if j == 2 else []
                    low = {"area": "chui", "percent": "0.4", "required_percent": "0.5"}
                    q["lowest_region"] = None if j == 3 else low
                    q["regions_total"] = 0 if j == 4 else 3
                    q["regions_passed"] = 2

    def gaps(x: dict[str, Any]) -> None:
        for s in x["sections"]:
            s["official"] = not s["official"]
            for k in ("registered", "took_part", "turnout_percent", "ballots_cast", "valid", "invalid"):
                s[k] = None
            s["percent_base"] = "weird<base>"
            for c in s["choices"][:2]:
                c["percent"] = None
        for c in x["children"]:
            c["turnout_percent"] = None
            c["leader"] = None
        for st in x["stations"]:
            for k in st["kinds"]:
                st["kinds"][k] = None
        if x.get("map"):
            x["map"]["attribution"] = ""
            for r in x["map"]["regions"]:
                r["leader"] = None
                r["turnout_percent"] = None

    def empty(x: dict[str, Any]) -> None:
        x["sections"] = []
        x["children"] = []
        x["stations"] = []
        x["related"] = []
        x["constituencies"] = []
        x["map"] = None

    yield from (seat_states, outcomes, thresholds, gaps, empty)


def test_page_data_in_every_state_equals_its_template(site_jobs: tuple[Site, list[Job]]) -> None:
    site, jobs = site_jobs
    stations = [j for j in jobs if j.template == "station.html"][:6]
    areas = [j for j in jobs if j.template in ("area.html", "national.html")]
    lists = {j.template: j for j in jobs if j.template not in ("area.html", "national.html", "station.html")}
    for job in stations:
        for change in _station_variants(job.materialize()):
            _same(site, _variant(job, change))
    for job in areas:
        for change in _area_variants(job.materialize()):
            _same(site, _variant(job, change))
    for change in _list_variants():
        for job in lists.values():
            _same(site, _variant(job, change))


def _list_variants() -> Iterator[Callable[[dict[str, Any]], None]]:
    def first(x: dict[str, Any]) -> None:
        if "changes" in x:
            x["changes"]["previous"] = None
            x["changes"]["rows_changed"] = []
            x["changes"]["new_protocols"] = []

    def many(x: dict[str, Any]) -> None:
        if "changes" in x:
            c = x["changes"]
            c["previous"] = 6
            c["ledger_from"], c["ledger_to"] = 1000, 1_234_567
            c["rows_changed"] = [
                {
                    "contest": "party-list",
                    "area": "kg",
                    "count_kind": "hand",
                    "stations_reporting": [None, 3],
                    "took_part": [10, None],
                },
                {
                    "contest": "party-list",
                    "area": "unknown<area>",
                    "count_kind": "recount",
                    "stations_reporting": [1, 2],
                    "took_part": [3, 4],
                },
            ]
            c["new_protocols"] = [
                {"contest": "party-list", "station": "ps-1001", "count_kind": "machine", "ledger_index": 5},
                {"contest": "party-list", "station": "nowhere&co", "count_kind": "odd", "ledger_index": 6},
            ]
            c["new_protocols_total"] = 900
            c["rows_changed_total"] = 0
        if "snapshots" in x and isinstance(x["snapshots"], list):
            x["snapshots"] = [
                {"number": i, "published_at": f"t{i}", "ledger_size": 1000 * i, "root": "ab" * (i % 20)}
                for i in range(1, 30)
            ]
        if "downloads" in x:
            x["downloads"].append(
                {"path": "data/odd<file>.bin", "what": "other&", "size": 10**7, "sha256": "x"}
            )

    yield from (first, many)

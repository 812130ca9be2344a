"""The specialised page renderers (tallyroom.publish.fastpages) write exactly the bytes of the
Jinja2 templates, for every page of a published election and for page data in every state a
template distinguishes (nothing reported, failed rules, corrections, device signatures, seat
outcomes, thresholds, missing figures, characters that must be escaped)."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies
from publish_support import displayed

from conftest import Published
from tallyroom.publish import fastpages
from tallyroom.publish.pages import FAST_RENDERERS, Job, Site
from tallyroom.publish.results import plain
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
    shown = displayed(published.store)
    election, results = shown.election, shown.results
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
    """Each language's page, rendered alone and with the others (``Site.produce``: once for
    all languages), is its template's."""
    together = site.produce(job)
    for lang in site.languages:
        want = site.render_jinja(job, lang).decode()
        alone = site.render(job, lang).decode()
        for how, got in (("alone", alone), ("together", together[f"{lang}/{job.page}"].decode())):
            if got != want:
                diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), lineterm="", n=1))
                pytest.fail(f"{lang}/{job.page} ({how}) differs from its template:\n{diff[:3000]}")


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

    def history_photos_intake(x: dict[str, Any]) -> None:
        def event(i: int, action: str, status: str, **kw: Any) -> dict[str, Any]:
            return {
                "ledger_index": i,
                "leaf_hash": f"{i:064x}",
                "entry": "protocol" if action == "submit" else "correction",
                "action": action,
                "status": status,
                "ended_by": kw.get("ended_by"),
                "target": kw.get("target"),
                "source": kw.get("source"),
                "key_id": kw.get("key_id"),
                "body_sha256": None,
                "reason": kw.get("reason"),
                "proposed_by": kw.get("proposed_by"),
                "approved_by": kw.get("approved_by"),
            }

        contest = x["contests"][0]["contest"]
        x["history"] = [
            {
                "contest": contest,
                "count_kind": "hand",
                "in_force": 40,
                "entries": [
                    event(3, "submit", "superseded", source="import", ended_by=20),
                    event(9, "dismiss", "dismissed", target=3, source="device", key_id="k<1>",
                          reason="misread & 'wrong'", proposed_by="olga", approved_by="sam"),
                    event(20, "supersede", "annulled", target=3, source="commission", ended_by=30,
                          reason=None, proposed_by=None, approved_by="sue"),
                    event(30, "annul", "decision", target=20, source="commission", reason="<b>x</b>",
                          proposed_by="a", approved_by="b"),
                    event(40, "submit", "counts", source="device", key_id="ed25519:abc"),
                    event(41, "odd<action>", "odd"),
                    event(42, "submit", "counts"),
                ],
            },
            {"contest": contest, "count_kind": "odd<kind>", "in_force": None, "entries": []},
        ]
        images = [
            {"sha256": "ab" * 32, "path": "images/" + "ab" * 32 + ".png", "media_type": "image/png"},
            {"sha256": "cd" * 32, "path": "images/" + "cd" * 32 + ".pdf", "media_type": "application/pdf"},
            {"sha256": "ef" * 32, "path": None, "media_type": None},
            None,
        ]
        i = 0
        for c in x["contests"]:
            for col in c["columns"]:
                if col["reported"]:
                    col["image"] = images[i % len(images)]
                    i += 1
        x["intake"] = {
            "accepted": 1_234,
            "duplicate": 0,
            "conflict": 2,
            "rejected": 9,
            "reasons": {
                "forged-signature": 5,
                "conflict": 2,
                "malformed-json": 1,
                "Zeta<&>": 1,
                "alpha": 1,
                "unspecified": 1,
                "wrong-station": 1,
            },
        }

    def intake_without_reasons(x: dict[str, Any]) -> None:
        x["intake"] = {"accepted": 3, "duplicate": 1, "conflict": 0, "rejected": 0, "reasons": {}}

    yield from (
        envelopes,
        failed_rules,
        unreported,
        nothing,
        other_contest_rules,
        history_photos_intake,
        intake_without_reasons,
    )


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

    def sensitivity_and_links(x: dict[str, Any]) -> None:
        for i, s in enumerate(x["sections"]):
            v = s.get("sensitivity")
            if v:
                v["regional_held"] = i % 2 == 0
                if i % 2:
                    v["seat_move"] = None
                for j, q in enumerate(v["parties"]):
                    q["passes"] = j % 2 == 0
                    q["margin"] = "0.05" if j == 1 else "12345.6"
                if i % 3 == 2:
                    v["threshold"] = None
        x["reconciliation"] = [
            {"contest": "party-list", "region": "chui"},
            {"contest": "party-list", "region": None},
        ]

    yield from (seat_states, outcomes, thresholds, gaps, empty, sensitivity_and_links)


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
    recon = [j for j in jobs if j.template == "reconcile.html" and j.key.endswith(("difference", "region"))]
    for job in recon[:4]:
        for change in _reconcile_variants():
            _same(site, _variant(job, change))


def _reconcile_variants() -> Iterator[Callable[[dict[str, Any]], None]]:
    def states(x: dict[str, Any]) -> None:
        x["recount_rule"]["outcome_at_risk"] = not x["recount_rule"]["outcome_at_risk"]
        x["assertions"] = {
            "a<1>": {"name": "a<1>", "kind": "custom", "choice": None, "other": None, "margin": "7"},
            **x["assertions"],
        }
        choices = [a["choice"] for a in x["assertions"].values() if a["choice"]] or ["x"]
        x["assertions"]["pair"] = {
            "name": "pair",
            "kind": "pairwise",
            "choice": choices[0],
            "other": choices[-1],
            "margin": "12.5",
        }
        line = next(iter(x["assertions"].values()))
        station = {
            "station": "ps-1001",
            "region": "chui",
            "largest_difference": 1234,
            "absolute_difference": 2468,
            "lines": [
                {"line": "valid", "machine": 0, "hand": 1234, "difference": 1234, "relative_percent": None},
                {
                    "line": "invalid",
                    "machine": 5000,
                    "hand": 3766,
                    "difference": -1234,
                    "relative_percent": "-24.68",
                },
            ],
            "overstatement": {"assertion": "pair", "votes": "1234.05"},
            "flagged": True,
            "flags": [
                {"rule": "relative_difference", "line": "invalid", "assertion": None},
                {"rule": "outcome_at_risk", "line": None, "assertion": "pair"},
                {"rule": "outcome_at_risk", "line": None, "assertion": line["name"]},
            ],
        }
        quiet = {**station, "station": "ps-1002", "overstatement": None, "flagged": False, "flags": []}
        x["groups"] = [{"area": "chui", "stations": [station, quiet]}, {"area": "talas", "stations": []}]

    def wide_bins(x: dict[str, Any]) -> None:
        h = x.get("histogram")
        if h:
            h["bin_width"] = 5
            for b in h["bars"]:
                b["last"] = b["low"] + 4
        if x.get("map"):
            x["map"]["attribution"] = ""
            for r in x["map"]["regions"]:
                r["differing_percent"] = None
        for r in x.get("regions") or []:
            r["differing_percent"] = None

    def bare(x: dict[str, Any]) -> None:
        x["histogram"] = None
        x["map"] = None
        x["regions"] = None
        x["groups"] = [{"area": None, "stations": []}]
        x["order"] = "unknown<order>"
        x["orders"] = [*x["orders"], "unknown<order>"]

    yield from (states, wide_bins, bare)


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
            decision = {
                "entry": "correction",
                "contest": "party-list",
                "count_kind": "hand",
                "proposed_by": "olga",
                "approved_by": None,
            }
            c["decisions"] = [
                {**decision, "ledger_index": 7, "action": "supersede", "station": "ps-1001", "target": 5,
                 "reason": "recounted <at> the DEC & signed"},
                {**decision, "ledger_index": 8, "action": "dismiss", "station": "ps-1001", "target": 7,
                 "reason": None},
                {**decision, "ledger_index": 9, "action": "annul", "station": "ps-1002", "target": 7,
                 "reason": "1,000 ballots"},
                {**decision, "ledger_index": 10, "action": "odd<action>", "station": "x&y", "target": 1,
                 "count_kind": "odd", "reason": "%(n)s"},
            ]
            c["decisions_total"] = 12_345
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


def test_pages_are_rendered_once_for_all_languages(site_jobs: tuple[Site, list[Job]]) -> None:
    """The one-pass rendering is taken for real pages of every kind (not only its fallback)
    and splits into each language's page; a page it cannot split is declined."""
    site, jobs = site_jobs
    neutral = site.neutral()
    assert neutral.usable
    stations = [j for j in jobs if j.template == "station.html"][:40]
    others = [j for j in jobs if j.template != "station.html"]
    assert stations and {j.template for j in others} == set(FAST_RENDERERS) - {"station.html"}
    for job in stations + others:
        ctx = fastpages.PageContext(job.page, job.api, site.languages)
        page = FAST_RENDERERS[job.template](neutral, ctx, job.materialize())
        assert "\x00" in page  # words of the page are slots
        got = neutral.resolve(page)
        assert got is not None, job.page
        assert got == [site.render_jinja(job, lang) for lang in site.languages]
    assert neutral.resolve("<p>\x00" + "unknown\x00</p>") is None
    assert neutral.resolve("<p>\x00</p>") is None


_DATA_TEXT = strategies.text(
    alphabet=strategies.sampled_from(["\x00", "n", "p", "d", "0", "1", "5", ".", "<", "&", "'", "й", "x"]),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key_id=_DATA_TEXT, expr=_DATA_TEXT, reason=_DATA_TEXT)
def test_station_page_text_that_looks_like_slots(
    site_jobs: tuple[Site, list[Job]], key_id: str, expr: str, reason: str
) -> None:
    """Whatever a protocol's data holds (NULs, text shaped like slots, markup), the pages
    rendered together are the pages rendered one language at a time."""
    site, jobs = site_jobs
    job = next(j for j in jobs if j.template == "station.html" and j.materialize()["rules"])

    def change(x: dict[str, Any]) -> None:
        for c in x["contests"]:
            for col in c["columns"]:
                if col["reported"]:
                    col["envelope"] = {"key_id": key_id or "k"}
        x["rules"][0]["expr"] = expr
        x["intake"] = {"accepted": 1, "duplicate": 0, "conflict": 0, "rejected": 1, "reasons": {reason: 1}}

    v = _variant(job, change)
    together = site.produce(v)
    for lang in site.languages:
        assert together[f"{lang}/{v.page}"] == site.render(v, lang)


def test_station_data_reads_records_as_structs_or_as_their_json(published: Published) -> None:
    """A station page's data is the same whether its records hold structs (as the display
    step makes them) or the dicts their JSON decodes to."""
    shown = displayed(published.store)
    site = Site(shown.election)
    results = shown.results
    as_json = dataclasses.replace(results, stations={k: plain(v) for k, v in results.stations.items()})
    assert any(
        r["rules"] and not isinstance(r["rules"][0], dict) for r in results.stations.values()
    ), "the records hold structs"
    compared = 0
    for si in range(len(shown.election.stations)):
        want = site.station_data(si, as_json)
        assert site.station_data(si, results) == want
        compared += bool(want["rules"])
    assert compared


def test_names_holding_a_nul_turn_the_one_pass_rendering_off(site_jobs: tuple[Site, list[Job]]) -> None:
    """A name from the definition with a NUL in it could be taken for a slot: then no page
    is rendered in one pass, and the pages are those of each language alone."""
    from tallyroom.publish.neutral import NeutralPhrases

    site, jobs = site_jobs
    assert NeutralPhrases([site.phrases(lang) for lang in site.languages]).usable
    for attr in ("station_names", "area_names"):
        each = [fastpages.Phrases(site.election, lang, site.languages) for lang in site.languages]
        names = getattr(each[1], attr)
        first = next(iter(names))
        names[first] = "\x000\x00"  # shaped like the slot of the language code
        assert not NeutralPhrases(each).usable, attr
    job = next(j for j in jobs if j.template == "station.html")
    off = Site(site.election)
    off.neutral().usable = False
    assert off.produce(job) == site.produce(job)
    assert [off.produce(job)[f"{lang}/{job.page}"] for lang in site.languages] == [
        site.render(job, lang) for lang in site.languages
    ]

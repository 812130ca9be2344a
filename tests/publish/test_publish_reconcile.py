"""Machine vs hand count on the public site, and what the outcome rests on beside the seats.

The mini Kyrgyz election with every machine and every hand count published: the scanner count
differs from the hand count at a known set of stations (tallyroom.simulate.kyrgyzstan.
machine_counts), so the reconciliation pages must list exactly those stations with exactly the
generated differences; the sensitivity next to the seat projection must be what
tallyroom.audit.sensitivity says for the published national row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from publish_support import displayed, make_store, mini

from tallyroom import seats
from tallyroom.audit import reconcile as audit_reconcile
from tallyroom.audit.sensitivity import seat_sensitivity, threshold_margins
from tallyroom.publish import gate
from tallyroom.publish.audit_view import ORDERS, AuditView
from tallyroom.publish.builder import Publisher
from tallyroom.publish.ledger_view import election_of, protocol_entries, read_prefix
from tallyroom.publish.results import present


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every machine and every hand count of the mini election, published."""
    folder = tmp_path_factory.mktemp("recon")
    store, key = make_store(folder, machine=None, hand=None)
    outcome = Publisher(store, folder / "pub", key, workers=1).publish()
    assert outcome.status == "published", outcome.failures
    store.close()
    return (folder / "pub" / "current").resolve()


def _json(snap: Path, rel: str) -> Any:
    return json.loads((snap / rel).read_bytes())


def _generated_differences(contest: str) -> dict[str, dict[str, int]]:
    """station -> {line: hand - machine} for the lines that differ, from the generator itself."""
    m = mini()
    hand = {p.station: p.lines for p in m.hand if p.contest == contest}
    out: dict[str, dict[str, int]] = {}
    for p in m.machine:
        if p.contest != contest or p.station not in hand:
            continue
        diff = {k: hand[p.station][k] - v for k, v in p.lines.items() if hand[p.station][k] != v}
        if diff:
            out[p.station] = diff
    return out


def _listed(html: str) -> list[str]:
    return re.findall(r'<tr data-station="([^"]+)">', html)


def test_the_page_lists_exactly_the_stations_whose_counts_differ(full: Path) -> None:
    doc = _json(full, "data/reconciliation.json")
    by_contest = {c["contest"]: c for c in doc["contests"]}
    assert "party-list" in by_contest
    for cid, rec in by_contest.items():
        want = _generated_differences(cid)
        assert {s["station"] for s in rec["stations"]} == set(want), cid
        for s in rec["stations"]:
            assert {x["line"]: x["difference"] for x in s["lines"]} == want[s["station"]]
            for x in s["lines"]:
                assert x["difference"] == x["hand"] - x["machine"]
            assert s["largest_difference"] == max(abs(v) for v in want[s["station"]].values())
        expected = sum(1 for p in mini().hand if p.contest == cid)
        assert rec["stations_compared"] == expected, "only stations with both counts are compared"
        assert rec["stations_differing"] == len(want)
        assert sum(b["count"] for b in rec["histogram"]["bins"]) == rec["stations_compared"]
        assert sum(r["stations_compared"] for r in rec["regions"]) == rec["stations_compared"]
        assert sum(r["stations_differing"] for r in rec["regions"]) == len(want)
        # Every ordering of the page, in every language, lists the same stations.
        for order in ORDERS:
            page = _json(full, f"api/v1/reconcile/{cid}/{order}.json")
            listed = [s["station"] for g in page["groups"] for s in g["stations"]]
            assert sorted(listed) == sorted(want)
            for lang in ("ky", "ru", "en"):
                html = (full / lang / "reconcile" / cid / f"{order}.html").read_text(encoding="utf-8")
                assert _listed(html) == listed, (lang, cid, order)
    party = by_contest["party-list"]
    assert party["stations_differing"] > 0
    largest = [s["largest_difference"] for s in party["stations"]]
    assert largest == sorted(largest, reverse=True), "the main page is sorted by the largest difference"
    by_station = _json(full, "api/v1/reconcile/party-list/station.json")
    names = [s["station"] for g in by_station["groups"] for s in g["stations"]]
    assert names == sorted(names)


def test_numbers_and_language_versions(full: Path) -> None:
    party = next(
        c for c in _json(full, "data/reconciliation.json")["contests"] if c["contest"] == "party-list"
    )
    s = party["stations"][0]
    x = s["lines"][0]
    ru = (full / "ru/reconcile/party-list/difference.html").read_text(encoding="utf-8")
    en = (full / "en/reconcile/party-list/difference.html").read_text(encoding="utf-8")
    ky = (full / "ky/reconcile/party-list/difference.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in ru and "Машинный и ручной подсчёт" in ru
    assert '<html lang="ky">' in ky and "Автоматтык жана кол менен эсептөө" in ky
    assert "Machine vs hand count" in en and "Machine vs hand count" not in ru.split("<main", 1)[1]
    sign = "+" if x["difference"] > 0 else ""
    row = re.search(rf'<tr data-station="{s["station"]}">.*?</tr>', ru, re.S)
    assert row is not None
    assert f'<span class="d">{sign}{x["difference"]}</span>' in row.group(0)
    if x["relative_percent"] is not None:
        assert f"{sign}{x['relative_percent'].replace('.', ',')}%" in row.group(0)
    compared = f"{party['stations_compared']:,}"
    assert f'<dd data-count="compared">{compared.replace(",", chr(0xA0))}</dd>' in ru
    assert f'<dd data-count="compared">{compared}</dd>' in en
    # The histogram is drawn on the server, with its numbers in a table beside it.
    assert '<svg class="hist"' in en and 'role="img"' in en and '<table class="recon-histogram">' in en
    bins = re.findall(r'<tr data-low="-?\d+"><th scope="row">[^<]*</th><td class="n">([^<]*)</td>', en)
    assert sum(int(n.replace(",", "")) for n in bins) == party["stations_compared"]
    # The map shades regions and links each one to its stations.
    assert re.search(r'<a href="region.html#region-chui"><path d="M[^"]+" fill="#[0-9a-f]{6}"', en)
    region = (full / "en/reconcile/party-list/region.html").read_text(encoding="utf-8")
    assert '<h3 id="region-chui">' in region
    # Each station links to its station page.
    assert f'<a href="../../station/{s["station"]}.html">' in en


def test_csv_download_and_the_downloads_page(full: Path) -> None:
    doc = _json(full, "data/reconciliation.json")
    lines = (full / "data/reconciliation.csv").read_text().splitlines()
    assert lines[0] == "contest,station,region,line,machine,hand,difference,relative_percent,flagged"
    want = [
        f"{c['contest']},{s['station']},{s['region']},{x['line']},{x['machine']},{x['hand']},{x['difference']},"
        f"{x['relative_percent'] or ''},{'true' if s['flagged'] else 'false'}"
        for c in doc["contests"]
        for s in c["stations"]
        for x in s["lines"]
    ]
    assert lines[1:] == want
    downloads = {d["path"]: d["what"] for d in _json(full, "api/v1/downloads.json")["downloads"]}
    assert downloads["data/reconciliation.json"] == "reconciliation"
    assert downloads["data/reconciliation.csv"] == "reconciliation-csv"
    assert "data/reconciliation.csv" in (full / "ky/downloads.html").read_text(encoding="utf-8")


def test_linked_from_the_national_and_area_pages(full: Path) -> None:
    national = (full / "en/index.html").read_text(encoding="utf-8")
    assert '<a href="reconcile/party-list/difference.html">' in national
    region = (full / "en/area/chui.html").read_text(encoding="utf-8")
    assert '<a href="../reconcile/party-list/difference.html">' in region
    assert '<a href="../reconcile/party-list/region.html#region-chui">' in region
    smd = next(a.id for a in mini().definition.areas if a.hierarchy == "smd" and a.parent is None)
    page = (full / f"en/area/{smd}.html").read_text(encoding="utf-8")
    assert f'<a href="../reconcile/{smd}/difference.html">' in page
    data = _json(full, "api/v1/results/index.json")
    assert data["reconciliation"] == [{"contest": "party-list", "region": None}]


def _kg_allocate(rows: Mapping[tuple[str, str], dict[str, Any]], kind: str) -> tuple[Any, list[str]]:
    """Seats by tallyroom.seats.allocate itself with the Kyrgyz rules of the mini definition,
    the threshold base held fixed and failed regional thresholds held out."""
    contest = next(c for c in mini().definition.contests if c.id == "party-list")
    rules = contest.allocation
    assert rules is not None and rules.threshold_percent and rules.regional_threshold
    national = rows[("kg", kind)]
    base = national["took_part"]
    against = {c["id"] for c in national["choices"] if c["against_all"]}
    held = set(against)
    for aid in rules.regional_threshold.areas:
        r = rows.get((aid, kind))
        if r is None or not r["took_part"]:
            continue
        pct = Fraction(rules.regional_threshold.percent)
        held.update(c["id"] for c in r["choices"] if c["votes"] * 100 < pct * r["took_part"])
    base_words = seats.Base("voters who took part", base)
    threshold = seats.PercentThreshold(Fraction(rules.threshold_percent), base_words)

    def allocate(votes: Mapping[str, int], n: int) -> Mapping[str, int]:
        try:
            return seats.allocate(
                votes, n, rules.method, thresholds=[threshold], cap=rules.cap, against_all=sorted(held)
            ).seats
        except seats.NoEligibleChoicesError:
            return {}

    votes = {c["id"]: c["votes"] for c in national["choices"]}
    eligible = [
        p for p in votes if p not in held and votes[p] * 100 >= Fraction(rules.threshold_percent) * base
    ]
    return allocate, eligible


def test_sensitivity_beside_the_seats_equals_the_audit_package(full: Path) -> None:
    results = _json(full, "data/results.json")
    rows = {(r["area"], r["count_kind"]): r for r in results["rows"] if r["contest"] == "party-list"}
    page = _json(full, "api/v1/results/index.json")
    sections = {s["count_kind"]: s for s in page["sections"] if s["contest"] == "party-list"}
    for kind in ("hand", "machine"):
        sens = sections[kind]["sensitivity"]
        assert sens is not None and sections[kind]["seats"] is not None
        national = rows[("kg", kind)]
        votes = {c["id"]: c["votes"] for c in national["choices"]}
        parties = {c["id"]: c["votes"] for c in national["choices"] if not c["against_all"]}
        margins = threshold_margins(parties, national["took_part"], Fraction(5, 100))
        got = {q["id"]: q for q in sens["parties"]}
        assert set(got) == set(parties)
        for m in margins:
            q = got[m.party]
            assert (q["passes"], q["votes_to_change"]) == (m.passes, m.votes_to_change)
            assert Fraction(q["margin"]) == abs(m.margin)
        assert Fraction(sens["threshold"]["required"]) == Fraction(5, 100) * national["took_part"]
        allocate, eligible = _kg_allocate(rows, kind)
        first = seat_sensitivity(votes, 54, allocate, parties=eligible)[0]
        move = sens["seat_move"]
        assert (move["source"], move["target"], move["votes"]) == (first.source, first.target, first.votes)
        assert move["seats_after"] == dict(sorted(first.seats_after.items()))
        # The seats before the move are the published projection's.
        projection = _json(full, f"api/v1/results/seats/party-list/{kind}.json")
        assert move["seats_before"] == {p["id"]: p["seats"] for p in projection["parties"] if p["seats"]}
    html = (full / "en/index.html").read_text(encoding="utf-8")
    hand = sections["hand"]["sensitivity"]
    assert f"The last seat would move if {hand['seat_move']['votes']:,} votes moved from" in html
    top = hand["parties"][0]
    assert re.search(
        rf'<tr data-choice="{top["id"]}"><th scope="row">[^<]+</th><td class="n">{top["votes"]:,}</td>'
        rf'<td class="n margin">[\d,.]+ above</td>'
        rf'<td class="n change">{top["votes_to_change"]:,} fewer votes</td>',
        html,
    )
    ru = (full / "ru/index.html").read_text(encoding="utf-8")
    assert "На чём держится результат" in ru and "Последний мандат перешёл бы" in ru


def test_reconciliation_is_remade_only_where_inputs_changed(
    full: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unchanged records keep their documents; a changed station is compared again alone."""
    from tallyroom.publish import audit_view

    db = full.parents[2] / "kg.db"
    from tallyroom.store.sql import open_store

    store = open_store(str(db))
    try:
        shown = displayed(store)
        election, results = shown.election, shown.results
    finally:
        store.close()
    calls: list[str] = []
    real = audit_reconcile.compare_station

    def counted(*args: Any, **kw: Any) -> Any:
        calls.append(args[0].station_id)
        return real(*args, **kw)

    monkeypatch.setattr(audit_view, "compare_station", counted)
    view = AuditView()
    first = view.reconciliation(election, results.kinds, results.stations, results.rows)
    differing = sum(d["stations_differing"] for d in first.values())
    assert len(calls) == differing
    calls.clear()
    again = view.reconciliation(election, results.kinds, results.stations, results.rows)
    assert calls == [] and all(again[c] is first[c] for c in first)
    # One differing station's hand record is replaced by a copy with a new leaf hash.
    station = first["party-list"]["stations"][0]["station"]
    key = ("party-list", station, "hand")
    records = dict(results.stations)
    records[key] = {**records[key], "leaf_hash": "00" * 32}
    third = view.reconciliation(election, results.kinds, records, results.rows)
    assert calls == [station]
    assert third["party-list"] == first["party-list"] and third["party-list"] is not first["party-list"]
    assert all(third[c] is first[c] for c in first if c != "party-list")


def test_kept_documents_equal_fresh_ones_as_hand_counts_arrive(full: Path) -> None:
    """A long-running publisher keeps records, rows and audit documents between snapshots;
    at every ledger prefix its documents equal those made from scratch."""
    from tallyroom.store.sql import open_store

    store = open_store(str(full.parents[2] / "kg.db"))
    try:
        size = store.head().size
        prefixes = [read_prefix(store, n) for n in (size - 90, size - 60, size - 25, size)]
    finally:
        store.close()
    election = election_of(prefixes[-1])
    records: dict[bytes, Any] = {}
    rows: dict[Any, Any] = {}
    view = AuditView()
    for prefix in prefixes:
        rebuilt = gate.recompute(election, prefix).rebuilt
        assert rebuilt is not None
        entries = protocol_entries(election, prefix, rebuilt.active)
        kinds = {k[2] for k in rebuilt.active}
        kept = present(election, rebuilt.tally, entries, kinds, None, records, rows, view)
        fresh = present(election, rebuilt.tally, entries, kinds)
        assert kept.reconciliation == fresh.reconciliation
        assert kept.sensitivity == fresh.sensitivity
        assert fresh.reconciliation["party-list"]["stations_compared"] > 0


def test_served_beside_the_intake_api(full: Path) -> None:
    """`tallyroom serve --publish-dir` sends /api/… to intake except the snapshot's own JSON:
    the reconciliation pages' data is the site's."""
    from starlette.testclient import TestClient
    from starlette.types import Receive, Scope, Send

    from tallyroom.web.app import WithSite
    from tallyroom.web.site import site_app

    async def intake(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"intake"})

    client = TestClient(WithSite(intake, site_app(full.parents[1])))
    r = client.get("/api/v1/reconcile/party-list/difference.json")
    assert r.status_code == 200 and r.json()["page"] == "reconcile"
    assert client.get("/en/reconcile/party-list/region.html").status_code == 200
    assert client.get("/api/v1/protocols").status_code == 418

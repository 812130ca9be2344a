"""Conflicts, corrections and annulments under the two-person rule, over the staff API."""

from __future__ import annotations

import json

import httpx
from intake_support import Live

from tallyroom.ledger.entry import EntryKind
from tallyroom.tally.rebuild import rebuild


def _rebuilt_equals_running(live: Live) -> None:
    store = live.store()
    rebuilt = rebuild(store.election(), ((i, d) for i, _k, d, _h in store.entries()))
    fresh = {k: (t.reporting, list(t.counts)) for k, t in rebuilt.tally.nonzero().items()}
    assert fresh == live.tally_snapshot()


def _totals(live: Live, area: str = "kg", contest: str = "party-list", kind: str = "hand") -> list[int]:
    e = live.election
    t = live.store().totals(e.contest_index[contest], e.area_index[area], kind)
    return [] if t is None else list(t.counts)


def test_conflict_held_then_two_people_accept_it(live: Live) -> None:
    first = live.body("1001", seed=1)
    second = live.body("1001", seed=2)
    with httpx.Client(base_url=live.url, timeout=30) as c:
        assert live.post(c, first).status_code == 201
        before = _totals(live)
        size = live.ledger_size()
        r = live.post(c, second)
        assert r.status_code == 409, r.text
        err = r.json()
        assert err["reason"] == "conflict" and err["existing_index"] == size - 1
        cid = err["conflict_id"]
        # Resending the same conflicting body is the same held conflict, still not applied.
        assert live.post(c, second).json()["conflict_id"] == cid
        assert _totals(live) == before and live.ledger_size() == size
        held = c.get("/api/v1/admin/conflicts", params={"status": "held"},
                     headers=live.auth("abe")).json()["conflicts"]
        assert [h["id"] for h in held] == [cid] and json.loads(held[0]["body"])["sequence"] == 2
        # An auditor may read but not propose.
        r = c.post("/api/v1/admin/proposals", headers=live.auth("abe"),
                   json={"action": "accept-conflict", "conflict_id": cid, "reason": "x"})
        assert r.status_code == 403 and r.json()["reason"] == "role"
        p = c.post("/api/v1/admin/proposals", headers=live.auth("sam"),
                   json={"action": "accept-conflict", "conflict_id": cid,
                         "reason": "the second reading matches the paper protocol"})
        assert p.status_code == 201, p.text
        pid = p.json()["id"]
        # Proposed is not applied.
        assert _totals(live) == before
        # The proposer cannot approve; an operator cannot approve.
        r = c.post(f"/api/v1/admin/proposals/{pid}/approve", headers=live.auth("sam"))
        assert r.status_code == 403 and r.json()["reason"] == "two-person-rule"
        r = c.post(f"/api/v1/admin/proposals/{pid}/approve", headers=live.auth("olga"))
        assert r.status_code == 403 and r.json()["reason"] == "role"
        assert _totals(live) == before
        r = c.post(f"/api/v1/admin/proposals/{pid}/approve", headers=live.auth("sue"),
                   json={"note": "checked against the photo"})
        assert r.status_code == 200, r.text
        decided = r.json()
        assert decided["status"] == "approved" and decided["decided_by"] == "sue"
        # A second approval is refused; the decision stands.
        r = c.post(f"/api/v1/admin/proposals/{pid}/approve", headers=live.auth("sue"))
        assert r.status_code == 409
        after = _totals(live)
        assert after != before
        assert after == list(json.loads(second)["lines"].values())
        # Both protocols stay in the ledger; the device's signature envelope travels along.
        store = live.store()
        entries = {i: (k, d) for i, k, d, _h in store.entries()}
        assert first in entries[size - 1][1]
        kind, data = entries[decided["ledger_index"]]
        assert kind == EntryKind.CORRECTION and data.endswith(second)
        decision = json.loads(data.split(b"\n")[1])
        assert decision["action"] == "supersede" and decision["device"]["key_id"]
        assert store.protocol_count("superseded") == 1 and store.protocol_count() == 1
        _rebuilt_equals_running(live)
        # Replaying the first (now superseded) version is refused and changes nothing.
        r = live.post(c, first)
        assert r.status_code == 409 and r.json()["reason"] == "replay", r.text
        # The accepted version resent is a duplicate of the correction, with one receipt.
        r1 = live.post(c, second)
        r2 = live.post(c, second)
        assert r1.status_code == r2.status_code == 200
        assert r1.json()["receipt"] == r2.json()["receipt"]
        assert r1.json()["receipt"]["ledger_index"] == decided["ledger_index"]
        assert _totals(live) == after
        assert c.get("/api/v1/admin/conflicts", params={"status": "held"},
                     headers=live.auth("abe")).json()["conflicts"] == []


def test_operator_correction_and_annulment(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        for station in ("1003", "2001"):
            assert live.post(c, live.body(station)).status_code == 201
        before = _totals(live)
        corrected = json.loads(live.body("1003", seed=99))
        p = c.post("/api/v1/admin/proposals", headers=live.auth("olga"), json={
            "action": "correction", "station": "1003", "contest": "party-list",
            "count_kind": "hand", "reason": "typo in line valid", "body": corrected})
        assert p.status_code == 201, p.text
        pid = p.json()["id"]
        # A correction that breaks a rule is refused at proposal time with the rule named.
        bad = json.loads(live.body("1003", seed=99))
        bad["lines"]["valid"] += 10_000
        r = c.post("/api/v1/admin/proposals", headers=live.auth("olga"), json={
            "action": "correction", "station": "1003", "contest": "party-list",
            "count_kind": "hand", "reason": "bad", "body": bad})
        assert r.status_code == 422 and r.json()["reason"] == "rules", r.text
        # A supervisor approves the operator's proposal.
        r = c.post(f"/api/v1/admin/proposals/{pid}/approve", headers=live.auth("sam"))
        assert r.status_code == 200, r.text
        mid = _totals(live)
        assert mid != before
        _rebuilt_equals_running(live)
        # The writer learns which protocol counts now: the corrected body is a duplicate of
        # the correction's entry, the original a conflict with it.
        again = live.post(c, json.dumps(corrected).encode())
        assert again.status_code == 200, again.text
        assert again.json()["receipt"]["ledger_index"] == r.json()["ledger_index"]
        assert live.post(c, live.body("1003")).status_code == 409
        # Annul station 2001: proposed by sue, refused for sue, approved by sam.
        p = c.post("/api/v1/admin/proposals", headers=live.auth("sue"), json={
            "action": "annulment", "station": "2001", "contest": "party-list",
            "count_kind": "hand", "reason": "commission decision 12/3"})
        assert p.status_code == 201, p.text
        aid = p.json()["id"]
        assert c.post(f"/api/v1/admin/proposals/{aid}/approve",
                      headers=live.auth("sue")).status_code == 403
        r = c.post(f"/api/v1/admin/proposals/{aid}/approve", headers=live.auth("sam"))
        assert r.status_code == 200, r.text
        after = _totals(live)
        t = live.store().totals(live.election.contest_index["party-list"],
                                live.election.area_index["kg"], "hand")
        assert t is not None and t.reporting == 1
        assert after == list(corrected["lines"].values())
        _rebuilt_equals_running(live)
        # The annulled station's result stays closed: a new protocol is refused.
        r = live.post(c, live.body("2001", seed=5))
        assert r.status_code == 409 and r.json()["reason"] == "annulled", r.text
        assert _totals(live) == after
        # A rejected proposal changes nothing; the proposer may withdraw their own.
        p = c.post("/api/v1/admin/proposals", headers=live.auth("olga"), json={
            "action": "annulment", "station": "1003", "contest": "party-list",
            "count_kind": "hand", "reason": "mistake"}).json()
        r = c.post(f"/api/v1/admin/proposals/{p['id']}/reject", headers=live.auth("olga"),
                   json={"note": "withdrawn"})
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert _totals(live) == after
        listed = c.get("/api/v1/admin/proposals", headers=live.auth("abe")).json()["proposals"]
        assert [x["status"] for x in listed] == ["approved", "approved", "rejected"]
        store = live.store()
        kinds = [k for _i, k, _d, _h in store.entries()]
        assert kinds.count("correction") == 1 and kinds.count("annulment") == 1
        assert store.protocol_count("annulled") == 1


def test_dismissed_conflict_keeps_the_protocol_in_force(live: Live) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        assert live.post(c, live.body("2002", seed=1)).status_code == 201
        before = _totals(live)
        cid = live.post(c, live.body("2002", seed=3)).json()["conflict_id"]
        pid = c.post("/api/v1/admin/proposals", headers=live.auth("olga"), json={
            "action": "dismiss-conflict", "conflict_id": cid,
            "reason": "device resent a training protocol"}).json()["id"]
        r = c.post(f"/api/v1/admin/proposals/{pid}/approve", headers=live.auth("sue"))
        assert r.status_code == 200, r.text
        assert _totals(live) == before
        conflicts = c.get("/api/v1/admin/conflicts", headers=live.auth("abe")).json()["conflicts"]
        assert conflicts[0]["status"] == "dismissed"
        _rebuilt_equals_running(live)
        # No token, a bad token: 401.
        assert c.get("/api/v1/admin/conflicts").status_code == 401
        r = c.get("/api/v1/admin/conflicts", headers={"Authorization": "Bearer trt_nope"})
        assert r.status_code == 401 and r.json()["reason"] == "bad-token"
        assert c.get("/api/v1/admin/whoami", headers=live.auth("sam")).json()["role"] == "supervisor"

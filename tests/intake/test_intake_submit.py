"""The station API against a live server: receipts, idempotency, every bad input."""

from __future__ import annotations

import asyncio
import base64
import json
import socket

import httpx
import pytest
from intake_support import Live

from tallyroom.intake.receipts import verify_receipt
from tallyroom.ledger.checkpoint import verify_checkpoint
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.ledger.merkle import verify_inclusion
from tallyroom.protocol.pending import split_payload
from tallyroom.tally.rebuild import rebuild


def test_submit_gives_a_checkable_receipt_and_the_ledger_keeps_the_signed_bytes(live: Live) -> None:
    body = live.body("1001")
    with httpx.Client() as client:
        first = live.post(client, body)
        assert first.status_code == 201, first.text
        again = live.post(client, body)
    assert again.status_code == 200
    assert first.json()["status"] == "accepted" and again.json()["status"] == "duplicate"
    receipt = first.json()["receipt"]
    assert again.json()["receipt"] == receipt
    cp = verify_receipt(receipt, live.verify_key, live.origin)
    assert cp.size > receipt["ledger_index"]
    # The ledger holds the exact body and the signature; anyone can re-check it.
    store = live.store()
    data = next(d for i, _k, d, _h in store.entries() if i == receipt["ledger_index"])
    kind, payload = decode_entry(data)
    envelope, stored_body = split_payload(payload)
    assert kind == EntryKind.PROTOCOL and stored_body == body
    assert envelope["key_id"] == live.keys["1001"].key_id
    live.keys["1001"].signing_key.verify_key.verify(body, base64.b64decode(envelope["signature"]))
    assert set(envelope) == {"key_id", "signature", "received_at"}


def test_receipt_inclusion_proof_verifies_against_a_later_checkpoint(live: Live) -> None:
    with httpx.Client() as client:
        r = live.post(client, live.body("1002"))
        receipt = r.json()["receipt"]
        for station in ("1003", "2001", "2002"):
            assert live.post(client, live.body(station)).status_code == 201
        cp = client.get(f"{live.url}/api/v1/ledger/checkpoint").json()
        assert cp["size"] > verify_receipt(receipt, live.verify_key, live.origin).size
        later = verify_checkpoint(cp["note"].encode(), live.origin, live.verify_key)
        proof = client.get(
            f"{live.url}/api/v1/ledger/proof/{receipt['ledger_index']}", params={"size": later.size}
        ).json()
        stored = client.get(f"{live.url}/api/v1/receipts/{receipt['ledger_index']}").json()
    assert stored == receipt
    assert proof["root"] == later.root.hex() and proof["checkpoint"] == cp["note"]
    assert verify_inclusion(
        bytes.fromhex(receipt["leaf_hash"]), receipt["ledger_index"], later.size,
        [bytes.fromhex(h) for h in proof["proof"]], later.root,
    )
    # A tampered leaf does not verify.
    assert not verify_inclusion(
        bytes(32), receipt["ledger_index"], later.size,
        [bytes.fromhex(h) for h in proof["proof"]], later.root,
    )


@pytest.mark.slow
def test_hundred_clients_ten_identical_sends_make_one_entry_and_one_receipt(live: Live) -> None:
    body = live.body("2001", seed=7)
    headers = {**live.keys["2001"].headers(body), "Content-Type": "application/json"}
    size = live.ledger_size()

    async def client_sends() -> list[tuple[int, str]]:
        out = []
        async with httpx.AsyncClient(timeout=60) as client:
            for _ in range(10):
                r = await client.post(f"{live.url}/api/v1/protocols", content=body, headers=headers)
                out.append((r.status_code, json.dumps(r.json()["receipt"], sort_keys=True)))
        return out

    async def run() -> list[tuple[int, str]]:
        results = await asyncio.gather(*(client_sends() for _ in range(100)))
        return [x for r in results for x in r]

    answers = asyncio.run(run())
    assert len(answers) == 1000
    statuses = [s for s, _ in answers]
    assert statuses.count(201) == 1 and statuses.count(200) == 999
    assert len({rc for _, rc in answers}) == 1
    store = live.store()
    kinds = [k for i, k, _d, _h in store.entries(size)]
    assert kinds.count("protocol") == 1
    assert store.protocol_count() == 1
    summary = httpx.get(f"{live.url}/api/v1/intake/stations/2001").json()
    assert summary["accepted"] == 1 and summary["duplicate"] == 999


def _sign_raw(live: Live, station: str, body: bytes) -> dict[str, str]:
    return {**live.keys[station].headers(body), "Content-Type": "application/json"}


def _with_lines(live: Live, station: str, **changes: object) -> bytes:
    obj = json.loads(live.body(station))
    obj["lines"].update(changes)
    return json.dumps(obj).encode()


def _replace(body: bytes, old: bytes, new: bytes) -> bytes:
    assert old in body
    return body.replace(old, new, 1)


def test_every_bad_input_gets_its_status_and_changes_nothing(live: Live) -> None:
    # One protocol counted first, so "unchanged" is about a non-empty tally.
    with httpx.Client(timeout=30) as client:
        assert live.post(client, live.body("1001")).status_code == 201
    e = live.election
    good = live.body("1002")
    valid = json.loads(good)["lines"]["valid"]
    other_key = live.keys["1003"]
    # Revoke station 2003's key through the admin API (an administrator's action).
    with httpx.Client(timeout=30) as client:
        r = client.post(
            f"{live.url}/api/v1/admin/keys/{live.keys['2003'].key_id}/revoke",
            json={"reason": "device lost"}, headers=live.auth("ada"),
        )
        assert r.status_code == 200, r.text
    ledger_before = live.ledger_size()
    tally_before = live.tally_snapshot()
    forged = bytearray(base64.b64decode(live.keys["1002"].sign(good)))
    forged[0] ^= 1
    big = b'{"station":"1002","pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    cases: list[tuple[str, bytes, dict[str, str], int, str, str | None]] = [
        ("forged signature", good,
         {**_sign_raw(live, "1002", good),
          "X-Tallyroom-Signature": base64.b64encode(bytes(forged)).decode()},
         401, "forged-signature", "X-Tallyroom-Signature"),
        ("signature of other bytes", good, _sign_raw(live, "1002", good + b" "),
         401, "forged-signature", "X-Tallyroom-Signature"),
        ("another station's key", good,
         {**other_key.headers(good), "Content-Type": "application/json"},
         403, "wrong-station", "station"),
        ("revoked key", live.body("2003"), _sign_raw(live, "2003", live.body("2003")),
         403, "revoked-key", "X-Tallyroom-Key-Id"),
        ("no signature", good, {"Content-Type": "application/json"},
         401, "missing-signature", "X-Tallyroom-Key-Id"),
        ("malformed signature", good,
         {**_sign_raw(live, "1002", good), "X-Tallyroom-Signature": "not base64!"},
         401, "malformed-signature", "X-Tallyroom-Signature"),
        ("unknown key", good,
         {**_sign_raw(live, "1002", good), "X-Tallyroom-Key-Id": "ed25519:0000000000000000"},
         401, "unknown-key", "X-Tallyroom-Key-Id"),
    ]

    def signed(name: str, body: bytes, status: int, reason: str, field: str | None,
               station: str = "1002") -> None:
        cases.append((name, body, _sign_raw(live, station, body), status, reason, field))

    signed("old election hash", _replace(good, e.sha256.encode(), b"0" * 64), 403,
           "election-mismatch", "election")
    signed("negative number", _with_lines(live, "1002", invalid=-1), 422, "lines", "lines.invalid")
    signed("20-digit number", _with_lines(live, "1002", valid=12345678901234567890), 422, "lines",
           "lines.valid")
    signed("NaN", _replace(good, f'"valid": {valid}'.encode(), b'"valid": NaN'), 400,
           "not-a-number", "body")
    signed("string for a number", _with_lines(live, "1002", valid=str(valid)), 400, "wrong-type",
           "lines.valid")
    signed("decimal number", _replace(good, f'"valid": {valid}'.encode(),
                                      f'"valid": {valid}.0'.encode()),
           400, "wrong-type", "lines.valid")
    signed("duplicate JSON key", _replace(good, b'"station": "1002"',
                                          b'"station": "1002", "station": "1002"'),
           400, "duplicate-key", "station")
    signed("invalid UTF-8", _replace(good, b'"station": "1002"', b'"station": "1002\xff"'), 400,
           "invalid-utf8", "body")
    signed("not JSON", b"{\"station\": ", 400, "malformed-json", "body")
    signed("not an object", b"[1, 2]", 400, "wrong-type", "body")
    signed("unknown field", _replace(good, b'"station": "1002"', b'"station": "1002", "x": 1'),
           400, "unknown-field", "x")
    signed("missing lines", json.dumps({k: v for k, v in json.loads(good).items()
                                        if k != "lines"}).encode(),
           400, "missing-field", "lines")
    signed("unknown station", _replace(good, b'"station": "1002"', b'"station": "9999"'), 422,
           "unknown-station", "station")
    signed("unknown contest", _replace(good, b'"contest": "party-list"', b'"contest": "senate"'),
           422, "unknown-contest", "contest")
    signed("station outside the contest", live.body("1002").replace(
        b'"contest": "party-list"', b'"contest": "smd-2-seat"'), 422, "station-not-in-contest",
        "station")
    signed("rule violated", _with_lines(live, "1002", valid=valid + 5000), 422, "rules", "lines")
    cases.append(("10 MB body", big, _sign_raw(live, "1002", b"x"), 413, "too-large", "body"))

    with httpx.Client(timeout=60) as client:
        for name, body, headers, status, reason, field in cases:
            r = client.post(f"{live.url}/api/v1/protocols", content=body, headers=headers)
            assert r.status_code == status, (name, r.status_code, r.text[:500])
            err = r.json()
            assert err["reason"] == reason, (name, err)
            assert err["field"] == field, (name, err)
            assert err["error"] and err["rules"], (name, err)
    # The rule violation names the rule and the values involved.
    with httpx.Client(timeout=30) as client:
        body = _with_lines(live, "1002", valid=valid + 5000)
        err = live.post(client, body).json()
        rules = {v["rule"]: v for v in err["rules"]}
        assert any("valid" in v.get("values", {}) for v in rules.values()), err
        # Unknown and missing lines are each named.
        obj = json.loads(good)
        obj["lines"]["bogus"] = 1
        obj["lines"]["other"] = 2
        del obj["lines"]["invalid"]
        err = live.post(client, json.dumps(obj).encode()).json()
        assert {v.get("field") for v in err["rules"]} >= {"lines.bogus", "lines.other",
                                                          "lines.invalid"}, err
    assert live.ledger_size() == ledger_before
    assert live.tally_snapshot() == tally_before
    # Nothing was written but one journal line per attempt; the station aggregate shows them.
    summary = httpx.get(f"{live.url}/api/v1/intake/stations/1002").json()
    assert summary["reasons"]["forged-signature"] == 2
    assert summary["accepted"] == 0 and summary["rejected"] >= 15
    store = live.store()
    rebuilt = rebuild(store.election(), ((i, d) for i, _k, d, _h in store.entries()))
    assert {k: (t.reporting, list(t.counts)) for k, t in rebuilt.tally.nonzero().items()} == tally_before


def test_too_large_is_refused_from_content_length_before_reading(live: Live) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/protocols HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_chunked_body_over_the_limit_is_counted_not_held(live: Live) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 4096

    r = httpx.post(f"{live.url}/api/v1/protocols", content=chunks(),
                   headers=_sign_raw(live, "1001", b"x"), timeout=30)
    assert r.status_code == 413 and r.json()["reason"] == "too-large"

"""`tallyroom keys`, `submit` and `admin` from the command line, against a live server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from intake_support import BIN, Live, prepare_store, start_server

from tallyroom.intake.journal import summarise
from tallyroom.intake.receipts import verify_receipt
from tallyroom.intake.signature import load_key_file
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.store import intake as db


def _run(live: Live, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TALLYROOM_COMMISSION_KEY": str(live.key_file)}
    p = subprocess.run([str(BIN), "--db", live.db, *args], capture_output=True, text=True,
                       env=env, cwd=live.workdir, timeout=120)
    if ok:
        assert p.returncode == 0, (args, p.stdout, p.stderr)
    return p


@pytest.mark.slow
def test_keys_submit_rotate_revoke_and_admin_cli(live: Live, tmp_path: Path) -> None:
    proto = tmp_path / "p.json"
    proto.write_bytes(live.body("1002"))
    out = _run(live, "submit", "--key", str(live.workdir / "keys" / "1002.key"), "--url", live.url,
               str(proto))
    receipt = json.loads(out.stdout)
    verify_receipt(receipt, live.verify_key, live.origin)
    again = _run(live, "submit", "--key", str(live.workdir / "keys" / "1002.key"), "--url",
                 live.url, str(proto))
    assert json.loads(again.stdout) == receipt
    # Rotation: new key file, old key revoked, both in one key_change ledger entry.
    _run(live, "keys", "rotate", "--station", "1002", "--out", str(tmp_path / "new"),
         "--reason", "scanner replaced")
    new_key = load_key_file(tmp_path / "new" / "1002.key")
    old_key = live.keys["1002"]
    proto2 = tmp_path / "p2.json"
    proto2.write_bytes(live.body("1002", kind="machine"))
    refused = _run(live, "submit", "--key", str(live.workdir / "keys" / "1002.key"), "--url",
                   live.url, str(proto2), ok=False)
    assert refused.returncode == 1 and "revoked" in refused.stderr
    _run(live, "submit", "--key", str(tmp_path / "new" / "1002.key"), "--url", live.url,
         str(proto2))
    store = live.store()
    changes = [json.loads(decode_entry(d)[1]) for _i, k, d, _h in store.entries()
               if k == EntryKind.KEY_CHANGE]
    assert changes[0]["action"] == "register" and len(changes[0]["keys"]) == 6
    assert changes[-1]["action"] == "rotate" and changes[-1]["revoked"] == [old_key.key_id]
    assert changes[-1]["keys"][0]["key_id"] == new_key.key_id
    # Revocation by id.
    _run(live, "keys", "revoke", new_key.key_id, "--reason", "stolen")
    assert db.get_key(store, new_key.key_id).status == "revoked"  # type: ignore[union-attr]
    listed = json.loads(_run(live, "keys", "list", "--station", "1002", "--format", "json").stdout)
    assert {k["status"] for k in listed} == {"revoked"}
    assert "secret" not in json.dumps(listed)
    # The journal, per station, from the CLI.
    text = _run(live, "admin", "stations", "--station", "1002").stdout
    assert "station 1002: 2 accepted, 1 duplicate" in text and "1 revoked key" in text
    assert summarise(db.journal_counts(store, "1002"))[0].reasons == {"revoked-key": 1}
    # Tokens: shown once, stored hashed; the two-person rule holds on the CLI too.
    tok = _run(live, "admin", "token", "create", "--name", "zoe", "--role", "supervisor").stdout.strip()
    assert tok.startswith("trt_")
    rows = store._execute("SELECT token_hash FROM api_tokens").fetchall()
    store._end_read()
    assert all(tok not in str(r[0]) for r in rows)
    p = _run(live, "admin", "propose", "--token", tok, "--action", "annulment", "--station",
             "1002", "--contest", "party-list", "--count-kind", "hand", "--reason", "test")
    assert "proposal 1 recorded" in p.stdout
    self_ok = _run(live, "admin", "approve", "1", "--token", tok, ok=False)
    assert self_ok.returncode == 2 and "different supervisor" in self_ok.stderr
    _run(live, "admin", "approve", "1", "--token", live.tokens["sue"])
    assert _run(live, "rebuild", "--check").returncode == 0
    assert _run(live, "ledger", "verify").returncode == 0
    # No secret in the server's log.
    log = "".join(p.read_text() for p in live.workdir.glob("serve-*.log"))
    for secret in (tok, *live.tokens.values()):
        assert secret not in log


@pytest.mark.slow
def test_two_workers_on_one_store_count_each_protocol_once(store_url: str, tmp_path: Path) -> None:
    # Two worker processes under Granian (the other tests use the default, uvicorn).
    live = start_server(prepare_store(store_url, tmp_path), workers=2, server="granian")
    try:
        bodies = []
        e = live.election
        for c in e.contests:
            for s in c.stations:
                for kind in ("machine", "hand", "recount"):
                    bodies.append(live.body(e.stations[s].id, c.id, kind))
        import asyncio

        async def send(body: bytes) -> list[int]:
            station = json.loads(body)["station"]
            h = {**live.keys[station].headers(body), "Content-Type": "application/json"}
            out = []
            async with httpx.AsyncClient(timeout=60) as client:
                for _ in range(4):
                    r = await client.post(f"{live.url}/api/v1/protocols", content=body, headers=h)
                    out.append(r.status_code)
            return out

        async def run() -> list[list[int]]:
            return await asyncio.gather(*(send(b) for b in bodies * 2))

        results = asyncio.run(run())
        flat = [s for r in results for s in r]
        assert flat.count(201) == len(bodies) and flat.count(200) == 7 * len(bodies)
        store = live.store()
        assert store.protocol_count() == len(bodies)
        assert _run(live, "rebuild", "--check").returncode == 0
        assert _run(live, "ledger", "verify").returncode == 0
    finally:
        live.stop()

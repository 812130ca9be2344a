"""The writer's batch on its own (no server): one transaction, recorded whole or not at all."""

from __future__ import annotations

import random

import msgspec
import nacl.signing
import pytest

from support import kyrgyz_lines
from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.load import load_definition
from tallyroom.intake.receipts import ReceiptSigner, verify_receipt
from tallyroom.protocol.model import ProtocolBody, encode_body
from tallyroom.protocol.pending import prepare
from tallyroom.store import intake as db
from tallyroom.store.sql import Store, open_store, utcnow
from tallyroom.web.commit import Attempt, BatchWriter, Submission

ORIGIN = "tallyroom/test"


def _submission(election: CompiledElection, station: str, seed: int) -> Submission:
    c = election.contest("party-list")
    st = election.stations[election.station_index[station]]
    lines = kyrgyz_lines(list(c.choice_ids), st.registered, random.Random(seed))
    body = ProtocolBody(election=election.sha256, station=station, contest="party-list",
                        count_kind="hand", lines=lines, sequence=seed)  # type: ignore[arg-type]
    raw = encode_body(body)
    at = utcnow()
    p = prepare(election, body, raw, {"key_id": "ed25519:0000000000000001", "received_at": at})
    return Submission(at, "ed25519:0000000000000001", station, "party-list", "hand", p.contest,
                      p.station, list(p.counts), list(p.warnings), p.payload, p.body_sha256,
                      p.entry, p.leaf)


def _counts(store: Store) -> tuple[int, int, int]:
    journal = sum(n for *_x, n in db.journal_counts(store))
    receipts = len(db.receipts_for(store, range(store.head().size)))
    return store.head().size, receipts, journal


def _receipts_fail(store: Store, *_a: object) -> dict[int, str]:
    raise RuntimeError("the disk is full")


def _database_refuses(store: Store, *_a: object) -> None:
    # A statement the server rejects: on PostgreSQL it fails inside the pipeline, after the
    # append was sent, and surfaces only at the next result read or the commit.
    store._execute("INSERT INTO no_such_table VALUES (1)")


@pytest.mark.parametrize(
    ("target", "failure"),
    [("put_receipts_in_tx", _receipts_fail), ("journal_in_tx", _database_refuses)],
)
def test_a_batch_that_fails_after_the_append_records_nothing_and_a_resend_is_new(
    store_url: str, small_definition: bytes, monkeypatch: pytest.MonkeyPatch, target: str,
    failure: object,
) -> None:
    store = open_store(store_url)
    store.initialize(load_definition(small_definition), b"\x01" * 32)
    election = store.election()
    key = nacl.signing.SigningKey.generate()
    writer = BatchWriter(store_url, ReceiptSigner(ORIGIN, ORIGIN, key))
    sub = _submission(election, "1001", 1)
    refused = Attempt((utcnow(), "1001", None, "rejected", "forged-signature", 401, "x", None, None))

    monkeypatch.setattr(db, target, failure)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        writer.commit([refused, sub])
    writer.reset()
    # Neither the entry, nor its protocol, nor a receipt, nor a journal line was kept.
    assert _counts(store) == (1, 0, 0) and store.protocol_count() == 0
    monkeypatch.undo()

    answers, _revoked = writer.commit([refused, sub])
    assert [a.status for a in answers] == [204, 201]
    first = msgspec.json.decode(answers[1].body)
    assert first["status"] == "accepted" and first["receipt"]["ledger_index"] == 1
    verify_receipt(first["receipt"], key.verify_key, ORIGIN)
    (again,), _revoked = writer.commit([sub])
    assert again.status == 200
    assert msgspec.json.decode(again.body)["receipt"] == first["receipt"]
    assert again.body.split(b'"receipt":', 1)[1] == answers[1].body.split(b'"receipt":', 1)[1]
    assert _counts(store) == (2, 1, 3)
    writer.close()
    store.close()

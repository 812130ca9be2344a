"""The pure parts of intake, without a server: strict JSON, receipts, journal shapes."""

from __future__ import annotations

import nacl.signing
import pytest

from tallyroom.intake.errors import Rejection
from tallyroom.intake.images import sniff
from tallyroom.intake.journal import summarise
from tallyroom.intake.receipts import ReceiptError, ReceiptSigner, verify_receipt
from tallyroom.intake.signature import decode_signature, generate_key, key_id_for
from tallyroom.intake.strict import parse_body
from tallyroom.intake.tokens import Permission, allowed, new_token, token_hash
from tallyroom.ledger.checkpoint import Checkpoint, sign_checkpoint
from tallyroom.ledger.merkle import leaf_hash

BASE = b'{"election":"e","station":"1","contest":"c","count_kind":"hand","lines":{"a":1}'


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (BASE + b',"lines":{"a":2}}', "duplicate-key", "lines"),
        (b'{"election":"e","station":"1","contest":"c","count_kind":"hand","lines":{"a":1,"a":1}}',
         "duplicate-key", "a"),
        (BASE.replace(b'"a":1', b'"a":Infinity') + b"}", "not-a-number", "body"),
        (BASE.replace(b'"a":1', b'"a":1e3') + b"}", "wrong-type", "lines.a"),
        (BASE.replace(b'"a":1', b'"a":true') + b"}", "wrong-type", "lines.a"),
        (BASE.replace(b'"a":1', b'"a":' + b"9" * 40) + b"}", "wrong-type", "lines.a"),
        (BASE.replace(b'"1"', b'"\\ud800"') + b"}", "invalid-unicode", "station"),
        (BASE.replace(b'"hand"', b'"guess"') + b"}", "wrong-value", "count_kind"),
        (BASE + b',"sequence":-1}', "wrong-value", "sequence"),
        (BASE + b',"image_sha256":"XYZ"}', "wrong-value", "image_sha256"),
        (BASE + b',"source":{}}', "unknown-field", "source"),
        (b"\xef\xbb\xbf" + BASE + b"}", "malformed-json", "body"),
        (BASE + b"} trailing", "malformed-json", "body"),
        (b"[" * 100_000, "malformed-json", "body"),
    ],
)
def test_strict_parser_names_what_is_wrong(raw: bytes, reason: str, field: str) -> None:
    with pytest.raises(Rejection) as err:
        parse_body(raw)
    assert (err.value.status, err.value.reason, err.value.field) == (400, reason, field)


def test_strict_parser_accepts_a_plain_body_and_keeps_big_counts_for_the_range_check() -> None:
    body = parse_body(BASE.replace(b'"a":1', b'"a":12345678901234567890') + b"}")
    assert body.lines == {"a": 12345678901234567890}


def test_receipt_signature_and_checkpoint_are_checked() -> None:
    key = nacl.signing.SigningKey.generate()
    signer = ReceiptSigner("tallyroom/x", "tallyroom/x", key)
    entry = b"tallyroom-entry/1 protocol\n{}\n{}"
    cp = Checkpoint("tallyroom/x", 5, leaf_hash(entry), 1)
    note = sign_checkpoint(cp, "tallyroom/x", key)
    receipt = signer.make(4, entry, "ab" * 32, cp, note)
    assert verify_receipt(receipt, key.verify_key, "tallyroom/x").size == 5
    with pytest.raises(ReceiptError):
        verify_receipt({**receipt, "ledger_index": 3}, key.verify_key, "tallyroom/x")
    with pytest.raises(ReceiptError):
        verify_receipt({**receipt, "ledger_index": 5}, key.verify_key, "tallyroom/x")
    with pytest.raises(ReceiptError):
        verify_receipt(receipt, nacl.signing.SigningKey.generate().verify_key, "tallyroom/x")
    with pytest.raises(ReceiptError):
        signer.make(5, entry, "ab" * 32, cp, note)


def test_keys_tokens_images_and_journal_summaries() -> None:
    k = generate_key("1001")
    assert k.key_id == key_id_for(k.public_key) and k.key_id.startswith("ed25519:")
    assert "secret" not in repr(k) and decode_signature(k.sign(b"x")) is not None
    assert decode_signature("AAAA") is None and decode_signature("!!") is None
    plain, hashed = new_token()
    assert plain.startswith("trt_") and token_hash(plain) == hashed and plain not in hashed
    assert allowed("supervisor", Permission.DECIDE) and not allowed("operator", Permission.DECIDE)
    assert not allowed("administrator", Permission.DECIDE) and not allowed("nobody", Permission.READ)
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg" and sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff(b"GIF89a") is None
    rows = [("1234", "rejected", "forged-signature", 5), ("1234", "accepted", None, 1),
            (None, "rejected", "unknown-key", 2)]
    by = {s.station: s for s in summarise(rows)}
    assert by["1234"].sentence().startswith("station 1234: 1 accepted")
    assert "5 forged signature" in by["1234"].sentence()
    assert by["(unknown)"].rejected == 2

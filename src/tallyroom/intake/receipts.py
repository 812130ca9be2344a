"""Receipts: the commission's signed promise that a protocol is in the ledger.

A receipt is JSON::

    {"ledger_index": 7, "leaf_hash": "<hex>", "entry_hash": "<hex>",
     "body_sha256": "<hex>", "checkpoint": "<C2SP signed checkpoint note>",
     "key_name": "<commission key name>", "signature": "<base64 Ed25519>"}

``leaf_hash`` is the RFC 6962 leaf hash SHA-256(0x00 ‖ entry), ``entry_hash`` is SHA-256 of
the stored entry bytes, ``body_sha256`` is SHA-256 of the exact body the device signed. The
checkpoint is a signed tree head whose size is larger than ``ledger_index``, so the entry is
inside it; ``signature`` is the commission's Ed25519 signature over this statement (UTF-8,
each line ending in a newline)::

    tallyroom-receipt/1
    <origin>
    ledger_index <n>
    leaf_hash <hex>
    entry_hash <hex>
    body_sha256 <hex>
    checkpoint_size <n>

A resend of the same protocol gets the very same receipt (it is stored). To check later that
the entry is still in the log, ask for an inclusion proof against any later checkpoint
(``GET /api/v1/ledger/proof/{ledger_index}?size=N``) and check it with
:func:`tallyroom.ledger.merkle.verify_inclusion`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing

from tallyroom.ledger.checkpoint import Checkpoint, CheckpointError, verify_checkpoint
from tallyroom.ledger.merkle import leaf_hash

STATEMENT_HEADER = "tallyroom-receipt/1"


class ReceiptError(ValueError):
    """A receipt that does not check out."""


def statement(
    origin: str,
    ledger_index: int,
    leaf: str,
    entry_hash: str,
    body_sha256: str,
    checkpoint_size: int,
) -> bytes:
    return (
        f"{STATEMENT_HEADER}\n{origin}\nledger_index {ledger_index}\nleaf_hash {leaf}\n"
        f"entry_hash {entry_hash}\nbody_sha256 {body_sha256}\ncheckpoint_size {checkpoint_size}\n"
    ).encode()


@dataclass(frozen=True)
class ReceiptSigner:
    """Signs receipts with the commission key for one log (origin)."""

    origin: str
    key_name: str
    signing_key: nacl.signing.SigningKey

    def make(
        self,
        ledger_index: int,
        entry: bytes,
        body_sha256: str,
        checkpoint: Checkpoint,
        note: bytes,
        leaf_of_entry: bytes | None = None,
    ) -> dict[str, Any]:
        """`leaf_of_entry`, when the caller has it already, is the entry's RFC 6962 leaf hash."""
        if checkpoint.size <= ledger_index:
            raise ReceiptError(
                f"checkpoint of size {checkpoint.size} does not cover entry {ledger_index}"
            )
        leaf = (leaf_of_entry or leaf_hash(entry)).hex()
        entry_hash = hashlib.sha256(entry).hexdigest()
        text = statement(self.origin, ledger_index, leaf, entry_hash, body_sha256, checkpoint.size)
        return {
            "ledger_index": ledger_index,
            "leaf_hash": leaf,
            "entry_hash": entry_hash,
            "body_sha256": body_sha256,
            "checkpoint": note.decode(),
            "key_name": self.key_name,
            "signature": base64.b64encode(self.signing_key.sign(text).signature).decode(),
        }

    def __repr__(self) -> str:  # never show the key
        return f"ReceiptSigner(origin={self.origin!r}, key_name={self.key_name!r})"


def verify_receipt(
    receipt: dict[str, Any], verify_key: nacl.signing.VerifyKey, origin: str
) -> Checkpoint:
    """Check a receipt's signature and its checkpoint; return the checkpoint.

    Raises :class:`ReceiptError` naming what is wrong.
    """
    try:
        idx = int(receipt["ledger_index"])
        note = str(receipt["checkpoint"]).encode()
        key_name = str(receipt["key_name"])
        sig = base64.b64decode(str(receipt["signature"]), validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ReceiptError(f"receipt is missing or mangles a field: {exc}") from None
    try:
        cp = verify_checkpoint(note, key_name, verify_key, origin=origin)
    except CheckpointError as exc:
        raise ReceiptError(f"receipt checkpoint: {exc}") from None
    if cp.size <= idx:
        raise ReceiptError(f"checkpoint of size {cp.size} does not cover entry {idx}")
    text = statement(
        origin,
        idx,
        str(receipt["leaf_hash"]),
        str(receipt["entry_hash"]),
        str(receipt["body_sha256"]),
        cp.size,
    )
    try:
        verify_key.verify(text, sig)
    except nacl.exceptions.BadSignatureError:
        raise ReceiptError("receipt signature does not match its fields") from None
    return cp

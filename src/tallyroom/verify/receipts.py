"""Receipts kept by stations and observers: is each one's entry in the published ledger?

A receipt is what the intake server returned (docs/intake-api.md): ``ledger_index``,
``leaf_hash``, ``entry_hash``, ``body_sha256``, ``checkpoint`` (a signed checkpoint covering the
entry), ``key_name`` and ``signature`` (the commission's signature over the receipt
statement). For each receipt:

1. the commission's signature over the statement, and over the receipt's checkpoint, hold;
2. the published entry at ``ledger_index`` has that leaf hash and entry hash (else the entry
   was replaced or the receipt is not this log's);
3. an RFC 9162 inclusion proof of the leaf in the snapshot's tree checks against the snapshot's
   signed root; and the receipt's checkpoint is consistent with the published tree (its root is
   the root of the published prefix of its size).

A receipt whose entry lies beyond the snapshot is reported as not yet published.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from tallyroom.ledger.checkpoint import Checkpoint, CheckpointError, verify_checkpoint
from tallyroom.ledger.merkle import ProofError, check_inclusion, inclusion_proof
from tallyroom.verify.bulletin import CommissionKey, Ledger
from tallyroom.verify.ledger import bad_signatures
from tallyroom.verify.report import Report

STATEMENT = "tallyroom-receipt/1"


class ReceiptsFileError(Exception):
    """The receipts file cannot be read (exit code 2)."""


def read_receipts(path: Path) -> list[dict[str, Any]]:
    """A JSON list of receipts, one JSON object, or JSON lines; intake responses
    (``{"status": …, "receipt": {…}}``) are accepted as they are."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReceiptsFileError(f"{path}: cannot read: {exc}") from None
    items: list[Any]
    stripped = text.strip()
    if not stripped:
        return []
    try:
        doc = json.loads(stripped)
        items = doc if isinstance(doc, list) else [doc]
    except ValueError:
        items = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise ReceiptsFileError(f"{path}: line {n} is not JSON: {exc}") from None
    out = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("receipt"), dict):
            item = item["receipt"]
        if not isinstance(item, dict):
            raise ReceiptsFileError(f"{path}: a receipt is not a JSON object: {str(item)[:80]}")
        out.append(item)
    return out


def statement(origin: str, r: dict[str, Any], checkpoint_size: int) -> bytes:
    return (
        f"{STATEMENT}\n{origin}\nledger_index {r['ledger_index']}\nleaf_hash {r['leaf_hash']}\n"
        f"entry_hash {r['entry_hash']}\nbody_sha256 {r['body_sha256']}\ncheckpoint_size {checkpoint_size}\n"
    ).encode()


def check_receipts(
    receipts: list[dict[str, Any]],
    ledger: Ledger,
    key: CommissionKey,
    root: bytes,
    report: Report,
    file: str,
    workers: int = 1,
) -> int:
    """Check every receipt against the published ledger; return how many are included.

    A night's receipts share a few thousand checkpoints (one per intake batch), so each
    distinct checkpoint is verified once; the commission's signatures over the receipts, one
    each, are checked first and together, in ``workers`` processes (RFC 8032 Ed25519)."""
    out = report.tally
    included = 0
    size = ledger.size
    checkpoints: dict[bytes, Checkpoint | str] = {}
    roots: dict[int, bytes] = {}

    def checkpoint(note: bytes) -> Checkpoint | str:
        got = checkpoints.get(note)
        if got is None:
            try:
                got = verify_checkpoint(note, key.name, key.key)
            except CheckpointError as exc:
                got = str(exc)
            checkpoints[note] = got
        return got

    #: Per receipt: what the later checks need, or (where, why) it already failed.
    parsed: list[tuple[int, str, Checkpoint] | tuple[str, str]] = []
    jobs: list[tuple[int, bytes, bytes, bytes]] = []
    public = key.key.encode()
    for n, r in enumerate(receipts, start=1):
        try:
            idx = int(r["ledger_index"])
            leaf = str(r["leaf_hash"])
            note = str(r["checkpoint"]).encode()
        except (KeyError, TypeError, ValueError) as exc:
            parsed.append((f"receipt {n}", f"lacks ledger_index, leaf_hash or checkpoint: {exc}"))
            continue
        where = f"receipt {n} (ledger entry {idx})"
        cp = checkpoint(note)
        if isinstance(cp, str):
            parsed.append((where, f"its checkpoint is not signed by the commission key {key.name}: {cp}"))
            continue
        if cp.size <= idx:
            parsed.append((where, f"its checkpoint (size {cp.size:,}) does not cover entry {idx:,}"))
            continue
        parsed.append((idx, leaf, cp))
        sig = r.get("signature")
        if sig is not None:
            try:
                jobs.append(
                    (n, public, statement(cp.origin, r, cp.size), base64.b64decode(str(sig), validate=True))
                )
            except (binascii.Error, ValueError, KeyError):
                jobs.append((n, public, b"", b""))  # fails: an empty signature never holds
    forged = bad_signatures(jobs, workers)
    for n, item in enumerate(parsed, start=1):
        if len(item) == 2:
            out.fail("receipt", file, *item)
            continue
        idx, leaf, cp = item
        where = f"receipt {n} (ledger entry {idx})"
        if n in forged:
            out.fail(
                "receipt",
                file,
                where,
                "the commission's signature over the receipt does not hold: "
                "the receipt was altered or was not issued by this commission",
            )
            continue
        if idx >= size:
            report.warnings.append(
                f"{file} {where}: not yet in the published ledger (this snapshot covers entries "
                f"0–{size - 1:,}); check again against a later snapshot"
            )
            continue
        r = receipts[n - 1]
        data = ledger.data[idx]
        out.numbers += 2
        if ledger.leaves[idx].hex() != leaf:
            out.add(
                "receipt-missing",
                file,
                f"{where} › leaf_hash",
                leaf,
                ledger.leaves[idx].hex(),
                f"the leaf hash of the published entry {idx:,} ({ledger.locate(idx)}): the entry the "
                "receipt was issued for is not in the published ledger",
            )
            continue
        if "entry_hash" in r and str(r["entry_hash"]) != hashlib.sha256(data).hexdigest():
            out.add(
                "receipt",
                file,
                f"{where} › entry_hash",
                r["entry_hash"],
                hashlib.sha256(data).hexdigest(),
                "SHA-256 of the published entry's bytes",
            )
            continue
        if cp.size <= size:
            at = roots.get(cp.size)
            if at is None:
                at = roots[cp.size] = ledger.root(cp.size)
            if at != cp.root:
                out.add(
                    "receipt",
                    file,
                    f"{where} › checkpoint root (size {cp.size:,})",
                    cp.root.hex(),
                    at.hex(),
                    "the root of the published ledger at the receipt's checkpoint size: the log was "
                    "rewritten after the receipt was issued",
                )
                continue
        try:
            proof = inclusion_proof(idx, size, ledger.nodes)
            check_inclusion(ledger.leaves[idx], idx, size, proof, root)
        except ProofError as exc:
            out.fail("receipt-missing", file, where, f"the inclusion proof does not hold: {exc}")
            continue
        out.numbers += len(proof)
        included += 1
    return included

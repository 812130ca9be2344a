"""One device submission, from the raw request to a checked protocol (no I/O here).

Checks run in a fixed order so each bad input gets one documented answer:

1. signature headers present and well-formed (401 ``missing-signature`` /
   ``malformed-signature``); the key id is registered (401 ``unknown-key``);
2. the Ed25519 signature over the exact body bytes holds (401 ``forged-signature``);
3. the key is not revoked (403 ``revoked-key``);
4. the body is strict JSON of the right shape (400, see :mod:`tallyroom.intake.strict`);
5. the election hash is this election's (403 ``election-mismatch``), the station exists
   (422 ``unknown-station``) and is the key's station (403 ``wrong-station``), the contest
   exists and the station votes in it (422 ``unknown-contest`` / ``station-not-in-contest``);
6. every line is present, whole and in range, and every error rule holds (422 ``lines`` /
   ``rules``, listing each problem with its values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.signing

from tallyroom.definition.compiled import CompiledElection
from tallyroom.intake.errors import Rejection, clip
from tallyroom.intake.signature import KEY_ID_HEADER, SIGNATURE_HEADER, decode_signature, verify
from tallyroom.intake.strict import parse_body
from tallyroom.protocol.check import ProtocolRejected
from tallyroom.protocol.model import ProtocolBody
from tallyroom.protocol.pending import PendingProtocol, UnknownReference, prepare


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    key_id: str
    station: str
    verify_key: nacl.signing.VerifyKey
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Checked:
    """A submission that passed every check, ready for the ledger."""

    pending: PendingProtocol
    body: ProtocolBody
    key_id: str


def signature_headers(key_id: str | None, signature: str | None) -> tuple[str, bytes]:
    """The key id and raw signature, or a 401 rejection."""
    if not key_id or not signature:
        missing = KEY_ID_HEADER if not key_id else SIGNATURE_HEADER
        raise Rejection(401, "missing-signature", f"header {missing} is required", missing)
    if len(key_id) > 64:
        raise Rejection(401, "unknown-key", "key id is longer than 64 characters", KEY_ID_HEADER)
    raw = decode_signature(signature)
    if raw is None:
        raise Rejection(
            401,
            "malformed-signature",
            f"{SIGNATURE_HEADER} must be the base64 of a 64-byte Ed25519 signature",
            SIGNATURE_HEADER,
        )
    return key_id, raw


def authenticate(key: RegisteredKey | None, key_id: str, signature: bytes, raw: bytes) -> RegisteredKey:
    if key is None:
        raise Rejection(
            401, "unknown-key", f'key "{clip(key_id)}" is not registered', KEY_ID_HEADER
        )
    if not verify(key.verify_key, raw, signature):
        raise Rejection(
            401,
            "forged-signature",
            f'signature does not match the body for key "{key_id}"',
            SIGNATURE_HEADER,
        )
    if key.revoked:
        raise Rejection(403, "revoked-key", f'key "{key_id}" has been revoked', KEY_ID_HEADER)
    return key


def check_body(
    election: CompiledElection, key: RegisteredKey, raw: bytes, envelope: dict[str, Any]
) -> Checked:
    """Steps 4–6: parse, match the key's station, check against the definition and rules."""
    body = parse_body(raw)
    if body.election != election.sha256:
        raise Rejection(
            403,
            "election-mismatch",
            f"protocol is for election definition {clip(body.election, 20)}…, this server "
            f"counts {election.sha256[:16]}…",
            "election",
        )
    if body.station not in election.station_index:
        raise Rejection(422, "unknown-station", f'unknown station "{clip(body.station)}"', "station")
    if body.station != key.station:
        raise Rejection(
            403,
            "wrong-station",
            f'key "{key.key_id}" is registered for station {key.station}, not for station '
            f"{clip(body.station)}",
            "station",
        )
    try:
        pending = prepare(election, body, raw, envelope)
    except UnknownReference as exc:
        reason = {"contest": "unknown-contest", "election": "election-mismatch"}.get(
            exc.field, "station-not-in-contest"
        )
        status = 403 if exc.field == "election" else 422
        raise Rejection(status, reason, str(exc).split(": ", 1)[-1], exc.field) from None
    except ProtocolRejected as exc:
        raise rules_rejection(exc) from None
    return Checked(pending, body, key.key_id)


def rules_rejection(exc: ProtocolRejected) -> Rejection:
    rules: list[dict[str, object]] = [
        {"rule": "line", "field": f"lines.{p.line}", "message": str(p)} for p in exc.problems
    ]
    for v in exc.violations:
        d = v.to_dict()
        d["message"] = str(v)
        rules.append(d)
    if exc.problems:
        first = f"lines.{exc.problems[0].line}"
        reason = "lines"
    else:
        first = "lines"
        reason = "rules"
    count = len(rules)
    return Rejection(
        422,
        reason,
        f"{count} problem{'s' if count != 1 else ''}: {clip(str(exc), 400)}",
        first,
        rules,
    )

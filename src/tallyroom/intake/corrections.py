"""Corrections, annulments and conflict resolutions under the two-person rule.

One person (an operator, supervisor or administrator) *proposes*; a *different* person with
the supervisor role *approves* or rejects. Only an approval writes to the ledger:

- ``correction``: a new protocol body (made by the commission, checked like any other)
  supersedes the one in force — ledger entry kind ``correction``;
- ``accept-conflict``: a held conflicting device submission supersedes the one in force —
  ledger entry kind ``correction`` carrying the device's exact bytes and signature envelope;
- ``dismiss-conflict``: a held conflict is turned down; the protocol in force stays —
  ledger entry kind ``correction`` with action ``dismiss`` (no tally change), so the ledger
  shows that the other reading existed and who turned it down;
- ``annulment``: the station's result for this contest and count kind stops counting —
  ledger entry kind ``annulment``.

Entry payloads are one JSON line (the decision), a newline, then the protocol body bytes
(empty for an annulment)::

    {"action": "supersede" | "dismiss" | "annul", "target": <ledger index in force>,
     "station": …, "contest": …, "count_kind": …, "proposal": <id>, "reason": …,
     "proposed_by": …, "approved_by": …, "conflict": <id> | null,
     "device": {"key_id", "signature", "received_at"} | null, "body_sha256": … | null}

`tallyroom.tally.rebuild` reads exactly this, so the rebuilt tally equals the running one.
Both the superseded protocol and its replacement stay in the ledger.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgspec

from tallyroom.intake.errors import Rejection, clip
from tallyroom.intake.strict import parse_body
from tallyroom.intake.submission import rules_rejection
from tallyroom.intake.tokens import Permission, allowed
from tallyroom.ledger.entry import EntryKind
from tallyroom.protocol.check import ProtocolRejected
from tallyroom.protocol.model import encode_body
from tallyroom.protocol.pending import UnknownReference, prepare, split_payload
from tallyroom.store import intake as db
from tallyroom.store.sql import Store

_json = msgspec.json.Encoder()


class Action(StrEnum):
    CORRECTION = "correction"
    ANNULMENT = "annulment"
    ACCEPT_CONFLICT = "accept-conflict"
    DISMISS_CONFLICT = "dismiss-conflict"


@dataclass(frozen=True, slots=True)
class Person:
    """Who is acting: the name and role of an API token (or of the CLI's --token)."""

    name: str
    role: str


def require(person: Person, permission: Permission) -> None:
    if not allowed(person.role, permission):
        raise Rejection(
            403,
            "role",
            f"role {person.role} may not {permission.value}",
            "Authorization",
        )


def _validated(store: Store, station: str, contest: str, count_kind: str, raw: bytes) -> db.Replacement:
    """Check a replacement body like any submission (shape, definition, rules)."""
    election = store.election()
    body = parse_body(raw)
    if (body.station, body.contest, str(body.count_kind)) != (station, contest, count_kind):
        raise Rejection(
            422,
            "wrong-target",
            f"the new protocol is for {clip(body.station)}/{clip(body.contest)}/"
            f"{body.count_kind}, the proposal for {station}/{contest}/{count_kind}",
            "body",
        )
    try:
        pending = prepare(election, body, raw, {})
    except UnknownReference as exc:
        raise Rejection(
            403 if exc.field == "election" else 422, "unknown-reference", str(exc), exc.field
        ) from None
    except ProtocolRejected as exc:
        raise rules_rejection(exc) from None
    return db.Replacement(pending.contest, pending.station, pending.counts, pending.warnings,
                          pending.body_sha256)


def propose(
    store: Store,
    person: Person,
    action: str,
    reason: str,
    station: str | None = None,
    contest: str | None = None,
    count_kind: str | None = None,
    body: Any = None,
    conflict_id: int | None = None,
) -> db.ProposalRow:
    """Record a proposal; nothing changes in the ledger or the tally until it is approved."""
    require(person, Permission.PROPOSE)
    try:
        act = Action(action)
    except ValueError:
        raise Rejection(
            422, "wrong-value", f"action must be one of {', '.join(a.value for a in Action)}",
            "action",
        ) from None
    if not isinstance(reason, str) or not reason.strip():
        raise Rejection(422, "missing-field", "a reason is required", "reason")
    raw: bytes | None = None
    sha: str | None = None
    if act in (Action.ACCEPT_CONFLICT, Action.DISMISS_CONFLICT):
        if conflict_id is None:
            raise Rejection(422, "missing-field", f"{act.value} needs conflict_id", "conflict_id")
        conflict = db.get_conflict(store, conflict_id)
        if conflict is None:
            raise Rejection(404, "unknown-conflict", f"no conflict {conflict_id}", "conflict_id")
        if conflict.status != "held":
            raise Rejection(409, "decided", f"conflict {conflict_id} is {conflict.status} already",
                            "conflict_id")
        station, contest, count_kind = conflict.station, conflict.contest, conflict.count_kind
        sha = conflict.body_sha256
    else:
        if conflict_id is not None:
            raise Rejection(422, "wrong-field", f"{act.value} takes no conflict_id", "conflict_id")
        for name, value in (("station", station), ("contest", contest), ("count_kind", count_kind)):
            if not isinstance(value, str) or not value:
                raise Rejection(422, "missing-field", f"{name} is required", name)
    assert station is not None and contest is not None and count_kind is not None
    election = store.election()
    if station not in election.station_index:
        raise Rejection(422, "unknown-station", f'unknown station "{clip(station)}"', "station")
    if contest not in election.contest_index:
        raise Rejection(422, "unknown-contest", f'unknown contest "{clip(contest)}"', "contest")
    current = db.in_force(store, station, contest, count_kind)
    if current is None:
        raise Rejection(
            409, "nothing-in-force",
            f"no protocol is in force for station {station}, {contest}, {count_kind}", "station",
        )
    if act == Action.CORRECTION:
        if not isinstance(body, dict):
            raise Rejection(422, "missing-field", "correction needs body (a protocol object)", "body")
        try:
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            raise Rejection(
                400, "wrong-type", "body holds a decimal or over-long number", "body"
            ) from None
        # The canonical bytes of the checked body are what the ledger will hold.
        raw = encode_body(parse_body(text.encode("utf-8", "surrogatepass")))
        replacement = _validated(store, station, contest, count_kind, raw)
        sha = hashlib.sha256(raw).hexdigest()
        if replacement.body_sha256 == current.body_sha256:
            raise Rejection(409, "no-change", "the new protocol equals the one in force", "body")
    elif body is not None:
        raise Rejection(422, "wrong-field", f"{act.value} takes no body", "body")
    pid = db.create_proposal(
        store, act.value, station, contest, count_kind, current.entry_idx, conflict_id, raw, sha,
        reason.strip()[:2000], person.name,
    )
    row = db.get_proposal(store, pid)
    assert row is not None
    return row


def _entry(
    proposal: db.ProposalRow, approved_by: str, store: Store
) -> tuple[EntryKind, bytes, db.Replacement | None]:
    decision: dict[str, Any] = {
        "action": {
            Action.CORRECTION: "supersede",
            Action.ACCEPT_CONFLICT: "supersede",
            Action.DISMISS_CONFLICT: "dismiss",
            Action.ANNULMENT: "annul",
        }[Action(proposal.action)],
        "target": proposal.target_index,
        "station": proposal.station,
        "contest": proposal.contest,
        "count_kind": proposal.count_kind,
        "proposal": proposal.id,
        "reason": proposal.reason,
        "proposed_by": proposal.proposed_by,
        "approved_by": approved_by,
        "conflict": proposal.conflict_id,
        "device": None,
        "body_sha256": proposal.body_sha256,
    }
    body = b""
    replacement = None
    if proposal.action == Action.CORRECTION:
        assert proposal.body is not None
        body = proposal.body
        replacement = _validated(store, proposal.station, proposal.contest, proposal.count_kind, body)
    elif proposal.action in (Action.ACCEPT_CONFLICT, Action.DISMISS_CONFLICT):
        assert proposal.conflict_id is not None
        conflict = db.get_conflict(store, proposal.conflict_id)
        assert conflict is not None
        envelope, body = split_payload(conflict.payload)
        decision["device"] = envelope
        if proposal.action == Action.ACCEPT_CONFLICT:
            replacement = _validated(
                store, proposal.station, proposal.contest, proposal.count_kind, body
            )
    kind = EntryKind.ANNULMENT if proposal.action == Action.ANNULMENT else EntryKind.CORRECTION
    return kind, _json.encode(decision) + b"\n" + body, replacement


def decide(
    store: Store, person: Person, proposal_id: int, approve: bool, note: str = ""
) -> db.ProposalRow:
    """Approve (a different supervisor) or reject (a supervisor, or the proposer withdrawing)."""
    proposal = db.get_proposal(store, proposal_id)
    if proposal is None:
        raise Rejection(404, "unknown-proposal", f"no proposal {proposal_id}", "id")
    if proposal.status != "proposed":
        raise Rejection(409, "decided", f"proposal {proposal_id} is {proposal.status} already", "id")
    own = person.name == proposal.proposed_by
    if approve:
        require(person, Permission.DECIDE)
        if own:
            raise Rejection(
                403,
                "two-person-rule",
                f"{person.name} proposed this {proposal.action}; a different supervisor must "
                "approve it",
                "id",
            )
        kind, payload, replacement = _entry(proposal, person.name, store)
        try:
            db.approve_proposal(store, proposal, person.name, note[:2000], kind, payload, replacement)
        except db.StaleState as exc:
            raise Rejection(409, "stale", str(exc), "id") from None
    else:
        if not own:
            require(person, Permission.DECIDE)
        try:
            db.reject_proposal(store, proposal_id, person.name, note[:2000])
        except db.StaleState as exc:
            raise Rejection(409, "stale", str(exc), "id") from None
    row = db.get_proposal(store, proposal_id)
    assert row is not None
    return row

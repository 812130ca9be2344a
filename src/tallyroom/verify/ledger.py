"""Walk the published ledger as docs/bulletin.md §5–§6.1 says, checking every entry.

In ledger order:

* ``definition`` (entry 0 only) — the election, compiled with :mod:`tallyroom.definition`;
* ``key_change`` — the station device keys in force from that point (registrations, rotations,
  revocations; docs/intake-api.md, ``tallyroom.intake.keys``); keys provisioned in the
  definition count from entry 0;
* ``protocol`` — the envelope and the exact body: the body names this election, a known station
  voting in a known contest, every line whole and in range, every control rule of severity
  ``error`` holds (``tallyroom.protocol.check``); a device envelope's Ed25519 signature over the
  body is by a key registered for *that* station and not revoked before the entry; a second
  protocol for a (contest, station, count kind) that already counts is an error;
* ``correction`` / ``annulment`` — two-person decisions acting on the entry in force;
* ``checkpoint`` — signed by the commission over exactly the tree before the entry;
* ``snapshot`` — the record of an earlier snapshot: its size and root must be a prefix of this
  ledger, its manifest hash is compared with that snapshot's manifest when it is available;
* ``audit`` — MACRO audit states, re-validated and re-drawn from their public seed.

The outcome is the set of protocols in force, the key history and the snapshot records, and
for the station pages and ``bulletin/stations.json``: every entry acting on each (contest,
station, count kind) with its status (docs/bulletin.md §12), the photo each protocol body
declares, and every station's key changes (§2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nacl.exceptions
import nacl.signing

from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.errors import DefinitionError
from tallyroom.definition.load import load_definition
from tallyroom.ledger.entry import EntryError, decode_entry
from tallyroom.protocol.check import ProtocolRejected, check_counts, counts_vector
from tallyroom.protocol.model import ProtocolBody
from tallyroom.verify.bulletin import CommissionKey, Ledger, check_root, verify_note
from tallyroom.verify.report import Tally
from tallyroom.verify.workers import Forked, fork_map

COUNT_KINDS = ("machine", "hand", "recount")
_body = msgspec.json.Decoder(ProtocolBody)
#: Below this many signatures one process checks them all; above, the work is split.
PARALLEL_SIGNATURES = 4000
#: Below this many entries one process checks every protocol body.
PARALLEL_BODIES = 20000


def device_key_id(public_key: bytes) -> str:
    """``ed25519:`` and the first 16 hex digits of SHA-256 of the public key (intake-api.md)."""
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


@dataclass
class DeviceKey:
    key_id: str
    station: str
    public_key: bytes
    registered_at: int
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class InForce:
    """A protocol that counts: the entry holding it and its decoded counts."""

    index: int
    contest: int
    station: int
    count_kind: str
    counts: list[int]
    body_sha256: str
    envelope: dict[str, Any]
    leaf: bytes


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    index: int
    number: int
    ledger_size: int
    root: str
    manifest_sha256: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An audit entry, with the machine-count protocols in force when it was written."""

    index: int
    doc: Any
    machine: list[tuple[int, list[int]]]


@dataclass(frozen=True, slots=True)
class _SigJob:
    index: int
    public_key: bytes
    body: bytes
    signature: bytes
    what: str


@dataclass
class Walk:
    election: CompiledElection | None = None
    definition_bytes: bytes = b""
    active: dict[tuple[int, int, str], InForce] = field(default_factory=dict)
    keys: dict[str, DeviceKey] = field(default_factory=dict)
    snapshots: list[SnapshotRecord] = field(default_factory=list)
    audits: list[AuditEntry] = field(default_factory=list)
    #: (contest, station, count kind) -> every protocol, correction and annulment acting on
    #: it, in ledger order, with its status at the end of the prefix (§12 ``history``); kept
    #: only for keys with a decision (the history of any other is its protocol in force:
    #: :func:`protocol_event`).
    history: dict[tuple[int, int, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: ledger index -> the ``image_sha256`` the protocol body of that entry declares.
    images: dict[int, str] = field(default_factory=dict)
    #: station id -> its key changes in ledger order (§2 ``key_changes``).
    key_changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Protocol bodies checked (protocol entries and superseding corrections).
    protocols: int = 0
    signatures: int = 0
    imported: int = 0
    by_commission: int = 0
    corrections: int = 0
    annulments: int = 0
    #: The device signatures, still being checked when the walk was asked to defer them
    #: (:meth:`SignatureCheck.finish` reports them).
    signature_check: SignatureCheck | None = None
    #: What the caller's ``beside`` returned (see :func:`walk`).
    beside: Any = None


class _Stop(Exception):
    pass


def walk(
    ledger: Ledger,
    key: CommissionKey | None,
    out: Tally,
    workers: int = 1,
    *,
    defer_signatures: bool = False,
    beside: Callable[[], Any] | None = None,
) -> Walk:
    """Check every entry; return what is in force at the end of the published prefix. With
    ``defer_signatures`` the device signatures are still being checked by worker processes
    when this returns (``Walk.signature_check``): nothing the walk decides depends on them, and
    the caller recomputes the tally meanwhile. ``beside`` is the caller's work to run beside
    the check of the protocol bodies, in one of the worker processes that do it when there are
    any (it must not need this process's state after the call): its result is
    ``Walk.beside``. It is not run when the walk stops before the bodies (no definition)."""
    w = Walk()
    if ledger.size == 0:
        out.fail("ledger-definition", "bulletin/entries/", "", "the ledger is empty: no election definition")
        return w
    try:
        kind, payload = decode_entry(ledger.data[0])
    except EntryError as exc:
        out.fail("ledger-definition", ledger.locate(0), "", f"entry 0 is not an entry: {exc}")
        return w
    if kind != "definition":
        out.fail(
            "ledger-definition",
            ledger.locate(0),
            "",
            f"entry 0 is a {kind} entry, not the election definition",
        )
        return w
    try:
        loaded = load_definition(payload, "ledger entry 0")
    except DefinitionError as exc:
        out.fail("ledger-definition", ledger.locate(0), "", f"the definition in entry 0 does not load: {exc}")
        return w
    election = compile_election(loaded)
    w.election = election
    w.definition_bytes = payload
    for st in election.stations:
        if st.key:
            try:
                pub = base64.b64decode(st.key, validate=True)
            except (binascii.Error, ValueError):
                out.fail("station-key", ledger.locate(0), f"station {st.id}", "its key is not base64")
                continue
            if len(pub) != 32:
                out.fail("station-key", ledger.locate(0), f"station {st.id}", "its key is not 32 bytes")
                continue
            kid = device_key_id(pub)
            w.keys[kid] = DeviceKey(kid, st.id, pub, 0)
    sigs: list[_SigJob] = []
    _PRE.clear()
    if workers > 1 and ledger.size >= PARALLEL_BODIES:
        w.beside = _prevalidate(election, ledger, workers, beside)
    elif beside is not None:
        w.beside = beside()
    for idx in range(1, ledger.size):
        data = ledger.data[idx]
        try:
            kind, payload = decode_entry(data)
        except EntryError:
            continue  # reported when the entry files were read
        where = ledger.locate(idx)
        if kind == "protocol":
            _protocol(w, election, ledger, idx, payload, where, out, sigs)
        elif kind in ("correction", "annulment"):
            _decision(w, election, ledger, idx, str(kind), payload, where, out, sigs)
        elif kind == "key_change":
            _key_change(w, election, idx, payload, where, out)
        elif kind == "checkpoint":
            if key is not None:
                cp = verify_note(payload, key, where, f"entry {idx}", out)
                if cp is not None:
                    out.numbers += 2
                    # A checkpoint covers a prefix of the tree before its own entry: exactly
                    # that tree when signed by `ledger checkpoint`, an earlier prefix when the
                    # publisher signed what it read while intake went on appending.
                    if cp.size > idx:
                        out.add(
                            "checkpoint-entry",
                            where,
                            f"entry {idx}: size",
                            cp.size,
                            idx,
                            "a checkpoint entry can only cover entries before it",
                        )
                    check_root(ledger, cp, where, f"entry {idx}", out)
        elif kind == "snapshot":
            _snapshot(w, ledger, idx, payload, where, out)
        elif kind == "audit":
            try:
                doc = msgspec.json.decode(payload)
            except msgspec.DecodeError as exc:
                out.fail("audit", where, f"entry {idx}", f"audit payload is not JSON: {exc}")
                continue
            ci = election.contest_index.get(str(doc.get("contest"))) if isinstance(doc, dict) else None
            machine = sorted(
                (p for k, p in w.active.items() if k[0] == ci and k[2] == "machine"), key=lambda p: p.index
            )
            w.audits.append(AuditEntry(idx, doc, [(p.station, p.counts) for p in machine]))
        elif kind == "definition":
            out.fail(
                "ledger-definition",
                where,
                f"entry {idx}",
                "a second definition entry: only entry 0 defines the election",
            )
    w.signature_check = SignatureCheck(sigs, ledger, workers)
    if not defer_signatures:
        w.signature_check.finish(out)
    w.signatures = len(sigs)
    return w


Checked = tuple[ProtocolBody, int, int, list[int]]
#: Bodies checked ahead in worker processes: ledger index -> (result, failures).
_PRE: dict[int, tuple[Checked | None, Tally | None]] = {}


def _check_body(election: CompiledElection, raw: bytes, idx: int, where: str, out: Tally) -> Checked | None:
    """The body of a protocol: this election, a known station in a known contest, whole
    lines, every error rule holding. Returns (body, contest, station, counts) or None."""
    pre = _PRE.pop(idx, None)
    if pre is not None:
        res, failures = pre
        if failures is not None:
            out.merge(failures)
        elif res is not None:
            out.numbers += len(res[3])
        return res
    return _check_body_now(election, raw, idx, where, out)


def _check_body_now(
    election: CompiledElection, raw: bytes, idx: int, where: str, out: Tally
) -> Checked | None:
    try:
        body = _body.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        out.fail("protocol-body", where, f"entry {idx}", f"the protocol body is not a valid protocol: {exc}")
        return None
    if body.election != election.sha256:
        out.add(
            "protocol-election",
            where,
            f"entry {idx}: election",
            body.election,
            election.sha256,
            "the SHA-256 of the definition in entry 0: this protocol was made for another election",
        )
        return None
    si = election.station_index.get(body.station)
    ci = election.contest_index.get(body.contest)
    if si is None or ci is None:
        what = f'station "{body.station}"' if si is None else f'contest "{body.contest}"'
        out.fail("protocol-reference", where, f"entry {idx}", f"{what} is not in the definition")
        return None
    contest = election.contests[ci]
    if si not in contest.station_set:
        out.fail(
            "protocol-reference",
            where,
            f"entry {idx}",
            f'station {body.station} does not vote in contest "{body.contest}"',
        )
        return None
    label = f"entry {idx} (station {body.station}, {body.contest}, {body.count_kind})"
    try:
        counts = counts_vector(contest, body.lines)
    except ProtocolRejected as exc:
        out.fail(
            "protocol-rules",
            where,
            label,
            f"the protocol's lines do not fit its form, so it cannot count: {exc}",
        )
        return None
    try:
        check_counts(contest, counts)
    except ProtocolRejected as exc:
        # §6.1 counts every protocol in force; the broken rule is reported, the numbers still count.
        out.fail(
            "protocol-rules",
            where,
            label,
            "the protocol breaks an error rule, so intake must have refused it (it counts all the "
            f"same): {exc}",
        )
    out.numbers += len(counts)
    return body, ci, si, counts


def _envelope(head: bytes, idx: int, where: str, out: Tally) -> dict[str, Any] | None:
    try:
        env = msgspec.json.decode(head)
    except msgspec.DecodeError as exc:
        out.fail("protocol-envelope", where, f"entry {idx}", f"the envelope line is not JSON: {exc}")
        return None
    if not isinstance(env, dict):
        out.fail("protocol-envelope", where, f"entry {idx}", "the envelope line is not a JSON object")
        return None
    return env


def _device(
    w: Walk,
    env: dict[str, Any],
    station: str,
    idx: int,
    body: bytes,
    where: str,
    out: Tally,
    sigs: list[_SigJob],
    *,
    allow_revoked: bool = False,
) -> None:
    """Queue the check of a device signature; the key must be registered for this station."""
    kid = env.get("key_id")
    sig_text = env.get("signature")
    if not isinstance(kid, str) or not isinstance(sig_text, str):
        out.fail("station-signature", where, f"entry {idx}", "device envelope without key_id and signature")
        return
    try:
        sig = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    if len(sig) != 64:
        out.fail(
            "station-signature", where, f"entry {idx}", f"signature of key {kid} is not base64 of 64 bytes"
        )
        return
    key = w.keys.get(kid)
    if key is None or key.registered_at > idx:
        out.fail(
            "station-signature",
            where,
            f"entry {idx} (station {station})",
            f"signed with key {kid}, which no key_change entry before entry {idx} (nor the "
            "definition) registers",
        )
        return
    if key.station != station:
        out.fail(
            "station-signature",
            where,
            f"entry {idx} (station {station})",
            f"protocol of station {station} is signed with key {kid}, which is registered for "
            f"station {key.station} (ledger entry {key.registered_at}): another station's key",
        )
        return
    if key.revoked_at is not None and key.revoked_at < idx and not allow_revoked:
        out.fail(
            "station-signature",
            where,
            f"entry {idx} (station {station})",
            f"signed with key {kid}, revoked at ledger entry {key.revoked_at}, before this entry",
        )
        return
    sigs.append(_SigJob(idx, key.public_key, body, sig, f"station {station}, key {kid}"))


def _protocol(
    w: Walk,
    election: CompiledElection,
    ledger: Ledger,
    idx: int,
    payload: bytes,
    where: str,
    out: Tally,
    sigs: list[_SigJob],
) -> None:
    head, sep, body_raw = payload.partition(b"\n")
    if not sep:
        out.fail("protocol-envelope", where, f"entry {idx}", "no envelope line before the body")
        return
    env = _envelope(head, idx, where, out)
    if env is None:
        return
    checked = _check_body(election, body_raw, idx, where, out)
    w.protocols += 1
    if checked is None:
        return
    body, ci, si, counts = checked
    if "key_id" in env or "signature" in env:
        _device(w, env, body.station, idx, body_raw, where, out, sigs)
    elif env.get("via") == "import":
        w.imported += 1
    else:
        out.fail(
            "protocol-envelope",
            where,
            f"entry {idx}",
            f"envelope {head.decode('utf-8', 'replace')[:120]} is neither an import nor a device signature",
        )
    key = (ci, si, str(body.count_kind))
    prior = w.active.get(key)
    if prior is not None:
        out.fail(
            "protocol-twice",
            where,
            f"entry {idx} (station {body.station}, {body.contest}, {body.count_kind})",
            f"a second protocol for a station, contest and count kind that already counts (entry "
            f"{prior.index}): only a two-person correction may replace it",
        )
        return
    _image(w, idx, body)
    w.active[key] = InForce(
        idx,
        ci,
        si,
        str(body.count_kind),
        counts,
        hashlib.sha256(body_raw).hexdigest(),
        env,
        ledger.leaves[idx],
    )
    if key in w.history:  # a protocol after an annulment: the key keeps its whole history
        w.history[key].append(protocol_event(w.active[key]))


class _Decision(msgspec.Struct):
    action: str
    target: int
    station: str
    contest: str
    count_kind: str
    device: dict[str, Any] | None = None
    reason: Any = None
    proposed_by: Any = None
    approved_by: Any = None


@dataclass(frozen=True, slots=True)
class _Decided:
    """What a decision line says about who decided what, and why."""

    target: int
    reason: str | None
    proposed_by: str | None
    approved_by: str | None


def _event(
    w: Walk,
    key: tuple[int, int, str],
    idx: int,
    ledger: Ledger,
    entry: str,
    action: str,
    *,
    source: str | None,
    key_id: str | None = None,
    body_sha256: str | None = None,
    decided: _Decided | None = None,
) -> None:
    """One item of a station's history (docs/bulletin.md §12), with the statuses it changes:
    a new protocol in force counts and the one it replaces is superseded; an annulment ends
    the one in force; a dismissed reading never counted."""
    events = w.history.setdefault(key, [])
    item: dict[str, Any] = {
        "ledger_index": idx,
        "leaf_hash": ledger.leaves[idx].hex(),
        "entry": entry,
        "action": action,
        "status": "counts",
        "ended_by": None,
        "target": None if decided is None else decided.target,
        "source": source,
        "key_id": key_id,
        "body_sha256": body_sha256,
        "reason": None if decided is None else decided.reason,
        "proposed_by": None if decided is None else decided.proposed_by,
        "approved_by": None if decided is None else decided.approved_by,
    }
    current = w.active.get(key)
    if not events and current is not None:
        events.append(protocol_event(current))
    counting = (
        next((e for e in events if e["ledger_index"] == current.index), None) if current is not None else None
    )
    if action in ("submit", "supersede"):
        if counting is not None:
            counting["status"], counting["ended_by"] = "superseded", idx
    elif action == "annul":
        if counting is not None:
            counting["status"], counting["ended_by"] = "annulled", idx
        item["status"] = "decision"
    else:
        item["status"] = "dismissed"
    events.append(item)


def protocol_event(p: InForce) -> dict[str, Any]:
    """The §12 history item of a protocol entry, from the protocol as it counts."""
    env = p.envelope
    kid = env.get("key_id")
    via = env.get("via") == "import"
    return {
        "ledger_index": p.index,
        "leaf_hash": p.leaf.hex(),
        "entry": "protocol",
        "action": "submit",
        "status": "counts",
        "ended_by": None,
        "target": None,
        "source": "import" if via else "device" if isinstance(kid, str) else None,
        "key_id": kid if isinstance(kid, str) and not via else None,
        "body_sha256": p.body_sha256,
        "reason": None,
        "proposed_by": None,
        "approved_by": None,
    }


def _image(w: Walk, idx: int, body: ProtocolBody) -> None:
    sha = body.image_sha256
    if isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
        w.images[idx] = sha


_decision_line = msgspec.json.Decoder(_Decision)


def _decision(
    w: Walk,
    election: CompiledElection,
    ledger: Ledger,
    idx: int,
    kind: str,
    payload: bytes,
    where: str,
    out: Tally,
    sigs: list[_SigJob],
) -> None:
    head, _, body_raw = payload.partition(b"\n")
    try:
        d = _decision_line.decode(head)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        out.fail("decision", where, f"entry {idx}", f"the {kind} decision line is not valid: {exc}")
        return
    ci = election.contest_index.get(d.contest)
    si = election.station_index.get(d.station)
    if ci is None or si is None or d.count_kind not in COUNT_KINDS:
        out.fail(
            "decision",
            where,
            f"entry {idx}",
            f"{kind} for unknown station/contest/count kind {d.station}/{d.contest}/{d.count_kind}",
        )
        return
    key = (ci, si, d.count_kind)
    current = w.active.get(key)
    if current is None or current.index != d.target:
        counts_now = "nothing counts there" if current is None else f"entry {current.index} counts there"
        out.fail(
            "decision",
            where,
            f"entry {idx}",
            f"{kind} of entry {d.target} for station {d.station} in {d.contest} ({d.count_kind}), "
            f"but {counts_now}",
        )
        return
    decided = _Decided(
        d.target,
        d.reason if isinstance(d.reason, str) else None,
        d.proposed_by if isinstance(d.proposed_by, str) else None,
        d.approved_by if isinstance(d.approved_by, str) else None,
    )
    device_key = d.device.get("key_id") if isinstance(d.device, dict) else None
    if not isinstance(device_key, str):
        device_key = None
    if kind == "annulment":
        if d.action != "annul":
            out.fail("decision", where, f"entry {idx}", f"annulment with action {d.action!r}")
            return
        _event(w, key, idx, ledger, "annulment", "annul", source="commission", decided=decided)
        del w.active[key]
        w.annulments += 1
        return
    w.corrections += 1
    if d.action == "dismiss":
        _event(
            w,
            key,
            idx,
            ledger,
            "correction",
            "dismiss",
            source="device" if device_key else "commission",
            key_id=device_key,
            body_sha256=hashlib.sha256(body_raw).hexdigest() if body_raw else None,
            decided=decided,
        )
        return
    if d.action != "supersede":
        out.fail("decision", where, f"entry {idx}", f"correction with unknown action {d.action!r}")
        return
    checked = _check_body(election, body_raw, idx, where, out)
    w.protocols += 1
    if checked is None:
        return
    body, bci, bsi, counts = checked
    if (bci, bsi, str(body.count_kind)) != key:
        out.fail(
            "decision",
            where,
            f"entry {idx}",
            f"the new protocol is for {body.station}/{body.contest}/{body.count_kind}, the decision "
            f"for {d.station}/{d.contest}/{d.count_kind}",
        )
        return
    if d.device:
        # An accepted conflict: the device's own signature over the body it sent. The key may
        # have been revoked between the submission and the decision.
        _device(w, d.device, d.station, idx, body_raw, where, out, sigs, allow_revoked=True)
    else:
        w.by_commission += 1
    _event(
        w,
        key,
        idx,
        ledger,
        "correction",
        "supersede",
        source="device" if device_key else "commission",
        key_id=device_key,
        body_sha256=hashlib.sha256(body_raw).hexdigest() if body_raw else None,
        decided=decided,
    )
    _image(w, idx, body)
    env = msgspec.json.decode(head)
    w.active[key] = InForce(
        idx, ci, si, d.count_kind, counts, hashlib.sha256(body_raw).hexdigest(), env, ledger.leaves[idx]
    )


def _key_change(
    w: Walk, election: CompiledElection, idx: int, payload: bytes, where: str, out: Tally
) -> None:
    try:
        doc = msgspec.json.decode(payload)
        action = doc["action"]
        keys = doc.get("keys") or []
        revoked = doc.get("revoked") or []
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError) as exc:
        out.fail("key-change", where, f"entry {idx}", f"not a key_change payload: {exc}")
        return
    if action not in ("register", "rotate", "revoke"):
        out.fail("key-change", where, f"entry {idx}", f"unknown key_change action {action!r}")
    change = {
        "ledger_index": idx,
        "action": action,
        "reason": doc.get("reason") if isinstance(doc.get("reason"), str) else None,
        "by": doc.get("by") if isinstance(doc.get("by"), str) else None,
    }
    for kid in revoked:
        k = w.keys.get(str(kid))
        if k is None:
            out.fail("key-change", where, f"entry {idx}", f"revokes key {kid}, which was never registered")
            continue
        # §2: a revocation is listed under the key's station even when repeated.
        w.key_changes.setdefault(k.station, []).append(
            {**change, "change": "revoked", "key_id": kid, "public_key": None}
        )
        if k.revoked_at is not None:
            out.fail(
                "key-change",
                where,
                f"entry {idx}",
                f"revokes key {kid} again (revoked at entry {k.revoked_at})",
            )
        else:
            k.revoked_at = idx
    for item in keys:
        try:
            kid = str(item["key_id"])
            station = str(item["station"])
            pub = base64.b64decode(str(item["public_key"]), validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError) as exc:
            out.fail(
                "key-change", where, f"entry {idx}", f"a key without key_id, station or public_key: {exc}"
            )
            continue
        if len(pub) != 32:
            out.fail("key-change", where, f"entry {idx}", f"key {kid}: public key is not 32 bytes")
            continue
        if device_key_id(pub) != kid:
            out.add(
                "key-change",
                where,
                f"entry {idx}: key_id",
                kid,
                device_key_id(pub),
                "ed25519: and the first 16 hex digits of SHA-256 of the public key",
            )
            continue
        if station not in election.station_index:
            out.fail("key-change", where, f"entry {idx}", f"key {kid} for unknown station {station}")
            continue
        w.key_changes.setdefault(station, []).append(
            {**change, "change": "registered", "key_id": kid, "public_key": str(item["public_key"])}
        )
        if kid in w.keys:
            out.fail("key-change", where, f"entry {idx}", f"key {kid} is registered twice")
            continue
        w.keys[kid] = DeviceKey(kid, station, pub, idx)


class _SnapshotEntry(msgspec.Struct):
    ledger_size: int
    manifest_sha256: str
    root: str
    snapshot: int


def _snapshot(w: Walk, ledger: Ledger, idx: int, payload: bytes, where: str, out: Tally) -> None:
    try:
        s = msgspec.json.decode(payload, type=_SnapshotEntry)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        out.fail("snapshot-entry", where, f"entry {idx}", f"not a snapshot record: {exc}")
        return
    out.numbers += 3
    expected_number = w.snapshots[-1].number + 1 if w.snapshots else 1
    if s.snapshot != expected_number:
        out.add(
            "snapshot-entry",
            where,
            f"entry {idx}: snapshot",
            s.snapshot,
            expected_number,
            "snapshots are numbered 1, 2, 3, … and each is logged once",
        )
    if s.ledger_size > idx:
        out.fail(
            "snapshot-entry",
            where,
            f"entry {idx}",
            f"snapshot {s.snapshot} claims {s.ledger_size:,} entries, more than existed when it was logged",
        )
    elif ledger.root(s.ledger_size).hex() != s.root:
        out.add(
            "snapshot-history",
            where,
            f"entry {idx}: snapshot {s.snapshot} root",
            s.root,
            ledger.root(s.ledger_size).hex(),
            f"the Merkle root of the first {s.ledger_size:,} entries now published: snapshot "
            f"{s.snapshot} was computed from a history this ledger no longer contains",
        )
    w.snapshots.append(SnapshotRecord(idx, s.snapshot, s.ledger_size, s.root, s.manifest_sha256))


_WORK: tuple[CompiledElection, Ledger] | None = None


def _body_of(data: bytes) -> bytes | None:
    """The protocol body inside a protocol or superseding correction entry, else None."""
    try:
        kind, payload = decode_entry(data)
    except EntryError:
        return None
    if kind == "protocol":
        head, sep, body = payload.partition(b"\n")
        return body if sep else None
    if kind == "correction":
        head, _, body = payload.partition(b"\n")
        return body if b'"supersede"' in head else None
    return None


def _pre_chunk(bounds: tuple[int, int]) -> list[tuple[int, Checked | None, Tally | None]]:
    assert _WORK is not None
    election, ledger = _WORK
    out = []
    for idx in range(*bounds):
        body = _body_of(ledger.data[idx])
        if body is None:
            continue
        t = Tally()
        res = _check_body_now(election, body, idx, ledger.locate(idx), t)
        out.append((idx, res, t if t.count else None))
    return out


#: What :func:`walk`'s caller gave to run beside the body checks (set while they run).
_BESIDE: Callable[[], Any] | None = None


def _pre_task(bounds: tuple[int, int] | None) -> tuple[bool, Any]:
    """A chunk of protocol bodies, or (``None``) the caller's work beside them."""
    if bounds is None:
        assert _BESIDE is not None
        return True, _BESIDE()
    return False, _pre_chunk(bounds)


def _prevalidate(
    election: CompiledElection, ledger: Ledger, workers: int, beside: Callable[[], Any] | None
) -> Any:
    """Check every protocol body in worker processes (decoding, lines, rules); the sequential
    walk then takes each result in ledger order. ``beside`` runs as one more task of those
    workers (this process waits meanwhile, so that nothing it writes makes the kernel copy
    pages it shares with them); its result is returned."""
    global _WORK, _BESIDE
    _WORK, _BESIDE = (election, ledger), beside
    got = None
    try:
        step = 5000
        bounds = [(i, min(i + step, ledger.size)) for i in range(1, ledger.size, step)]
        tasks: list[tuple[int, int] | None] = [None] if beside is not None else []
        for is_beside, part in fork_map(_pre_task, [*tasks, *bounds], workers):
            if is_beside:
                got = part
                continue
            for idx, res, t in part:
                _PRE[idx] = (res, t)
    finally:
        _WORK = _BESIDE = None
    return got


def _verify_chunk(jobs: Sequence[tuple[int, bytes, bytes, bytes]]) -> list[int]:
    bad = []
    cache: dict[bytes, nacl.signing.VerifyKey] = {}
    for idx, pub, body, sig in jobs:
        vk = cache.get(pub)
        if vk is None:
            vk = cache[pub] = nacl.signing.VerifyKey(pub)
        try:
            vk.verify(body, sig)
        except (nacl.exceptions.BadSignatureError, ValueError):
            bad.append(idx)
    return bad


class BadSignatures:
    """The numbers of the jobs ``(number, public key, message, signature)`` whose Ed25519
    signature (RFC 8032) does not hold, checked from the moment this is made: in ``workers``
    forked processes when there are enough of them (the raw rate is about 24,000 a second per
    core: 400,000 take 17 s on one), so that the caller can go on meanwhile; here otherwise."""

    #: Jobs per task at most: small enough that a core left free by the caller is used.
    TASK = 20_000

    def __init__(self, jobs: Sequence[tuple[int, bytes, bytes, bytes]], workers: int) -> None:
        self._bad: set[int] | None = None
        self._forked: Forked[list[int]] | None = None
        if workers > 1 and len(jobs) >= PARALLEL_SIGNATURES:
            size = min(self.TASK, (len(jobs) + workers - 1) // workers)
            parts = [jobs[i : i + size] for i in range(0, len(jobs), size)]
            self._forked = Forked(_verify_chunk, parts, workers)
        else:
            self._bad = set(_verify_chunk(jobs))

    def result(self) -> set[int]:
        """Wait for the workers (if any) and return the numbers whose signature fails."""
        if self._bad is None:
            assert self._forked is not None
            self._bad = {i for part in self._forked.results() for i in part}
            self._forked = None
        return self._bad

    def cancel(self) -> None:
        """Stop the workers without taking their results."""
        if self._forked is not None:
            self._forked.close()
            self._forked = None
        self._bad = set()


def bad_signatures(jobs: Sequence[tuple[int, bytes, bytes, bytes]], workers: int) -> set[int]:
    """:class:`BadSignatures`, waited for."""
    return BadSignatures(jobs, workers).result()


class SignatureCheck:
    """The device signatures of the walk's protocols and decisions (:class:`BadSignatures`);
    :meth:`finish` waits for them and reports each that does not hold."""

    def __init__(self, sigs: list[_SigJob], ledger: Ledger, workers: int) -> None:
        self._sigs = sigs
        self._ledger = ledger
        self._pending = BadSignatures([(j.index, j.public_key, j.body, j.signature) for j in sigs], workers)

    def cancel(self) -> None:
        """Stop the workers without waiting for their results (the verification failed)."""
        self._pending.cancel()

    def finish(self, out: Tally) -> None:
        by_index = {j.index: j for j in self._sigs}
        for idx in sorted(self._pending.result()):
            j = by_index[idx]
            out.fail(
                "station-signature",
                self._ledger.locate(idx),
                f"entry {idx} ({j.what})",
                "the Ed25519 signature does not match the protocol's bytes: the body was changed after "
                "the device signed it, or it was never signed by that key",
            )
        self._pending.cancel()  # reported once

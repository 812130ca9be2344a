"""Store functions for intake: device keys, journal, receipts, conflicts, proposals, tokens,
images. Written against :class:`~tallyroom.store.sql.Store`'s connection and transaction
helpers, like ``sql.py`` itself; every write that touches the ledger takes the head row lock.

Functions named ``*_in_tx`` expect the caller to hold a write transaction (see
:func:`transaction`); the others open and close their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec

from tallyroom.ledger.entry import EntryKind, encode_entry
from tallyroom.store.sql import LedgerHead, Store, StoreError, utcnow
from tallyroom.tally.running import Tally

_json = msgspec.json.Encoder()


class StaleState(StoreError):
    """The state a decision was based on has changed (decided already, protocol replaced)."""


@contextmanager
def transaction(store: Store) -> Iterator[None]:
    """A write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
    store._begin_write()
    try:
        yield
        store._commit()
    except BaseException:
        store._rollback()
        raise


def _read(store: Store, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    rows = store._execute(sql, params).fetchall()
    store._end_read()
    return list(rows)


def _one(store: Store, sql: str, params: Sequence[Any] = ()) -> Any:
    row = store._execute(sql, params).fetchone()
    store._end_read()
    return row


def _append_in_tx(store: Store, kind: EntryKind, payload: bytes) -> tuple[LedgerHead, int]:
    head = store._lock_head()
    ((idx, _h),) = store._append_entries(head, [encode_entry(kind, payload)], [kind])
    store._write_head(head)
    return head, idx


def _chunks(items: Sequence[Any], n: int = 500) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


# -- device keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRow:
    key_id: str
    station: str
    public_key: bytes
    status: str
    created_at: str
    revoked_at: str | None
    registered_index: int | None
    revoked_index: int | None


_KEY_COLS = (
    "key_id, station, public_key, status, created_at, revoked_at, registered_index, revoked_index"
)


def _key(r: Any) -> KeyRow:
    return KeyRow(
        str(r[0]),
        str(r[1]),
        bytes(r[2]),
        str(r[3]),
        str(r[4]),
        None if r[5] is None else str(r[5]),
        None if r[6] is None else int(r[6]),
        None if r[7] is None else int(r[7]),
    )


def change_keys(
    store: Store,
    payload: bytes,
    register: Sequence[tuple[str, str, bytes]] = (),
    revoke: Sequence[str] = (),
) -> int:
    """Register (key id, station, public key) and revoke key ids, with one `key_change`
    ledger entry holding ``payload``; returns its ledger index."""
    now = utcnow()
    with transaction(store):
        _head, idx = _append_in_tx(store, EntryKind.KEY_CHANGE, payload)
        for kid in revoke:
            store._execute(
                "UPDATE device_keys SET status = 'revoked', revoked_at = ?, revoked_index = ? "
                "WHERE key_id = ? AND status = 'active'",
                (now, idx, kid),
            )
        store._executemany(
            store.dialect.q(
                f"INSERT INTO device_keys ({_KEY_COLS}) VALUES (?, ?, ?, 'active', ?, NULL, ?, NULL)"
            ),
            [(kid, station, pk, now, idx) for kid, station, pk in register],
        )
    return idx


def get_key(store: Store, key_id: str) -> KeyRow | None:
    r = _one(store, f"SELECT {_KEY_COLS} FROM device_keys WHERE key_id = ?", (key_id,))
    return None if r is None else _key(r)


def list_keys(store: Store, station: str | None = None, status: str | None = None) -> list[KeyRow]:
    sql = f"SELECT {_KEY_COLS} FROM device_keys WHERE 1 = 1"
    params: list[Any] = []
    if station is not None:
        sql += " AND station = ?"
        params.append(station)
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return [_key(r) for r in _read(store, sql + " ORDER BY station, created_at", params)]


def revoked_among(store: Store, key_ids: Sequence[str]) -> set[str]:
    out: set[str] = set()
    for part in _chunks(list(key_ids)):
        marks = ",".join("?" * len(part))
        rows = store._execute(
            f"SELECT key_id FROM device_keys WHERE status <> 'active' AND key_id IN ({marks})",
            tuple(part),
        ).fetchall()
        out.update(str(r[0]) for r in rows)
    store._end_read()
    return out


# -- ledger reads --------------------------------------------------------------------------


def entry_data(store: Store, idx: int) -> bytes | None:
    r = _one(store, "SELECT data FROM ledger_entries WHERE idx = ?", (idx,))
    return None if r is None else bytes(r[0])


def latest_checkpoint(store: Store) -> tuple[int, bytes, int, bytes] | None:
    r = _one(store, "SELECT size, root, time, note FROM checkpoints ORDER BY size DESC LIMIT 1")
    return None if r is None else (int(r[0]), bytes(r[1]), int(r[2]), bytes(r[3]))


def checkpoint_at(store: Store, size: int) -> bytes | None:
    r = _one(store, "SELECT note FROM checkpoints WHERE size = ?", (size,))
    return None if r is None else bytes(r[0])


# -- receipts, conflicts and journal lines of one intake batch ---------------------------


def receipts_for(store: Store, idxs: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in _chunks(sorted(set(idxs))):
        marks = ",".join("?" * len(part))
        for r in store._execute(
            f"SELECT entry_idx, receipt FROM intake_receipts WHERE entry_idx IN ({marks})",
            tuple(part),
        ).fetchall():
            out[int(r[0])] = str(r[1])
    store._end_read()
    return out


def put_checkpoint_in_tx(store: Store, size: int, root: bytes, ts: int, note: bytes) -> bytes:
    """Record a checkpoint; if one of that size exists already, return the stored note."""
    added = store._execute(
        "INSERT INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (size) DO NOTHING RETURNING size",
        (size, root, ts, note),
    ).fetchall()
    if added:
        return note
    r = store._execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
    return bytes(r[0])


def put_receipts_in_tx(store: Store, receipts: Sequence[tuple[int, str]]) -> dict[int, str]:
    """Store receipts unless the entry has one already; return the receipts stored for them.

    A receipt once stored is the one every resend gets, so an existing one wins.
    """
    if not receipts:
        return {}
    if store.dialect.name == "postgresql":
        # One statement (row-by-row executemany costs ~30 µs a row); RETURNING says which
        # went in, so only an entry that had a receipt already is read back.
        idxs = [r[0] for r in receipts]
        added = {
            int(r[0])
            for r in store.conn.execute(
                "INSERT INTO intake_receipts (entry_idx, receipt) "
                "SELECT * FROM unnest(%b::bigint[], %b::text[]) "
                "ON CONFLICT (entry_idx) DO NOTHING RETURNING entry_idx",
                (idxs, [r[1] for r in receipts]),
            ).fetchall()
        }
        out = {idx: text for idx, text in receipts if idx in added}
        if len(out) < len(receipts):
            out.update(receipts_in_tx(store, [idx for idx in idxs if idx not in added]))
        return out
    store._executemany(
        "INSERT INTO intake_receipts (entry_idx, receipt) VALUES (?, ?) ON CONFLICT (entry_idx) DO NOTHING",
        receipts,
    )
    return receipts_in_tx(store, [r[0] for r in receipts])


def receipts_in_tx(store: Store, idxs: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in _chunks(sorted(set(idxs))):
        marks = ",".join("?" * len(part))
        for r in store._execute(
            f"SELECT entry_idx, receipt FROM intake_receipts WHERE entry_idx IN ({marks})",
            tuple(part),
        ).fetchall():
            out[int(r[0])] = str(r[1])
    return out


@dataclass(frozen=True, slots=True)
class HeldConflict:
    station: str
    contest: str
    count_kind: str
    key_id: str | None
    existing_index: int
    body_sha256: str
    payload: bytes
    received_at: str


def hold_conflicts_in_tx(
    store: Store, conflicts: Sequence[HeldConflict]
) -> dict[tuple[str, str, str, str], int]:
    """Hold conflicting submissions (once per distinct body); return their ids."""
    if not conflicts:
        return {}
    store._executemany(
        store.dialect.q(
            "INSERT INTO intake_conflicts (received_at, station, contest, count_kind, key_id, "
            "existing_index, body_sha256, payload, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'held') "
            "ON CONFLICT (station, contest, count_kind, body_sha256) DO NOTHING"
        ),
        [
            (c.received_at, c.station, c.contest, c.count_kind, c.key_id, c.existing_index,
             c.body_sha256, c.payload)
            for c in conflicts
        ],
    )
    out: dict[tuple[str, str, str, str], int] = {}
    for c in conflicts:
        key = (c.station, c.contest, c.count_kind, c.body_sha256)
        if key in out:
            continue
        r = store._execute(
            "SELECT id FROM intake_conflicts WHERE station = ? AND contest = ? AND count_kind = ? "
            "AND body_sha256 = ?",
            key,
        ).fetchone()
        out[key] = int(r[0])
    return out


JOURNAL_COLS = (
    "at, station, key_id, outcome, reason, http_status, detail, ledger_index, body_sha256"
)


def journal_in_tx(store: Store, rows: Sequence[tuple[Any, ...]]) -> None:
    store._insert_table(
        "intake_journal",
        [c.strip() for c in JOURNAL_COLS.split(",")],
        ("text", "text", "text", "text", "text", "int4", "text", "int8", "text"),
        rows,
    )


def journal(store: Store, rows: Sequence[tuple[Any, ...]]) -> None:
    with transaction(store):
        journal_in_tx(store, rows)


def journal_counts(store: Store, station: str | None = None) -> list[tuple[str | None, str, str | None, int]]:
    sql = "SELECT station, outcome, reason, COUNT(*) FROM intake_journal"
    params: tuple[Any, ...] = ()
    if station is not None:
        sql += " WHERE station = ?"
        params = (station,)
    sql += " GROUP BY station, outcome, reason"
    return [
        (None if r[0] is None else str(r[0]), str(r[1]), None if r[2] is None else str(r[2]), int(r[3]))
        for r in _read(store, sql, params)
    ]


def journal_lines(
    store: Store, station: str | None = None, limit: int = 100, after: int = 0
) -> list[dict[str, Any]]:
    sql = f"SELECT id, {JOURNAL_COLS} FROM intake_journal WHERE id > ?"
    params: list[Any] = [after]
    if station is not None:
        sql += " AND station = ?"
        params.append(station)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    names = ["id", *[c.strip() for c in JOURNAL_COLS.split(",")]]
    return [dict(zip(names, r, strict=True)) for r in _read(store, sql, params)]


def non_active_for(
    store: Store, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], list[tuple[int, str, str]]]:
    """Superseded or annulled protocols of (station, contest, kind): (index, status, sha).

    Only an approved proposal makes a protocol stop counting, so the approved proposals (a
    small table) say which keys have any; only those protocols are then read, by index.
    No scan of `protocols`, however large it grows.
    """
    wanted = set(keys)
    targets: dict[int, tuple[tuple[str, str, str], str]] = {}
    for r in store._execute(
        "SELECT station, contest, count_kind, target_index, action FROM intake_proposals "
        "WHERE status = 'approved' AND action IN ('correction', 'accept-conflict', 'annulment')"
    ).fetchall():
        key = (str(r[0]), str(r[1]), str(r[2]))
        if key in wanted:
            targets[int(r[3])] = (key, "annulled" if r[4] == "annulment" else "superseded")
    out: dict[tuple[str, str, str], list[tuple[int, str, str]]] = {}
    for part in _chunks(sorted(targets)):
        marks = ",".join("?" * len(part))
        for r in store._execute(
            f"SELECT entry_idx, body_sha256 FROM protocols WHERE entry_idx IN ({marks})",
            tuple(part),
        ).fetchall():
            key, status = targets[int(r[0])]
            out.setdefault(key, []).append((int(r[0]), status, str(r[1])))
    store._end_read()
    return out


# -- conflicts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: int
    received_at: str
    station: str
    contest: str
    count_kind: str
    key_id: str | None
    existing_index: int
    body_sha256: str
    payload: bytes
    status: str
    resolved_at: str | None
    resolution_index: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "station": self.station,
            "contest": self.contest,
            "count_kind": self.count_kind,
            "key_id": self.key_id,
            "existing_index": self.existing_index,
            "body_sha256": self.body_sha256,
            "status": self.status,
            "resolved_at": self.resolved_at,
            "resolution_index": self.resolution_index,
            "body": self.payload.partition(b"\n")[2].decode("utf-8", "replace"),
        }


_CONFLICT_COLS = (
    "id, received_at, station, contest, count_kind, key_id, existing_index, body_sha256, "
    "payload, status, resolved_at, resolution_index"
)


def _conflict(r: Any) -> ConflictRow:
    return ConflictRow(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
        None if r[5] is None else str(r[5]), int(r[6]), str(r[7]), bytes(r[8]), str(r[9]),
        None if r[10] is None else str(r[10]), None if r[11] is None else int(r[11]),
    )


def get_conflict(store: Store, conflict_id: int) -> ConflictRow | None:
    r = _one(store, f"SELECT {_CONFLICT_COLS} FROM intake_conflicts WHERE id = ?", (conflict_id,))
    return None if r is None else _conflict(r)


def list_conflicts(store: Store, status: str | None = None, limit: int = 1000) -> list[ConflictRow]:
    sql = f"SELECT {_CONFLICT_COLS} FROM intake_conflicts"
    params: list[Any] = []
    if status is not None:
        sql += " WHERE status = ?"
        params.append(status)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [_conflict(r) for r in _read(store, sql, params)]


# -- the protocol in force -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InForce:
    entry_idx: int
    counts: list[int]
    body_sha256: str


def in_force(store: Store, station: str, contest: str, count_kind: str) -> InForce | None:
    r = _one(
        store,
        "SELECT entry_idx, counts, body_sha256 FROM protocols WHERE station = ? AND contest = ? "
        "AND count_kind = ? AND status = 'active'",
        (station, contest, count_kind),
    )
    return None if r is None else InForce(int(r[0]), msgspec.json.decode(r[1]), str(r[2]))


# -- proposals (two-person rule) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposalRow:
    id: int
    action: str
    station: str
    contest: str
    count_kind: str
    target_index: int
    conflict_id: int | None
    body: bytes | None
    body_sha256: str | None
    reason: str
    proposed_by: str
    proposed_at: str
    status: str
    decided_by: str | None
    decided_at: str | None
    decision_note: str | None
    ledger_index: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "station": self.station,
            "contest": self.contest,
            "count_kind": self.count_kind,
            "target_index": self.target_index,
            "conflict_id": self.conflict_id,
            "body": None if self.body is None else self.body.decode("utf-8", "replace"),
            "body_sha256": self.body_sha256,
            "reason": self.reason,
            "proposed_by": self.proposed_by,
            "proposed_at": self.proposed_at,
            "status": self.status,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
            "decision_note": self.decision_note,
            "ledger_index": self.ledger_index,
        }


_PROPOSAL_COLS = (
    "id, action, station, contest, count_kind, target_index, conflict_id, body, body_sha256, "
    "reason, proposed_by, proposed_at, status, decided_by, decided_at, decision_note, ledger_index"
)


def _proposal(r: Any) -> ProposalRow:
    def s(v: Any) -> str | None:
        return None if v is None else str(v)

    return ProposalRow(
        int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(r[5]),
        None if r[6] is None else int(r[6]), None if r[7] is None else bytes(r[7]), s(r[8]),
        str(r[9]), str(r[10]), str(r[11]), str(r[12]), s(r[13]), s(r[14]), s(r[15]),
        None if r[16] is None else int(r[16]),
    )


def create_proposal(
    store: Store,
    action: str,
    station: str,
    contest: str,
    count_kind: str,
    target_index: int,
    conflict_id: int | None,
    body: bytes | None,
    body_sha256: str | None,
    reason: str,
    proposed_by: str,
) -> int:
    with transaction(store):
        r = store._execute(
            "INSERT INTO intake_proposals (action, station, contest, count_kind, target_index, "
            "conflict_id, body, body_sha256, reason, proposed_by, proposed_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'proposed') RETURNING id",
            (action, station, contest, count_kind, target_index, conflict_id, body, body_sha256,
             reason, proposed_by, utcnow()),
        ).fetchone()
    return int(r[0])


def get_proposal(store: Store, proposal_id: int) -> ProposalRow | None:
    r = _one(store, f"SELECT {_PROPOSAL_COLS} FROM intake_proposals WHERE id = ?", (proposal_id,))
    return None if r is None else _proposal(r)


def list_proposals(store: Store, status: str | None = None, limit: int = 1000) -> list[ProposalRow]:
    sql = f"SELECT {_PROPOSAL_COLS} FROM intake_proposals"
    params: list[Any] = []
    if status is not None:
        sql += " WHERE status = ?"
        params.append(status)
    sql += " ORDER BY id LIMIT ?"
    params.append(limit)
    return [_proposal(r) for r in _read(store, sql, params)]


def reject_proposal(store: Store, proposal_id: int, decided_by: str, note: str) -> None:
    with transaction(store):
        r = store._execute(
            "UPDATE intake_proposals SET status = 'rejected', decided_by = ?, decided_at = ?, "
            "decision_note = ? WHERE id = ? AND status = 'proposed' RETURNING id",
            (decided_by, utcnow(), note, proposal_id),
        ).fetchone()
        if r is None:
            raise StaleState(f"proposal {proposal_id} has already been decided")


@dataclass(frozen=True, slots=True)
class Replacement:
    """The protocol a correction puts in force."""

    contest: int
    station: int
    counts: Sequence[int]
    warnings: Sequence[dict[str, Any]]
    body_sha256: str


def approve_proposal(
    store: Store,
    proposal: ProposalRow,
    decided_by: str,
    note: str,
    kind: EntryKind,
    payload: bytes,
    replacement: Replacement | None,
) -> int:
    """Apply an approved proposal in one transaction under the ledger head lock.

    Appends the ledger entry (correction or annulment), marks the protocol it replaces
    superseded or annulled, puts the replacement in force, moves the running tally by the
    difference, and records the decision. Raises :class:`StaleState` if the proposal was
    decided meanwhile or the protocol in force is no longer the one it was made against.
    """
    election = store.election()
    now = utcnow()
    with transaction(store):
        head = store._lock_head()
        r = store._execute(
            "SELECT status FROM intake_proposals WHERE id = ?", (proposal.id,)
        ).fetchone()
        if r is None or str(r[0]) != "proposed":
            raise StaleState(f"proposal {proposal.id} has already been decided")
        cur = store._execute(
            "SELECT entry_idx, counts FROM protocols WHERE station = ? AND contest = ? "
            "AND count_kind = ? AND status = 'active'",
            (proposal.station, proposal.contest, proposal.count_kind),
        ).fetchone()
        if cur is None or int(cur[0]) != proposal.target_index:
            now_in_force = "nothing" if cur is None else f"ledger entry {int(cur[0])}"
            raise StaleState(
                f"proposal {proposal.id} was made against ledger entry {proposal.target_index}; "
                f"{now_in_force} is in force now"
            )
        old_counts: list[int] = msgspec.json.decode(cur[1])
        ((idx, _h),) = store._append_entries(head, [encode_entry(kind, payload)], [kind])
        ci = election.contest_index[proposal.contest]
        si = election.station_index[proposal.station]
        delta = Tally(election)
        if proposal.action in ("correction", "accept-conflict", "annulment"):
            status = "annulled" if proposal.action == "annulment" else "superseded"
            store._execute(
                "UPDATE protocols SET status = ?, superseded_by = ? WHERE entry_idx = ?",
                (status, idx, proposal.target_index),
            )
            delta.apply(ci, si, proposal.count_kind, old_counts, -1)
        if replacement is not None:
            store._execute(
                "INSERT INTO protocols (entry_idx, station, contest, count_kind, counts, status, "
                "warnings, body_sha256, received_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                (idx, proposal.station, proposal.contest, proposal.count_kind,
                 _json.encode(list(replacement.counts)).decode(),
                 _json.encode(list(replacement.warnings)).decode(), replacement.body_sha256, now),
            )
            delta.apply(ci, si, proposal.count_kind, replacement.counts, 1)
        store._fold_tally(delta)
        store._write_head(head)
        store._execute(
            "UPDATE intake_proposals SET status = 'approved', decided_by = ?, decided_at = ?, "
            "decision_note = ?, ledger_index = ? WHERE id = ?",
            (decided_by, now, note, idx, proposal.id),
        )
        if proposal.conflict_id is not None:
            status = "dismissed" if proposal.action == "dismiss-conflict" else "accepted"
            store._execute(
                "UPDATE intake_conflicts SET status = ?, resolved_at = ?, resolution_index = ? "
                "WHERE id = ?",
                (status, now, idx, proposal.conflict_id),
            )
    return idx


# -- tokens --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    name: str
    role: str
    created_at: str
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role,
                "created_at": self.created_at, "revoked_at": self.revoked_at}


def create_token(store: Store, token_hash: str, name: str, role: str) -> int:
    with transaction(store):
        r = store._execute(
            "INSERT INTO api_tokens (token_hash, name, role, created_at) VALUES (?, ?, ?, ?) "
            "RETURNING id",
            (token_hash, name, role, utcnow()),
        ).fetchone()
    return int(r[0])


def find_token(store: Store, token_hash: str) -> TokenRow | None:
    r = _one(
        store,
        "SELECT id, name, role, created_at, revoked_at FROM api_tokens "
        "WHERE token_hash = ? AND revoked_at IS NULL",
        (token_hash,),
    )
    return None if r is None else TokenRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), None)


def list_tokens(store: Store) -> list[TokenRow]:
    return [
        TokenRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), None if r[4] is None else str(r[4]))
        for r in _read(store, "SELECT id, name, role, created_at, revoked_at FROM api_tokens ORDER BY id")
    ]


def revoke_token(store: Store, token_id: int) -> bool:
    with transaction(store):
        r = store._execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            (utcnow(), token_id),
        ).fetchone()
    return r is not None


# -- protocol images -----------------------------------------------------------------------


def put_image(
    store: Store, sha256: str, media_type: str, data: bytes, station: str, contest: str,
    count_kind: str, uploaded_by: str,
) -> bool:
    """Store an image once; False if that exact image was there already."""
    with transaction(store):
        r = store._execute(
            "INSERT INTO protocol_images (sha256, media_type, size, data, station, contest, "
            "count_kind, uploaded_at, uploaded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sha256) DO NOTHING RETURNING sha256",
            (sha256, media_type, len(data), data, station, contest, count_kind, utcnow(),
             uploaded_by),
        ).fetchone()
    return r is not None


def get_image(store: Store, sha256: str) -> tuple[str, bytes] | None:
    r = _one(store, "SELECT media_type, data FROM protocol_images WHERE sha256 = ?", (sha256,))
    return None if r is None else (str(r[0]), bytes(r[1]))


#: Every version of one key's protocol, in ledger order. Two halves so that each matches a
#: partial index (`protocols_one_active`, `protocols_inactive`); one condition on the key
#: alone matches neither and scans every protocol.
BODIES_SQL = (
    "SELECT e.data, p.entry_idx FROM protocols p JOIN ledger_entries e ON e.idx = p.entry_idx "
    "WHERE p.station = ? AND p.contest = ? AND p.count_kind = ? AND p.status = 'active' "
    "UNION ALL "
    "SELECT e.data, p.entry_idx FROM protocols p JOIN ledger_entries e ON e.idx = p.entry_idx "
    "WHERE p.station = ? AND p.contest = ? AND p.count_kind = ? AND p.status <> 'active' "
    "ORDER BY 2"
)


def bodies_for(store: Store, station: str, contest: str, count_kind: str) -> list[bytes]:
    """Every protocol body known for this key: in force, superseded, held, proposed."""
    out: list[bytes] = []
    for r in _read(store, BODIES_SQL, (station, contest, count_kind) * 2):
        # entry = kind header line, envelope (or decision) line, then the body
        out.append(bytes(r[0]).split(b"\n", 2)[-1])
    for r in _read(
        store,
        "SELECT payload FROM intake_conflicts WHERE station = ? AND contest = ? AND count_kind = ?",
        (station, contest, count_kind),
    ):
        out.append(bytes(r[0]).partition(b"\n")[2])
    for r in _read(
        store,
        "SELECT body FROM intake_proposals WHERE station = ? AND contest = ? AND count_kind = ? "
        "AND body IS NOT NULL",
        (station, contest, count_kind),
    ):
        out.append(bytes(r[0]))
    return out

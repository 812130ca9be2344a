"""The store: ledger, protocols and running totals in SQLite or PostgreSQL behind one class.

Every append happens in one transaction that (1) takes the ledger head row — `BEGIN
IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on PostgreSQL — so concurrent writers can never
fork the log, (2) writes the entries, their Merkle nodes and the decoded protocols, (3) folds
the batch's totals into the running tallies, and (4) moves the head. Nothing is acknowledged
before that transaction commits (DESIGN invariants 3 and 4).

The schema is declared with SQLAlchemy Core (store/schema.py); the hot path talks to the
driver directly (sqlite3 `executemany`, psycopg pipelines), as DESIGN.md's storage notes say.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import LoadedDefinition, load_definition
from tallyroom.ledger.entry import EntryKind, decode_entry, encode_entry
from tallyroom.ledger.merkle import Frontier, leaf_hash, root_from_leaf_hashes
from tallyroom.protocol.pending import PendingProtocol
from tallyroom.store import schema
from tallyroom.tally.running import Tally, TallyKey, Totals

_json = msgspec.json.Encoder()


def _dumps(value: Any) -> str:
    return _json.encode(value).decode()


class StoreError(RuntimeError):
    """The store cannot do what was asked (not initialised, wrong schema, bad URL)."""


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Appended:
    """What happened to one pending protocol: a new entry, a duplicate or a conflict."""

    status: str  # "new", "duplicate", "conflict"
    ledger_index: int
    leaf_hash: bytes
    #: For a conflict: the ledger index of the protocol already counted.
    existing_index: int | None = None


@dataclass
class LedgerHead:
    size: int
    root: bytes
    frontier: Frontier = field(repr=False)


#: The lowest Merkle level whose nodes are stored (see `Store.node`).
STORED_LEVEL = 4

#: Entry kinds after which the protocols that count are the old ones plus the new ones.
_KINDS_THAT_ONLY_ADD = frozenset({"protocol", "checkpoint", "snapshot", "audit", "key_change", "definition"})


class _Dialect:
    name = "base"
    param = "?"

    def q(self, sql: str) -> str:
        return sql if self.param == "?" else sql.replace("?", self.param)


class _SQLite(_Dialect):
    name = "sqlite"
    param = "?"


class _Postgres(_Dialect):
    name = "postgresql"
    param = "%s"


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


class Store:
    """One election's ledger, protocols and tallies, in SQLite (a file) or PostgreSQL (a URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect: _Dialect = _Postgres() if _is_postgres(url) else _SQLite()
        self._conn: Any = None
        self._election: CompiledElection | None = None
        self._writing = False
        #: (contest, count kind) -> station -> ledger index of its counted protocol; valid for
        #: a ledger of `_active_size` entries (see `_sync_active`).
        self._active: dict[tuple[int, str], dict[int, int]] | None = None
        self._active_size = -1

    # -- connections -------------------------------------------------------------------------

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> Any:
        if self.dialect.name == "postgresql":
            import psycopg

            url = self.url.replace("postgresql+psycopg://", "postgresql://")
            try:
                return psycopg.connect(url, autocommit=False)
            except psycopg.OperationalError as exc:
                raise StoreError(f"cannot connect to PostgreSQL at {self.url}: {exc}") from None
        path = self.url.removeprefix("sqlite:///")
        conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
        # WAL lets readers work while one writer appends; FULL makes each commit durable
        # before we acknowledge it (DESIGN invariant 4).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-65536")
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sqlalchemy_url(self) -> str:
        if self.dialect.name == "postgresql":
            rest = self.url.split("://", 1)[1]
            return f"postgresql+psycopg://{rest}"
        return f"sqlite:///{self.url.removeprefix('sqlite:///')}"

    def _begin_write(self) -> None:
        self._writing = True
        if self.dialect.name == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")
        # psycopg opens a transaction implicitly; the head row lock serialises writers.

    def _commit(self) -> None:
        self._writing = False
        if self.dialect.name == "sqlite":
            self.conn.execute("COMMIT")
        else:
            self.conn.commit()

    def _rollback(self) -> None:
        self._writing = False
        if self.dialect.name == "sqlite":
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        else:
            self.conn.rollback()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.dialect.q(sql), params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect.name == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(self.dialect.q(sql), rows)

    # -- schema and initialisation ------------------------------------------------------------

    def is_initialized(self) -> bool:
        try:
            row = self._execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except Exception:
            self._rollback()
            return False
        if self.dialect.name == "postgresql":
            self.conn.rollback()
        return row is not None

    def migrate(self) -> None:
        """Create or upgrade the schema to `schema.SCHEMA_VERSION`."""
        from sqlalchemy import create_engine

        if self.dialect.name == "sqlite":
            # Make the file exist with WAL before SQLAlchemy opens it.
            self.conn.execute("SELECT 1")
        engine = create_engine(self._sqlalchemy_url())
        try:
            schema.metadata.create_all(engine)
        finally:
            engine.dispose()

    def initialize(self, loaded: LoadedDefinition, commission_key: bytes) -> None:
        """Create the schema and append the definition as ledger entry 0."""
        if self.is_initialized():
            raise StoreError(f"{self.url} already holds an election; use a new --db for another election")
        self.migrate()
        self._begin_write()
        try:
            self._execute(
                "INSERT INTO ledger_head (id, size, frontier, root) VALUES (1, 0, ?, ?)",
                (Frontier().to_bytes(), Frontier().root()),
            )
            self._set_meta("definition_sha256", loaded.sha256)
            self._set_meta("commission_public_key", commission_key.hex())
            self._set_meta("created_at", utcnow())
            head = self._lock_head()
            self._append_entries(
                head, [encode_entry(EntryKind.DEFINITION, loaded.raw)], [EntryKind.DEFINITION]
            )
            self._write_head(head)
            self._set_meta("schema_version", str(schema.SCHEMA_VERSION))
            self._commit()
        except BaseException:
            self._rollback()
            raise
        self._election = compile_election(loaded)

    def _set_meta(self, key: str, value: str) -> None:
        self._execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        self._end_read()
        return None if row is None else str(row[0])

    def _end_read(self) -> None:
        # Inside a write transaction a read must not end it; outside, PostgreSQL would keep
        # a transaction (and its snapshot) open after every SELECT.
        if self._writing:
            return
        if self.dialect.name == "postgresql" and self.conn.info.transaction_status != 0:
            self.conn.rollback()

    # -- the election -------------------------------------------------------------------------

    def election(self) -> CompiledElection:
        """The election this store holds, from ledger entry 0."""
        if self._election is None:
            if not self.is_initialized():
                raise StoreError(f"{self.url} holds no election yet: run `tallyroom init DEFINITION.yaml`")
            row = self._execute("SELECT data FROM ledger_entries WHERE idx = 0").fetchone()
            self._end_read()
            kind, payload = decode_entry(bytes(row[0]))
            if kind != EntryKind.DEFINITION:
                raise StoreError("ledger entry 0 is not an election definition")
            # Entry 0 was fully checked when the store was created and the ledger's hashes
            # protect it since; decoding it again is enough.
            self._election = compile_election(load_definition(payload, "ledger entry 0", check=False))
        return self._election

    # -- the ledger ---------------------------------------------------------------------------

    def _lock_head(self) -> LedgerHead:
        sql = "SELECT size, frontier, root FROM ledger_head WHERE id = 1"
        if self.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        row = self._execute(sql).fetchone()
        if row is None:
            raise StoreError("the ledger head is missing: was the store initialised?")
        return LedgerHead(int(row[0]), bytes(row[2]), Frontier.from_bytes(bytes(row[1])))

    def _write_head(self, head: LedgerHead) -> None:
        head.size = head.frontier.size
        head.root = head.frontier.root()
        self._execute(
            "UPDATE ledger_head SET size = ?, frontier = ?, root = ? WHERE id = 1",
            (head.size, head.frontier.to_bytes(), head.root),
        )

    def _append_entries(
        self,
        head: LedgerHead,
        entries: Sequence[bytes],
        kinds: Sequence[str],
        leaves: Sequence[bytes] | None = None,
    ) -> list[tuple[int, bytes]]:
        start = head.frontier.size
        if leaves is None:
            leaves = [leaf_hash(e) for e in entries]
        nodes = head.frontier.extend(leaves)
        now = utcnow()
        self._executemany(
            self.dialect.q(
                "INSERT INTO ledger_entries (idx, kind, data, leaf_hash, created_at) VALUES (?, ?, ?, ?, ?)"
            ),
            [
                (start + i, str(k), e, h, now)
                for i, (k, e, h) in enumerate(zip(kinds, entries, leaves, strict=True))
            ],
        )
        # Nodes below STORED_LEVEL are recomputed from at most 2^(STORED_LEVEL-1) leaf hashes
        # when a proof needs them; storing only the rest saves ~15 of every 16 node rows.
        self._executemany(
            self.dialect.q("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)"),
            [n for n in nodes if n[0] >= STORED_LEVEL],
        )
        return [(start + i, h) for i, h in enumerate(leaves)]

    def head(self) -> LedgerHead:
        row = self._execute("SELECT size, frontier, root FROM ledger_head WHERE id = 1").fetchone()
        self._end_read()
        if row is None:
            raise StoreError("the ledger head is missing: was the store initialised?")
        return LedgerHead(int(row[0]), bytes(row[2]), Frontier.from_bytes(bytes(row[1])))

    def entries(
        self, start: int = 0, stop: int | None = None, batch: int = 20_000
    ) -> Iterator[tuple[int, str, bytes, bytes]]:
        """Yield (index, kind, data, leaf_hash) in ledger order."""
        end = self.head().size if stop is None else stop
        pos = start
        while pos < end:
            rows = self._execute(
                "SELECT idx, kind, data, leaf_hash FROM ledger_entries "
                "WHERE idx >= ? AND idx < ? ORDER BY idx",
                (pos, min(end, pos + batch)),
            ).fetchall()
            self._end_read()
            for r in rows:
                yield int(r[0]), str(r[1]), bytes(r[2]), bytes(r[3])
            pos += batch

    def node(self, level: int, index: int) -> bytes:
        """A complete subtree's hash (level 0 = a leaf), for proofs (ledger.merkle.NodeReader).

        Levels 1 to STORED_LEVEL-1 are not stored: they are recomputed from their leaves.
        """
        if 0 < level < STORED_LEVEL:
            width = 1 << level
            rows = self._execute(
                "SELECT leaf_hash FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                (index * width, (index + 1) * width),
            ).fetchall()
            self._end_read()
            if len(rows) != width:
                raise StoreError(f"no Merkle node at level {level}, index {index}")
            return root_from_leaf_hashes([bytes(r[0]) for r in rows])
        if level == 0:
            row = self._execute("SELECT leaf_hash FROM ledger_entries WHERE idx = ?", (index,)).fetchone()
        else:
            row = self._execute(
                "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        self._end_read()
        if row is None:
            raise StoreError(f"no Merkle node at level {level}, index {index}")
        return bytes(row[0])

    def append_entry(self, kind: EntryKind, payload: bytes) -> tuple[int, bytes]:
        """Append one non-protocol entry (checkpoint, snapshot, key change…) durably."""
        self._begin_write()
        try:
            head = self._lock_head()
            ((idx, h),) = self._append_entries(head, [encode_entry(kind, payload)], [kind])
            self._write_head(head)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return idx, h

    def add_checkpoint(self, size: int, root: bytes, ts: int, note: bytes) -> None:
        self._begin_write()
        try:
            self._execute(
                "INSERT INTO checkpoints (size, root, time, note) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (size) DO NOTHING",
                (size, root, ts, note),
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def checkpoints(self) -> list[tuple[int, bytes, int, bytes]]:
        rows = self._execute("SELECT size, root, time, note FROM checkpoints ORDER BY size").fetchall()
        self._end_read()
        return [(int(r[0]), bytes(r[1]), int(r[2]), bytes(r[3])) for r in rows]

    # -- protocols ----------------------------------------------------------------------------

    def append_protocols(
        self, items: Sequence[PendingProtocol], delta: Tally | None = None
    ) -> list[Appended]:
        """Append checked protocols in one durable transaction, with their tally update.

        An identical protocol already counted is a duplicate (its original receipt is
        returned); a different one for the same station, contest and count kind is a conflict
        and is not applied (DESIGN invariant 3). `delta`, when given, is the items' totals
        summed beforehand (by import workers); those not appended are taken out of it here.
        """
        election = self.election()
        self._begin_write()
        try:
            head = self._lock_head()
            results: list[Appended | None] = [None] * len(items)
            fresh: list[int] = []
            seen: dict[tuple[int, int, str], int] = {}
            existing = self._active_for(items, head.size)
            for i, it in enumerate(items):
                key = (it.contest, it.station, it.count_kind)
                prior = existing.get(key)
                if prior is None and key in seen:
                    # The same key earlier in this batch: resolved once that one is appended.
                    results[i] = Appended("pending", -1 - seen[key], b"")
                    continue
                if prior is not None:
                    pidx, pcounts, pleaf = prior
                    # The same numbers are the same protocol, whatever envelope or source they
                    # came in (a retry, a re-encoded file); different numbers are a conflict.
                    status = "duplicate" if pcounts == it.counts_list() else "conflict"
                    results[i] = Appended(status, pidx, pleaf, existing_index=pidx)
                    continue
                seen[key] = i
                fresh.append(i)
            entries = [items[i].entry or encode_entry(EntryKind.PROTOCOL, items[i].payload) for i in fresh]
            leaves = [items[i].leaf or leaf_hash(e) for i, e in zip(fresh, entries, strict=True)]
            appended = self._append_entries(head, entries, [EntryKind.PROTOCOL] * len(fresh), leaves)
            now = utcnow()
            rows = []
            for i, (idx, h) in zip(fresh, appended, strict=True):
                it = items[i]
                results[i] = Appended("new", idx, h)
                rows.append(
                    (
                        idx,
                        election.stations[it.station].id,
                        election.contests[it.contest].id,
                        it.count_kind,
                        it.counts_json or _dumps(it.counts),
                        "active",
                        _dumps(it.warnings),
                        it.body_sha256,
                        now,
                    )
                )
            if delta is None:
                delta = Tally(election)
                delta.apply_batch(
                    (items[i].contest, items[i].station, items[i].count_kind, items[i].counts_list())
                    for i in fresh
                )
            else:
                fresh_set = set(fresh)
                for i, it in enumerate(items):
                    if i not in fresh_set:
                        delta.apply(it.contest, it.station, it.count_kind, it.counts_list(), sign=-1)
            self._executemany(
                self.dialect.q(
                    "INSERT INTO protocols (entry_idx, station, contest, count_kind, counts, "
                    "status, warnings, body_sha256, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                rows,
            )
            self._fold_tally(delta)
            self._write_head(head)
            self._commit()
        except BaseException:
            self._rollback()
            self._active = None
            raise
        if self._active is not None:
            for i, (idx, _h) in zip(fresh, appended, strict=True):
                it = items[i]
                self._active.setdefault((it.contest, it.count_kind), {})[it.station] = idx
            self._active_size = head.size
        # Later copies of a key first seen in this same batch: resolve against its result.
        for i, res in enumerate(results):
            if res is not None and res.status == "pending":
                first_i = -1 - res.ledger_index
                origin = results[first_i]
                assert origin is not None
                same = items[first_i].counts_list() == items[i].counts_list()
                results[i] = Appended(
                    "duplicate" if same else "conflict",
                    origin.ledger_index,
                    origin.leaf_hash,
                    existing_index=origin.ledger_index,
                )
        return [r for r in results if r is not None]

    def _active_for(
        self, items: Sequence[PendingProtocol], head_size: int
    ) -> dict[tuple[int, int, str], tuple[int, list[int], bytes]]:
        """The active protocols (ledger index, counts, leaf hash) for the items' keys.

        Called under the head lock. Which keys are active comes from an in-memory map kept in
        step with the ledger (`_sync_active`); only the rare keys found there are read back.
        """
        active = self._sync_active(head_size)
        hits: dict[tuple[int, int, str], int] = {}
        for it in items:
            idx = active.get((it.contest, it.count_kind), {}).get(it.station)
            if idx is not None:
                hits[(it.contest, it.station, it.count_kind)] = idx
        out: dict[tuple[int, int, str], tuple[int, list[int], bytes]] = {}
        for key, idx in hits.items():
            row = self._execute(
                "SELECT p.counts, e.leaf_hash FROM protocols p JOIN ledger_entries e "
                "ON e.idx = p.entry_idx WHERE p.entry_idx = ?",
                (idx,),
            ).fetchone()
            out[key] = (idx, msgspec.json.decode(row[0]), bytes(row[1]))
        return out

    def _sync_active(self, head_size: int) -> dict[tuple[int, str], dict[int, int]]:
        """Bring the map of active protocols, (contest, kind) -> station -> entry, up to date.

        Other writers (intake workers) may have appended since this process last looked: new
        protocols are read by ledger index; a correction or annulment among the new entries
        changes which older protocols count, so then the whole map is read again.
        """
        election = self.election()
        if self._active is not None and self._active_size == head_size:
            return self._active
        if self._active is not None and self._active_size < head_size:
            kinds = {
                str(r[0])
                for r in self._execute(
                    "SELECT DISTINCT kind FROM ledger_entries WHERE idx >= ?", (self._active_size,)
                ).fetchall()
            }
            if kinds <= _KINDS_THAT_ONLY_ADD:
                rows = self._execute(
                    "SELECT station, contest, count_kind, entry_idx FROM protocols "
                    "WHERE entry_idx >= ? AND status = 'active'",
                    (self._active_size,),
                ).fetchall()
                self._add_active(election, rows)
                self._active_size = head_size
                return self._active
        self._active = {}
        rows = self._execute(
            "SELECT station, contest, count_kind, entry_idx FROM protocols WHERE status = 'active'"
        ).fetchall()
        self._add_active(election, rows)
        self._active_size = head_size
        return self._active

    def _add_active(self, election: CompiledElection, rows: Sequence[Any]) -> None:
        assert self._active is not None
        for station, contest, kind, idx in rows:
            ci = election.contest_index[str(contest)]
            self._active.setdefault((ci, str(kind)), {})[election.station_index[str(station)]] = int(idx)

    def _fold_tally(self, delta: Tally) -> None:
        """Add a batch's totals to the stored running totals (inside the append transaction)."""
        election = self.election()
        keys = list(delta.totals)
        if not keys:
            return
        stored: dict[tuple[str, str, str], tuple[int, list[int]]] = {}
        pairs = sorted({(k.contest, k.count_kind) for k in keys})
        for ci, kind in pairs:
            cid = election.contests[ci].id
            wanted = [election.areas[k.area].id for k in keys if k.contest == ci and k.count_kind == kind]
            if len(wanted) > 200:
                rows = self._execute(
                    "SELECT area, reporting, counts FROM tallies WHERE contest = ? AND count_kind = ?",
                    (cid, kind),
                ).fetchall()
            else:
                marks = ",".join("?" * len(wanted))
                rows = self._execute(
                    "SELECT area, reporting, counts FROM tallies WHERE contest = ? AND count_kind = ? "
                    f"AND area IN ({marks})",
                    (cid, kind, *wanted),
                ).fetchall()
            for r in rows:
                stored[(cid, str(r[0]), kind)] = (int(r[1]), msgspec.json.decode(r[2]))
        inserts = []
        updates = []
        for key, t in delta.totals.items():
            cid = election.contests[key.contest].id
            aid = election.areas[key.area].id
            old = stored.get((cid, aid, key.count_kind))
            if old is None:
                inserts.append((cid, aid, key.count_kind, t.reporting, _dumps(t.counts)))
            else:
                new = [a + b for a, b in zip(old[1], t.counts, strict=True)]
                updates.append((old[0] + t.reporting, _dumps(new), cid, aid, key.count_kind))
        self._executemany(
            self.dialect.q(
                "INSERT INTO tallies (contest, area, count_kind, reporting, counts) VALUES (?, ?, ?, ?, ?)"
            ),
            inserts,
        )
        self._executemany(
            self.dialect.q(
                "UPDATE tallies SET reporting = ?, counts = ? "
                "WHERE contest = ? AND area = ? AND count_kind = ?"
            ),
            updates,
        )

    def protocol_count(self, status: str = "active") -> int:
        n = int(self._execute("SELECT COUNT(*) FROM protocols WHERE status = ?", (status,)).fetchone()[0])
        self._end_read()
        return n

    def active_protocols(self) -> Iterator[tuple[int, int, str, list[int]]]:
        """Yield (contest index, station index, count kind, counts) of every counted protocol."""
        election = self.election()
        rows = self._execute(
            "SELECT contest, station, count_kind, counts FROM protocols WHERE status = 'active'"
        ).fetchall()
        self._end_read()
        for r in rows:
            yield (
                election.contest_index[str(r[0])],
                election.station_index[str(r[1])],
                str(r[2]),
                json.loads(r[3]),
            )

    def protocols_for(self, contest: int, count_kind: str) -> list[tuple[int, list[int]]]:
        """(station index, counts) of every counted protocol of one contest and count kind."""
        election = self.election()
        rows = self._execute(
            "SELECT station, counts FROM protocols WHERE contest = ? AND count_kind = ? "
            "AND status = 'active' ORDER BY entry_idx",
            (election.contests[contest].id, count_kind),
        ).fetchall()
        self._end_read()
        return [(election.station_index[str(r[0])], msgspec.json.decode(r[1])) for r in rows]

    def latest_entry(self, kind: str) -> tuple[int, bytes] | None:
        """The newest ledger entry of a kind (index, payload), e.g. the current audit state."""
        row = self._execute(
            "SELECT idx, data FROM ledger_entries WHERE kind = ? ORDER BY idx DESC LIMIT 1", (kind,)
        ).fetchone()
        self._end_read()
        if row is None:
            return None
        _kind, payload = decode_entry(bytes(row[1]))
        return int(row[0]), payload

    # -- tallies ------------------------------------------------------------------------------

    def totals(self, contest: int, area: int, count_kind: str) -> Totals | None:
        election = self.election()
        row = self._execute(
            "SELECT reporting, counts FROM tallies WHERE contest = ? AND area = ? AND count_kind = ?",
            (election.contests[contest].id, election.areas[area].id, count_kind),
        ).fetchone()
        self._end_read()
        return None if row is None else Totals(json.loads(row[1]), int(row[0]))

    def tally(self) -> Tally:
        """All running totals as stored (not recomputed)."""
        election = self.election()
        out = Tally(election)
        rows = self._execute("SELECT contest, area, count_kind, reporting, counts FROM tallies").fetchall()
        self._end_read()
        for r in rows:
            key = TallyKey(election.contest_index[str(r[0])], election.area_index[str(r[1])], str(r[2]))
            out.totals[key] = Totals(json.loads(r[4]), int(r[3]))
        return out

    def count_kinds(self) -> list[str]:
        rows = self._execute("SELECT DISTINCT count_kind FROM tallies ORDER BY count_kind").fetchall()
        self._end_read()
        return [str(r[0]) for r in rows]

    def replace_tally(self, tally: Tally) -> None:
        """Replace every running total (used by `rebuild` after recomputing from the ledger)."""
        election = self.election()
        self._begin_write()
        try:
            self._lock_head()
            self._execute("DELETE FROM tallies")
            self._executemany(
                self.dialect.q(
                    "INSERT INTO tallies (contest, area, count_kind, reporting, counts) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                [
                    (
                        election.contests[k.contest].id,
                        election.areas[k.area].id,
                        k.count_kind,
                        t.reporting,
                        _dumps(t.counts),
                    )
                    for k, t in tally.nonzero().items()
                ],
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise

    # -- imports ------------------------------------------------------------------------------

    def record_import(
        self,
        fmt: str,
        file_name: str,
        file_sha256: str,
        count_kind: str,
        rows: int,
        accepted: int,
        rejected: int,
        report: dict[str, Any],
    ) -> None:
        self._begin_write()
        try:
            self._execute(
                "INSERT INTO imports (format, file_name, file_sha256, count_kind, rows, accepted, "
                "rejected, report, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fmt,
                    file_name,
                    file_sha256,
                    count_kind,
                    rows,
                    accepted,
                    rejected,
                    msgspec.json.encode(report).decode(),
                    utcnow(),
                ),
            )
            self._commit()
        except BaseException:
            self._rollback()
            raise


def open_store(url: str) -> Store:
    """Open the store at a SQLite path or a `postgresql://` URL."""
    if not _is_postgres(url):
        path = Path(url.removeprefix("sqlite:///"))
        if path.parent and not path.parent.exists():
            raise StoreError(f"cannot create {path}: folder {path.parent} does not exist")
    return Store(url)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_unix() -> int:
    return int(time.time())

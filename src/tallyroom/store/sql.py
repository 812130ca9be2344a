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
import itertools
import json
import operator
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count, repeat
from pathlib import Path
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import LoadedDefinition, load_definition
from tallyroom.ledger.entry import EntryKind, decode_entry, encode_entry
from tallyroom.ledger.merkle import Frontier, leaf_hash, root_from_leaf_hashes
from tallyroom.protocol.pending import PendingProtocol, ProtocolBatch
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


@dataclass(frozen=True, slots=True)
class BatchAppended:
    """What happened to a batch (`Store.append_batch`).

    The items not in `others` were appended, in order, as ledger entries `first_index`,
    `first_index + 1`, …; `others` holds the duplicates and conflicts by item position.
    """

    first_index: int
    appended: int
    others: dict[int, Appended]


@dataclass
class LedgerHead:
    size: int
    root: bytes
    frontier: Frontier = field(repr=False)


#: Rows per INSERT statement for bulk appends on SQLite (see `Store._insert_rows`).
_ROWS_PER_INSERT = 50

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
        # The map of active protocols may already hold what this transaction appended.
        self._active = None
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

    def _insert_rows(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """`INSERT … VALUES (?, …)` for many rows; on SQLite, `_ROWS_PER_INSERT` rows a statement.

        One statement per row costs SQLite a step, a reset and a round of its mutexes, and
        the driver a release of the interpreter lock, per row: inserting rows in groups of
        `_ROWS_PER_INSERT` runs about 15% fewer instructions (measured with callgrind). Rows
        go in in the same order either way.
        """
        if not rows:
            return
        if self.dialect.name != "sqlite" or len(rows) < _ROWS_PER_INSERT:
            self._executemany(sql, rows)
            return
        head, _, marks = sql.partition(" VALUES ")
        k = _ROWS_PER_INSERT
        whole = len(rows) // k * k
        chain = itertools.chain.from_iterable
        self.conn.executemany(
            f"{head} VALUES {', '.join([marks] * k)}",
            [tuple(chain(rows[i : i + k])) for i in range(0, whole, k)],
        )
        self._executemany(sql, rows[whole:])

    def _insert_table(
        self,
        table: str,
        columns: Sequence[str],
        pg_types: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
    ) -> None:
        """Insert many rows of one table: one `INSERT … SELECT FROM unnest(arrays)` on
        PostgreSQL, `_insert_rows` on SQLite.

        psycopg's `executemany` sends one Bind/Execute per row, each planned and executed on
        its own by the server (~1,030 µs for 32 rows of a protocol batch, measured on this
        machine); one statement over column arrays in binary took ~450 µs and COPY ~340 µs,
        but COPY costs two round trips and cannot join a pipeline (`Store.pipeline`), where
        this statement costs none of its own.
        """
        if not rows:
            return
        if self.dialect.name == "postgresql":
            arrays = ", ".join(f"%b::{t}[]" for t in pg_types)
            self.conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})",
                [list(col) for col in zip(*rows, strict=True)],
            )
            return
        marks = ", ".join("?" * len(columns))
        self._insert_rows(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """On PostgreSQL, send statements without waiting for each one's answer until a
        result is needed (psycopg pipeline mode): an intake batch then waits for ~7 round
        trips instead of ~17. Nothing changes on SQLite (no round trips)."""
        if self.dialect.name != "postgresql":
            yield
            return
        with self.conn.pipeline():
            yield

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
            # create_all makes missing tables with their indexes but adds no index to a table
            # that exists: a store made before an index was declared gets it here.
            for table in schema.metadata.sorted_tables:
                for index in table.indexes:
                    index.create(engine, checkfirst=True)
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
        if len(kinds) != len(entries):
            raise ValueError(f"{len(entries)} entries but {len(kinds)} kinds")
        i = 0
        while i < len(entries):  # one insert per run of entries of the same kind
            j = i + 1
            while j < len(entries) and kinds[j] == kinds[i]:
                j += 1
            self._insert_entries(head, entries[i:j], kinds[i], leaves[i:j])
            i = j
        return list(zip(count(start), leaves))

    def _insert_entries(
        self, head: LedgerHead, entries: Sequence[bytes], kind: str, leaves: Sequence[bytes]
    ) -> None:
        """Write entries of one kind from the head's size on, with the Merkle nodes they complete."""
        if len(entries) != len(leaves):
            raise ValueError(f"{len(entries)} entries but {len(leaves)} leaf hashes")
        if not entries:
            return
        start = head.frontier.size
        nodes = head.frontier.extend(leaves)
        self._insert_table(
            "ledger_entries",
            ("idx", "kind", "data", "leaf_hash", "created_at"),
            ("int8", "text", "bytea", "bytea", "text"),
            list(zip(count(start), repeat(str(kind)), entries, leaves, repeat(utcnow()))),
        )
        self._insert_nodes(nodes)

    def _insert_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        # Nodes below STORED_LEVEL are recomputed from at most 2^(STORED_LEVEL-1) leaf hashes
        # when a proof needs them; storing only the rest saves ~15 of every 16 node rows.
        self._insert_table(
            "merkle_nodes",
            ("level", "idx", "hash"),
            ("int4", "int8", "bytea"),
            [n for n in nodes if n[0] >= STORED_LEVEL],
        )

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
            if self.dialect.name == "sqlite":
                yield from rows  # already (int, str, bytes, bytes)
            else:
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
        batch = ProtocolBatch.of(items)
        return self._appended(batch, self.append_batch(batch, delta))

    def append_protocols_locked(self, head: LedgerHead, items: Sequence[PendingProtocol]) -> list[Appended]:
        """`append_protocols` inside the caller's write transaction, under the head lock it
        holds (`lock_head`): intake writes its receipts and journal lines in the same commit.
        `head` is moved to the new size and root; nothing is durable before the caller commits.
        """
        batch = ProtocolBatch.of(items)
        return self._appended(batch, self._append_batch_locked(head, batch, None))

    @staticmethod
    def _appended(batch: ProtocolBatch, done: BatchAppended) -> list[Appended]:
        out: list[Appended] = []
        k = 0
        for i in range(len(batch)):
            other = done.others.get(i)
            if other is None:
                out.append(Appended("new", done.first_index + k, batch.leaves[i]))
                k += 1
            else:
                out.append(other)
        return out

    def begin_write(self) -> None:
        """Open a write transaction (for `lock_head` and the `*_locked` appends)."""
        self._begin_write()

    def commit(self) -> None:
        self._commit()

    def rollback(self) -> None:
        self._rollback()

    def lock_head(self) -> LedgerHead:
        """Take the ledger head row inside a write transaction: appends serialise on it."""
        return self._lock_head()

    def append_batch(self, batch: ProtocolBatch, delta: Tally | None = None) -> BatchAppended:
        """`append_protocols` for protocols given column by column (what imports append).

        The same checks, entries, receipts and tally update as `append_protocols`, in one
        durable transaction: items that are neither duplicates nor conflicts get consecutive
        ledger indices from `BatchAppended.first_index`, in order.
        """
        self._begin_write()
        try:
            done = self._append_batch_locked(self._lock_head(), batch, delta)
            self._commit()
        except BaseException:
            self._rollback()
            raise
        return done

    def _append_batch_locked(
        self, head: LedgerHead, batch: ProtocolBatch, delta: Tally | None
    ) -> BatchAppended:
        election = self.election()
        n = len(batch)
        others: dict[int, Appended] = {}
        fresh: Sequence[int]
        if self._all_new(batch, head.size):
            fresh = range(n)  # the common case (an import): every item is new
        else:
            keys = list(zip(batch.contests, batch.stations, batch.count_kinds, strict=True))
            fresh = self._sort_out(batch, keys, self._active_for_keys(keys, head.size), others)
        all_fresh = len(fresh) == n
        start = head.frontier.size
        leaves = batch.leaves if all_fresh else [batch.leaves[i] for i in fresh]
        entries = batch.entries if all_fresh else [batch.entries[i] for i in fresh]
        self._insert_entries(head, entries, EntryKind.PROTOCOL, leaves)
        now = utcnow()
        stations, contests = election.stations, election.contests
        if all_fresh:
            cols: tuple[Sequence[Any], ...] = (
                [stations[s].id for s in batch.stations],
                [contests[c].id for c in batch.contests],
                batch.count_kinds,
                batch.counts_json,
                batch.warnings_json,
                batch.body_sha256,
            )
        else:
            cols = (
                [stations[batch.stations[i]].id for i in fresh],
                [contests[batch.contests[i]].id for i in fresh],
                [batch.count_kinds[i] for i in fresh],
                [batch.counts_json[i] for i in fresh],
                [batch.warnings_json[i] for i in fresh],
                [batch.body_sha256[i] for i in fresh],
            )
        if delta is None:
            delta = Tally(election)
            delta.apply_batch(
                (batch.contests[i], batch.stations[i], batch.count_kinds[i], batch.counts_of(i))
                for i in fresh
            )
        else:
            for i in others:
                c, si, kind = batch.contests[i], batch.stations[i], batch.count_kinds[i]
                delta.apply(c, si, kind, batch.counts_of(i), sign=-1)
        if fresh:
            ids, cids, kinds, counts, warnings, sha = cols
            self._insert_table(
                "protocols",
                ("entry_idx", "station", "contest", "count_kind", "counts", "status", "warnings",
                 "body_sha256", "received_at"),
                ("int8", "text", "text", "text", "text", "text", "text", "text", "text"),
                list(
                    zip(
                        range(start, start + len(fresh)),
                        ids,
                        cids,
                        kinds,
                        counts,
                        repeat("active"),
                        warnings,
                        sha,
                        repeat(now),
                    )
                ),
            )
        self._fold_tally(delta)
        self._write_head(head)
        if self._active is not None:
            active = self._active
            for k, i in enumerate(fresh) if not isinstance(fresh, range) else ():
                amap = active.setdefault((batch.contests[i], batch.count_kinds[i]), {})
                amap[batch.stations[i]] = start + k
            if isinstance(fresh, range) and n:
                amap = active.setdefault((batch.contests[0], batch.count_kinds[0]), {})
                amap.update(zip(batch.stations, count(start)))
            self._active_size = head.size
        # Later copies of a key first seen in this same batch: resolve against its result.
        if others:
            position = {i: start + k for k, i in enumerate(fresh)}
            for i, res in list(others.items()):
                if res.status == "pending":
                    first_i = -1 - res.ledger_index
                    idx = position[first_i]
                    same = batch.counts_of(first_i) == batch.counts_of(i)
                    others[i] = Appended(
                        "duplicate" if same else "conflict", idx, batch.leaves[first_i], existing_index=idx
                    )
        return BatchAppended(start, len(fresh), others)

    def _all_new(self, batch: ProtocolBatch, head_size: int) -> bool:
        """Whether a batch of one contest and count kind has only stations not yet counted
        and none twice: then every item is appended (checked with sets, not item by item)."""
        n = len(batch)
        if not n or len(set(batch.contests)) != 1 or len(set(batch.count_kinds)) != 1:
            return False
        if len(set(batch.stations)) != n:
            return False
        amap = self._sync_active(head_size).get((batch.contests[0], batch.count_kinds[0]))
        return not amap or amap.keys().isdisjoint(batch.stations)

    def _sort_out(
        self,
        batch: ProtocolBatch,
        keys: Sequence[tuple[int, int, str]],
        existing: dict[tuple[int, int, str], tuple[int, list[int], bytes]],
        others: dict[int, Appended],
    ) -> list[int]:
        """The items to append; duplicates and conflicts go into `others`.

        A key already counted is a duplicate when the numbers are the same (whatever envelope
        or source they came in: a retry, a re-encoded file) and a conflict otherwise. A key
        seen earlier in the batch is marked "pending" and resolved once that one is appended.
        """
        fresh: list[int] = []
        seen: dict[tuple[int, int, str], int] = {}
        for i, key in enumerate(keys):
            prior = existing.get(key)
            if prior is None and key in seen:
                others[i] = Appended("pending", -1 - seen[key], b"")
                continue
            if prior is not None:
                pidx, pcounts, pleaf = prior
                status = "duplicate" if pcounts == batch.counts_of(i) else "conflict"
                others[i] = Appended(status, pidx, pleaf, existing_index=pidx)
                continue
            seen[key] = i
            fresh.append(i)
        return fresh

    def _active_for_keys(
        self, keys: Sequence[tuple[int, int, str]], head_size: int
    ) -> dict[tuple[int, int, str], tuple[int, list[int], bytes]]:
        """The active protocols (ledger index, counts, leaf hash) for (contest, station, kind) keys.

        Called under the head lock. Which keys are active comes from an in-memory map kept in
        step with the ledger (`_sync_active`); only the rare keys found there are read back.
        """
        active = self._sync_active(head_size)
        hits: dict[tuple[int, int, str], int] = {}
        for contest, kind in {(c, k) for c, _s, k in keys}:
            amap = active.get((contest, kind))
            if not amap:
                continue
            for key in keys:
                if key[0] == contest and key[2] == kind:
                    idx = amap.get(key[1])
                    if idx is not None:
                        hits[key] = idx
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
        protocols are read by ledger index. A correction or annulment among the new entries
        also stops an older protocol counting; the only such change is active -> superseded or
        annulled with `superseded_by` = the deciding entry, so the protocols it stopped are the
        inactive ones decided since (a few rows, on the `protocols_inactive` index). Reading
        the whole map again instead cost 0.3-0.5 s at 400,000 protocols per decision.
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
            if not kinds <= _KINDS_THAT_ONLY_ADD:
                stopped = self._execute(
                    "SELECT station, contest, count_kind, entry_idx FROM protocols "
                    "WHERE status <> 'active' AND superseded_by >= ?",
                    (self._active_size,),
                ).fetchall()
                for station, contest, kind, idx in stopped:
                    m = self._active.get((election.contest_index[str(contest)], str(kind)))
                    si = election.station_index[str(station)]
                    if m is not None and m.get(si) == int(idx):
                        del m[si]
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
                if len(old[1]) != len(t.counts):
                    raise StoreError(f"tally {cid}/{aid}/{key.count_kind}: {len(old[1])} lines stored")
                new = list(map(operator.add, old[1], t.counts))
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

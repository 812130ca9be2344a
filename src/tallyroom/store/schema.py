"""The store's tables, declared once with SQLAlchemy Core for both SQLite and PostgreSQL.

See docs/decisions/0002-store-layout.md for why the tables look like this. Migrations are
numbered; `meta.schema_version` records the last one applied.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

#: A 64-bit key that SQLite stores as the table's rowid ("INTEGER PRIMARY KEY"): a BIGINT
#: key there would be a second B-tree beside the rowid, written on every append.
RowKey = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: The one ledger head row (id = 1): appends serialise on it (DESIGN: one ledger head).
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),
    Column("root", LargeBinary, nullable=False),
)

#: Every ledger entry, with its exact bytes and RFC 6962 leaf hash.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("idx", RowKey, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("created_at", String(40), nullable=False),
)

#: Hashes of complete Merkle subtrees at level >= 1, for inclusion and consistency proofs.
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    # The key is the whole point of the table: store the rows in the key's B-tree.
    sqlite_with_rowid=False,
)

#: The decoded record of every protocol entry; `status` says whether it counts.
protocols = Table(
    "protocols",
    metadata,
    Column("entry_idx", RowKey, primary_key=True, autoincrement=False),
    Column("station", String(100), nullable=False),
    Column("contest", String(100), nullable=False),
    Column("count_kind", String(16), nullable=False),
    Column("counts", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("warnings", Text, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("superseded_by", BigInteger, nullable=True),
    Index(
        "protocols_one_active",
        "station",
        "contest",
        "count_kind",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
    # The few protocols that no longer count (superseded, annulled), by key: with only the
    # partial index above, a lookup of every version of one station's protocol (a photo
    # upload's) scanned the whole table — 0.3 s at 400,000 protocols, serialised on a
    # worker's one read connection, which stalled a 100,000-station night's last hour.
    Index(
        "protocols_inactive",
        "station",
        "contest",
        "count_kind",
        sqlite_where=text("status <> 'active'"),
        postgresql_where=text("status <> 'active'"),
    ),
    # No (contest, kind, status) index: with one, SQLite's planner picks it for the
    # 900-key IN lookups of an append and scans every protocol of the contest (measured: 0.39 s
    # a query at 620,000 protocols instead of milliseconds).
)

#: Running totals per (contest, area, count kind): the counts vector in form order.
tallies = Table(
    "tallies",
    metadata,
    Column("contest", String(100), primary_key=True),
    Column("area", String(100), primary_key=True),
    Column("count_kind", String(16), primary_key=True),
    Column("reporting", Integer, nullable=False),
    Column("counts", Text, nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("note", LargeBinary, nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("format", String(32), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("count_kind", String(16), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("report", Text, nullable=False),
    Column("finished_at", String(40), nullable=False),
)

SCHEMA_VERSION = 1


# -- intake (issue 4): device keys, intake journal, receipts, conflicts, corrections, tokens,
# protocol images. Kept apart from the ledger tables; see docs/decisions/0004-intake.md.

#: Station device keys (Ed25519). Registration, rotation and revocation are also ledger
#: entries of kind `key_change`; this table is the fast lookup for intake.
device_keys = Table(
    "device_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("station", String(100), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40), nullable=True),
    Column("registered_index", BigInteger, nullable=True),
    Column("revoked_index", BigInteger, nullable=True),
    Index("device_keys_by_station", "station", "status"),
)

#: Every intake attempt, accepted or not: never part of the results ledger.
intake_journal = Table(
    "intake_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("station", String(100), nullable=True),
    Column("key_id", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("reason", String(48), nullable=True),
    Column("http_status", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("ledger_index", BigInteger, nullable=True),
    Column("body_sha256", String(64), nullable=True),
    Index("intake_journal_by_station", "station", "outcome"),
)

#: The commission-signed receipt of a ledger entry, as first sent (resends get it again).
intake_receipts = Table(
    "intake_receipts",
    metadata,
    Column("entry_idx", RowKey, primary_key=True, autoincrement=False),
    Column("receipt", Text, nullable=False),
)

#: Submissions that differ from the protocol already counted: held, never applied.
intake_conflicts = Table(
    "intake_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", String(40), nullable=False),
    Column("station", String(100), nullable=False),
    Column("contest", String(100), nullable=False),
    Column("count_kind", String(16), nullable=False),
    Column("key_id", String(64), nullable=True),
    Column("existing_index", BigInteger, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_at", String(40), nullable=True),
    Column("resolution_index", BigInteger, nullable=True),
    Index(
        "intake_conflicts_once",
        "station",
        "contest",
        "count_kind",
        "body_sha256",
        unique=True,
    ),
)

#: Two-person workflow: corrections, annulments and conflict dismissals, proposed by one
#: person and decided by a different supervisor; an approval becomes a ledger entry.
intake_proposals = Table(
    "intake_proposals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("action", String(16), nullable=False),
    Column("station", String(100), nullable=False),
    Column("contest", String(100), nullable=False),
    Column("count_kind", String(16), nullable=False),
    Column("target_index", BigInteger, nullable=False),
    Column("conflict_id", Integer, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("body_sha256", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("proposed_by", String(100), nullable=False),
    Column("proposed_at", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_by", String(100), nullable=True),
    Column("decided_at", String(40), nullable=True),
    Column("decision_note", Text, nullable=True),
    Column("ledger_index", BigInteger, nullable=True),
    Index("intake_proposals_by_status", "status"),
)

#: Commission staff API tokens: only a SHA-256 of the secret is stored.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40), nullable=True),
)

#: Photographs or scans of paper protocols, keyed by the SHA-256 a protocol declared.
protocol_images = Table(
    "protocol_images",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("media_type", String(32), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("station", String(100), nullable=False),
    Column("contest", String(100), nullable=False),
    Column("count_kind", String(16), nullable=False),
    Column("uploaded_at", String(40), nullable=False),
    Column("uploaded_by", String(100), nullable=False),
)

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
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
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
)

#: The decoded record of every protocol entry; `status` says whether it counts.
protocols = Table(
    "protocols",
    metadata,
    Column("entry_idx", BigInteger, primary_key=True, autoincrement=False),
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
    Index("protocols_by_contest", "contest", "count_kind", "status"),
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

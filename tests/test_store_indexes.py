"""Lookups that run per request on a large store use an index, and older stores get it.

A query that scans the protocols table costs nothing on a test store and 0.3 s a call at
400,000 protocols, so these tests read the query plan, not the clock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tallyroom.definition.load import load_definition
from tallyroom.store import intake as db
from tallyroom.store.sql import Store, open_store


def _store(url: str, definition: bytes) -> Store:
    store = open_store(url)
    store.initialize(load_definition(definition), b"\x01" * 32)
    return store


def _indexes(store: Store) -> set[str]:
    if store.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'protocols'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'protocols'"
    names = {str(r[0]) for r in store._execute(sql).fetchall()}
    store._end_read()
    return names


def test_every_version_of_a_protocol_is_found_through_indexes(
    tmp_path: Path, small_definition: bytes
) -> None:
    _store(str(tmp_path / "s.db"), small_definition).close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        plan = "\n".join(
            str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {db.BODIES_SQL}", ("ps", "c", "k") * 2)
        )
    assert "protocols_one_active" in plan and "protocols_inactive" in plan, plan
    assert "SCAN p\n" not in plan + "\n" and "SCAN protocols" not in plan, plan


def test_both_stores_have_the_index_and_migrate_adds_it_to_an_older_one(
    store_url: str, small_definition: bytes
) -> None:
    store = _store(store_url, small_definition)
    assert {"protocols_one_active", "protocols_inactive"} <= _indexes(store)
    store._begin_write()
    store._execute("DROP INDEX protocols_inactive")
    store._commit()
    assert "protocols_inactive" not in _indexes(store)
    store.migrate()
    assert "protocols_inactive" in _indexes(store)
    assert db.bodies_for(store, "nowhere", "nothing", "machine") == []
    store.close()

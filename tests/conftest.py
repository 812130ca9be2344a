"""Shared fixtures: real stores on disk (SQLite) and on a real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import DATA, PG_URL


@pytest.fixture
def small_definition() -> bytes:
    return (DATA / "small.yaml").read_bytes()


def _pg_database() -> Iterator[str]:
    import psycopg

    name = f"tallyroom_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")  # type: ignore[union-attr]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    if not PG_URL:
        pytest.skip(
            "PostgreSQL tests need TALLYROOM_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    yield from _pg_database()

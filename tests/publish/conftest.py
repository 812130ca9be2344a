"""Fixtures: a published mini Kyrgyz election shared by the read-only tests."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from publish_support import make_store

from tallyroom.publish.builder import Outcome, Publisher
from tallyroom.store.sql import Store


@dataclass
class Published:
    store: Store
    key: Path
    db: Path
    out: Path
    outcome: Outcome

    @property
    def current(self) -> Path:
        return self.out / "current"


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """All machine counts and the first 100 hand counts, published once."""
    folder = tmp_path_factory.mktemp("published")
    store, key = make_store(folder, machine=None, hand=100)
    out = folder / "pub"
    outcome = Publisher(store, out, key).publish()
    assert outcome.status == "published", outcome.failures
    return Published(store, key, folder / "kg.db", out, outcome)

"""Fixtures: real published snapshots for the verifier's tests (see verify_support)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from verify_support import SUBSET_ROWS, Pub, build_mini, build_russia, build_signed


@pytest.fixture(scope="session")
def mini_pub(tmp_path_factory: pytest.TempPathFactory) -> Pub:
    """Snapshot 1: every machine count, 100 hand counts; snapshot 2: 50 more, a correction,
    an annulment and a MACRO audit."""
    return build_mini(tmp_path_factory.mktemp("mini"))


@pytest.fixture(scope="session")
def signed_pub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pub]:
    pub = build_signed(tmp_path_factory.mktemp("signed"))
    yield pub
    if pub.store is not None:
        pub.store.close()


@pytest.fixture(scope="session")
def russia_pub(tmp_path_factory: pytest.TempPathFactory) -> Pub:
    return build_russia(tmp_path_factory.mktemp("ru"), SUBSET_ROWS)

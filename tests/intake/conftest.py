"""Live intake servers on loopback, on SQLite and PostgreSQL (see intake_support)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from intake_support import Live, prepare_store, server_log, start_server


@pytest.fixture
def live(store_url: str, tmp_path: Path) -> Iterator[Live]:
    """A fresh election, device keys for every station, five staff tokens, a running server."""
    server = start_server(prepare_store(store_url, tmp_path))
    try:
        yield server
    finally:
        server.stop()
        log = server_log(server)
        assert "Traceback" not in log, log[-3000:]

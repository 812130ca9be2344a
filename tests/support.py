"""Paths and helpers shared by the tests (importable as `support`)."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]
# shared/ sits beside the repository (../shared), in a session and in CI alike.
SHARED = REPO.parent / "shared" / "data"
PG_URL = os.environ.get("TALLYROOM_TEST_POSTGRES_URL")


def shared_data(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared/ folder sits beside the repo)")
    return path


def kyrgyz_lines(choices: list[str], registered: int, rng: random.Random) -> dict[str, int]:
    """A protocol of the Kyrgyz form that passes every error rule, with random numbers."""
    additional = rng.randint(0, registered // 50)
    voters = registered + additional
    issued_station = rng.randint(0, voters * 6 // 10)
    issued_outside = rng.randint(0, min(30, voters - issued_station))
    issued_early = 0
    issued = issued_station + issued_outside + issued_early
    received = issued + rng.randint(0, 200)
    in_mobile = rng.randint(0, issued_outside)
    in_stationary = rng.randint(0, issued - in_mobile) if issued > in_mobile else 0
    cast = in_mobile + in_stationary
    invalid = rng.randint(0, cast // 10)
    valid = cast - invalid
    votes = [0] * len(choices)
    for _ in range(valid):
        votes[rng.randrange(len(choices))] += 1
    lines = {
        "registered_main": registered,
        "registered_additional": additional,
        "ballots_received": received,
        "issued_early": issued_early,
        "issued_station": issued_station,
        "issued_outside": issued_outside,
        "cancelled": received - issued,
        "in_stationary_boxes": in_stationary,
        "in_mobile_boxes": in_mobile,
        "invalid": invalid,
        "valid": valid,
    }
    lines.update(zip(choices, votes, strict=True))
    return lines


def published_bytes(path: Path) -> bytes:
    """A published file's bytes as a reader gets them: station pages and their JSON twins are
    stored only as ``<file>.gz`` (docs/bulletin.md §2)."""
    if path.exists():
        return path.read_bytes()
    return gzip.decompress(Path(f"{path}.gz").read_bytes())


def published_text(path: Path) -> str:
    return published_bytes(path).decode("utf-8")

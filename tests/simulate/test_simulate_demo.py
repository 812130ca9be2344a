"""`make demo`: the Kyrgyz 2021 night replayed live, then the official result and seats.

Run as a newcomer would (the script, a real server on loopback, a real publish folder), but
shorter and with TALLYROOM_DEMO_EXIT=1 so that it stops after its checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO
from tallyroom.simulate.server import free_port

pytestmark = pytest.mark.slow


def test_the_demo_replays_the_night_and_shows_the_official_seats(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "kyrgyzstan-2021" / "demo.py"),
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(port),
            "--duration",
            "20",
        ],
        env={**os.environ, "TALLYROOM_DEMO_EXIT": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-6000:] + done.stderr[-3000:]
    lines = out.splitlines()
    url_line = next(i for i, ln in enumerate(lines) if f"http://127.0.0.1:{port}/" in ln)
    over = next(i for i, ln in enumerate(lines) if "the night is over" in ln)
    assert url_line < over, "the URL is printed before the night, so a newcomer can watch it"
    assert "the hand count equals the official 2021 result: 1,281,622 voters took part" in out
    seats = next(ln for ln in lines if ln.startswith("list seats"))
    for party, n in (
        ("Ata-Jurt Kyrgyzstan", 15),
        ("Ishenim", 12),
        ("Yntymak", 9),
        ("Alliance", 7),
        ("Butun Kyrgyzstan", 6),
        ("Yiman Nuru", 5),
    ):
        assert f"{party} {n}" in seats, seats
    assert "2,494 stations" in out and "tally == truth, 0 lost, 0 forged accepted" in out
    assert (tmp_path / "demo" / "site" / "current.json").exists()

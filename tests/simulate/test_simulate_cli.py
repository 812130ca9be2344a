"""`tallyroom simulate`'s usage errors: one clear message and exit code 2, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tallyroom.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stations", "2000", "--faults", "bogus"], 'unknown fault "bogus"'),
        (["--stations", "2000", "--faults", "slow=7"], "between 0 and 1"),
        (["--stations", "50"], "50 is not in the range"),
        (["--stations", "2000", "--url", "http://127.0.0.1:9"], "--url needs --db"),
        (
            ["--stations", "2000", "--url", "http://127.0.0.1:9", "--db", "x.db", "--kill-every", "5"],
            "--kill-every needs the simulator's own server",
        ),
        (["--stations", "2000", "--prepare-only"], "--prepare-only needs --db"),
    ],
)
def test_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", *args, "--work", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_prepare_only_stores_the_election_once(tmp_path: Path) -> None:
    db = str(tmp_path / "night.db")
    first = CliRunner().invoke(
        main, ["simulate", "--stations", "150", "--seed", "3", "--db", db, "--prepare-only"]
    )
    assert first.exit_code == 0, first.output
    assert "holds the simulated election (150 stations, seed 3)" in first.output
    assert (tmp_path / "night.db.commission-key").exists()
    again = CliRunner().invoke(main, ["simulate", "--stations", "150", "--db", db, "--prepare-only"])
    assert again.exit_code == 2
    assert "already holds an election" in again.output

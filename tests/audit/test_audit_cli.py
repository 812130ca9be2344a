"""``audit sample-size`` via Click's CliRunner: the JSON contract and clear errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tallyroom.audit.cli import audit


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(audit, ["sample-size", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("pct", "winner", "asn"),
    [("10", 9000, 8), ("10", 5500, 470), ("5", 6000, 154), ("5%", 5500, 608)],
)
def test_sample_size_json(pct: str, winner: int, asn: int) -> None:
    code, out = run(
        "--method", "bravo", "--risk-limit", pct, "--ballots", "10000",
        "--votes", f"A={winner},B={10_000 - winner}",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert data["asn"] == asn
    assert data["method"] == "bravo"
    assert data["risk_limit"] == float(pct.rstrip("%"))
    assert data["winner"] == "A"
    assert data["margin"] == 2 * winner - 10_000
    assert data["diluted_margin"] == pytest.approx((2 * winner - 10_000) / 10_000)
    quantiles = data["sample_size_for_probability"]
    assert set(quantiles) == {"0.7", "0.8", "0.9"}


def test_winner_is_the_top_choice_in_any_order() -> None:
    code, out = run("--risk-limit", "10", "--ballots", "1000", "--votes", "B=400, A=600")
    assert code == 0, out
    data = json.loads(out)
    assert data["winner"] == "A" and data["runner_up"] == "B" and data["asn"] == 119


def test_multiple_winners() -> None:
    code, out = run(
        "--risk-limit", "10", "--ballots", "700", "--votes", "c1=300,c2=200,c3=100",
        "--winners", "2",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert data["asn"] == 101  # Arlo test_bravo "test7"
    assert data["winner"] == ["c1", "c2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--votes", "A=9000;B=1000"], "whole number"),
        (["--votes", "A=9000"], "at least two"),
        (["--votes", "A=9000,=3"], "NAME=VOTES"),
        (["--votes", "A=x,B=1"], "whole number"),
        (["--votes", "A=-5,B=1"], "whole number"),
        (["--votes", "A=5,A=1"], "twice"),
        (["--votes", "A=5000,B=5000"], "no audit possible"),
        (["--risk-limit", "0"], "between 0 and 100"),
        (["--risk-limit", "100"], "between 0 and 100"),
        (["--risk-limit", "ten"], "percentage"),
        (["--ballots", "100"], "more than the 100 ballots"),
        (["--ballots", "0"], "ballots"),
        (["--winners", "2"], "no loser"),
        (["--method", "macro"], "bravo"),
    ],
)
def test_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    base = {"--risk-limit": "10", "--ballots": "10000", "--votes": "A=6000,B=4000"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [x for pair in base.items() for x in pair]
    code, out = run(*flat)
    assert code == 2, out
    assert message in out
    assert "Traceback" not in out


def test_tie_says_no_audit_possible() -> None:
    code, out = run("--risk-limit", "10", "--ballots", "10", "--votes", "A=5,B=5")
    assert code == 2
    assert "no audit possible" in out and "full hand count" in out

"""``tallyroom seats calc`` through click.testing.CliRunner: CSV and JSON input, both outputs,
and every kind of bad input (message naming the file and row, exit code 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tallyroom.seats.cli import calc, seats

# Kyrgyzstan 2021, the six lists over the thresholds (kg_2021_official/results.json)
KG_2021 = {
    "Ata-Jurt Kyrgyzstan": 222005,
    "Ishenim": 174470,
    "Yntymak": 141009,
    "Alliance": 106955,
    "Butun Kyrgyzstan": 90223,
    "Yiman Nuru": 79025,
}


def _run(tmp_path: Path, name: str, content: str, *args: str) -> Result:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return CliRunner().invoke(calc, [*args, str(path)])


def _csv(votes: dict[str, int], header: bool = True) -> str:
    lines = ["name,votes"] if header else []
    lines += [f"{name},{count}" for name, count in votes.items()]
    return "\n".join(lines) + "\n"


KG_ARGS = ("--method", "hare", "--seats", "54", "--threshold", "5", "--base", "1281622")


def test_csv_with_header_to_json(tmp_path: Path) -> None:
    result = _run(tmp_path, "kg.csv", _csv(KG_2021), *KG_ARGS, "--cap", "27", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data["seats"].values()) == [15, 12, 9, 7, 6, 5]
    assert data["method"] == "hare"
    assert data["explanation"]["quota"]["fraction"] == "271229/18"  # 813,687 / 54
    check = data["explanation"]["thresholds"][0]
    assert check["base"] == {"label": "stated base", "value": 1281622}


def test_csv_without_header_and_json_file_agree(tmp_path: Path) -> None:
    from_csv = _run(tmp_path, "a.csv", _csv(KG_2021, header=False), *KG_ARGS, "--format", "json")
    from_json = _run(tmp_path, "a.json", json.dumps(KG_2021), *KG_ARGS, "--format", "json")
    assert from_csv.exit_code == from_json.exit_code == 0
    assert json.loads(from_csv.output)["seats"] == json.loads(from_json.output)["seats"]


def test_table_output(tmp_path: Path) -> None:
    result = _run(
        tmp_path, "kg.csv", _csv(KG_2021), *KG_ARGS, "--base-label", "voters who took part"
    )
    assert result.exit_code == 0, result.output
    assert "54 seats by hare" in result.output
    assert "Ata-Jurt Kyrgyzstan" in result.output and "% of voters who took part" in result.output
    assert "17.32" in result.output  # Ata-Jurt's published share of voters who took part
    assert "quota: 15068.277778" in result.output


def test_default_base_is_the_sum_of_the_file(tmp_path: Path) -> None:
    votes = {"A": 940, "B": 50, "C": 10}
    result = _run(
        tmp_path, "v.csv", _csv(votes), "--method", "dhondt", "--seats", "10",
        "--threshold", "5", "--format", "json",
    )  # fmt: skip
    data = json.loads(result.output)
    assert data["seats"] == {"A": 10, "B": 0, "C": 0}  # B has exactly 5% of 1000: passes
    b = next(c for c in data["explanation"]["thresholds"] if c["choice"] == "B")
    assert b["passed"] and b["base"] == {"label": "votes in the file", "value": 1000}


def test_against_all_cap_and_tie_seed(tmp_path: Path) -> None:
    votes = {"A": 500, "B": 500, "against all": 900}
    result = _run(
        tmp_path, "v.csv", _csv(votes), "--method", "dhondt", "--seats", "3",
        "--against-all", "against all", "--tie-seed", "public-seed", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["seats"]["against all"] == 0 and sum(data["seats"].values()) == 3
    (tie,) = data["explanation"]["ties"]
    assert "seed 'public-seed'" in tie["rule"] and len(tie["draws"]) == 2
    table = _run(
        tmp_path, "v.csv", _csv(votes), "--method", "dhondt", "--seats", "3",
        "--against-all", "against all",
    )  # fmt: skip
    assert "tie (highest averages: last seats) between A, B" in table.output


def test_group_mounts_calc(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"A": 3, "B": 1}', encoding="utf-8")
    result = CliRunner().invoke(
        seats, ["calc", "--method", "sainte-lague", "--seats", "4", "--format", "json", str(path)]
    )
    assert result.exit_code == 0 and json.loads(result.output)["seats"] == {"A": 3, "B": 1}


@pytest.mark.parametrize(
    ("name", "content", "args", "message"),
    [
        ("v.csv", "name,votes\nA,10\nB,abc\n", (), "v.csv, row 3: votes 'abc' is not a whole"),
        ("v.csv", "A,10\nB,-4\n", (), "v.csv, row 2: votes must not be negative, got -4"),
        ("v.csv", "A,10\nB,1.5\n", (), "v.csv, row 2: votes '1.5' is not a whole number"),
        ("v.csv", "A,10\nB,3\nA,4\n", (), "row 3: the name 'A' occurs twice (first in row 1)"),
        ("v.csv", "A,10,3\n", (), "v.csv, row 1: expected 2 columns (name,votes), got 3"),
        ("v.csv", "", (), "v.csv: the file is empty"),
        ("v.csv", "name,votes\n", (), "v.csv: no choices in the file"),
        ("v.json", '{"A": 10, "B": 2.5}', (), "v.json: 2.5 is not a whole number of votes"),
        ("v.json", '{"A": 10, "A": 2}', (), "v.json: the name 'A' occurs more than once"),
        ("v.json", '{"A": 10, "B": "7"}', (), "v.json: votes for 'B' must be a whole number"),
        ("v.json", '{"A": 10,', (), "v.json: not valid JSON"),
        ("v.json", "[1, 2]", (), "v.json: expected a JSON object"),
        ("v.csv", "A,10\n", ("--seats", "0"), "number of seats must be at least 1, got 0"),
        ("v.csv", "A,1\nB,1\n", ("--cap", "1", "--seats", "3"), "the cap makes 3 seats impossible"),
        (
            "v.csv", "A,40\nB,30\n", ("--threshold", "5", "--base", "10000"),
            "no list passed the thresholds (2 checked): no seats can be allocated (the largest, "
            "A, has 0.40%)",
        ),
        ("v.csv", "A,1\n", ("--base", "100"), "--base is the denominator of --threshold"),
        ("v.csv", "A,1\n", ("--threshold", "abc"), "--threshold must be a number"),
        ("v.csv", "A,1\n", ("--against-all", "X"), "--against-all 'X' not in the file"),
        ("v.csv", "A,1\n", ("--first-divisor", "1.4"), "a first divisor applies only to"),
    ],
)  # fmt: skip
def test_bad_input_exit_2_without_traceback(
    tmp_path: Path, name: str, content: str, args: tuple[str, ...], message: str
) -> None:
    defaults = {"--method": "hare", "--seats": "5"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    options = [item for key, value in {**defaults, **given}.items() for item in (key, value)]
    result = _run(tmp_path, name, content, *options)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_unknown_method_and_missing_file_are_usage_errors(tmp_path: Path) -> None:
    bad_method = _run(tmp_path, "v.csv", "A,1\n", "--method", "hondt", "--seats", "3")
    assert bad_method.exit_code == 2 and "'hondt' is not one of" in bad_method.output
    missing = CliRunner().invoke(calc, ["--method", "hare", "--seats", "3", "nope.csv"])
    assert missing.exit_code == 2 and "does not exist" in missing.output

"""`tallyroom import --format csv --mapping FILE`: a generic CSV into an existing definition.

Every bad input gets one message naming the file, the row and the rule, and changes nothing in
the tally (compared through `tallyroom results --format json` before and after).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from support import kyrgyz_lines
from tallyroom.cli import main
from tallyroom.importers import generic
from tallyroom.importers.pipeline import ImportFileError
from tallyroom.store.sql import open_store

DEFINITION = """\
election: {id: csv-test, name: "CSV import test", date: "2021-11-28", country: KG}
profile: kyrgyzstan
hierarchies: [{id: admin, name: Regions}]
areas:
  - {id: kg, name: Kyrgyzstan, hierarchy: admin, kind: country}
  - {id: chui, name: Chui, hierarchy: admin, parent: kg, kind: oblast}
  - {id: naryn, name: Naryn, hierarchy: admin, parent: kg, kind: oblast}
stations:
  - {id: "1001", name: "Station 1001", areas: [chui], registered: 1200}
  - {id: "1002", name: "Station 1002", areas: [chui], registered: 900}
  - {id: "2001", name: "Station 2001", areas: [naryn], registered: 700}
  - {id: "2002", name: "Station 2002", areas: [naryn], registered: 650}
contests:
  - id: party-list
    name: Party list
    kind: party_list
    area: kg
    form: jogorku-kenesh
    percent_base: took_part
    choices:
      - {id: ata-jurt, name: "Ata-Jurt Kyrgyzstan"}
      - {id: ishenim, name: "Ishenim"}
      - {id: against-all, name: "Against all", against_all: true}
  - id: mayor
    name: Mayor of Naryn
    kind: candidates
    area: naryn
    form: jogorku-kenesh
    choices:
      - {id: cand-a, name: "Candidate A"}
      - {id: cand-b, name: "Candidate B"}
      - {id: against-all, name: "Against all", against_all: true}
"""
CHOICES = ["ata-jurt", "ishenim", "against-all"]
#: Column names as a commission's spreadsheet might have them (Russian), mapped to line ids.
COLUMNS = {
    "registered_main": "Избирателей в основном списке",
    "registered_additional": "Избирателей в дополнительном списке",
    "ballots_received": "Получено бюллетеней",
    "issued_early": "Выдано досрочно",
    "issued_station": "Выдано на участке",
    "issued_outside": "Выдано вне помещения",
    "cancelled": "Погашено",
    "in_stationary_boxes": "В стационарных ящиках",
    "in_mobile_boxes": "В переносных ящиках",
    "invalid": "Недействительных",
    "valid": "Действительных",
    "ata-jurt": "Ата-Журт Кыргызстан",
    "ishenim": "Ишеним",
    "against-all": "Против всех",
}
MAPPING = "station_column: УИК\ncontest: party-list\nlines:\n" + "".join(
    f'  {line}: "{col}"\n' for line, col in COLUMNS.items()
)
HEADER = ["УИК", "Примечание", *COLUMNS.values()]


def protocol(station: str, seed: int) -> list[str]:
    lines = kyrgyz_lines(CHOICES, 600, random.Random(seed))
    return [station, "ok", *(str(lines[k]) for k in COLUMNS)]


def csv_text(rows: list[list[str]]) -> str:
    return "\n".join(",".join(r) for r in [HEADER, *rows]) + "\n"


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = str(tmp / "t.db")
        self.runner = CliRunner()
        (tmp / "definition.yaml").write_text(DEFINITION, encoding="utf-8")
        (tmp / "mapping.yaml").write_text(MAPPING, encoding="utf-8")
        assert self.cli("init", str(tmp / "definition.yaml")).exit_code == 0

    def cli(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--db", self.db, *args], catch_exceptions=False)

    def load(self, name: str, content: str | bytes, mapping: str = "mapping.yaml") -> Result:
        path = self.tmp / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return self.cli("import", "--format", "csv", "--mapping", str(self.tmp / mapping), str(path))

    def results(self) -> dict[str, object]:
        r = self.cli("results", "--format", "json")
        assert r.exit_code == 0, r.output
        out: dict[str, object] = json.loads(r.stdout)
        return out

    def ledger_size(self) -> int:
        with open_store(self.db) as store:
            return store.head().size


def flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare messages with spaces collapsed."""
    return " ".join(text.split())


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env(tmp_path)
    r = e.load("first.csv", csv_text([protocol("1001", 1), protocol("1002", 2)]))
    assert r.exit_code == 0, r.output
    return e


def test_happy_path_sums_every_line(env: Env, tmp_path: Path) -> None:
    rows = [protocol("1001", 1), protocol("1002", 2)]
    result = env.results()
    for line, col in COLUMNS.items():
        i = HEADER.index(col)
        assert result["lines"][line] == sum(int(r[i]) for r in rows)  # type: ignore[index]
    assert result["stations_reporting"] == 2
    assert result["stations_expected"] == 4
    # The same file again: every row a duplicate with its original receipt, nothing added.
    r = env.load("first.csv", csv_text(rows))
    assert "0 protocols accepted" in flat(r.stdout) and "2 duplicates" in flat(r.stdout)
    assert env.results() == result


def test_contest_column_and_unmapped_lines_default(tmp_path: Path) -> None:
    e = Env(tmp_path)
    header = ["station", "contest", *COLUMNS]  # columns named like the line ids
    lines = kyrgyz_lines(CHOICES, 500, random.Random(7))
    row = ["2001", "party-list", *(str(lines[k]) for k in COLUMNS)]
    (tmp_path / "auto.yaml").write_text("station_column: station\ncontest_column: contest\n")
    r = e.load("auto.csv", "\n".join(",".join(x) for x in (header, row)), mapping="auto.yaml")
    assert r.exit_code == 0, r.output
    assert "1 protocols accepted" in flat(r.stdout)
    # No final line break: the import works and says the last row might be cut short.
    assert "does not end with a line break" in flat(r.stdout)
    assert e.results()["lines"]["valid"] == lines["valid"]  # type: ignore[index]


def test_several_contests_in_one_file(tmp_path: Path) -> None:
    """With contest_column, a line the row's contest lacks must be empty in that row."""
    e = Env(tmp_path)
    form = [k for k in COLUMNS if k not in CHOICES]
    header = ["station", "contest", *form, "ata-jurt", "ishenim", "cand-a", "cand-b", "against-all"]
    party = kyrgyz_lines(CHOICES, 500, random.Random(1))
    mayor = kyrgyz_lines(["cand-a", "cand-b", "against-all"], 500, random.Random(2))

    def row(station: str, contest: str, lines: dict[str, int]) -> str:
        return ",".join([station, contest, *(str(lines.get(h, "")) for h in header[2:])])

    bad = dict(mayor, ishenim=3)  # a party's column filled in a mayoral row
    text = "\n".join(
        [",".join(header), row("2001", "party-list", party), row("2001", "mayor", mayor),
         row("2002", "mayor", bad), row("1001", "mayor", mayor)]
    ) + "\n"  # fmt: skip
    (tmp_path / "multi.yaml").write_text("station_column: station\ncontest_column: contest\n")
    r = e.load("multi.csv", text, mapping="multi.yaml")
    out = flat(r.stdout + r.stderr)
    assert "4 rows, 2 protocols accepted" in out
    assert 'row 4 (station 2002): lines.ishenim: not a line of contest "mayor"' in out
    assert 'row 5 (station 1001): station: station does not vote in contest "mayor"' in out
    r2 = e.cli("results", "--contest", "mayor", "--format", "json")
    assert json.loads(r2.stdout)["lines"]["cand-a"] == mayor["cand-a"]


def _rejected(env: Env, name: str, rows: list[list[str]]) -> str:
    before, size = env.results(), env.ledger_size()
    r = env.load(name, csv_text(rows))
    assert env.results() == before
    assert env.ledger_size() == size
    return flat(r.stderr)


def test_unknown_station(env: Env) -> None:
    msg = _rejected(env, "unknown.csv", [protocol("9999", 3)])
    assert 'rejected unknown.csv: row 2 (station 9999): station: unknown station "9999"' in msg


def test_second_different_row_for_a_station_is_a_conflict(env: Env) -> None:
    before = env.results()
    good, other = protocol("2001", 4), protocol("2001", 5)
    r = env.load("dup.csv", csv_text([good, other]))
    out = flat(r.stdout + r.stderr)
    assert "1 protocols accepted" in out and "1 rejected" in out
    assert "rejected dup.csv: row 3 (station 2001): conflict: station already has a" in out
    after = env.results()
    # Only the first row counts: the tally moved by exactly its numbers.
    for line, col in COLUMNS.items():
        i = HEADER.index(col)
        assert after["lines"][line] == before["lines"][line] + int(good[i])  # type: ignore[index]
    assert after["stations_reporting"] == 3


def test_negative_number(env: Env) -> None:
    row = protocol("2002", 6)
    row[HEADER.index(COLUMNS["invalid"])] = "-5"
    msg = _rejected(env, "neg.csv", [row])
    assert "rejected neg.csv: row 2 (station 2002): lines.invalid: must be ≥ 0, got -5" in msg


def test_non_integer(env: Env) -> None:
    row = protocol("2002", 6)
    row[HEADER.index(COLUMNS["ishenim"])] = "12.5"
    msg = _rejected(env, "frac.csv", [row])
    assert (
        "rejected frac.csv: row 2 (station 2002): lines.ishenim: must be a whole number, got '12.5'"
    ) in msg


def test_rule_failure_names_rule_and_values(env: Env) -> None:
    row = protocol("2002", 6)
    i = HEADER.index(COLUMNS["valid"])
    row[i] = str(int(row[i]) + 1)
    msg = _rejected(env, "rule.csv", [row])
    assert "rejected rule.csv: row 2 (station 2002):" in msg
    assert 'rule "valid-equals-choices" (valid == sum(choices)) fails' in msg


def _fatal(env: Env, name: str, content: str | bytes, mapping: str = "mapping.yaml") -> str:
    before, size = env.results(), env.ledger_size()
    r = env.load(name, content, mapping)
    assert r.exit_code == 2
    assert env.results() == before
    assert env.ledger_size() == size
    assert "Traceback" not in r.output
    return flat(r.stderr)


def test_wrong_encoding(env: Env) -> None:
    text = csv_text([protocol("2001", 8), protocol("2002", 9)]).replace(",ok,", ",Zürich,", 2)
    raw = text.encode("utf-8").replace("Zürich".encode(), "Zürich".encode("latin-1"))
    msg = _fatal(env, "latin1.csv", raw)
    assert msg.startswith("error: latin1.csv: row 2 (line 2, byte ")
    assert "not utf-8 text" in msg


def test_truncated_last_row_imports_nothing(env: Env) -> None:
    text = csv_text([protocol("2001", 8), protocol("2002", 9)])
    msg = _fatal(env, "cut.csv", text[: len(text) - 30])
    assert "error: cut.csv: row 3:" in msg and "the header has 16 (truncated file?)" in msg


def test_missing_mapped_column(env: Env) -> None:
    header = [h for h in HEADER if h != COLUMNS["cancelled"]]
    row = protocol("2001", 8)
    del row[HEADER.index(COLUMNS["cancelled"])]
    text = "\n".join(",".join(r) for r in (header, row)) + "\n"
    msg = _fatal(env, "nocol.csv", text)
    assert "error: nocol.csv: row 1: no column 'Погашено' (lines.cancelled in mapping.yaml)" in msg


def test_mapping_errors(env: Env) -> None:
    text = csv_text([protocol("2001", 8)])
    (env.tmp / "bad.yaml").write_text(MAPPING.replace("cancelled:", "canceled:"))
    msg = _fatal(env, "m.csv", text, "bad.yaml")
    assert "bad.yaml: lines.canceled: not a line of contest 'party-list'" in msg
    (env.tmp / "typo.yaml").write_text(MAPPING.replace("station_column", "station_col"))
    msg = _fatal(env, "m.csv", text, "typo.yaml")
    assert "typo.yaml: Object contains unknown field `station_col`" in msg
    r = env.cli("import", "--format", "csv", str(env.tmp / "m.csv"))
    assert r.exit_code == 2 and "needs --mapping FILE" in flat(r.stderr)


def test_store_without_election(tmp_path: Path) -> None:
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    (tmp_path / "a.csv").write_text(csv_text([protocol("1001", 1)]))
    r = CliRunner().invoke(
        main,
        ["--db", str(tmp_path / "empty.db"), "import", "--format", "csv", "--mapping",
         str(tmp_path / "mapping.yaml"), str(tmp_path / "a.csv")],
    )  # fmt: skip
    assert r.exit_code == 2 and "run `tallyroom init DEFINITION` first" in flat(r.stderr)


def test_decode_reports_the_row_of_a_quoted_multiline_cell() -> None:
    raw = 'a,b\n"x\ny",1\nz,\xe9\n'.encode("latin-1")
    with pytest.raises(ImportFileError, match=r"f.csv: row 3 \(line 4, byte \d+\): not utf-8 text"):
        generic.decode("f.csv", raw)

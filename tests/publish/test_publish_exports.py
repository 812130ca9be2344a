"""Open data: NIST SP 1500-100 v2 JSON (validated against NIST's schema), the SQLite file
(opens, totals match), the CSV per level (sums match the full JSON)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import Counter

import jsonschema
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Published
from support import shared_data


def _results(published: Published) -> dict:
    return msgspec.json.decode((published.current / "data/results.json").read_bytes())


def test_nist_export_validates_against_the_nist_v2_schema(published: Published) -> None:
    schema = json.loads(shared_data("nist_err_cdf", "NIST_V2_election_results_reporting.json").read_text())
    validator = jsonschema.Draft4Validator(schema)
    rows = {(r["contest"], r["area"], r["count_kind"]): r for r in _results(published)["rows"]}
    for kind in ("machine", "hand"):
        doc = json.loads((published.current / f"data/nist-err-{kind}.json").read_bytes())
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
        assert doc["Status"] == ("unofficial-complete" if kind == "machine" else "unofficial-partial")
        (election,) = doc["Election"]
        contest = next(c for c in election["Contest"] if c["@id"] == "contest-party-list")
        assert contest["@type"] == "ElectionResults.PartyContest"
        national = rows[("party-list", "kg", kind)]
        for sel in contest["ContestSelection"]:
            choice = sel["@id"].removeprefix("sel-party-list-")
            count = next(v["Count"] for v in sel["VoteCounts"] if v["GpUnitId"] == "gp-kg")
            assert count == national["lines"][choice]
        units = {u["@id"]: u for u in doc["GpUnit"]}
        assert units["gp-kg"]["Type"] == "country"
        assert units["gp-kg"]["VotersParticipated"] == national["took_part"]
        assert "gp-chui" in units["gp-kg"]["ComposingGpUnitIds"]


def test_sqlite_download_opens_and_its_totals_match(published: Published, tmp_path) -> None:
    path = tmp_path / "t.sqlite"
    path.write_bytes((published.current / "data/tallyroom.sqlite").read_bytes())
    conn = sqlite3.connect(path)
    doc = _results(published)
    national = next(
        r for r in doc["rows"] if (r["contest"], r["area"], r["count_kind"]) == ("party-list", "kg", "hand")
    )
    got = dict(
        conn.execute(
            "SELECT choice, votes FROM choice_results "
            "WHERE contest='party-list' AND area='kg' AND count_kind='hand'"
        ).fetchall()
    )
    assert got == {c["id"]: c["votes"] for c in national["choices"]}
    (took_part,) = conn.execute(
        "SELECT took_part FROM results WHERE contest='party-list' AND area='kg' AND count_kind='hand'"
    ).fetchone()
    assert took_part == national["took_part"]
    # The stations' lines add up to the national total, in SQL.
    summed = dict(
        conn.execute(
            "SELECT line, SUM(value) FROM protocol_lines "
            "WHERE contest='party-list' AND count_kind='hand' GROUP BY line"
        ).fetchall()
    )
    assert summed == national["lines"]
    stations = sum(
        len(msgspec.json.decode((published.current / rel).read_bytes())["stations"])
        for rel in doc["station_files"]
    )
    assert conn.execute("SELECT COUNT(*) FROM protocols").fetchone()[0] == stations
    assert conn.execute("SELECT value FROM snapshot WHERE key='number'").fetchone()[0] == "1"


def test_csv_levels_match_the_full_json(published: Published) -> None:
    doc = _results(published)
    rows = {(r["contest"], r["area"], r["count_kind"]): r for r in doc["rows"]}
    seen = Counter[str]()
    for level in ("admin-0", "admin-1", "smd-0"):
        text = (published.current / f"data/csv/{level}.csv").read_text(encoding="utf-8")
        for rec in csv.DictReader(io.StringIO(text)):
            assert rec["level"] == level
            row = rows[(rec["contest"], rec["area"], rec["count_kind"])]
            choice = next(c for c in row["choices"] if c["id"] == rec["choice"])
            assert int(rec["votes"]) == choice["votes"]
            assert rec["percent"] == (choice["percent"] or "")
            assert rec["percent_base"] == row["percent_base"]["figure"]
            seen[level] += 1
    assert all(seen[level] > 0 for level in ("admin-0", "admin-1", "smd-0"))
    totals = Counter[str]()
    for path in sorted((published.current / "data/csv/stations").glob("*.csv")):
        for rec in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            assert rec["level"] == "stations"
            if (rec["contest"], rec["count_kind"]) == ("party-list", "machine"):
                totals[rec["choice"]] += int(rec["votes"])
    national = rows[("party-list", "kg", "machine")]
    assert dict(totals) == {c["id"]: c["votes"] for c in national["choices"]}


def test_seat_projection_is_provisional_and_explained(published: Published) -> None:
    seats = json.loads((published.current / "api/v1/results/seats/party-list/machine.json").read_bytes())
    assert seats["provisional"] is True and seats["official"] is False
    assert seats["status"] in ("ok", "no-eligible")
    if seats["status"] == "ok":
        assert sum(p["seats"] for p in seats["parties"]) == 54
        assert max(p["seats"] for p in seats["parties"]) <= 27
        assert seats["allocation"]["explanation"]["thresholds"]


_LINE_IDS = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    protocols=st.lists(
        st.tuples(
            st.sampled_from(["party-list", "smd-1", 'q"\\x']),
            st.sampled_from(["hand", "machine"]),
            st.text(min_size=1, max_size=8),
            st.dictionaries(_LINE_IDS, st.one_of(st.integers(-(2**53), 2**53), st.none()), max_size=12),
        ),
        max_size=12,
        unique_by=lambda p: (p[0], p[1], p[2]),
    )
)
def test_protocol_lines_unrolled_by_sqlite_are_the_rows_written_one_by_one(
    protocols: list[tuple[str, str, str, dict[str, int | None]]],
) -> None:
    """The SQLite download's protocol lines go in as one JSON object per protocol that SQLite
    unrolls (json_each): the same rows, values and types as one row per line from Python,
    whatever the line names hold (quotes, backslashes, NUL, any script)."""
    import sqlite3

    from tallyroom.publish import sqlite_export

    rows = [
        {
            "contest": c, "count_kind": k, "station": s, "ledger_index": 1, "leaf_hash": "h",
            "body_sha256": "b", "registered": 1, "took_part": 1, "ballots_cast": 1, "valid": 1,
            "invalid": 0, "turnout_percent": "100.00", "lines": lines,
        }
        for c, k, s, lines in protocols
    ]

    def table(json: bool) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(":memory:")
        conn.executescript(sqlite_export.SCHEMA)
        assert sqlite_export._has_json(conn)
        original = sqlite_export._has_json
        sqlite_export._has_json = lambda conn: json  # type: ignore[assignment]
        try:
            sqlite_export._stations(conn, rows)
        finally:
            sqlite_export._has_json = original  # type: ignore[assignment]
        got = conn.execute(
            "SELECT contest, count_kind, station, line, value, typeof(value), typeof(line) "
            "FROM protocol_lines ORDER BY contest, count_kind, station, line"
        ).fetchall()
        conn.close()
        return got

    unrolled = table(True)
    assert unrolled == table(False)
    assert len(unrolled) == sum(len(p[3]) for p in protocols)

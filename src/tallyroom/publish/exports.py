"""Open-data exports of a snapshot: the full JSON and one CSV per level (docs/bulletin.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection, name_in
from tallyroom.publish.results import Results, Row
from tallyroom.tally.record import Choice

_enc = msgspec.json.Encoder(order="deterministic")

RESULTS_FORMAT = "tallyroom-results/1"

CSV_COLUMNS = (
    "level",
    "contest",
    "count_kind",
    "official",
    "area",
    "area_name",
    "stations_reporting",
    "stations_expected",
    "registered",
    "took_part",
    "ballots_cast",
    "valid",
    "invalid",
    "turnout_percent",
    "percent_base",
    "percent_base_value",
    "choice",
    "choice_name",
    "votes",
    "percent",
)


def json_bytes(value: Any) -> bytes:
    """Canonical JSON: UTF-8, keys sorted, no spaces, one trailing newline."""
    return _enc.encode(value) + b"\n"


def area_level(election: CompiledElection, area: int) -> str:
    """`<hierarchy>-<depth>`: `admin-0` is the country, `admin-1` its regions, `smd-0` …"""
    a = election.areas[area]
    return f"{a.hierarchy}-{len(election.area_chain[area]) - 1}"


def compact_station(row: Row) -> dict[str, Any]:
    """A station protocol in the full JSON: identity, ledger facts and its lines only."""
    return {
        "contest": row["contest"],
        "station": row["station"],
        "count_kind": row["count_kind"],
        "ledger_index": row["ledger_index"],
        "leaf_hash": row["leaf_hash"],
        "body_sha256": row["body_sha256"],
        "lines": row["lines"],
    }


def results_document(
    election: CompiledElection,
    results: Results,
    snapshot: dict[str, Any],
    seats: Iterable[dict[str, Any]],
    station_files: list[str],
) -> dict[str, Any]:
    """``data/results.json``: every area row and seat projection; the station records are in
    the ``station_files`` it lists (one per region, ``data/stations/<region>.json``)."""
    return {
        "format": RESULTS_FORMAT,
        "election": {
            "id": election.definition.election.id,
            "definition_sha256": election.sha256,
        },
        "snapshot": snapshot,
        "kinds": results.kinds,
        "rows": [results.rows[k] for k in sorted(results.rows)],
        "station_files": station_files,
        "seats": list(seats),
    }


def _csv_rows(level: str, key_name: str, row: Row) -> Iterable[list[Any]]:
    base = row["percent_base"]
    head = [
        level,
        row["contest"],
        row["count_kind"],
        "true" if row["official"] else "false",
        row[key_name],
        row.get("area_name", ""),
        row["stations_reporting"],
        row["stations_expected"],
        row["registered"],
        row["took_part"],
        row["ballots_cast"],
        row["valid"],
        row["invalid"],
        row["turnout_percent"],
        base["figure"],
        base["value"],
    ]
    for c in row["choices"]:
        yield [*head, c["id"], c["name"], c["votes"], c["percent"]]


def _cell(v: Any) -> Any:
    return "" if v is None else v


def station_group(election: CompiledElection, station: int) -> str:
    """The file group of a station's records: its region (the area below the root of its
    first hierarchy), so that a new protocol rewrites one region's file, not all of them."""
    chain = election.area_chain[election.station_direct[station][0]]
    return election.areas[chain[-2] if len(chain) > 1 else chain[-1]].id


def _writer() -> tuple[io.StringIO, Any]:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    return buf, w


#: Per area row key: the row object, its level and its CSV lines (:func:`csv_levels`).
CsvMemo = dict[tuple[str, str, str], tuple[Row, str, str]]


def csv_levels(election: CompiledElection, results: Results, memo: CsvMemo | None = None) -> dict[str, bytes]:
    """One CSV per area level (`admin-0`, `admin-1`, `smd-0`, …). With a ``memo`` (kept by a
    long-running publisher), a row that is the very object written last time (the display
    step keeps rows whose totals did not change) gives the lines written then: a CSV writer
    keeps no state between rows, so the file is the same."""
    buf, w = _writer()
    header = buf.getvalue()
    parts: dict[str, list[str]] = {}
    for key in sorted(results.rows):
        row = results.rows[key]
        got = memo.get(key) if memo is not None else None
        if got is not None and got[0] is row:
            level, text = got[1], got[2]
        else:
            level = area_level(election, election.area_index[row["area"]])
            buf.seek(0)
            buf.truncate()
            for r in _csv_rows(level, "area", row):
                w.writerow([_cell(v) for v in r])
            text = buf.getvalue()
            if memo is not None:
                memo[key] = (row, level, text)
        got_parts = parts.get(level)
        if got_parts is None:
            got_parts = parts[level] = [header]
        got_parts.append(text)
    return {level: "".join(texts).encode("utf-8") for level, texts in parts.items()}


_GROUPS: dict[int, tuple[CompiledElection, dict[str, str]]] = {}


def group_of(election: CompiledElection) -> dict[str, str]:
    """Station id -> its file group (kept per election)."""
    got = _GROUPS.get(id(election))
    if got is None or got[0] is not election:
        got = (election, {s.id: station_group(election, i) for i, s in enumerate(election.stations)})
        _GROUPS.clear()
        _GROUPS[id(election)] = got
    return got[1]


def stations_by_group(election: CompiledElection, results: Results) -> dict[str, list[Row]]:
    groups = group_of(election)
    keys: dict[str, list[tuple[str, str, str]]] = {}
    for key in results.stations:
        keys.setdefault(groups[key[1]], []).append(key)
    stations = results.stations
    return {g: [stations[k] for k in sorted(ks)] for g, ks in keys.items()}


def stations_csv(election: CompiledElection, rows: list[Row]) -> bytes:
    """The station level of one group: one line per protocol and choice (level `stations`)."""
    buf, w = _writer()
    for station_row in rows:
        row = dict(station_row)
        row["area_name"] = name_in(election.stations[election.station_index[row["station"]]].name)
        for r in _csv_rows("stations", "station", row):
            w.writerow([_cell(v) for v in r])
    return buf.getvalue().encode("utf-8")


def stations_json(group: str, rows: list[Row]) -> bytes:
    """The compact station records of one group (see :func:`compact_station`)."""
    return json_bytes(
        {
            "format": "tallyroom-stations-results/1",
            "group": group,
            "stations": [compact_station(r) for r in rows],
        }
    )


def station_json_part(row: Row) -> bytes:
    """One record of :func:`stations_json`, encoded as it appears there."""
    return _enc.encode(compact_station(row))


def stations_json_from(group: str, parts: Iterable[bytes]) -> bytes:
    """:func:`stations_json` from records encoded one by one (the same bytes: canonical JSON
    is the concatenation of its parts; keys ``format`` < ``group`` < ``stations``)."""
    return b"".join(
        (
            b'{"format":"tallyroom-stations-results/1","group":',
            _enc.encode(group),
            b',"stations":[',
            b",".join(parts),
            b"]}\n",
        )
    )


_QUOTED: dict[str, str] = {}


def _field(value: Any) -> str:
    """One CSV field as ``csv.writer`` writes it in a row of several (QUOTE_MINIMAL)."""
    if value is None:
        return ""
    if value.__class__ is int:
        return str(value)
    text = str(value)
    got = _QUOTED.get(text)
    if got is None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([text, ""])
        got = buf.getvalue()[:-2]  # drop the second, empty field and the line end
        if len(_QUOTED) < 100_000:
            _QUOTED[text] = got
    return got


def station_csv_part(election: CompiledElection, row: Row) -> bytes:
    """The lines of one record in :func:`stations_csv` (without the header): the same bytes
    as ``csv.writer`` gives (tests compare them), written field by field."""
    base = row["percent_base"]
    head = ",".join(
        map(
            _field,
            (
                "stations",
                row["contest"],
                row["count_kind"],
                "true" if row["official"] else "false",
                row["station"],
                name_in(election.stations[election.station_index[row["station"]]].name),
                row["stations_reporting"],
                row["stations_expected"],
                row["registered"],
                row["took_part"],
                row["ballots_cast"],
                row["valid"],
                row["invalid"],
                row["turnout_percent"],
                base["figure"],
                base["value"],
            ),
        )
    )
    lines = []
    for c in row["choices"]:
        if c.__class__ is Choice:  # a record's own choices: fields read directly, cells kept
            cells = _CHOICE_CELLS.get((c.id, c.name))
            if cells is None:
                cells = _CHOICE_CELLS[(c.id, c.name)] = f"{_field(c.id)},{_field(c.name)}"
            lines.append(f"{head},{cells},{_field(c.votes)},{_field(c.percent)}\n")
        else:
            lines.append(
                f"{head},{_field(c['id'])},{_field(c['name'])},{_field(c['votes'])},{_field(c['percent'])}\n"
            )
    return "".join(lines).encode("utf-8")


#: The id and name cells of each choice as written in a station CSV line.
_CHOICE_CELLS: dict[tuple[str, str], str] = {}


def stations_csv_from(parts: Iterable[bytes]) -> bytes:
    """:func:`stations_csv` from records written one by one."""
    buf, _ = _writer()
    return buf.getvalue().encode("utf-8") + b"".join(parts)


RECONCILIATION_CSV_COLUMNS = (
    "contest",
    "station",
    "region",
    "line",
    "machine",
    "hand",
    "difference",
    "relative_percent",
    "flagged",
)


def reconciliation_document(results: Results, snapshot: dict[str, Any]) -> dict[str, Any]:
    """``data/reconciliation.json``: the machine-vs-hand reconciliation of every contest that
    has both counts (docs/bulletin.md §14.1)."""
    return {
        "format": "tallyroom-reconciliation/1",
        "snapshot": snapshot,
        "contests": [results.reconciliation[c] for c in sorted(results.reconciliation)],
    }


def reconciliation_csv(results: Results) -> bytes:
    """``data/reconciliation.csv``: one line per differing line of every station listed (contests
    in id order, stations as in the document: largest difference first)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RECONCILIATION_CSV_COLUMNS)
    for cid in sorted(results.reconciliation):
        for s in results.reconciliation[cid]["stations"]:
            flagged = "true" if s["flagged"] else "false"
            for x in s["lines"]:
                w.writerow(
                    [
                        cid,
                        s["station"],
                        s["region"],
                        x["line"],
                        x["machine"],
                        x["hand"],
                        x["difference"],
                        _cell(x["relative_percent"]),
                        flagged,
                    ]
                )
    return buf.getvalue().encode("utf-8")

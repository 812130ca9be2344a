"""One SQLite file of everything in a snapshot (Datasette can open it as it is).

Tables (docs/bulletin.md lists every column): ``snapshot``, ``areas``, ``stations``,
``station_areas``, ``contests``, ``choices``, ``results`` (one row per contest, count kind and
area), ``choice_results`` (votes and share per choice), ``protocols`` (one per counted station
protocol) and ``protocol_lines`` (every line of every protocol). Built in memory and serialised,
so a half-written file is never seen.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection, name_in
from tallyroom.publish.exports import area_level
from tallyroom.publish.results import Results

SCHEMA = """
CREATE TABLE snapshot (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE areas (id TEXT PRIMARY KEY, name_en TEXT, name_ru TEXT, name_ky TEXT, hierarchy TEXT,
  parent TEXT, kind TEXT, code TEXT, level TEXT);
CREATE TABLE stations (id TEXT PRIMARY KEY, name_en TEXT, name_ru TEXT, name_ky TEXT,
  registered INTEGER, abroad INTEGER);
CREATE TABLE station_areas (station TEXT, area TEXT, PRIMARY KEY (station, area));
CREATE TABLE contests (id TEXT PRIMARY KEY, name_en TEXT, kind TEXT, area TEXT, percent_base TEXT,
  official_count TEXT);
CREATE TABLE choices (contest TEXT, id TEXT, position INTEGER, name_en TEXT, name_ru TEXT,
  name_ky TEXT, against_all INTEGER, party TEXT, PRIMARY KEY (contest, id));
CREATE TABLE results (contest TEXT, count_kind TEXT, area TEXT, official INTEGER,
  stations_reporting INTEGER, stations_expected INTEGER, registered INTEGER, took_part INTEGER,
  ballots_cast INTEGER, valid INTEGER, invalid INTEGER, turnout_percent TEXT,
  percent_base TEXT, percent_base_value INTEGER, PRIMARY KEY (contest, count_kind, area));
CREATE TABLE choice_results (contest TEXT, count_kind TEXT, area TEXT, choice TEXT, votes INTEGER,
  percent TEXT, PRIMARY KEY (contest, count_kind, area, choice));
CREATE TABLE protocols (contest TEXT, count_kind TEXT, station TEXT, ledger_index INTEGER,
  leaf_hash TEXT, body_sha256 TEXT, registered INTEGER, took_part INTEGER, ballots_cast INTEGER,
  valid INTEGER, invalid INTEGER, turnout_percent TEXT, PRIMARY KEY (contest, count_kind, station));
CREATE TABLE protocol_lines (contest TEXT, count_kind TEXT, station TEXT, line TEXT,
  value INTEGER, PRIMARY KEY (contest, count_kind, station, line)) WITHOUT ROWID;
"""


def _names(name: Any) -> tuple[str, str, str]:
    return name_in(name, "en"), name_in(name, "ru"), name_in(name, "ky")


def build(election: CompiledElection, results: Results, snapshot: dict[str, Any]) -> bytes:
    conn = sqlite3.connect(":memory:")
    try:
        _fill(conn, election, results, snapshot)
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()


def build_file(
    election: CompiledElection, results: Results, snapshot: dict[str, Any], path: Path
) -> None:
    """:func:`build` written straight into a new file at ``path`` (which must not exist), with
    no journal (the file is in a staging folder that nobody reads before the snapshot is out):
    saves the database and its serialised copy in memory, 500 MB each for 100,000 stations."""
    with open(path, "xb"):
        pass
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-65536")
        _fill(conn, election, results, snapshot)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _fill(
    conn: sqlite3.Connection, election: CompiledElection, results: Results, snapshot: dict[str, Any]
) -> None:
    """Every table of an empty database. Rows go in primary key order (the order SQLite
    keeps them in), which makes the inserts cheaper than in ledger order."""
    conn.executescript(SCHEMA)
    if conn.isolation_level is None:  # autocommit: one transaction for all the rows
        conn.execute("BEGIN")
    _snapshot(conn, snapshot)
    conn.executemany(
        "INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (a.id, *_names(a.name), a.hierarchy, a.parent, a.kind, a.code, area_level(election, i))
            for i, a in enumerate(election.areas)
        ],
    )
    conn.executemany(
        "INSERT INTO stations VALUES (?, ?, ?, ?, ?, ?)",
        [(s.id, *_names(s.name), s.registered, int(s.abroad)) for s in election.stations],
    )
    conn.executemany(
        "INSERT INTO station_areas VALUES (?, ?)",
        [(s.id, a) for s in election.stations for a in s.areas],
    )
    conn.executemany(
        "INSERT INTO contests VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                c.id,
                name_in(c.contest.name, "en"),
                str(c.contest.kind),
                c.contest.area,
                str(c.contest.percent_base),
                str(c.official_count),
            )
            for c in election.contests
        ],
    )
    conn.executemany(
        "INSERT INTO choices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (c.id, ch.id, j + 1, *_names(ch.name), int(ch.against_all), ch.party)
            for c in election.contests
            for j, ch in enumerate(c.contest.choices)
        ],
    )
    _rows(conn, [results.rows[k] for k in sorted(results.rows, key=_row_order)])
    _stations(conn, [results.stations[k] for k in sorted(results.stations, key=_row_order)])


def _row_order(key: tuple[str, str, str]) -> tuple[str, str, str]:
    """(contest, area or station, count kind) in the order of the tables' primary keys."""
    return key[0], key[2], key[1]


def update(
    previous: bytes,
    results: Results,
    snapshot: dict[str, Any],
    changed_rows: Iterable[tuple[str, str, str]],
    changed_stations: Iterable[tuple[str, str, str]],
) -> bytes:
    """The previous snapshot's database with only what changed replaced (same tables and
    content as :func:`build` would give; ``changed_*`` include removed keys)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(previous)
        _changes(conn, results, snapshot, changed_rows, changed_stations)
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()


def update_file(
    previous: Path,
    path: Path,
    results: Results,
    snapshot: dict[str, Any],
    changed_rows: Iterable[tuple[str, str, str]],
    changed_stations: Iterable[tuple[str, str, str]],
) -> None:
    """:func:`update` on files: copy the previous snapshot's database to ``path`` (which must
    not exist: never write through a link into an earlier snapshot) and change the copy in
    place. Saves the two in-memory copies of the whole database that ``update`` makes."""
    with open(previous, "rb") as src, open(path, "xb") as dst:
        _copy(src.fileno(), dst.fileno(), os.fstat(src.fileno()).st_size)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        _changes(conn, results, snapshot, changed_rows, changed_stations)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _copy(src: int, dst: int, size: int) -> None:
    """Copy a whole file in the kernel where it can (copy_file_range), else through memory."""
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(src, dst, size - done)
            if n == 0:
                break
            done += n
    except OSError:
        pass
    if done < size:
        os.lseek(src, done, os.SEEK_SET)
        os.lseek(dst, done, os.SEEK_SET)
        while chunk := os.read(src, 1 << 20):
            os.write(dst, chunk)


def _changes(
    conn: sqlite3.Connection,
    results: Results,
    snapshot: dict[str, Any],
    changed_rows: Iterable[tuple[str, str, str]],
    changed_stations: Iterable[tuple[str, str, str]],
) -> None:
    _snapshot(conn, snapshot)
    rows = sorted(set(changed_rows))
    for table in ("results", "choice_results"):
        conn.executemany(f"DELETE FROM {table} WHERE contest=? AND area=? AND count_kind=?", rows)
    _rows(conn, [results.rows[k] for k in rows if k in results.rows])
    stations = sorted(set(changed_stations))
    for table in ("protocols", "protocol_lines"):
        conn.executemany(f"DELETE FROM {table} WHERE contest=? AND station=? AND count_kind=?", stations)
    _stations(conn, [results.stations[k] for k in stations if k in results.stations])


def _snapshot(conn: sqlite3.Connection, snapshot: dict[str, Any]) -> None:
    conn.execute("DELETE FROM snapshot")
    conn.executemany("INSERT INTO snapshot VALUES (?, ?)", [(k, str(v)) for k, v in snapshot.items()])


def _rows(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r["contest"],
                r["count_kind"],
                r["area"],
                int(r["official"]),
                r["stations_reporting"],
                r["stations_expected"],
                r["registered"],
                r["took_part"],
                r["ballots_cast"],
                r["valid"],
                r["invalid"],
                r["turnout_percent"],
                r["percent_base"]["figure"],
                r["percent_base"]["value"],
            )
            for r in rows
        ],
    )
    conn.executemany(
        "INSERT INTO choice_results VALUES (?, ?, ?, ?, ?, ?)",
        (
            (r["contest"], r["count_kind"], r["area"], c["id"], c["votes"], c["percent"])
            for r in rows
            for c in r["choices"]
        ),
    )


def _stations(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    conn.executemany(
        "INSERT INTO protocols VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r["contest"],
                r["count_kind"],
                r["station"],
                r["ledger_index"],
                r["leaf_hash"],
                r["body_sha256"],
                r["registered"],
                r["took_part"],
                r["ballots_cast"],
                r["valid"],
                r["invalid"],
                r["turnout_percent"],
            )
            for r in rows
        ],
    )
    rest = rows
    if _has_json(conn):
        # One statement per protocol, its lines as one JSON object that SQLite's json_each
        # unrolls (keys sorted: the primary key's order): a third of the CPU of one Python
        # tuple per line (0.15 s against 0.42 s for 156,000 lines, docs/decisions/0005).
        # SQLite's text ends at a NUL, so lines named with one (definition identifiers never
        # are) go in one by one, below.
        rest = []

        def unrolled() -> Iterator[tuple[str, str, str, bytes]]:
            for r in rows:
                lines = _LINES.encode(r["lines"])
                if b"\\u0000" in lines:
                    rest.append(r)
                else:
                    yield r["contest"], r["count_kind"], r["station"], lines

        conn.executemany(
            "INSERT INTO protocol_lines SELECT ?1, ?2, ?3, key, value FROM json_each(?4)", unrolled()
        )
    conn.executemany(  # a generator: 13 million rows for 100,000 stations are never a list
        "INSERT INTO protocol_lines VALUES (?, ?, ?, ?, ?)",
        (
            (r["contest"], r["count_kind"], r["station"], line, value)
            for r in rest
            for line, value in sorted(r["lines"].items())
        ),
    )


_LINES = msgspec.json.Encoder(order="sorted")


def _has_json(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has its JSON functions (built in from 3.38, an option before)."""
    try:
        conn.execute("SELECT json_valid('{}')").fetchone()
    except sqlite3.OperationalError:
        return False
    return True

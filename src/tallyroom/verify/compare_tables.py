"""Compare the CSV (§8), NIST SP 1500-100 (§10) and SQLite (§11) exports with the recomputation.

CSV and NIST: the expected content is built and compared whole (fast when the file is right);
only when something differs does the comparison go cell by cell to name every wrong number.
SQLite: each table is read in key order, in batches, and every row is compared with what it
should be as it goes by (a table can have a row per line of every protocol).
"""

from __future__ import annotations

import csv
import io
import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from tallyroom.definition.compiled import name_in
from tallyroom.verify.expected import (
    FIGURES,
    Expected,
    Row,
    RowKey,
    StationKey,
    area_level,
    figure_values,
    turnout_of_values,
)
from tallyroom.verify.report import Tally

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
#: Columns of a CSV line holding a number or share (counted as checked numbers).
_NUMERIC = 11


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def csv_lines(level: str, row: Row) -> list[tuple[tuple[str, str, str, str], list[str]]]:
    """The expected lines of one row: ((contest, kind, area, choice), cells)."""
    base = row["percent_base"]
    head = [
        level,
        row["contest"],
        row["count_kind"],
        _cell(row["official"]),
        row["area"],
        row["area_name"],
        *(_cell(row[f]) for f in ("stations_reporting", "stations_expected", *FIGURES, "turnout_percent")),
        base["figure"],
        _cell(base["value"]),
    ]
    return [
        (
            (row["contest"], row["count_kind"], row["area"], c["id"]),
            [*head, c["id"], c["name"], _cell(c["votes"]), _cell(c["percent"])],
        )
        for c in row["choices"]
    ]


def _quoting_chars() -> frozenset[str]:
    """The characters that make ``csv.writer`` (this dialect) quote a cell: asked of the
    module itself, since which line breaks count has changed between Python versions."""
    found = set()
    for ch in ',"\r\n':
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(["a" + ch, "b"])
        if buf.getvalue().startswith('"'):
            found.add(ch)
    return frozenset(found)


_SPECIAL = _quoting_chars()


def _quoted(cell: str) -> str:
    """One cell as ``csv.writer`` writes it (RFC 4180, minimal quoting)."""
    if _SPECIAL.isdisjoint(cell):
        return cell
    return '"' + cell.replace('"', '""') + '"'


def render_rows(level: str, rows: Iterable[tuple[RowKey, Row]]) -> bytes:
    """The whole file (the header, then :func:`csv_lines` of each row, as ``csv.writer``
    writes them), written line by line without a list of cells per line: a region's station
    file of a 100,000-station night has half a million lines, and the cell lists took most of
    its check."""
    parts = [",".join(CSV_COLUMNS), "\n"]
    add = parts.append
    choice_cells: dict[tuple[str, str], str] = {}
    for _key, row in rows:
        base = row["percent_base"]
        head = ",".join(
            [
                _quoted(level),
                _quoted(row["contest"]),
                _quoted(row["count_kind"]),
                _quoted(_cell(row["official"])),
                _quoted(row["area"]),
                _quoted(row["area_name"]),
                *(
                    _quoted(_cell(row[f]))
                    for f in ("stations_reporting", "stations_expected", *FIGURES, "turnout_percent")
                ),
                _quoted(base["figure"]),
                _quoted(_cell(base["value"])),
                "",
            ]
        )
        for c in row["choices"]:
            ck = (c["id"], c["name"])
            named = choice_cells.get(ck)
            if named is None:
                named = choice_cells[ck] = f"{_quoted(ck[0])},{_quoted(ck[1])},"
            # Votes are whole numbers and shares decimal strings (recomputed here): neither
            # is ever quoted.
            votes, pct = c["votes"], c["percent"]
            add(f"{head}{named}{'' if votes is None else votes},{'' if pct is None else pct}\n")
    return "".join(parts).encode("utf-8")


def render_station_rows(ex: Expected, keys: Iterable[StationKey]) -> bytes:
    """``render_rows("stations", station_rows(ex, …))`` (§8) from each protocol's
    :class:`~tallyroom.verify.expected.ProtocolFacts`, without building its published record:
    a region's file of a 100,000-station night holds 40,000 protocols, and building their
    records was half of its check."""
    e = ex.election
    parts = [",".join(CSV_COLUMNS), "\n"]
    add = parts.append
    level = _quoted("stations")
    named: dict[int, tuple[str, list[str]]] = {}
    for key in keys:
        p = ex.in_force[key]
        f = ex.protocol(key)
        assert f is not None
        got = named.get(p.contest)
        if got is None:
            contest = e.contests[p.contest]
            got = named[p.contest] = (
                _quoted(contest.id),
                [f"{_quoted(ch.id)},{_quoted(name_in(ch.name, 'en'))}," for ch in contest.contest.choices],
            )
        cid, choices = got
        st = e.stations[p.station]
        head = ",".join(
            [
                level,
                cid,
                _quoted(p.count_kind),
                _cell(f.official),
                _quoted(st.id),
                _quoted(name_in(st.name, "en")),
                "1",
                "1",
                *map(_cell, f.figures),
                _cell(f.turnout_percent),
                _quoted(f.base_figure),
                _cell(f.base_value),
                "",
            ]
        )
        # Votes are whole numbers and shares decimal strings: neither is ever quoted.
        for choice, votes, pct in zip(choices, f.votes, f.percents, strict=True):
            add(f"{head}{choice}{votes},{'' if pct is None else pct}\n")
    return "".join(parts).encode("utf-8")


def check_station_csv(file: str, data: bytes, group: str, ex: Expected, out: Tally) -> None:
    """``data/csv/stations/<group>.csv``: compared whole with :func:`render_station_rows`; when
    it differs, line by line with the published records (:func:`check_csv`)."""
    keys = ex.groups.get(group, [])
    if data == render_station_rows(ex, keys):
        out.numbers += _NUMERIC * sum(len(f.votes) for k in keys if (f := ex.protocol(k)) is not None)
        return
    check_csv(file, data, station_rows(ex, group), "stations", ex, out)


def check_csv(
    file: str,
    data: bytes,
    rows: list[tuple[RowKey, Row]],
    level: str,
    ex: Expected,
    out: Tally,
) -> None:
    """One CSV file: every line of every expected row, each cell equal."""
    if data == render_rows(level, rows):
        out.numbers += _NUMERIC * sum(len(row["choices"]) for _key, row in rows)
        return
    expected: list[tuple[tuple[str, str, str, str], list[str], RowKey]] = []
    for key, row in rows:
        for k, cells in csv_lines(level, row):
            expected.append((k, cells, key))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.fail("csv", file, "", f"not UTF-8: {exc}")
        return
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != CSV_COLUMNS:
        out.add(
            "csv",
            file,
            "line 1 (header)",
            ",".join(header or []),
            ",".join(CSV_COLUMNS),
            "docs/bulletin.md §8",
        )
        return
    want = {k: (cells, key) for k, cells, key in expected}
    seen: set[tuple[str, str, str, str]] = set()
    for n, cells in enumerate(reader, start=2):
        if len(cells) != len(CSV_COLUMNS):
            out.fail("csv", file, f"line {n}", f"{len(cells)} cells, the header has {len(CSV_COLUMNS)}")
            continue
        k = (cells[1], cells[2], cells[4], cells[16])
        got = want.get(k)
        if got is None or k in seen:
            out.fail(
                "csv",
                file,
                f"line {n}",
                f"a line for {' / '.join(k)} that should not be here" + (" (repeated)" if k in seen else ""),
            )
            continue
        seen.add(k)
        exp_cells, key = got
        for i, (g, w_) in enumerate(zip(cells, exp_cells, strict=True)):
            if i >= 6 and CSV_COLUMNS[i] not in ("percent_base", "choice", "choice_name"):
                out.numbers += 1
            if g != w_:
                col = CSV_COLUMNS[i]
                where = f"line {n} ({k[0]} / {k[2]} / {k[1]} / {k[3]}) › {col}"
                if col == "votes":
                    why = ex.why(key, "votes", k[3])
                elif col == "percent":
                    row = ex.rows.get(key) or ex.stations[key]
                    why = ex.why(key, "percent", k[3]) + ex.wrong_base(row, k[3], g)
                elif col == "percent_base_value":
                    why = ex.why(key, "percent_base")
                elif col in ("stations_reporting", "stations_expected", *FIGURES, "turnout_percent"):
                    why = ex.why(key, col)
                else:
                    why = "the definition and docs/bulletin.md §8"
                out.add("csv", file, where, g, w_, why)
    for k, (_cells, _key) in want.items():
        if k not in seen:
            out.fail("csv", file, "", f"the line for {k[0]} / {k[2]} / {k[1]} / choice {k[3]} is missing")


def level_rows(ex: Expected, level: str) -> list[tuple[RowKey, Row]]:
    return [(k, ex.rows[k]) for k in ex.levels.get(level, [])]


def station_rows(ex: Expected, group: str) -> list[tuple[RowKey, Row]]:
    return [(k, ex.stations[k]) for k in ex.groups.get(group, [])]


# -- NIST SP 1500-100 v2 (§10) ------------------------------------------------------------------


def check_nist(file: str, doc: Any, kind: str, ex: Expected, out: Tally) -> None:
    check = "nist"
    e = ex.election
    if not isinstance(doc, dict) or doc.get("@type") != "ElectionResults.ElectionReport":
        out.fail(check, file, "", "not a NIST ElectionReport")
        return
    complete = True
    for c in e.contests:
        row = ex.rows.get((c.id, c.contest.area, kind))
        if row is not None and row["stations_reporting"] < row["stations_expected"]:
            complete = False
    want_status = "unofficial-complete" if complete else "unofficial-partial"
    if doc.get("Status") != want_status:
        out.add(
            check,
            file,
            "Status",
            doc.get("Status"),
            want_status,
            "complete only when every contest's own area has all its stations (§10)",
        )
    root = e.areas[e.roots[0]].id
    main = next((c for c in e.contests if c.contest.area == root), None)
    units = {u.get("@id"): u for u in doc.get("GpUnit") or [] if isinstance(u, dict)}
    for i, a in enumerate(e.areas):
        gid = f"gp-{a.id}"
        u = units.get(gid)
        if u is None:
            out.fail(check, file, f"GpUnit[{gid}]", f"area {a.id} is missing")
            continue
        ids = [x.get("Value") for x in u.get("ExternalIdentifier") or [] if x.get("Type") == "local-level"]
        if ids != [a.id]:
            out.add(check, file, f"GpUnit[{gid}].ExternalIdentifier", ids, [a.id], "local-level = area id")
        children = sorted(f"gp-{e.areas[c].id}" for c in e.children[i])
        if sorted(u.get("ComposingGpUnitIds") or []) != children:
            out.add(
                check,
                file,
                f"GpUnit[{gid}].ComposingGpUnitIds",
                u.get("ComposingGpUnitIds"),
                children,
                "the area's children in the definition",
            )
        row = ex.rows.get((main.id, a.id, kind)) if main is not None else None
        if row is not None:
            key = (main.id, a.id, kind) if main is not None else ("", "", "")
            for f, value, why_f in (
                ("VotersRegistered", row["registered"], "registered"),
                ("VotersParticipated", row["took_part"], "took_part"),
                ("SubUnitsReported", row["stations_reporting"], "stations_reporting"),
                ("TotalSubUnits", row["stations_expected"], "stations_expected"),
            ):
                if value is None:
                    continue
                out.numbers += 1
                if u.get(f) != value:
                    out.add(check, file, f"GpUnit[{gid}].{f}", u.get(f), value, ex.why(key, why_f))
    elections = doc.get("Election") or [{}]
    election = elections[0] if isinstance(elections[0], dict) else {}
    contests = {c.get("@id"): c for c in election.get("Contest") or [] if isinstance(c, dict)}
    for c in e.contests:
        cid = f"contest-{c.id}"
        got = contests.get(cid)
        if got is None:
            out.fail(check, file, f"Contest[{cid}]", f"contest {c.id} is missing")
            continue
        party = c.contest.kind == "party_list"
        want_type = "ElectionResults.PartyContest" if party else "ElectionResults.CandidateContest"
        if got.get("@type") != want_type:
            out.add(check, file, f"Contest[{cid}].@type", got.get("@type"), want_type, "the contest's kind")
        selections: dict[str, dict[str, Any]] = {}
        for s in got.get("ContestSelection") or []:
            ids = s.get("PartyIds") if party else s.get("CandidateIds")
            if isinstance(ids, list) and len(ids) == 1:
                selections[str(ids[0])] = s
        areas = [
            ex.rows[(c.id, e.areas[a].id, kind)]
            for a in sorted(c.stations_expected)
            if (c.id, e.areas[a].id, kind) in ex.rows
        ]
        for ch in c.contest.choices:
            sel_id = f"party-{ch.id}" if party else f"cand-{c.id}-{ch.id}"
            s = selections.get(sel_id)
            if s is None:
                out.fail(check, file, f"Contest[{cid}]", f"no selection for {sel_id}")
                continue
            counts = {}
            for vc in s.get("VoteCounts") or []:
                if vc.get("Type") == "total":
                    counts[vc.get("GpUnitId")] = vc.get("Count")
            for row in areas:
                gid = f"gp-{row['area']}"
                value = row["lines"][ch.id]
                out.numbers += 1
                if counts.pop(gid, None) != value:
                    out.add(
                        check,
                        file,
                        f"Contest[{cid}].{sel_id}.VoteCounts[{gid}]",
                        counts.get(gid),
                        value,
                        ex.why((c.id, row["area"], kind), "votes", ch.id),
                    )
            for gid in counts:
                out.fail(
                    check,
                    file,
                    f"Contest[{cid}].{sel_id}.VoteCounts[{gid}]",
                    "a count for an area without a published row",
                )
    if main is not None:
        ballots = {b.get("GpUnitId"): b for b in election.get("BallotCounts") or [] if isinstance(b, dict)}
        for ai in sorted(main.stations_expected):
            key = (main.id, e.areas[ai].id, kind)
            row = ex.rows.get(key)
            if row is None:
                continue
            b = ballots.get(f"gp-{row['area']}", {})
            for f, value, why_f in (
                ("BallotsCast", row["ballots_cast"], "ballots_cast"),
                ("BallotsRejected", row["invalid"], "invalid"),
            ):
                if value is None:
                    continue
                out.numbers += 1
                if b.get(f) != value:
                    out.add(
                        check,
                        file,
                        f"BallotCounts[gp-{row['area']}].{f}",
                        b.get(f),
                        value,
                        ex.why(key, why_f),
                    )


# -- SQLite (§11) --------------------------------------------------------------------------------


def _open(data: bytes, local: Path | None) -> tuple[sqlite3.Connection, Path | None]:
    if local is not None and local.exists():
        return sqlite3.connect(f"file:{local}?mode=ro&immutable=1", uri=True), None
    tmp = tempfile.NamedTemporaryFile(suffix=".sqlite", delete=False)  # noqa: SIM115
    tmp.write(data)
    tmp.close()
    return sqlite3.connect(f"file:{tmp.name}?mode=ro", uri=True), Path(tmp.name)


def check_sqlite(
    file: str, data: bytes, local: Path | None, ex: Expected, snapshot: dict[str, Any], out: Tally
) -> None:
    check = "sqlite"
    conn, tmp = _open(data, local)
    try:
        _check_sqlite(conn, file, ex, snapshot, out, check)
    except sqlite3.Error as exc:
        out.fail(check, file, "", f"cannot be read as the documented SQLite database: {exc}")
    finally:
        conn.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Want:
    """What one table should hold: a row's values by its key (None: no such row), how many
    rows, and every key (walked only when rows are missing)."""

    lookup: Callable[[tuple[Any, ...]], tuple[Any, ...] | None]
    count: int
    every: Callable[[], Iterable[tuple[Any, ...]]]


def _want(expected: dict[tuple[Any, ...], tuple[Any, ...]]) -> _Want:
    return _Want(expected.get, len(expected), expected.keys)


#: Rows read from the database at a time.
_BATCH = 10_000


def _compare_table(
    conn: sqlite3.Connection,
    file: str,
    table: str,
    columns: tuple[str, ...],
    key_len: int,
    want: _Want,
    numeric: int,
    out: Tally,
    why: Any,
) -> None:
    """Compare a table with what it should hold, reading it in key order in batches: never
    all of it in memory (``protocol_lines`` has a row per line of every protocol, 10 million
    rows at 100,000 Kyrgyz-shaped stations; reading them whole held about 10 GB). A key that
    comes twice is next to itself in key order (``COLLATE BINARY``: whatever the file says)."""
    order = ", ".join(f"{c} COLLATE BINARY" for c in columns[:key_len])
    cur = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")
    out.numbers += numeric * want.count
    matched = duplicates = 0
    previous: tuple[Any, ...] | None = None

    def where(k: tuple[Any, ...]) -> str:
        return f"{table}[{' / '.join(map(str, k))}]"

    while batch := cur.fetchmany(_BATCH):
        for r in batch:
            k = tuple(r[:key_len])
            if k == previous:
                duplicates += 1
                continue
            previous = k
            v = want.lookup(k)
            if v is None:
                out.fail("sqlite", file, where(k), "a row that should not exist")
                continue
            matched += 1
            g = tuple(r[key_len:])
            if g != v:
                for col, a, b in zip(columns[key_len:], g, v, strict=True):
                    if a != b:
                        out.add("sqlite", file, f"{where(k)}.{col}", a, b, why(k, col))
    if duplicates:
        out.fail("sqlite", file, table, f"{duplicates} duplicate rows")
    if matched < want.count:
        # The file's own keys, indexed in a temporary table (the file is read-only and may have
        # no index of its own): one lookup per expected row, none of it in Python's memory.
        keys = ", ".join(columns[:key_len])
        conn.execute("DROP TABLE IF EXISTS temp.seen_keys")
        conn.execute(f"CREATE TEMP TABLE seen_keys AS SELECT DISTINCT {keys} FROM main.{table}")
        conn.execute(f"CREATE INDEX temp.seen_keys_index ON seen_keys ({keys})")
        probe = "SELECT 1 FROM temp.seen_keys WHERE " + " AND ".join(f"{c} = ?" for c in columns[:key_len])
        for k in want.every():
            if conn.execute(probe, k).fetchone() is None:
                out.fail("sqlite", file, where(k), "row is missing")


def _picker(order: list[int]) -> Callable[[list[int]], tuple[int, ...]]:
    """The values at ``order`` of a list, as a tuple (``itemgetter`` gives a lone value bare)."""
    get = itemgetter(*order)
    return get if len(order) != 1 else (lambda values: (get(values),))


def _lines_match(conn: sqlite3.Connection, ex: Expected) -> bool:
    """Whether ``protocol_lines`` holds exactly the counts in force, asked of SQLite a protocol
    at a time: its lines joined in key order, which a scan of the table's primary key gives
    (10 million rows at 100,000 Kyrgyz-shaped stations went through Python one by one; this
    reads 400,000). The joined text says which line holds which whole number: a row count per
    protocol and integer values leave one way to cut it. Anything else, including a file whose
    rows come in another order, returns False and the table is compared row by row, which
    names each difference."""
    in_force, forms = ex.in_force, ex.election.contests
    cuts: dict[int, tuple[Callable[[list[int]], tuple[int, ...]], str, int]] = {}
    try:
        cur = conn.execute(
            "SELECT contest, count_kind, station, count(*), sum(typeof(value) != 'integer'), "
            "group_concat(line || '=' || value, ',') FROM protocol_lines "
            "GROUP BY contest COLLATE BINARY, count_kind COLLATE BINARY, station COLLATE BINARY"
        )
        seen = 0
        while batch := cur.fetchmany(_BATCH):
            for contest, kind, station, n, not_int, joined in batch:
                p = in_force.get((contest, station, kind))
                if p is None or not_int:
                    return False
                cut = cuts.get(p.contest)
                if cut is None:
                    ids = forms[p.contest].line_ids
                    order = sorted(range(len(ids)), key=ids.__getitem__)
                    # "line=%d,…" in the lines' order: one formatting per protocol.
                    template = ",".join(ids[i].replace("%", "%%") + "=%d" for i in order)
                    cut = cuts[p.contest] = (_picker(order), template, len(order))
                pick, template, width = cut
                if n != width or joined != template % pick(p.counts):
                    return False
                seen += 1
    except sqlite3.Error:
        return False
    return seen == len(in_force)


def _check_sqlite(
    conn: sqlite3.Connection, file: str, ex: Expected, snapshot: dict[str, Any], out: Tally, check: str
) -> None:
    e = ex.election
    snap_rows = dict(conn.execute("SELECT key, value FROM snapshot").fetchall())
    for k, v in snapshot.items():
        got = snap_rows.get(k)
        ok = got in (None, "", "None", "null") if v is None else got == str(v)
        if not ok:
            out.add(check, file, f"snapshot[{k}]", got, v, "the snapshot block of manifest.json")

    def row_why(k: tuple[Any, ...], col: str) -> str:
        key = (k[0], k[2], k[1])
        if col in ("percent_base", "percent_base_value"):
            return ex.why(key, "percent_base")
        return ex.why(key, col) if col != "official" else "count kind is the contest's official_count"

    results = {
        (r["contest"], r["count_kind"], r["area"]): (
            int(r["official"]),
            r["stations_reporting"],
            r["stations_expected"],
            *(r[f] for f in FIGURES),
            r["turnout_percent"],
            r["percent_base"]["figure"],
            r["percent_base"]["value"],
        )
        for r in ex.rows.values()
    }
    _compare_table(
        conn,
        file,
        "results",
        (
            "contest",
            "count_kind",
            "area",
            "official",
            "stations_reporting",
            "stations_expected",
            *FIGURES,
            "turnout_percent",
            "percent_base",
            "percent_base_value",
        ),
        3,
        _want(results),
        10,
        out,
        row_why,
    )
    choice_results = {
        (r["contest"], r["count_kind"], r["area"], c["id"]): (c["votes"], c["percent"])
        for r in ex.rows.values()
        for c in r["choices"]
    }
    _compare_table(
        conn,
        file,
        "choice_results",
        ("contest", "count_kind", "area", "choice", "votes", "percent"),
        4,
        _want(choice_results),
        2,
        out,
        lambda k, col: ex.why((k[0], k[2], k[1]), col, k[3]),
    )
    # From the protocols in force, not their published records (choices and shares): this
    # worker may hold none of them, and 400,000 took 7 s to build.
    protocols = {}
    for (cid, sid, kind), p in ex.in_force.items():
        figs = figure_values(e.contests[p.contest], p.counts)
        protocols[(cid, kind, sid)] = (p.index, p.leaf.hex(), p.body_sha256, *figs, turnout_of_values(figs))
    _compare_table(
        conn,
        file,
        "protocols",
        (
            "contest",
            "count_kind",
            "station",
            "ledger_index",
            "leaf_hash",
            "body_sha256",
            *FIGURES,
            "turnout_percent",
        ),
        3,
        _want(protocols),
        7,
        out,
        lambda k, col: (
            ex.why((k[0], k[2], k[1]), col)
            if col in FIGURES or col == "turnout_percent"
            else "the ledger entry in force"
        ),
    )
    # A protocol's lines are its counts in force by the form's line ids (what each record's
    # "lines" holds): looked up there, not made into a mapping of a row per protocol line, and
    # without building the published record of every protocol in this worker.
    in_force, forms = ex.in_force, ex.election.contests

    def line(k: tuple[Any, ...]) -> tuple[Any, ...] | None:
        p = in_force.get((k[0], k[2], k[1]))
        if p is None:
            return None
        i = forms[p.contest].line_index.get(k[3])
        return None if i is None else (p.counts[i],)

    def every_line() -> Iterable[tuple[Any, ...]]:
        for (cid, sid, kind), p in in_force.items():
            for lid in forms[p.contest].line_ids:
                yield (cid, kind, sid, lid)

    lines = _Want(line, sum(len(forms[p.contest].line_ids) for p in in_force.values()), every_line)
    if _lines_match(conn, ex):
        out.numbers += lines.count
    else:
        _compare_table(
            conn,
            file,
            "protocol_lines",
            ("contest", "count_kind", "station", "line", "value"),
            4,
            lines,
            1,
            out,
            lambda k, col: ex.why((k[0], k[2], k[1]), "lines." + k[3]),
        )

    def names(n: Any) -> tuple[str, str, str]:
        return name_in(n, "en"), name_in(n, "ru"), name_in(n, "ky")

    areas = {
        (a.id,): (*names(a.name), a.hierarchy, a.parent, a.kind, a.code, area_level(e, i))
        for i, a in enumerate(e.areas)
    }
    _compare_table(
        conn,
        file,
        "areas",
        ("id", "name_en", "name_ru", "name_ky", "hierarchy", "parent", "kind", "code", "level"),
        1,
        _want(areas),
        0,
        out,
        lambda k, col: "the definition",
    )
    stations = {(s.id,): (*names(s.name), s.registered, int(s.abroad)) for s in e.stations}
    _compare_table(
        conn,
        file,
        "stations",
        ("id", "name_en", "name_ru", "name_ky", "registered", "abroad"),
        1,
        _want(stations),
        1,
        out,
        lambda k, col: "the definition",
    )
    station_areas = {(s.id, a): () for s in e.stations for a in s.areas}
    _compare_table(
        conn,
        file,
        "station_areas",
        ("station", "area"),
        2,
        _want(station_areas),
        0,
        out,
        lambda k, col: "the definition",
    )
    contests = {
        (c.id,): (
            name_in(c.contest.name, "en"),
            str(c.contest.kind),
            c.contest.area,
            str(c.contest.percent_base),
            str(c.official_count),
        )
        for c in e.contests
    }
    _compare_table(
        conn,
        file,
        "contests",
        ("id", "name_en", "kind", "area", "percent_base", "official_count"),
        1,
        _want(contests),
        0,
        out,
        lambda k, col: "the definition",
    )
    choices = {
        (c.id, ch.id): (j + 1, *names(ch.name), int(ch.against_all), ch.party)
        for c in e.contests
        for j, ch in enumerate(c.contest.choices)
    }
    _compare_table(
        conn,
        file,
        "choices",
        ("contest", "id", "position", "name_en", "name_ru", "name_ky", "against_all", "party"),
        2,
        _want(choices),
        0,
        out,
        lambda k, col: "the definition",
    )

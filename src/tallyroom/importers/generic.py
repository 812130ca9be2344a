"""A generic CSV of polling-station protocols, read through a column mapping (YAML).

One row per (station, contest): a column naming the station, the contest either fixed in the
mapping or named by a column, and one column per protocol line. The election definition must
already be in the store (`tallyroom init`); the mapping names its line ids. The format is
documented with an example in docs/import-formats.md.

The file is checked whole before anything is written: its encoding, the mapped columns, and
that every row has as many cells as the header (a truncated file fails here). Values are then
turned into protocols row by row; whatever is wrong with one row (unknown station, a negative
or non-integer number, a second different protocol for a station) rejects that row alone,
with its row number, through the same checks as a device's protocol.

This module also holds the small CSV helpers the other importers share (decoding with the
line of the bad byte, strict reading with row numbers, a report that carries notes).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from itertools import islice
from operator import itemgetter
from pathlib import Path

import msgspec
import yaml

from tallyroom.definition.compiled import CompiledElection
from tallyroom.importers.pipeline import (
    CHUNK,
    ImportFileError,
    ImportReport,
    ImportRow,
    LineSource,
    RowBlock,
    after_first_record,
    read_lines,
    text_lines,
)

# -- shared helpers ----------------------------------------------------------------------------


@dataclass
class NotedReport(ImportReport):
    """An import report with extra lines for the user (`tallyroom import` prints them)."""

    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, report: ImportReport, notes: list[str]) -> NotedReport:
        base = {f.name: getattr(report, f.name) for f in fields(ImportReport)}
        return cls(**base, notes=notes)


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None


def decode(name: str, raw: bytes, encoding: str = "utf-8", hint: str = "") -> str:
    """The file's text; a byte that is not in `encoding` is reported with its line."""
    try:
        text = raw.decode(
            "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        )
    except LookupError:
        raise ImportFileError(f"{name}: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        row, line = _position(raw, exc.start, encoding)
        bad = raw[exc.start : exc.start + 4].hex(" ")
        raise ImportFileError(
            f"{name}: row {row} (line {line}, byte {exc.start}): not {encoding} text "
            f"({bad}…: {exc.reason}); save the file as {encoding}{hint}"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ImportFileError(f"{name}: line {line}: NUL byte (a binary or UTF-16 file?)")
    return text


def _position(raw: bytes, offset: int, encoding: str) -> tuple[int, int]:
    """The CSV row (header = 1) and the line holding byte `offset`."""
    line = raw.count(b"\n", 0, offset) + 1
    prefix = raw[:offset].decode(encoding, errors="replace")
    try:
        records = sum(1 for _ in csv.reader(io.StringIO(prefix, newline="")))
    except csv.Error:
        return line, line
    return (records + 1 if not prefix or prefix.endswith("\n") else records), line


def _reader(text: str, delimiter: str) -> Iterator[list[str]]:
    return csv.reader(text_lines(text, 0, ""), delimiter=delimiter, strict=True)


def read_header(name: str, text: str, delimiter: str = ",") -> list[str]:
    try:
        header = next(_reader(text, delimiter), None)
    except csv.Error as exc:
        raise ImportFileError(f"{name}: row 1 (header): malformed CSV ({exc})") from None
    if not header or not any(h.strip() for h in header):
        raise ImportFileError(f"{name}: the file is empty (no header row)")
    return [h.strip() for h in header]


def iter_records(name: str, text: str, width: int, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells) after the header; the header is row 1, blank rows are skipped.

    Raises ImportFileError naming the row when a row has a different number of cells than the
    header (how a truncated file shows) or the CSV quoting is broken.
    """
    reader = _reader(text, delimiter)
    n = 1
    try:
        next(reader)
        for n, row in enumerate(reader, start=2):
            if len(row) != width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                raise ImportFileError(
                    f"{name}: row {n}: {len(row)} cells, the header has {width}"
                    + (" (truncated file?)" if len(row) < width else "")
                )
            yield n, row
    except csv.Error as exc:
        raise ImportFileError(f"{name}: row {n + 1}: malformed CSV ({exc}; truncated file?)") from None


def check_records(name: str, text: str, width: int, delimiter: str = ",") -> tuple[int, int]:
    """Read the whole file once for its structure only; return (data rows, last row number)."""
    count = last = 0
    for last, _ in iter_records(name, text, width, delimiter):  # noqa: B007
        count += 1
    return count, last


def parse_count(value: str) -> int | str:
    """A whole number from a cell, or the cell's text for the pipeline to reject by line."""
    if value.isascii() and value.isdigit():
        return int(value)
    v = value.strip()
    body = v[1:] if v[:1] == "-" else v
    if body and body.isascii() and body.isdigit():
        return int(v)  # a negative count is rejected by the form check with its value
    return value


# -- the generic CSV importer -------------------------------------------------------------------


class ColumnMapping(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The mapping file (YAML): which column holds what."""

    #: The column holding the station id (as in the election definition).
    station_column: str
    #: A contest id for every row, or …
    contest: str | None = None
    #: … the column holding each row's contest id.
    contest_column: str | None = None
    #: Line id (form line or choice id) -> column. Omitted: every column named like a line id.
    lines: dict[str, str] | None = None
    delimiter: str = ","
    encoding: str = "utf-8"


@dataclass(frozen=True)
class GenericFile:
    name: str
    text: str
    mapping: ColumnMapping
    header: list[str]
    station_col: int
    contest_col: int | None
    #: (line id, column index) in mapping order.
    line_cols: list[tuple[str, int]]
    rows: int
    last_row: int
    #: The contest ids named in the file (the fixed one, or every value of contest_column).
    contests: frozenset[str]


def load_mapping(path: Path | None) -> ColumnMapping:
    if path is None:
        raise ImportFileError(
            "--format csv needs --mapping FILE (a column mapping; see docs/import-formats.md)"
        )
    raw = read_bytes(path)
    try:
        doc = yaml.safe_load(decode(path.name, raw))
    except yaml.YAMLError as exc:
        raise ImportFileError(f"{path.name}: not valid YAML: {exc}") from None
    try:
        m = msgspec.convert(doc, ColumnMapping)
    except msgspec.ValidationError as exc:
        raise ImportFileError(f"{path.name}: {exc}") from None
    if (m.contest is None) == (m.contest_column is None):
        raise ImportFileError(f"{path.name}: give exactly one of `contest` (an id) and `contest_column`")
    if len(m.delimiter) != 1:
        raise ImportFileError(f"{path.name}: delimiter: must be one character, got {m.delimiter!r}")
    if m.lines is not None and not m.lines:
        raise ImportFileError(f"{path.name}: lines: maps no line; omit it to map columns named like line ids")
    return m


def _contest_lines(election: CompiledElection, contest_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
    return {c: election.contest(c).line_ids for c in contest_ids if c in election.contest_index}


def parse(
    name: str, raw: bytes, mapping: ColumnMapping, mapping_name: str, election: CompiledElection
) -> GenericFile:
    """Check the file and the mapping against the election; raise ImportFileError on anything fatal."""
    text = decode(name, raw, mapping.encoding, f" or set `encoding:` in {mapping_name}")
    header = read_header(name, text, mapping.delimiter)
    index: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in index:
            raise ImportFileError(
                f"{name}: row 1: column {h!r} appears twice (columns {index[h] + 1} and {i + 1})"
            )
        index[h] = i

    def col(column: str, what: str) -> int:
        if column not in index:
            raise ImportFileError(
                f"{name}: row 1: no column {column!r} ({what} in {mapping_name}); "
                f"the header has {', '.join(map(repr, header[:12]))}" + (" …" if len(header) > 12 else "")
            )
        return index[column]

    station_col = col(mapping.station_column, "station_column")
    contest_col = None if mapping.contest_column is None else col(mapping.contest_column, "contest_column")
    if mapping.contest is not None:
        if mapping.contest not in election.contest_index:
            raise ImportFileError(
                f"{mapping_name}: contest: the store's election has no contest {mapping.contest!r} "
                f"(contests: {', '.join(election.contest_index)})"
            )
        known = _contest_lines(election, [mapping.contest])
    else:
        known = _contest_lines(election, list(election.contest_index))
    all_lines = {lid for lines in known.values() for lid in lines}

    if mapping.lines is None:
        reserved = {station_col, contest_col}
        line_cols = [(h, i) for i, h in enumerate(header) if h in all_lines and i not in reserved]
        if not line_cols:
            raise ImportFileError(
                f"{name}: row 1: no column is named like a line id, and {mapping_name} has no `lines`"
            )
    else:
        line_cols = []
        for lid, column in mapping.lines.items():
            if lid not in all_lines:
                where = f"contest {mapping.contest!r}" if mapping.contest else "any contest"
                raise ImportFileError(f"{mapping_name}: lines.{lid}: not a line of {where}")
            line_cols.append((lid, col(column, f"lines.{lid}")))
    if mapping.contest is not None:
        mapped = {lid for lid, _ in line_cols}
        unmapped = [lid for lid in known[mapping.contest] if lid not in mapped]
        if unmapped:
            raise ImportFileError(
                f"{mapping_name}: lines: contest {mapping.contest!r} has lines with no column: "
                + ", ".join(unmapped)
            )

    width = len(header)
    if contest_col is None:
        rows, last = check_records(name, text, width, mapping.delimiter)
        contests = frozenset([str(mapping.contest)])
    else:
        seen: set[str] = set()
        rows = last = 0
        for n, row in iter_records(name, text, width, mapping.delimiter):
            rows, last = rows + 1, n
            seen.add(row[contest_col].strip())
        contests = frozenset(seen)
    return GenericFile(name, text, mapping, header, station_col, contest_col, line_cols, rows, last, contests)


_INTS = msgspec.json.Decoder(list[int])


def iter_rows(f: GenericFile, election: CompiledElection) -> Iterator[ImportRow]:
    """One ImportRow per data row of the file (see `rows_from_records`)."""
    return rows_from_records(f, election, iter_records(f.name, f.text, len(f.header), f.mapping.delimiter))


def records(f: GenericFile) -> Iterator[tuple[int, list[str]]]:
    """The file's data rows as (row number, cells)."""
    return iter_records(f.name, f.text, len(f.header), f.mapping.delimiter)


def rows_from_records(
    f: GenericFile, election: CompiledElection, records: Iterable[tuple[int, list[str]]]
) -> Iterator[ImportRow]:
    """One ImportRow per data row; bad cells are passed on as text to be rejected by line.

    With a contest column, a mapped column of a line that the row's contest does not have
    must be empty in that row (it is skipped); a value there rejects the row, naming the line.
    """
    shape = _Shape(f, election)
    for n, row in records:
        yield shape.row(n, row)


class _Shape:
    """How one file's cells become protocol lines (see `rows_from_records`)."""

    def __init__(self, f: GenericFile, election: CompiledElection) -> None:
        self.f = f
        self.ids = tuple(lid for lid, _ in f.line_cols)
        self.width = len(self.ids)
        columns = [c for _, c in f.line_cols]
        pick = itemgetter(*columns)
        self.pick: Callable[[list[str]], tuple[str, ...]] = (
            pick if len(columns) > 1 else lambda row: (row[columns[0]],)
        )
        self.contest_lines = {
            c: frozenset(lines) for c, lines in _contest_lines(election, list(f.contests)).items()
        }
        # Contests that have every mapped line (always the fixed one): all cells are counts.
        self.whole = {c for c, lines in self.contest_lines.items() if lines.issuperset(self.ids)}
        self.fixed = str(f.mapping.contest)

    def contest(self, row: list[str]) -> str:
        return self.fixed if self.f.contest_col is None else row[self.f.contest_col].strip()

    def row(self, n: int, row: list[str]) -> ImportRow:
        contest = self.contest(row)
        nums = None
        if contest in self.whole or contest not in self.contest_lines:
            # Fast path: the mapped cells read as one JSON array of integers, in C. Anything
            # else (an empty cell, 12.5, 007, +5) falls back to the per-cell check below.
            with contextlib.suppress(msgspec.DecodeError):
                nums = _INTS.decode("[" + ",".join(self.pick(row)) + "]")
        lines: dict[str, object]
        if nums is not None and len(nums) == self.width:
            lines = dict(zip(self.ids, nums, strict=True))
        else:
            own = self.contest_lines.get(contest)
            lines = {}
            for lid, c in self.f.line_cols:
                v = row[c]
                if own is not None and lid not in own and not v.strip():
                    continue  # a column of another contest's line, empty in this row
                lines[lid] = parse_count(v)  # a text value is rejected by line
        return ImportRow(n, row[self.f.station_col].strip(), contest, lines)

    def block(self, rows: list[int], cells: list[list[str]]) -> RowBlock:
        """Rows as a RowBlock: the same protocols as `row` gives, checked faster."""
        contests = [self.fixed] * len(rows) if self.f.contest_col is None else list(map(self.contest, cells))
        whole, pick = self.whole, self.pick
        values: list[Sequence[str] | None] = (
            list(map(pick, cells))
            if self.f.contest_col is None and self.fixed in whole
            else [pick(r) if c in whole else None for c, r in zip(contests, cells, strict=True)]
        )
        column = self.f.station_col
        return RowBlock(
            self.ids,
            rows,
            [r[column].strip() for r in cells],
            contests,
            values,
            lambda i: self.row(rows[i], cells[i]),
        )


class GenericRows(LineSource):
    """The data rows of a generic CSV file, for `import_source`."""

    def __init__(self, f: GenericFile, election: CompiledElection) -> None:
        self.f = f
        self.shape = _Shape(f, election)
        self.text = f.text
        self.start = after_first_record(f.text, "", delimiter=f.mapping.delimiter, strict=True)
        self.first_row = 2

    def parse(self, chunk: str, row: int) -> tuple[RowBlock, object] | None:
        lines = read_lines(chunk, "", delimiter=self.f.mapping.delimiter, strict=True)
        if lines is None:
            return None
        width = len(self.f.header)
        odd = [k for k, r in enumerate(lines) if len(r) != width]
        if any(lines[k] and not (len(lines[k]) == 1 and not lines[k][0].strip()) for k in odd):
            return None  # read in order, which says which row
        gone = set(odd)
        kept = [k for k in range(len(lines)) if k not in gone] if odd else range(len(lines))
        rows = [row + k for k in kept]
        cells = lines if not odd else [lines[k] for k in kept]
        return self.shape.block(rows, cells), None

    def blocks_from(self, offset: int, row: int) -> Iterator[RowBlock]:
        f = self.f
        records = _records_from(f.name, f.text, offset, row, len(f.header), f.mapping.delimiter)
        while chunk := list(islice(records, CHUNK)):
            yield self.shape.block([n for n, _ in chunk], [r for _, r in chunk])


def _records_from(
    name: str, text: str, offset: int, row: int, width: int, delimiter: str
) -> Iterator[tuple[int, list[str]]]:
    """`iter_records` from a record boundary at `offset` (row number `row`) on."""
    reader = csv.reader(text_lines(text, offset, ""), delimiter=delimiter, strict=True)
    n = row - 1
    try:
        for n, r in enumerate(reader, start=row):
            if len(r) != width:
                if not r or (len(r) == 1 and not r[0].strip()):
                    continue
                raise ImportFileError(
                    f"{name}: row {n}: {len(r)} cells, the header has {width}"
                    + (" (truncated file?)" if len(r) < width else "")
                )
            yield n, r
    except csv.Error as exc:
        raise ImportFileError(f"{name}: row {n + 1}: malformed CSV ({exc}; truncated file?)") from None

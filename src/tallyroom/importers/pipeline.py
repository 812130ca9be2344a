"""Feed imported rows through the same checks and ledger as any device's protocol.

An import either fails before writing anything (unreadable file, wrong columns), or adds only
whole protocols that passed every error rule; each rejected row is reported with its row
number and reason. The file's SHA-256 and the row number are inside every protocol's signed
body (`source`), so anyone can trace a ledger entry back to the line of the file it came from.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import csv
import hashlib
import multiprocessing
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, cast

import msgspec

from tallyroom.cpus import usable_cpus
from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.model import CountKind
from tallyroom.ledger.entry import EntryKind, encode_entry
from tallyroom.protocol.bulk import BodyTemplate, json_string
from tallyroom.protocol.check import MAX_COUNT, ProtocolRejected, check_counts, counts_vector
from tallyroom.protocol.expr import compile_failing
from tallyroom.protocol.model import ProtocolBody, Source, encode_body
from tallyroom.protocol.pending import PendingProtocol, ProtocolBatch, UnknownReference, protocol_payload
from tallyroom.store.sql import Store
from tallyroom.tally.rebuild import paused_gc
from tallyroom.tally.running import Tally, TallyKey, Totals, column_sums

_INT_ONLY = {int}

BATCH = 20_000
#: The most protocols one import batch holds, however many totals it touches.
MAX_BATCH = 200_000
#: Rows a worker checks at a time.
CHUNK = 4_000

class ImportFileError(ValueError):
    """The file cannot be imported at all; nothing was written."""


class ImportInterrupted(RuntimeError):
    """A worker process died (most often killed by the system for lack of memory) before the
    import finished. What was appended before stays, durable and counted; importing the same
    file again adds the rest (rows already in the ledger are reported as duplicates)."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    row: int
    station: str
    contest: str
    #: Line id -> count; a value that is not an int makes the row rejected with the line named.
    lines: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    station: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row} (station {self.station}): {self.reason}"


@dataclass
class ImportReport:
    file_name: str
    file_sha256: str
    format: str
    count_kind: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    warnings: int = 0
    rejected: list[RowProblem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file_name,
            "file_sha256": self.file_sha256,
            "format": self.format,
            "count_kind": self.count_kind,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "accepted_with_warnings": self.warnings,
            "rejected": [{"row": p.row, "station": p.station, "reason": p.reason} for p in self.rejected],
        }


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class RowBlock:
    """Rows of a file in file order, column by column: the fast way into `prepare_rows`.

    Row i is file row `rows[i]`, for station `stations[i]` and contest `contests[i]`; its
    counts are `cells[i]`, the cell texts of the lines `line_ids` in that order. A row whose
    cells are not all plain whole numbers (or with `cells[i]` None) is built as an
    `ImportRow` by `loose(i)` and checked the ordinary way, so a block means exactly what
    the ImportRows `loose` would give for every row.
    """

    line_ids: tuple[str, ...]
    rows: list[int]
    stations: list[str]
    contests: list[str]
    cells: list[Sequence[str] | None]
    loose: Callable[[int], ImportRow]


@dataclass
class Prepared:
    """One chunk of rows checked and turned into protocols, ready to append in file order."""

    batch: ProtocolBatch = field(default_factory=ProtocolBatch)
    #: The file row of each protocol of `batch`, to report conflicts by row.
    origin: list[int] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    rows: int = 0
    warnings: int = 0
    #: The protocols' totals: (contest, area, count kind, stations, counts vector).
    delta: list[tuple[int, int, str, int, list[int]]] = field(default_factory=list)


_json = msgspec.json.Encoder()
_ints = msgspec.json.Decoder(list[int])
_int_rows = msgspec.json.Decoder(list[list[int]])
_LONG_NUMBER = re.compile(f"[0-9]{{{len(str(MAX_COUNT))},}}")


def _row_ints(text: str, width: int) -> list[int] | None:
    """One row's cells (joined by commas) as `width` ints, or None if they are not exactly that."""
    try:
        nums = _ints.decode("[" + text + "]")
    except msgspec.DecodeError:
        return None
    return nums if len(nums) == width else None


#: (contest, station, count kind, counts) of each protocol, to sum into the chunk's totals.
_Vectors = list[tuple[int, int, str, list[int]]]
_IMPORT_ENVELOPE = {"via": "import"}


class _Shape:
    """What the fast path needs for rows of one contest with lines in one order."""

    __slots__ = ("contest", "failing", "holds", "index", "perm", "stations", "template", "width")

    def __init__(self, election: CompiledElection, ci: int, template: BodyTemplate) -> None:
        contest = election.contests[ci]
        self.index = ci
        self.contest = contest
        self.stations = contest.station_set
        self.holds = contest.all_rules_hold
        self.failing = compile_failing([r.comparison for r in contest.rules], contest.line_index)
        self.template = template
        self.width = len(template.line_ids)
        #: None when the row's lines are in form order, else form position -> row position.
        self.perm: list[int] | None = None
        if template.line_ids != contest.line_ids:
            at = {lid: i for i, lid in enumerate(template.line_ids)}
            self.perm = [at[lid] for lid in contest.line_ids]


class _Preparer:
    """Checks rows as protocols and builds their ledger entries, for one import."""

    def __init__(
        self, election: CompiledElection, fmt: str, file_name: str, file_hash: str, count_kind: CountKind
    ) -> None:
        self.election = election
        self.fmt = fmt
        self.file_name = file_name
        self.file_hash = file_hash
        self.count_kind = count_kind
        self.shapes: dict[tuple[str, tuple[str, ...]], _Shape | None] = {}
        self.prefix = encode_entry(EntryKind.PROTOCOL, protocol_payload(_IMPORT_ENVELOPE, b""))
        #: What the leaf hash of an entry hashes before the body (RFC 9162 §2.1.1).
        self.leaf_prefix = b"\x00" + self.prefix

    def shape(self, contest_id: str, line_ids: tuple[str, ...]) -> _Shape | None:
        """The fast path for rows of this contest and line order, or None (check row by row)."""
        key = (contest_id, line_ids)
        if key in self.shapes:
            return self.shapes[key]
        found = None
        ci = self.election.contest_index.get(contest_id)
        if ci is not None and len(set(line_ids)) == len(line_ids) and (
            set(line_ids) == set(self.election.contests[ci].line_ids)
        ):
            template = BodyTemplate.for_shape(
                self.election.sha256,
                contest_id,
                self.count_kind,
                line_ids,
                self.fmt,
                self.file_hash,
                self.file_name,
            )
            if template is not None:
                found = _Shape(self.election, ci, template)
        self.shapes[key] = found
        return found

    def prepare(self, rows: Iterable[ImportRow] | RowBlock) -> Prepared:
        out = Prepared()
        vectors: _Vectors = []
        if isinstance(rows, RowBlock):
            self._block(rows, out, vectors)
        else:
            for item in rows:
                self._item(item, out, vectors)
        delta = Tally(self.election)
        delta.apply_batch(vectors)
        out.delta = [
            (k.contest, k.area, k.count_kind, t.reporting, t.counts) for k, t in delta.totals.items()
        ]
        return out

    def _item(self, item: ImportRow, out: Prepared, vectors: _Vectors) -> None:
        out.rows += 1
        lines = item.lines
        if type(lines) is dict:
            values = list(lines.values())
            shape = self.shape(item.contest, tuple(lines))
            if shape is not None and set(map(type, values)) == _INT_ONLY:
                counts = self._fast(shape, item.station, values, values, item.row, out)
                if counts is not None:
                    vectors.append((shape.index, out.batch.stations[-1], str(self.count_kind), counts))
                    return
        self._slow(item, out, vectors)

    def _block(self, block: RowBlock, out: Prepared, vectors: _Vectors) -> None:
        """Check a block a run of same-contest rows at a time, whole lists at once."""
        n = len(block.rows)
        if not (len(block.stations) == len(block.contests) == len(block.cells) == n):
            raise ValueError("a RowBlock's columns differ in length")
        lo = 0
        while lo < n:
            contest_id = block.contests[lo]
            hi = lo + 1
            while hi < n and block.contests[hi] == contest_id:
                hi += 1
            shape = self.shape(contest_id, block.line_ids)
            if shape is None:
                for i in range(lo, hi):
                    out.rows += 1
                    self._slow(block.loose(i), out, vectors)
            else:
                self._run(shape, block, lo, hi, out, vectors)
            lo = hi

    def _run(
        self, shape: _Shape, block: RowBlock, lo: int, hi: int, out: Prepared, vectors: _Vectors
    ) -> None:
        """Rows lo..hi of a block, all of one contest: the rows that pass every check the
        fast way, a list at a time; any other row the ordinary way, in its place."""
        cells = block.cells[lo:hi]
        n = hi - lo
        width = shape.width
        bad: set[int] = {i for i, c in enumerate(cells) if c is None} if None in cells else set()
        texts = [",".join(c) if c is not None else "" for c in cells]
        # All rows' cells as one JSON array of arrays, decoded in one call. That is sound:
        # a cell can only add array boundaries ("1],[2"), never remove one of ours, so with
        # n arrays of `width` ints every cell was exactly one integer.
        nums: list[list[int] | None]
        joined = "[[" + "],[".join(texts) + "]]"
        try:
            whole = _int_rows.decode(joined)
            ok = not bad and len(whole) == n and all(len(r) == width for r in whole)
        except msgspec.DecodeError:
            ok = False
        if ok:
            nums = list(whole)
        else:
            nums = [_row_ints(t, width) if i not in bad else None for i, t in enumerate(texts)]
            bad.update(i for i, r in enumerate(nums) if r is None)
        sis = list(map(self.election.station_index.get, block.stations[lo:hi]))
        if not shape.stations.issuperset(sis):
            bad.update(i for i, si in enumerate(sis) if si is None or si not in shape.stations)
        # A count below 0 needs a "-", one above MAX_COUNT (8 digits) at least 8 digits in a
        # row: only then look at the values themselves.
        if width and ("-" in joined or _LONG_NUMBER.search(joined)):
            bad.update(
                i for i, r in enumerate(nums) if r is not None and (min(r) < 0 or max(r) > MAX_COUNT)
            )
        perm = shape.perm
        counts: list[list[int]] = [
            ([] if r is None else r if perm is None else [r[p] for p in perm]) for r in nums
        ]
        if bad:
            keep = [i for i in range(n) if i not in bad]
            bad.update(keep[j] for j in shape.failing([counts[i] for i in keep]))
        else:
            bad.update(shape.failing(counts))
        # Emit in file order: runs of good rows a list at a time, bad rows one by one.
        start = 0
        for i in sorted(bad):
            if start < i:
                self._emit(shape, block, lo, start, i, nums, counts, sis, texts, None, out, vectors)
            out.rows += 1
            self._slow(block.loose(lo + i), out, vectors)
            start = i + 1
        if start < n:
            whole_run = joined if start == 0 else None
            self._emit(shape, block, lo, start, n, nums, counts, sis, texts, whole_run, out, vectors)

    def _emit(
        self,
        shape: _Shape,
        block: RowBlock,
        lo: int,
        a: int,
        z: int,
        nums: Sequence[list[int] | None],
        counts: Sequence[list[int]],
        sis: Sequence[int | None],
        texts: Sequence[str],
        joined: str | None,
        out: Prepared,
        vectors: _Vectors,
    ) -> None:
        """Append rows lo+a .. lo+z, which passed every check, to the prepared batch
        (`joined`: their cells as one JSON array of arrays, if already made)."""
        m = z - a
        values: Sequence[Sequence[object]]
        seg_nums = cast(list[list[int]], nums[a:z])
        seg_counts = counts[a:z]
        seg_texts = texts[a:z]
        # Cells written exactly as the JSON of their values (no "007", no " 5") go into the
        # body as they are; otherwise the values do, as `encode_body` would write them.
        if joined is None:
            joined = "[[" + "],[".join(seg_texts) + "]]"
        canonical = _json.encode(seg_nums) == joined.encode()
        values = cast(list[Sequence[str]], block.cells[lo + a : lo + z]) if canonical else seg_nums
        if canonical and shape.perm is None:
            counts_json = ["[" + t + "]" for t in seg_texts]
        else:
            counts_json = [_json.encode(c).decode() for c in seg_counts]
        stations = block.stations[lo + a : lo + z]
        rows = block.rows[lo + a : lo + z]
        station_json = map(bytes.decode, map(_json.encode, stations))
        bodies = list(map(str.encode, map(shape.template.render, station_json, values, rows)))
        sha256 = hashlib.sha256
        leaf_prefix = self.leaf_prefix
        b = out.batch
        b.entries += map(self.prefix.__add__, bodies)
        b.leaves += [sha256(leaf_prefix + body).digest() for body in bodies]
        b.body_sha256 += [sha256(body).hexdigest() for body in bodies]
        seg_sis = cast(list[int], sis[a:z])
        b.contests += repeat(shape.index, m)
        b.stations += seg_sis
        kind = str(self.count_kind)
        b.count_kinds += repeat(kind, m)
        b.counts_json += counts_json
        b.warnings_json += repeat("[]", m)
        out.origin += rows
        out.rows += m
        vectors += zip(repeat(shape.index), seg_sis, repeat(kind), seg_counts)

    def _fast(
        self,
        shape: _Shape,
        station: str,
        values: list[Any],
        nums: list[int],
        row: int,
        out: Prepared,
    ) -> list[int] | None:
        """Append a row of plain ints that passes every check; None to check it the slow way."""
        si = self.election.station_index.get(station)
        if si is None or si not in shape.stations or len(nums) != shape.width:
            return None
        if nums and (min(nums) < 0 or max(nums) > MAX_COUNT):
            return None
        counts = nums if shape.perm is None else [nums[p] for p in shape.perm]
        if not shape.holds(counts):
            return None
        self._append(shape, station, si, values, row, counts, _json.encode(counts).decode(), out.batch)
        out.origin.append(row)
        return counts

    def _append(
        self,
        shape: _Shape,
        station: str,
        si: int,
        values: Sequence[object],
        row: int,
        counts: list[int],
        counts_json: str,
        b: ProtocolBatch,
    ) -> None:
        body = shape.template.render(json_string(station), values, row).encode()
        b.contests.append(shape.index)
        b.stations.append(si)
        b.count_kinds.append(str(self.count_kind))
        b.entries.append(self.prefix + body)
        b.leaves.append(hashlib.sha256(self.leaf_prefix + body).digest())
        b.counts_json.append(counts_json)
        b.warnings_json.append("[]")
        b.body_sha256.append(hashlib.sha256(body).hexdigest())

    def _slow(self, item: ImportRow, out: Prepared, vectors: _Vectors) -> None:
        try:
            pending = _prepare_row(
                self.election,
                item,
                self.fmt,
                self.file_name,
                self.file_hash,
                self.count_kind,
                _IMPORT_ENVELOPE,
            )
        except (ProtocolRejected, UnknownReference) as exc:
            out.rejected.append(RowProblem(item.row, item.station, str(exc)))
            return
        if pending.warnings:
            out.warnings += 1
        counts = list(pending.counts)
        b = out.batch
        b.contests.append(pending.contest)
        b.stations.append(pending.station)
        b.count_kinds.append(pending.count_kind)
        b.entries.append(pending.entry)
        b.leaves.append(pending.leaf)
        b.counts_json.append(_json.encode(counts).decode())
        b.warnings_json.append(_json.encode(pending.warnings).decode())
        b.body_sha256.append(pending.body_sha256)
        out.origin.append(item.row)
        vectors.append((pending.contest, pending.station, pending.count_kind, counts))


def prepare_rows(
    election: CompiledElection,
    rows: Iterable[ImportRow] | RowBlock,
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
) -> Prepared:
    """Check rows as protocols (form, control rules), build their ledger entries and sum them.

    The protocols come back column by column (`ProtocolBatch`, counts as JSON only) with
    their totals summed per area (`delta`): that is what the appending process needs, and it
    crosses a process boundary far faster than an object per protocol.
    """
    return _Preparer(election, fmt, file_name, file_hash, count_kind).prepare(rows)


class _Appender:
    """Appends prepared chunks in durable batches of about BATCH protocols, in file order."""

    def __init__(self, store: Store, report: ImportReport, progress: Callable[[int], None] | None) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.batch = ProtocolBatch()
        self.origin: list[int] = []
        #: The batch's totals as vectors to add up (in C, at flush) and station counts.
        self.sums: dict[tuple[int, int, str], tuple[list[list[int]], list[int]]] = {}

    def add(self, prepared: Prepared) -> None:
        r = self.report
        r.rows += prepared.rows
        r.warnings += prepared.warnings
        r.rejected.extend(prepared.rejected)
        self.batch.extend(prepared.batch)
        self.origin += prepared.origin
        sums = self.sums
        for contest, area, kind, reporting, counts in prepared.delta:
            key = (contest, area, kind)
            got = sums.get(key)
            if got is None:
                sums[key] = ([counts], [reporting])
            else:
                got[0].append(counts)
                got[1].append(reporting)
        # A batch is one transaction: its totals are read, added to and written once. With
        # stations spread over many areas (every 20,000 rows touching 25,000 totals) that
        # would cost more than the rows, so a batch then grows to a few rows per total.
        size = len(self.batch)
        if size >= BATCH and (size >= 4 * len(self.sums) or size >= MAX_BATCH):
            self.flush()

    def flush(self) -> None:
        if not len(self.batch):
            return
        election = self.store.election()
        delta = Tally(election)
        delta.totals = {
            TallyKey(*key): Totals(list(column_sums(vecs)), sum(reporting))
            for key, (vecs, reporting) in self.sums.items()
        }
        done = self.store.append_batch(self.batch, delta)
        r = self.report
        r.accepted += done.appended
        for i, res in sorted(done.others.items()):
            if res.status == "duplicate":
                r.duplicates += 1
            else:
                contest = election.contests[self.batch.contests[i]].id
                r.rejected.append(
                    RowProblem(
                        self.origin[i],
                        election.stations[self.batch.stations[i]].id,
                        f"conflict: station already has a different {r.count_kind} "
                        f"protocol for {contest} (ledger entry {res.existing_index}); a correction "
                        "needs two people",
                    )
                )
        if self.progress is not None:
            self.progress(len(self.batch))
        self.batch, self.origin, self.sums = ProtocolBatch(), [], {}


def _finish(store: Store, report: ImportReport) -> ImportReport:
    report.rejected.sort(key=lambda p: p.row)
    store.record_import(
        report.format,
        report.file_name,
        report.file_sha256,
        report.count_kind,
        report.rows,
        report.accepted,
        len(report.rejected),
        report.to_dict(),
    )
    return report


def import_rows(
    store: Store,
    rows: Iterable[ImportRow] | Iterable[RowBlock],
    *,
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check each row as a protocol and append the valid ones in durable batches (one process).

    `rows` are ImportRows, or RowBlocks (the fast form, see `RowBlock`) in file order.
    """
    election = store.election()
    report = ImportReport(file_name, file_hash, fmt, str(count_kind))
    appender = _Appender(store, report, progress)
    preparer = _Preparer(election, fmt, file_name, file_hash, count_kind)
    chunk: list[ImportRow] = []
    with paused_gc():
        for item in rows:
            if isinstance(item, RowBlock):
                if chunk:
                    appender.add(preparer.prepare(chunk))
                    chunk = []
                appender.add(preparer.prepare(item))
                continue
            chunk.append(item)
            if len(chunk) >= CHUNK:
                appender.add(preparer.prepare(chunk))
                chunk = []
        if chunk:
            appender.add(preparer.prepare(chunk))
        appender.flush()
    return _finish(store, report)


class LineSource(abc.ABC):
    """A CSV file whose records are, as a rule, one line each: read in chunks by workers.

    Reading is the larger part of an import after the checks, so worker processes read too:
    the parent only cuts the text at line ends (`chunk_bounds`), and each worker parses its
    chunk (`parse`), checks and encodes its rows. That gives what reading the file in order
    gives as long as every record is one line (rows are then numbered by lines) and anything
    the format numbers in order of appearance is known beforehand; `parse` and `accept`
    check both, and from the first chunk where either fails the parent reads the rest of the
    file in order (`blocks_from`), exactly as a one-process import does. Errors in the file
    are always raised from there, so they are the same whatever the number of workers.
    """

    #: The whole file's text, the offset where its data rows start, and the first row number.
    text: str
    start: int
    first_row: int

    @abc.abstractmethod
    def parse(self, chunk: str, row: int) -> tuple[RowBlock, object] | None:
        """(In a worker) The lines of `chunk`, the first being row `row`, as a RowBlock plus
        what `accept` needs to know; None if the chunk is not plainly one record per line or
        anything else needs the file read in order."""

    def accept(self, note: object) -> bool:
        """(In the parent, chunk by chunk in file order) Whether the chunk that `parse` read
        means what reading the file in order means; False to read in order from that chunk."""
        return True

    @abc.abstractmethod
    def blocks_from(self, offset: int, row: int) -> Iterator[RowBlock]:
        """The rows from text offset `offset` (a line start, row number `row`) to the end,
        read in order, in blocks of about CHUNK rows."""


def read_lines(chunk: str, newline: str, **fmtparams: Any) -> list[list[str]] | None:
    """The CSV records of `chunk` if every one is exactly one line of it, else None.

    `newline` is the format's own reader's (see `text_lines`), so that lines and cells come
    out exactly as they would there. A record spanning lines (a quoted line break), a line
    cut by a lone carriage return, a quoted field left open at the end of the chunk, or
    malformed CSV all give None: the chunk is then read in order.
    """
    if newline == "" and chunk.count("\r") != chunk.count("\r\n"):
        return None  # a lone carriage return ends a line there, so lines are not rows
    lines = _lines(chunk, newline)
    reader = csv.reader(lines, **fmtparams)
    try:
        rows = list(reader)
    except csv.Error:
        return None
    if reader.line_num != len(rows) or len(rows) != len(lines):
        return None
    if rows and any("\n" in c or "\r" in c for c in rows[-1]):
        return None
    return rows


#: Characters `str.splitlines` also breaks at, which `io.StringIO(newline="")` does not.
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_UNIVERSAL_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines(piece: str, newline: str) -> list[str]:
    """The lines of `piece` with their line ends, as iterating `io.StringIO(piece, newline=newline)`
    gives them ("\n": broken at "\n" only; "": at "\r\n", "\r" and "\n")."""
    if newline == "":
        if _OTHER_BREAKS.search(piece) is None:
            return piece.splitlines(keepends=True)
        lines: list[str] = _UNIVERSAL_LINES.findall(piece)
        return lines
    if newline != "\n":
        raise ValueError(f"newline must be '' or '\\n', not {newline!r}")
    parts = piece.split("\n")
    last = parts.pop()
    lines = [p + "\n" for p in parts]
    if last:
        lines.append(last)
    return lines


def text_lines(text: str, start: int, newline: str) -> Iterator[str]:
    """The lines of `text[start:]` as `io.StringIO(text[start:], newline=newline)` iterates
    them, without copying the whole text into a StringIO (four bytes a character) at once."""
    for a, b, _row in chunk_bounds(text, start, 0, CHUNK_CHARS):
        yield from _lines(text[a:b], newline)


def after_first_record(text: str, newline: str, **fmtparams: Any) -> int:
    """The offset in `text` where the CSV record after the first (the header) starts."""
    taken: list[str] = []

    def lines() -> Iterator[str]:
        for line in text_lines(text, 0, newline):
            taken.append(line)
            yield line

    reader = csv.reader(lines(), **fmtparams)
    with contextlib.suppress(csv.Error, StopIteration):
        next(reader)
    return sum(map(len, taken[: reader.line_num]))


def chunk_bounds(text: str, start: int, row: int, size: int) -> Iterator[tuple[int, int, int]]:
    """Cut `text[start:]` into (start, end, first row) chunks of about `size` characters,
    each ending at a line end ("\n")."""
    end = len(text)
    while start < end:
        cut = text.find("\n", min(start + size, end - 1))
        stop = end if cut < 0 else cut + 1
        yield start, stop, row
        row += text.count("\n", start, stop)
        start = stop


#: Characters per chunk a worker reads: about CHUNK rows of a Russian station file.
CHUNK_CHARS = 1_600_000

# Set in the parent just before the worker processes fork, so they inherit the compiled
# election, the file's text and the preparer instead of receiving them pickled.
_JOB: tuple[_Preparer, LineSource] | None = None


def _work(bounds: tuple[int, int, int]) -> tuple[Prepared, object] | None:
    assert _JOB is not None
    preparer, source = _JOB
    start, stop, row = bounds
    got = source.parse(source.text[start:stop], row)
    if got is None:
        return None
    block, note = got
    return preparer.prepare(block), note


def import_source(
    store: Store,
    source: LineSource,
    *,
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import a file's rows, read and checked in worker processes; the parent appends.

    Chunks come back in file order, so the ledger order is the file's order whatever the
    worker count; with one worker (or no `fork`) everything happens in this process.
    """
    global _JOB
    election = store.election()
    n = workers if workers is not None else min(2, usable_cpus())  # its affinity and CPU quota
    report = ImportReport(file_name, file_hash, fmt, str(count_kind))
    appender = _Appender(store, report, progress)
    preparer = _Preparer(election, fmt, file_name, file_hash, count_kind)
    parallel = n > 1 and "fork" in multiprocessing.get_all_start_methods()
    _JOB = (preparer, source)
    try:
        # Objects that exist before the fork are never collected in the workers (the
        # collector is paused and they are frozen), so their pages are never copied.
        with paused_gc(), _pool(n) if parallel else _no_pool() as pool:
            bounds = chunk_bounds(source.text, source.start, source.first_row, CHUNK_CHARS)
            rest: tuple[int, int] | None = None
            try:
                for (start, _stop, row), got in _results(pool, bounds, n):
                    if got is None or not source.accept(got[1]):
                        rest = (start, row)
                        break
                    appender.add(got[0])
            except BrokenProcessPool as exc:
                appender.flush()
                raise ImportInterrupted(
                    f"{file_name}: a worker process was killed before the import finished (by the "
                    "system: most often for lack of memory); the "
                    f"{report.accepted:,} protocols accepted before it are in the "
                    "ledger; import the same file again to add the rest (rows already in are "
                    "reported as duplicates, nothing is counted twice)"
                ) from exc
            if rest is not None:
                for block in source.blocks_from(*rest):
                    appender.add(preparer.prepare(block))
            appender.flush()
    finally:
        _JOB = None
    return _finish(store, report)


@contextlib.contextmanager
def _no_pool() -> Iterator[None]:
    yield None


@contextlib.contextmanager
def _pool(n: int) -> Iterator[ProcessPoolExecutor]:
    """`n` forked workers (forked at the first chunk handed out, after ``_JOB`` is set).

    An executor, not ``multiprocessing.Pool``: a worker killed mid-chunk (the OOM killer) made
    ``Pool`` wait for its result for ever and `tallyroom import` hang; the executor notices the
    dead process, stops the others and fails what was pending (:class:`ImportInterrupted`).
    """
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _results(
    pool: ProcessPoolExecutor | None, bounds: Iterator[tuple[int, int, int]], n: int
) -> Iterator[tuple[tuple[int, int, int], tuple[Prepared, object] | None]]:
    """Each chunk with what `_work` made of it, in file order: in the workers, a few chunks
    in flight at most (so results wait for the appender only that long), or here."""
    if pool is None:
        for b in bounds:
            yield b, _work(b)
        return
    window: collections.deque[tuple[tuple[int, int, int], _Pending]] = collections.deque()
    while True:
        while len(window) < 2 * n + 1 and (ahead := next(bounds, None)) is not None:
            window.append((ahead, pool.submit(_work, ahead)))
        if not window:
            return
        done, pending = window.popleft()
        yield done, pending.result()


_Pending = Future[tuple[Prepared, object] | None]


def _prepare_row(
    election: CompiledElection,
    item: ImportRow,
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
    envelope: dict[str, Any],
) -> PendingProtocol:
    si = election.station_index.get(item.station)
    if si is None:
        raise UnknownReference("station", f'unknown station "{item.station}"')
    ci = election.contest_index.get(item.contest)
    if ci is None:
        raise UnknownReference("contest", f'unknown contest "{item.contest}"')
    contest = election.contests[ci]
    if si not in contest.station_set:
        raise UnknownReference("station", f'station does not vote in contest "{item.contest}"')
    counts = counts_vector(contest, item.lines)
    warnings = check_counts(contest, counts)
    body = ProtocolBody(
        election=election.sha256,
        station=item.station,
        contest=item.contest,
        count_kind=count_kind,
        lines=cast(dict[str, int], dict(item.lines)),
        source=Source(format=fmt, file_sha256=file_hash, row=item.row, file_name=file_name),
    )
    raw = encode_body(body)
    return PendingProtocol.build(
        contest=ci,
        station=si,
        count_kind=str(count_kind),
        counts=counts,
        warnings=[w.to_dict() for w in warnings],
        payload=protocol_payload(envelope, raw),
        body_sha256=hashlib.sha256(raw).hexdigest(),
    )

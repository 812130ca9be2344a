"""Feed imported rows through the same checks and ledger as any device's protocol.

An import either fails before writing anything (unreadable file, wrong columns), or adds only
whole protocols that passed every error rule; each rejected row is reported with its row
number and reason. The file's SHA-256 and the row number are inside every protocol's signed
body (`source`), so anyone can trace a ledger entry back to the line of the file it came from.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar, cast

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.model import CountKind
from tallyroom.protocol.check import ProtocolRejected, check_counts, counts_vector
from tallyroom.protocol.model import ProtocolBody, Source, encode_body
from tallyroom.protocol.pending import PendingProtocol, UnknownReference, protocol_payload
from tallyroom.store.sql import Store
from tallyroom.tally.running import Tally, TallyKey, Totals

BATCH = 20_000
#: Rows a worker checks at a time.
CHUNK = 4_000

R = TypeVar("R")


class ImportFileError(ValueError):
    """The file cannot be imported at all; nothing was written."""


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


@dataclass
class Prepared:
    """One chunk of rows checked and turned into protocols, ready to append in file order."""

    pending: list[PendingProtocol] = field(default_factory=list)
    #: (row, station, contest) of each pending protocol, to report conflicts by row.
    origin: list[tuple[int, str, str]] = field(default_factory=list)
    rejected: list[RowProblem] = field(default_factory=list)
    rows: int = 0
    warnings: int = 0
    #: The pending protocols' totals: (contest, area, count kind, stations, counts vector).
    delta: list[tuple[int, int, str, int, list[int]]] = field(default_factory=list)


_counts_json = msgspec.json.Encoder()


def prepare_rows(
    election: CompiledElection,
    rows: Iterable[ImportRow],
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
) -> Prepared:
    """Check rows as protocols (form, control rules), build their ledger entries and sum them.

    The protocols come back with their counts as JSON only (`counts_json`) and their totals
    summed per area (`delta`): that is what the appending process needs, and it crosses a
    process boundary far faster than a vector of ints per protocol.
    """
    out = Prepared()
    envelope = {"via": "import"}
    vectors = []
    for item in rows:
        out.rows += 1
        try:
            pending = _prepare_row(election, item, fmt, file_name, file_hash, count_kind, envelope)
        except (ProtocolRejected, UnknownReference) as exc:
            out.rejected.append(RowProblem(item.row, item.station, str(exc)))
            continue
        if pending.warnings:
            out.warnings += 1
        vectors.append((pending.contest, pending.station, pending.count_kind, pending.counts))
        out.pending.append(
            dataclasses.replace(pending, counts=(), counts_json=_counts_json.encode(pending.counts).decode())
        )
        out.origin.append((item.row, item.station, item.contest))
    delta = Tally(election)
    delta.apply_batch(vectors)
    out.delta = [(k.contest, k.area, k.count_kind, t.reporting, t.counts) for k, t in delta.totals.items()]
    return out


class _Appender:
    """Appends prepared chunks in durable batches of about BATCH protocols, in file order."""

    def __init__(self, store: Store, report: ImportReport, progress: Callable[[int], None] | None) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.pending: list[PendingProtocol] = []
        self.origin: list[tuple[int, str, str]] = []
        self.delta = Tally(store.election())

    def add(self, prepared: Prepared) -> None:
        r = self.report
        r.rows += prepared.rows
        r.warnings += prepared.warnings
        r.rejected.extend(prepared.rejected)
        self.pending.extend(prepared.pending)
        self.origin.extend(prepared.origin)
        totals = self.delta.totals
        for contest, area, kind, reporting, counts in prepared.delta:
            key = TallyKey(contest, area, kind)
            t = totals.get(key)
            if t is None:
                totals[key] = Totals(counts, reporting)
            else:
                t.counts = [a + b for a, b in zip(t.counts, counts, strict=True)]
                t.reporting += reporting
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        results = self.store.append_protocols(self.pending, self.delta)
        self.delta = Tally(self.store.election())
        for res, (row, station, contest) in zip(results, self.origin, strict=True):
            if res.status == "new":
                self.report.accepted += 1
            elif res.status == "duplicate":
                self.report.duplicates += 1
            else:
                self.report.rejected.append(
                    RowProblem(
                        row,
                        station,
                        f"conflict: station already has a different {self.report.count_kind} "
                        f"protocol for {contest} (ledger entry {res.existing_index}); a correction "
                        "needs two people",
                    )
                )
        if self.progress is not None:
            self.progress(len(self.pending))
        self.pending, self.origin = [], []


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
    rows: Iterable[ImportRow],
    *,
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Check each row as a protocol and append the valid ones in durable batches (one process)."""
    election = store.election()
    report = ImportReport(file_name, file_hash, fmt, str(count_kind))
    appender = _Appender(store, report, progress)
    it = iter(rows)
    while chunk := list(islice(it, CHUNK)):
        appender.add(prepare_rows(election, chunk, fmt, file_name, file_hash, count_kind))
    appender.flush()
    return _finish(store, report)


# Set in the parent just before the worker processes fork, so they inherit the compiled
# election and the row builder instead of receiving them pickled.
_JOB: tuple[Any, ...] | None = None


def _work(records: list[R]) -> Prepared:
    assert _JOB is not None
    election, make_rows, fmt, file_name, file_hash, count_kind = _JOB
    return prepare_rows(election, make_rows(records), fmt, file_name, file_hash, count_kind)


def import_records(
    store: Store,
    records: Iterable[R],
    make_rows: Callable[[list[R]], Iterable[ImportRow]],
    *,
    fmt: str,
    file_name: str,
    file_hash: str,
    count_kind: CountKind,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import parsed file records, checking them in worker processes.

    The parent reads the file (`records`, e.g. CSV cells) and appends; `workers` processes
    turn chunks of records into checked protocols (`make_rows`, then the form and control
    rules, body encoding and hashing), which is where an import spends its time. Chunks come
    back in file order, so the ledger order is the file's order whatever the worker count.
    """
    global _JOB
    election = store.election()
    n = workers if workers is not None else min(2, os.cpu_count() or 1)
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        rows = (row for chunk in _chunks(records) for row in make_rows(chunk))
        return import_rows(
            store,
            rows,
            fmt=fmt,
            file_name=file_name,
            file_hash=file_hash,
            count_kind=count_kind,
            progress=progress,
        )
    report = ImportReport(file_name, file_hash, fmt, str(count_kind))
    appender = _Appender(store, report, progress)
    _JOB = (election, make_rows, fmt, file_name, file_hash, count_kind)
    # Objects that exist before the fork are never collected in the workers: freezing them
    # keeps the collector from touching (and so copying) the parent's pages.
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(n) as pool:
            for prepared in pool.imap(_work, _chunks(records)):
                appender.add(prepared)
        appender.flush()
    finally:
        _JOB = None
        gc.unfreeze()
    return _finish(store, report)


def _chunks(records: Iterable[R]) -> Iterator[list[R]]:
    it = iter(records)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


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

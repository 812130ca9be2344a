"""Feed imported rows through the same checks and ledger as any device's protocol.

An import either fails before writing anything (unreadable file, wrong columns), or adds only
whole protocols that passed every error rule; each rejected row is reported with its row
number and reason. The file's SHA-256 and the row number are inside every protocol's signed
body (`source`), so anyone can trace a ledger entry back to the line of the file it came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.model import CountKind
from tallyroom.protocol.check import ProtocolRejected, check_counts, counts_vector
from tallyroom.protocol.model import ProtocolBody, Source, encode_body
from tallyroom.protocol.pending import PendingProtocol, UnknownReference, protocol_payload
from tallyroom.store.sql import Appended, Store

BATCH = 20_000


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
            "rejected": [
                {"row": p.row, "station": p.station, "reason": p.reason} for p in self.rejected
            ],
        }


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
    """Check each row as a protocol and append the valid ones in durable batches."""
    election = store.election()
    report = ImportReport(file_name, file_hash, fmt, str(count_kind))
    envelope = {"via": "import"}
    batch: list[PendingProtocol] = []
    batch_rows: list[ImportRow] = []

    def tally_results(items: list[ImportRow], results: list[Appended]) -> None:
        for r, item in zip(results, items, strict=True):
            if r.status == "new":
                report.accepted += 1
            elif r.status == "duplicate":
                report.duplicates += 1
            else:
                report.rejected.append(
                    RowProblem(
                        item.row,
                        item.station,
                        f"conflict: station already has a different {count_kind} protocol for "
                        f"{item.contest} (ledger entry {r.existing_index}); a correction needs "
                        "two people",
                    )
                )
        if progress is not None:
            progress(len(items))

    # One writer thread appends batch k (SQLite and the fsync release the GIL) while this
    # thread checks batch k+1; at most one batch is in flight, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tallyroom-import") as writer:
        in_flight: tuple[Future[list[Appended]], list[ImportRow]] | None = None

        def flush() -> None:
            nonlocal in_flight, batch, batch_rows
            if in_flight is not None:
                tally_results(in_flight[1], in_flight[0].result())
            in_flight = (writer.submit(store.append_protocols, batch), batch_rows)
            batch, batch_rows = [], []

        for item in rows:
            report.rows += 1
            try:
                pending = _prepare_row(
                    election, item, fmt, file_name, file_hash, count_kind, envelope
                )
            except (ProtocolRejected, UnknownReference) as exc:
                report.rejected.append(RowProblem(item.row, item.station, str(exc)))
                continue
            if pending.warnings:
                report.warnings += 1
            batch.append(pending)
            batch_rows.append(item)
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
        if in_flight is not None:
            tally_results(in_flight[1], in_flight[0].result())
    report.rejected.sort(key=lambda p: p.row)
    store.record_import(
        fmt,
        file_name,
        file_hash,
        str(count_kind),
        report.rows,
        report.accepted,
        len(report.rejected),
        report.to_dict(),
    )
    return report


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
    return PendingProtocol(
        contest=ci,
        station=si,
        count_kind=str(count_kind),
        counts=counts,
        warnings=[w.to_dict() for w in warnings],
        payload=protocol_payload(envelope, raw),
        body_sha256=hashlib.sha256(raw).hexdigest(),
    )

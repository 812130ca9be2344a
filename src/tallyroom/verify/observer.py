"""Compare protocols an observer copied at stations with the published ones (``--compare``).

The observer's file is CSV (docs/verify.md): a header row, then one row per copied protocol::

    station,contest,count_kind,registered_main,valid,ata_jurt_kyrgyzstan,...
    ps-1001,party-list,hand,715,187,20,...

``station``, ``contest`` and ``count_kind`` are required columns; every other column is a
line id of the form (a line of the contest, or a choice id). An empty cell means "not copied"
and is skipped; a line of another contest may be left empty. Every copied number is compared
with the protocol in force in the published ledger; each difference is listed by station and
line.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tallyroom.verify.expected import Expected
from tallyroom.verify.report import Report

REQUIRED = ("station", "contest", "count_kind")


class CompareFileError(Exception):
    """The observer's file cannot be read (exit code 2)."""


def compare_copies(path: Path, ex: Expected, report: Report) -> int:
    """Compare every copied line; return how many protocols were compared."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareFileError(f"{path}: cannot read: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CompareFileError(f"{path}: the header lacks column(s) {', '.join(missing)}")
    idx = {c: header.index(c) for c in REQUIRED}
    line_cols = [(i, h) for i, h in enumerate(header) if h not in REQUIRED and h]
    out = report.tally
    file = path.name
    e = ex.election
    compared = 0
    every_line = {lid for cc in e.contests for lid in cc.line_ids}
    for n, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        row = row + [""] * (len(header) - len(row))
        station, contest, kind = (row[idx[c]].strip() for c in REQUIRED)
        where = f"line {n}: station {station}, {contest}, {kind}"
        if contest not in e.contest_index or station not in e.station_index:
            out.fail("observer-copy", file, where, "no such station or contest in the election definition")
            continue
        c = e.contest(contest)
        # The protocol's counts as the ledger holds them (the published record's "lines" are
        # the same numbers; making the record for each copied protocol cost more than the rest).
        published = ex.in_force.get((contest, station, kind))
        if published is None:
            out.fail(
                "observer-copy",
                file,
                where,
                "you copied this protocol at the station, but no protocol of this count is published for it",
            )
            continue
        compared += 1
        for i, line in line_cols:
            cell = row[i].strip()
            if not cell:
                continue
            if line not in c.line_index:
                if line in every_line:
                    continue  # a line of another contest, left in a shared sheet
                out.fail("observer-copy", file, f"{where} › {line}", "not a line of this contest's form")
                continue
            try:
                value = int(cell.replace(",", "").replace(" ", "").replace("\u00a0", ""))
            except ValueError:
                out.fail("observer-copy", file, f"{where} › {line}", f"{cell!r} is not a whole number")
                continue
            out.numbers += 1
            want = published.counts[c.line_index[line]]
            if value != want:
                out.add(
                    "observer-copy",
                    file,
                    f"{where} › {line}",
                    want,
                    value,
                    f"your copy says {value:,}; the published protocol (ledger entry "
                    f"{published.index}) says {want:,}",
                )
    return compared

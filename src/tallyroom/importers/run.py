"""Run an import against a store: read the file, build the definition if needed, append."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.importers import shpilkin
from tallyroom.importers.pipeline import (
    ImportFileError,
    ImportReport,
    file_sha256,
    import_rows,
    import_source,
)


def _count_kind(store: Any, contest_id: str, given: str | None) -> CountKind:
    if given is not None:
        return CountKind(given)
    kind: CountKind = store.election().contest(contest_id).official_count
    return kind


def import_shpilkin(
    ctx: Any, path: Path, count_kind: str | None, mapping: Path | None, progress: Callable[[int], None]
) -> ImportReport:
    raw, data = shpilkin.read_file(path)
    f = shpilkin.parse_header(path.name, data)
    store = ctx.store()
    if not store.is_initialized():
        from tallyroom.cli import _initialize

        definition = shpilkin.build_definition(f)
        _initialize(ctx, load_definition(definition, f"definition built from {path.name}"))
    election = store.election()
    if shpilkin.CONTEST_ID not in election.contest_index:
        raise ImportFileError(f"{path.name}: this store's election has no contest {shpilkin.CONTEST_ID!r}")
    return shpilkin_into(store, f, raw, _count_kind(store, shpilkin.CONTEST_ID, count_kind), progress)


def shpilkin_into(
    store: Any,
    f: shpilkin.ShpilkinFile,
    raw: bytes,
    count_kind: CountKind,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import a parsed Shpilkin file into a store that holds its election (what the CLI runs)."""
    return import_source(
        store,
        shpilkin.ShpilkinRows(f, shpilkin.regions_of(store.election())),
        fmt="shpilkin",
        file_name=f.name,
        file_hash=file_sha256(raw),
        count_kind=count_kind,
        progress=progress,
        workers=workers,
    )


def _no_mapping(fmt: str, mapping: Path | None) -> None:
    if mapping is not None:
        raise ImportFileError(f"--mapping is for --format csv; --format {fmt} reads its own columns")


def _init_from(ctx: Any, definition: bytes, file_name: str) -> None:
    from tallyroom.cli import _initialize

    _initialize(ctx, load_definition(definition, f"definition built from {file_name}"))


def import_openelections(
    ctx: Any,
    path: Path,
    count_kind: str | None,
    mapping: Path | None,
    progress: Callable[[int], None],
) -> ImportReport:
    """OpenElections precinct CSV; its Total rows are checked against the imported sums."""
    from tallyroom.importers import openelections
    from tallyroom.importers.generic import NotedReport, read_bytes

    _no_mapping("openelections", mapping)
    raw = read_bytes(path)
    f = openelections.parse(path.name, raw)
    store = ctx.store()
    if not store.is_initialized():
        _init_from(ctx, openelections.build_definition(f), path.name)
    election = store.election()
    known = [c.id for c in f.contests.values() if c.id in election.contest_index]
    if not known:
        raise ImportFileError(f"{path.name}: this store's election has none of the file's contests")
    kind = _count_kind(store, known[0], count_kind)
    report = import_rows(
        store,
        openelections.iter_rows(f),
        fmt="openelections",
        file_name=path.name,
        file_hash=file_sha256(raw),
        count_kind=kind,
        progress=progress,
    )
    totals = {}
    for contest_id, area_id in openelections.total_keys(f):
        if contest_id in election.contest_index and area_id in election.area_index:
            totals[(contest_id, area_id)] = store.totals(
                election.contest_index[contest_id], election.area_index[area_id], str(kind)
            )
    notes = openelections.summary(f, election) + openelections.check_totals(f, election, totals)
    return NotedReport.of(report, notes)


def import_kloop(
    ctx: Any,
    path: Path,
    count_kind: str | None,
    mapping: Path | None,
    progress: Callable[[int], None],
) -> ImportReport:
    """Kloop's Kyrgyz 2020 station CSV (the file with `level_one`)."""
    from tallyroom.importers import kloop
    from tallyroom.importers.generic import read_bytes

    _no_mapping("kloop", mapping)
    raw = read_bytes(path)
    f = kloop.parse(path.name, raw)
    store = ctx.store()
    if not store.is_initialized():
        _init_from(ctx, kloop.build_definition(f), path.name)
    if kloop.CONTEST_ID not in store.election().contest_index:
        raise ImportFileError(f"{path.name}: this store's election has no contest {kloop.CONTEST_ID!r}")
    return import_rows(
        store,
        kloop.iter_rows(f),
        fmt="kloop",
        file_name=path.name,
        file_hash=file_sha256(raw),
        count_kind=_count_kind(store, kloop.CONTEST_ID, count_kind),
        progress=progress,
    )


def import_generic_csv(
    ctx: Any,
    path: Path,
    count_kind: str | None,
    mapping: Path | None,
    progress: Callable[[int], None],
) -> ImportReport:
    """A CSV read through a column mapping, into the election already in the store."""
    from tallyroom.importers import generic

    m = generic.load_mapping(mapping)
    assert mapping is not None
    raw = generic.read_bytes(path)
    store = ctx.store()
    if not store.is_initialized():
        raise ImportFileError(
            f"{path.name}: the store holds no election; run `tallyroom init DEFINITION` first "
            "(--format csv imports into an existing definition)"
        )
    election = store.election()
    f = generic.parse(path.name, raw, m, mapping.name, election)
    if count_kind is not None:
        kind = CountKind(count_kind)
    else:
        kinds = {election.contest(c).official_count for c in f.contests if c in election.contest_index}
        if len(kinds) > 1:
            raise ImportFileError(
                f"{path.name}: the file's contests differ in their official count kind "
                f"({', '.join(sorted(kinds))}); give --count-kind"
            )
        kind = kinds.pop() if kinds else CountKind.HAND
    report = import_source(
        store,
        generic.GenericRows(f, election),
        fmt="csv",
        file_name=path.name,
        file_hash=file_sha256(raw),
        count_kind=kind,
        progress=progress,
    )
    notes = []
    if raw and not raw.endswith((b"\n", b"\r")):
        notes.append(
            f"note: {path.name} does not end with a line break; if the file was cut short, "
            f"its last row (row {f.last_row}) may be incomplete"
        )
    return generic.NotedReport.of(report, notes)

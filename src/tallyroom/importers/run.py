"""Run an import against a store: read the file, build the definition if needed, append."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.importers import shpilkin
from tallyroom.importers.pipeline import ImportError_, ImportReport, file_sha256, import_rows


def _count_kind(store: Any, contest_id: str, given: str | None) -> CountKind:
    if given is not None:
        return CountKind(given)
    return store.election().contest(contest_id).official_count


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
        raise ImportError_(f"{path.name}: this store's election has no contest {shpilkin.CONTEST_ID!r}")
    return import_rows(
        store,
        shpilkin.iter_rows(f),
        fmt="shpilkin",
        file_name=path.name,
        file_hash=file_sha256(raw),
        count_kind=_count_kind(store, shpilkin.CONTEST_ID, count_kind),
        progress=progress,
    )

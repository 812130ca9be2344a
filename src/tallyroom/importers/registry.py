"""The import formats `tallyroom import --format` knows, each a function of the same shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tallyroom.importers.pipeline import ImportFileError, ImportReport

Importer = Callable[[Any, Path, str | None, Path | None, Callable[[int], None]], ImportReport]


def get(fmt: str) -> Importer:
    if fmt == "shpilkin":
        from tallyroom.importers.run import import_shpilkin

        return import_shpilkin
    if fmt == "openelections":
        from tallyroom.importers.run import import_openelections

        return import_openelections
    if fmt == "kloop":
        from tallyroom.importers.run import import_kloop

        return import_kloop
    if fmt == "csv":
        from tallyroom.importers.run import import_generic_csv

        return import_generic_csv
    raise ImportFileError(f"unknown import format {fmt!r}")

"""Byte ranges of a published file (RFC 9110 §14): a download cut off on a slow connection
(the SQLite file, a region's station CSV, the ledger) goes on from where it stopped.

Only a single range is served. A request for several ranges gets the whole file, which the
RFC allows (§14.2: a server may ignore ``Range``) and which costs a client no more than the
parts it asked for in one response would. A ``Range`` that is not valid is ignored too
(§14.2); nginx answers it with 416, and several ranges with ``multipart/byteranges``: valid
requests get the same answers from both (``tests/publish/conftest.py``, ``check_byte_ranges``).
"""

from __future__ import annotations

from typing import Final

#: The answer for a range that starts at or after the end of the file: 416 (§15.5.17).
UNSATISFIABLE: Final = "unsatisfiable"


def byte_range(header: bytes, size: int) -> tuple[int, int] | str | None:
    """The one range ``header`` (a ``Range`` value) asks of a representation of ``size``
    bytes, as (first, last) byte positions, both included (RFC 9110 §14.1.2), the last
    clamped to the end of the file; :data:`UNSATISFIABLE` when no byte of it exists; None
    when the header is to be ignored and the whole file sent: not ``bytes``, not valid, or
    more than one range (§14.2)."""
    unit, eq, spec = header.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes":
        return None
    spec = spec.strip()
    if b"," in spec:
        return None
    first_text, dash, last_text = spec.partition(b"-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not _digits(first_text):
        # A suffix range, "-N": the last N bytes (§14.1.2).
        if first_text or not _digits(last_text):
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = size - 1  # "first-": to the end of the file
    if last_text:
        if not _digits(last_text):
            return None
        last = int(last_text)
        if last < first:
            return None  # invalid (§14.1.1): ignored, the whole file is sent
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


def _digits(text: bytes) -> bool:
    # A bound is 1*DIGIT: no sign, no spaces, no underscores (which int() would accept).
    return 0 < len(text) <= 18 and text.isdigit()

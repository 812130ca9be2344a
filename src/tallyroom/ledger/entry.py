"""The bytes of one ledger entry: a one-line kind header, then the payload untouched.

::

    tallyroom-entry/1 <kind>\\n<payload bytes>

The leaf hash (RFC 9162 §2.1.1) is taken over exactly these bytes. The payload of a device
protocol is the request body the device signed, byte for byte, so the station's signature
can be checked against the ledger forever; it is never decoded and re-encoded on the way.
The header binds the kind into the hash, so a correction can never be replayed as a
protocol.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["HEADER_PREFIX", "EntryError", "EntryKind", "decode_entry", "encode_entry", "entry_kind"]

HEADER_PREFIX = b"tallyroom-entry/1 "
# Longest kind plus slack: bounds the header search so a huge payload without a newline
# is rejected without scanning it.
_MAX_HEADER = len(HEADER_PREFIX) + 32


class EntryKind(StrEnum):
    """What a ledger entry records."""

    PROTOCOL = "protocol"
    CORRECTION = "correction"
    ANNULMENT = "annulment"
    KEY_CHANGE = "key_change"
    CHECKPOINT = "checkpoint"
    SNAPSHOT = "snapshot"
    AUDIT = "audit"
    DEFINITION = "definition"


class EntryError(ValueError):
    """Entry bytes or an entry kind are malformed."""


def encode_entry(kind: EntryKind | str, payload: bytes) -> bytes:
    """Return the stored bytes of an entry: header line, then ``payload`` as given."""
    try:
        kind = EntryKind(kind)
    except ValueError as exc:
        raise EntryError(f"unknown entry kind {kind!r}") from exc
    if not isinstance(payload, bytes):
        raise EntryError(f"entry payload must be bytes, got {type(payload).__name__}")
    return HEADER_PREFIX + kind.value.encode() + b"\n" + payload


#: Each kind by its name as a header writes it (a lookup, not the enum's constructor: the
#: verifier reads the header of every entry of a ledger).
_KIND_OF = {k.value.encode(): k for k in EntryKind}


def _header(data: bytes) -> tuple[EntryKind, int]:
    """The kind an entry's header names, and where its newline is."""
    if not data.startswith(HEADER_PREFIX):
        raise EntryError(
            f"entry must start with {HEADER_PREFIX.decode()!r}, got {bytes(data[:24])!r}"
        )
    end = data.find(b"\n", len(HEADER_PREFIX), _MAX_HEADER + 1)
    if end < 0:
        raise EntryError("entry header line is missing its newline or is too long")
    name = bytes(data[len(HEADER_PREFIX) : end])
    kind = _KIND_OF.get(name)
    if kind is None:
        raise EntryError(f"unknown entry kind {name!r}")
    return kind, end


def decode_entry(data: bytes) -> tuple[EntryKind, bytes]:
    """Split stored entry bytes into kind and payload; :class:`EntryError` if malformed."""
    kind, end = _header(data)
    return kind, data[end + 1 :]


def entry_kind(data: bytes) -> EntryKind:
    """The kind of stored entry bytes (their payload is not copied); :class:`EntryError` if
    the header is malformed."""
    return _header(data)[0]

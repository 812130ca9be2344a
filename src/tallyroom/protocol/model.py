"""The protocol a station device (or an importer) submits, as it travels and is stored."""

from __future__ import annotations

import msgspec

from tallyroom.definition.model import CountKind


class Source(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Where an imported protocol came from: the file's format, hash and row."""

    format: str
    file_sha256: str
    row: int
    file_name: str | None = None


class ProtocolBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """One station's counts for one contest and count kind.

    Devices sign these bytes exactly as sent; the ledger stores them unchanged.
    """

    election: str
    station: str
    contest: str
    count_kind: CountKind
    lines: dict[str, int]
    sequence: int = 0
    time: str | None = None
    image_sha256: str | None = None
    source: Source | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ProtocolBody)


def encode_body(body: ProtocolBody) -> bytes:
    return _encoder.encode(body)


def decode_body(data: bytes) -> ProtocolBody:
    return _decoder.decode(data)

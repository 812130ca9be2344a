"""Turn a protocol body into a checked, ready-to-append record (pure: no store, no web)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.ledger.entry import EntryKind, encode_entry
from tallyroom.ledger.merkle import leaf_hash
from tallyroom.protocol.check import ProtocolRejected, check_counts, counts_vector
from tallyroom.protocol.model import ProtocolBody


@dataclass(frozen=True, slots=True)
class PendingProtocol:
    """A checked protocol ready to append: its entry payload and decoded counts."""

    contest: int
    station: int
    count_kind: str
    counts: Sequence[int]
    warnings: Sequence[dict[str, Any]]
    #: The ledger payload: one JSON line of envelope (signature, key id), then the body bytes.
    payload: bytes
    body_sha256: str
    #: The entry bytes and their RFC 6962 leaf hash, computed where the protocol was checked
    #: (an import worker process) so that the appending process only writes.
    entry: bytes = b""
    leaf: bytes = b""
    #: The counts as compact JSON, the form the store keeps; set by import workers, which
    #: then send `counts=()` across the process boundary (rebuilding millions of ints in the
    #: appending process cost more than checking them).
    counts_json: str = ""

    def counts_list(self) -> list[int]:
        if self.counts or not self.counts_json:
            return list(self.counts)
        decoded: list[int] = msgspec.json.decode(self.counts_json)
        return decoded

    @classmethod
    def build(
        cls,
        contest: int,
        station: int,
        count_kind: str,
        counts: Sequence[int],
        warnings: Sequence[dict[str, Any]],
        payload: bytes,
        body_sha256: str,
    ) -> PendingProtocol:
        entry = encode_entry(EntryKind.PROTOCOL, payload)
        return cls(
            contest, station, count_kind, counts, warnings, payload, body_sha256, entry, leaf_hash(entry)
        )


_counts_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class ProtocolBatch:
    """Checked protocols ready to append, one list per field (all of the same length).

    What an import worker sends to the appending process: plain lists of ints, strings and
    bytes cross a process boundary far faster than one object per protocol, and the store
    writes them without touching each protocol in Python more than once. `counts` may be
    left empty when `counts_json` is given: counts are then decoded only for the rare
    protocols that meet one already counted (a duplicate or a conflict).
    """

    contests: list[int] = field(default_factory=list)
    stations: list[int] = field(default_factory=list)
    count_kinds: list[str] = field(default_factory=list)
    #: The ledger entry bytes and their RFC 6962 leaf hashes.
    entries: list[bytes] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    #: The counts in form order as compact JSON (what the store keeps), and the warnings.
    counts_json: list[str] = field(default_factory=list)
    warnings_json: list[str] = field(default_factory=list)
    body_sha256: list[str] = field(default_factory=list)
    counts: list[Sequence[int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def counts_of(self, i: int) -> list[int]:
        if self.counts:
            return list(self.counts[i])
        decoded: list[int] = msgspec.json.decode(self.counts_json[i])
        return decoded

    def extend(self, other: ProtocolBatch) -> None:
        if bool(self.counts) != bool(other.counts) and len(self):
            raise ValueError("cannot mix batches with and without decoded counts")
        self.contests += other.contests
        self.stations += other.stations
        self.count_kinds += other.count_kinds
        self.entries += other.entries
        self.leaves += other.leaves
        self.counts_json += other.counts_json
        self.warnings_json += other.warnings_json
        self.body_sha256 += other.body_sha256
        self.counts += other.counts

    def add(self, p: PendingProtocol) -> None:
        """Add one pending protocol (with its counts)."""
        entry = p.entry or encode_entry(EntryKind.PROTOCOL, p.payload)
        self.contests.append(p.contest)
        self.stations.append(p.station)
        self.count_kinds.append(p.count_kind)
        self.entries.append(entry)
        self.leaves.append(p.leaf or leaf_hash(entry))
        counts = p.counts_list()
        self.counts_json.append(p.counts_json or _counts_encoder.encode(counts).decode())
        self.warnings_json.append(_counts_encoder.encode(p.warnings).decode())
        self.body_sha256.append(p.body_sha256)
        self.counts.append(counts)

    @classmethod
    def of(cls, items: Sequence[PendingProtocol]) -> ProtocolBatch:
        batch = cls()
        for p in items:
            batch.add(p)
        return batch


class UnknownReference(ValueError):
    """The body names an election, station or contest the definition does not have."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


_envelope_encoder = msgspec.json.Encoder()


def protocol_payload(envelope: dict[str, Any], body: bytes) -> bytes:
    """The ledger payload of a protocol entry: envelope JSON, a newline, the exact body."""
    return _envelope_encoder.encode(envelope) + b"\n" + body


def split_payload(payload: bytes) -> tuple[dict[str, Any], bytes]:
    head, sep, body = payload.partition(b"\n")
    if not sep:
        raise ValueError("protocol payload has no envelope line")
    envelope = msgspec.json.decode(head)
    if not isinstance(envelope, dict):
        raise ValueError("protocol envelope is not a JSON object")
    return envelope, body


def prepare(
    election: CompiledElection,
    body: ProtocolBody,
    raw: bytes,
    envelope: dict[str, Any],
) -> PendingProtocol:
    """Check a decoded body against the definition and its control rules.

    Raises `UnknownReference` for a wrong election hash, station, contest or station outside
    the contest, and `ProtocolRejected` for bad lines or failed error rules.
    """
    if body.election != election.sha256:
        raise UnknownReference(
            "election",
            f"protocol is for definition {body.election[:16]}…, this election is {election.sha256[:16]}…",
        )
    si = election.station_index.get(body.station)
    if si is None:
        raise UnknownReference("station", f'unknown station "{body.station}"')
    ci = election.contest_index.get(body.contest)
    if ci is None:
        raise UnknownReference("contest", f'unknown contest "{body.contest}"')
    contest = election.contests[ci]
    if si not in contest.station_set:
        raise UnknownReference(
            "station", f'station "{body.station}" does not vote in contest "{body.contest}"'
        )
    counts = counts_vector(contest, body.lines)
    warnings = check_counts(contest, counts)
    return PendingProtocol.build(
        contest=ci,
        station=si,
        count_kind=str(body.count_kind),
        counts=counts,
        warnings=[w.to_dict() for w in warnings],
        payload=protocol_payload(envelope, raw),
        body_sha256=hashlib.sha256(raw).hexdigest(),
    )


__all__ = [
    "PendingProtocol",
    "ProtocolBatch",
    "ProtocolRejected",
    "UnknownReference",
    "prepare",
    "protocol_payload",
]

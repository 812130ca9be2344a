"""A ledger prefix as the publisher and the gate read it: exact bytes, leaf hashes, root.

Reading goes through :class:`tallyroom.store.sql.Store` only for the bytes; every hash is
recomputed here, so a snapshot is a function of the bytes that its checkpoint certifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import load_definition
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.ledger.merkle import leaf_hash, root_from_leaf_hashes
from tallyroom.protocol.pending import split_payload
from tallyroom.publish.results import ProtocolEntry
from tallyroom.store.sql import Store


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    kind: str
    data: bytes
    leaf_hash: bytes


@dataclass
class LedgerPrefix:
    entries: list[Entry]

    @property
    def size(self) -> int:
        return len(self.entries)

    def root(self) -> bytes:
        return root_from_leaf_hashes([e.leaf_hash for e in self.entries])

    def pairs(self) -> Iterator[tuple[int, bytes]]:
        return ((e.index, e.data) for e in self.entries)


def read_prefix(store: Store, size: int) -> LedgerPrefix:
    """The first ``size`` entries, with leaf hashes recomputed from their bytes."""
    out = []
    for idx, _kind, data, _stored_leaf in store.entries(0, size):
        kind, _ = decode_entry(data)
        out.append(Entry(idx, str(kind), data, leaf_hash(data)))
    return LedgerPrefix(out)


_ELECTIONS: dict[str, CompiledElection] = {}


def election_of(prefix: LedgerPrefix) -> CompiledElection:
    """The election compiled from ledger entry 0 (cached by the definition's SHA-256)."""
    kind, payload = decode_entry(prefix.entries[0].data)
    if kind != EntryKind.DEFINITION:
        raise ValueError("ledger entry 0 is not an election definition")
    sha = hashlib.sha256(payload).hexdigest()
    got = _ELECTIONS.get(sha)
    if got is None:
        got = _ELECTIONS[sha] = compile_election(load_definition(payload, "ledger entry 0"))
    return got


def definition_bytes(prefix: LedgerPrefix) -> bytes:
    return decode_entry(prefix.entries[0].data)[1]


def protocol_entries(
    election: CompiledElection,
    prefix: LedgerPrefix,
    active: dict[tuple[int, int, str], tuple[int, list[int]]],
) -> list[ProtocolEntry]:
    """The counted protocols (from :func:`tallyroom.tally.rebuild.rebuild`) with their ledger
    facts: leaf hash, envelope and the SHA-256 of the exact body."""
    out = []
    for (ci, si, kind), (idx, counts) in active.items():
        e = prefix.entries[idx]
        _, payload = decode_entry(e.data)
        envelope, body = split_payload(payload)
        out.append(
            ProtocolEntry(
                contest=ci,
                station=si,
                count_kind=kind,
                ledger_index=idx,
                leaf_hash=e.leaf_hash,
                counts=counts,
                envelope=_plain(envelope),
                body_sha256=hashlib.sha256(body).hexdigest(),
            )
        )
    out.sort(key=lambda p: p.ledger_index)
    return out


def _plain(envelope: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in envelope.items()}

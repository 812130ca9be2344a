"""A ledger prefix as the publisher and the gate read it: exact bytes, leaf hashes, root.

Reading goes through :class:`tallyroom.store.sql.Store` only for the bytes; every hash is
recomputed here, so a snapshot is a function of the bytes that its checkpoint certifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import load_definition
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.ledger.merkle import Frontier, leaf_hash, root_from_leaf_hashes
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
    #: Roots of the whole prefix or of shorter prefixes, as computed from these entries.
    roots: dict[int, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.entries)

    def root(self) -> bytes:
        return self.root_at(self.size)

    def root_at(self, size: int) -> bytes:
        """The Merkle root of the first ``size`` entries (RFC 9162), from their leaf hashes."""
        got = self.roots.get(size)
        if got is None:
            got = self.roots[size] = root_from_leaf_hashes([e.leaf_hash for e in self.entries[:size]])
        return got

    def pairs(self) -> Iterator[tuple[int, bytes]]:
        return ((e.index, e.data) for e in self.entries)


def _read(store: Store, start: int, size: int) -> list[Entry]:
    out: list[Entry] = []
    for idx, _kind, data, _stored_leaf in store.entries(start, size):
        if idx != start + len(out):
            raise ValueError(f"the store returned ledger entry {idx} where {start + len(out)} belongs")
        kind, _ = decode_entry(data)
        out.append(Entry(idx, str(kind), data, leaf_hash(data)))
    if len(out) != size - start:
        raise ValueError(f"the store returned {start + len(out)} ledger entries, not {size}")
    return out


def read_prefix(store: Store, size: int) -> LedgerPrefix:
    """The first ``size`` entries, with leaf hashes recomputed from their bytes."""
    return LedgerPrefix(_read(store, 0, size))


class LedgerCache:
    """The ledger prefix a long-running publisher has read, hashed and published from.

    :meth:`read` reads only the entries past what it holds and extends its Merkle frontier
    with their recomputed leaf hashes, so the root of the longer prefix costs O(new + log n).
    The entries it already holds are the bytes the previous snapshot was computed from and
    certified by its checkpoint; a new root that is not the root the store reports (the
    checkpoint the snapshot will carry) means the store's ledger is not an extension of them,
    and the publisher reads everything again (:meth:`reset`), letting the gate decide.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.entries: list[Entry] = []
        self.frontier = Frontier()
        self.roots: dict[int, bytes] = {}
        #: Counted protocols by ledger index (see :func:`protocol_entries`).
        self.protocols: dict[int, ProtocolEntry] = {}

    @property
    def size(self) -> int:
        return len(self.entries)

    def read(self, store: Store, size: int) -> LedgerPrefix:
        if size < self.size:
            self.reset()
        new = _read(store, self.size, size)
        if new:
            self.entries.extend(new)
            self.frontier.extend([e.leaf_hash for e in new])
        if size not in self.roots:
            self.roots[size] = self.frontier.root()
        return LedgerPrefix(list(self.entries), {size: self.roots[size], **self._known(size)})

    def _known(self, size: int) -> dict[int, bytes]:
        return {k: v for k, v in self.roots.items() if k <= size}


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
    cache: dict[int, ProtocolEntry] | None = None,
) -> list[ProtocolEntry]:
    """The counted protocols (from :func:`tallyroom.tally.rebuild.rebuild`) with their ledger
    facts: leaf hash, envelope and the SHA-256 of the exact body. ``cache`` (by ledger index,
    for one ledger whose prefix only grows) saves decoding an entry again."""
    out = []
    for (ci, si, kind), (idx, counts) in active.items():
        if cache is not None:
            got = cache.get(idx)
            if got is not None and got.contest == ci and got.station == si and got.count_kind == kind:
                out.append(got)
                continue
        e = prefix.entries[idx]
        _, payload = decode_entry(e.data)
        envelope, body = split_payload(payload)
        p = ProtocolEntry(
            contest=ci,
            station=si,
            count_kind=kind,
            ledger_index=idx,
            leaf_hash=e.leaf_hash,
            counts=counts,
            envelope=_plain(envelope),
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        if cache is not None:
            cache[idx] = p
        out.append(p)
    out.sort(key=lambda p: p.ledger_index)
    return out


def _plain(envelope: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in envelope.items()}

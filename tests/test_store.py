"""The store on SQLite and PostgreSQL: one ledger, protocols counted once, rebuild == running."""

from __future__ import annotations

import random
import sqlite3

import pytest

from support import kyrgyz_lines
from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.load import load_definition
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.ledger.merkle import (
    MemoryNodes,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from tallyroom.protocol.model import ProtocolBody, encode_body
from tallyroom.protocol.pending import PendingProtocol, prepare
from tallyroom.store.sql import Store, StoreError, open_store
from tallyroom.tally.invariants import check_tally
from tallyroom.tally.rebuild import rebuild


def _store(url: str, definition: bytes) -> Store:
    store = open_store(url)
    store.initialize(load_definition(definition), b"\x01" * 32)
    return store


def _pending(election: CompiledElection, station: str, contest: str, kind: str, seed: int) -> PendingProtocol:
    c = election.contest(contest)
    rng = random.Random(seed)
    lines = kyrgyz_lines(
        list(c.choice_ids), election.stations[election.station_index[station]].registered, rng
    )
    body = ProtocolBody(
        election=election.sha256,
        station=station,
        contest=contest,
        count_kind=kind,
        lines=lines,
        sequence=seed,  # type: ignore[arg-type]
    )
    raw = encode_body(body)
    return prepare(election, body, raw, {"via": "test"})


def _all(election: CompiledElection, kind: str, seed: int) -> list[PendingProtocol]:
    out = []
    for c in election.contests:
        for s in c.stations:
            out.append(_pending(election, election.stations[s].id, c.id, kind, seed + s))
    return out


def test_definition_is_ledger_entry_zero(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    kind, payload = decode_entry(next(store.entries())[2])
    assert kind == EntryKind.DEFINITION and payload == small_definition
    assert store.head().size == 1
    with pytest.raises(StoreError, match="already holds an election"):
        store.initialize(load_definition(small_definition), b"\x01" * 32)
    # A second connection reads the election back from the ledger, not from memory.
    again = open_store(store_url)
    assert again.election().sha256 == load_definition(small_definition).sha256


def test_append_counts_each_station_once(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    election = store.election()
    items = _all(election, "hand", 1)
    results = store.append_protocols(items)
    assert [r.status for r in results] == ["new"] * len(items)
    assert [r.ledger_index for r in results] == list(range(1, len(items) + 1))
    # Re-sending the same protocols returns the same receipts and writes nothing.
    size = store.head().size
    again = store.append_protocols(items)
    assert [r.status for r in again] == ["duplicate"] * len(items)
    assert [(r.ledger_index, r.leaf_hash) for r in again] == [(r.ledger_index, r.leaf_hash) for r in results]
    assert store.head().size == size
    # A different protocol for the same station, contest and kind is a conflict, not applied.
    before = store.tally().totals
    other = _pending(election, "1001", "party-list", "hand", 999)
    (conflict,) = store.append_protocols([other])
    assert conflict.status == "conflict" and conflict.existing_index == results[0].ledger_index
    assert store.tally().totals == before and store.head().size == size
    # The same station's machine count is a separate protocol, never mixed with the hand count.
    (machine,) = store.append_protocols([_pending(election, "1001", "party-list", "machine", 5)])
    assert machine.status == "new"
    kg = election.area_index["kg"]
    assert store.totals(0, kg, "machine").reporting == 1  # type: ignore[union-attr]
    assert store.totals(0, kg, "hand").reporting == 6  # type: ignore[union-attr]


def test_same_counts_from_another_source_are_a_duplicate(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    election = store.election()
    first = _pending(election, "1003", "party-list", "hand", 7)
    (a,) = store.append_protocols([first])
    again = prepare(
        election,
        ProtocolBody(
            election=election.sha256,
            station="1003",
            contest="party-list",
            count_kind="hand",  # type: ignore[arg-type]
            lines=dict(zip(election.contest("party-list").line_ids, first.counts, strict=True)),
            sequence=99,
        ),
        b"{}",
        {"via": "another file"},
    )
    (b,) = store.append_protocols([again])
    assert b.status == "duplicate" and b.ledger_index == a.ledger_index and b.leaf_hash == a.leaf_hash


def test_duplicates_and_conflicts_inside_one_batch(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    election = store.election()
    a = _pending(election, "2001", "party-list", "hand", 1)
    b = _pending(election, "2001", "party-list", "hand", 2)
    results = store.append_protocols([a, a, b])
    assert [r.status for r in results] == ["new", "duplicate", "conflict"]
    assert results[1].ledger_index == results[0].ledger_index == results[2].existing_index
    assert store.protocol_count() == 1


def test_rebuild_from_ledger_equals_running_tally(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    election = store.election()
    for kind, seed in (("machine", 10), ("hand", 20)):
        items = _all(election, kind, seed)
        store.append_protocols(items[:5])
        store.append_protocols(items[5:])
    rebuilt = rebuild(election, ((i, d) for i, _k, d, _h in store.entries()))
    assert rebuilt.tally.nonzero() == store.tally().nonzero()
    assert rebuilt.protocols == store.protocol_count()
    stations = {k: v[1] for k, v in rebuilt.active.items()}
    assert check_tally(election, store.tally(), stations) == []


def test_merkle_nodes_in_the_store_give_valid_proofs(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    election = store.election()
    items = _all(election, "hand", 3)
    for i in range(0, len(items), 2):
        store.append_protocols(items[i : i + 2])
    head = store.head()
    leaves = [h for _i, _k, _d, h in store.entries()]
    memory = MemoryNodes(leaves)
    assert memory.root() == head.root
    for index in range(head.size):
        proof = inclusion_proof(index, head.size, store)
        assert proof == inclusion_proof(index, head.size, memory)
        assert verify_inclusion(leaves[index], index, head.size, proof, head.root)
    for old in range(1, head.size):
        proof = consistency_proof(old, head.size, store)
        assert verify_consistency(old, head.size, memory.root(old), head.root, proof)


def test_failed_transaction_changes_nothing(store_url: str, small_definition: bytes) -> None:
    store = _store(store_url, small_definition)
    election = store.election()
    good = _pending(election, "1002", "party-list", "hand", 4)
    # A protocol pointing at a station index the definition does not have makes the batch
    # fail half-way: nothing of it may stay.
    broken = PendingProtocol(0, 10_000, "hand", good.counts, [], good.payload, "0" * 64)
    with pytest.raises(IndexError):
        store.append_protocols([good, broken])
    assert store.head().size == 1 and store.protocol_count() == 0 and store.tally().totals == {}
    assert store.append_protocols([good])[0].status == "new"


def test_ledger_tampering_is_found(tmp_path, small_definition: bytes) -> None:  # type: ignore[no-untyped-def]
    from tallyroom.store.ledger_check import check_store_ledger

    url = str(tmp_path / "t.db")
    store = _store(url, small_definition)
    store.append_protocols(_all(store.election(), "hand", 5))
    problems, size = check_store_ledger(store)
    assert problems == [] and size == 10
    store.close()
    raw = sqlite3.connect(url)
    data = raw.execute("SELECT data FROM ledger_entries WHERE idx = 3").fetchone()[0]
    raw.execute(
        "UPDATE ledger_entries SET data = ? WHERE idx = 3",
        (data.replace(b'"valid":', b'"valid": '),),
    )
    raw.commit()
    raw.close()
    problems, _ = check_store_ledger(open_store(url))
    assert any(p.startswith("entry 3: stored leaf hash") for p in problems)
    assert any("root" in p for p in problems)


def test_leaf_hash_is_rfc6962_of_entry_bytes(tmp_path, small_definition: bytes) -> None:  # type: ignore[no-untyped-def]
    store = _store(str(tmp_path / "h.db"), small_definition)
    for _i, _k, data, h in store.entries():
        assert h == leaf_hash(data)


def test_two_writers_on_one_store_never_count_a_station_twice(
    store_url: str, small_definition: bytes
) -> None:
    """Two processes' stores (here two connections) append in turn: each must see the other's
    protocols, though each keeps its own map of which protocols count."""
    a = _store(store_url, small_definition)
    b = open_store(store_url)
    election = a.election()
    assert [r.status for r in a.append_protocols([_pending(election, "1001", "party-list", "hand", 1)])] == [
        "new"
    ]
    assert [r.status for r in b.append_protocols([_pending(election, "1002", "party-list", "hand", 2)])] == [
        "new"
    ]
    # Each now sees the other's station: the same numbers are duplicates, others conflicts.
    assert b.append_protocols([_pending(election, "1001", "party-list", "hand", 1)])[0].status == "duplicate"
    assert a.append_protocols([_pending(election, "1002", "party-list", "hand", 3)])[0].status == "conflict"
    assert a.append_protocols([_pending(election, "1001", "party-list", "hand", 4)])[0].status == "conflict"
    assert a.protocol_count() == 2 and a.head().size == 3


def test_proofs_from_stored_and_recomputed_nodes(store_url: str, small_definition: bytes) -> None:
    """Nodes below level 4 are recomputed from leaves, the rest read back: proofs for every
    index and size of a 70-entry ledger must equal those from the leaves alone."""
    from tallyroom.ledger.entry import EntryKind

    store = _store(store_url, small_definition)
    for i in range(69):
        store.append_entry(EntryKind.SNAPSHOT, f'{{"snapshot": {i}}}'.encode())
    leaves = [h for _i, _k, _d, h in store.entries()]
    assert len(leaves) == 70
    memory = MemoryNodes(leaves)
    for size in (17, 70):
        root = memory.root(size)
        for index in range(size):
            assert inclusion_proof(index, size, store) == inclusion_proof(index, size, memory)
        for old in range(1, size):
            proof = consistency_proof(old, size, store)
            assert verify_consistency(old, size, memory.root(old), root, proof)


def test_a_rolled_back_locked_append_leaves_nothing_and_the_protocol_is_new_again(
    store_url: str, small_definition: bytes
) -> None:
    # Intake appends inside its own transaction (receipts and journal lines join it); when
    # that transaction fails after the append, the store's map of counted stations must not
    # keep the entries that were never committed, or a resend would be called a duplicate
    # of an entry that does not exist.
    store = _store(store_url, small_definition)
    election = store.election()
    first = _pending(election, "1001", "party-list", "hand", 1)
    again = _pending(election, "1002", "party-list", "hand", 2)
    assert store.append_protocols([first])[0].status == "new"  # the map is loaded now
    store.begin_write()
    head = store.lock_head()
    (res,) = store.append_protocols_locked(head, [again])
    assert (res.status, res.ledger_index, head.size) == ("new", 2, 3)
    store.rollback()
    assert store.head().size == 2 and store.protocol_count() == 1
    (res,) = store.append_protocols([again])
    assert (res.status, res.ledger_index) == ("new", 2)
    assert store.head().size == 3 and store.protocol_count() == 2
    rebuilt = rebuild(election, ((i, d) for i, _k, d, _h in store.entries()))
    assert rebuilt.tally.nonzero() == store.tally().nonzero()

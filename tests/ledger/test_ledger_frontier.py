"""Frontier: the incremental tree head must agree with the batch MTH and with MemoryNodes."""

from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodes,
    Node,
    leaf_hash,
    root_from_leaf_hashes,
)

MAX_SIZE = 130
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(MAX_SIZE)]


def _complete_nodes(nodes: MemoryNodes, size: int) -> dict[tuple[int, int], bytes]:
    """Every internal node (level >= 1) of the perfect subtrees of a tree of `size`."""
    out = {}
    level = 1
    while (1 << level) <= size:
        for index in range(size >> level):
            out[(level, index)] = nodes.node(level, index)
        level += 1
    return out


def _as_dict(emitted: list[Node]) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytes] = {}
    for level, index, h in emitted:
        assert level >= 1
        assert (level, index) not in out, "node emitted twice"
        out[(level, index)] = h
    return out


def test_append_matches_batch_root_and_memory_nodes_for_every_size() -> None:
    frontier = Frontier()
    nodes = MemoryNodes(LEAVES)
    emitted: list[Node] = []
    for size in range(1, MAX_SIZE + 1):
        new = frontier.append(LEAVES[size - 1])
        # Lowest level first, each one level above the previous.
        assert [lv for lv, _, _ in new] == list(range(1, len(new) + 1))
        emitted.extend(new)
        assert frontier.size == size
        assert frontier.root() == root_from_leaf_hashes(LEAVES[:size])
        assert frontier.root() == nodes.root(size)
        assert len(frontier.border) == size.bit_count()
        assert _as_dict(emitted) == _complete_nodes(nodes, size)


@pytest.mark.parametrize("start", range(0, 40))
def test_extend_from_every_start_matches_append(start: int) -> None:
    nodes = MemoryNodes(LEAVES)
    for count in range(0, MAX_SIZE - start + 1, 7):
        frontier = Frontier()
        head = frontier.extend(LEAVES[:start])
        tail = frontier.extend(LEAVES[start : start + count])
        size = start + count
        assert frontier.size == size
        assert frontier.root() == root_from_leaf_hashes(LEAVES[:size])
        assert _as_dict(head + tail) == _complete_nodes(nodes, size)
        # Level-major order, index order within a level.
        assert tail == sorted(tail, key=lambda node: (node[0], node[1]))
        one_by_one = Frontier()
        for h in LEAVES[:size]:
            one_by_one.append(h)
        assert frontier == one_by_one
        assert frontier.to_bytes() == one_by_one.to_bytes()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=12))
def test_random_batches(chunks: list[int]) -> None:
    leaves = [leaf_hash(b"%d" % i) for i in range(sum(chunks))]
    frontier = Frontier()
    emitted: list[Node] = []
    pos = 0
    for c in chunks:
        emitted.extend(frontier.extend(leaves[pos : pos + c]))
        pos += c
        assert frontier.root() == root_from_leaf_hashes(leaves[:pos])
        # A head restored from its bytes carries on exactly like the original.
        frontier = Frontier.from_bytes(frontier.to_bytes())
    assert _as_dict(emitted) == _complete_nodes(MemoryNodes(leaves), len(leaves))


def test_serialisation_roundtrip_and_size() -> None:
    assert Frontier().to_bytes() == bytes(8)
    assert Frontier.from_bytes(bytes(8)).root() == EMPTY_ROOT
    for size in range(MAX_SIZE + 1):
        frontier = Frontier()
        frontier.extend(LEAVES[:size])
        data = frontier.to_bytes()
        assert len(data) == 8 + 32 * size.bit_count()
        restored = Frontier.from_bytes(data)
        assert restored == frontier
        assert restored.root() == frontier.root()


def test_from_bytes_rejects_malformed() -> None:
    frontier = Frontier()
    frontier.extend(LEAVES[:7])
    data = frontier.to_bytes()
    for bad in (b"", data[:7], data[:-1], data + b"\x00", (8).to_bytes(8, "big") + data[8:]):
        with pytest.raises(ValueError, match="frontier"):
            Frontier.from_bytes(bad)


def test_rejects_bad_hashes_and_border() -> None:
    with pytest.raises(ValueError, match="leaf hash must be 32 bytes"):
        Frontier().append(b"short")
    with pytest.raises(ValueError, match="leaf hash 1 of the batch must be 32 bytes, got 3"):
        Frontier().extend([LEAVES[0], b"abc"])
    with pytest.raises(ValueError, match="3 perfect subtrees"):
        Frontier(7, LEAVES[:2])
    with pytest.raises(ValueError, match="border hash must be 32 bytes, got 31"):
        Frontier(3, [LEAVES[0], LEAVES[1][:31]])
    with pytest.raises(ValueError, match=">= 0"):
        Frontier(-1)
    with pytest.raises(ValueError, match="leaf hash 0 of the batch must be bytes, got str"):
        Frontier().extend(["x" * 32])  # type: ignore[list-item]
    # Buffers from database drivers are accepted for a stored head.
    head = Frontier()
    head.extend(LEAVES[:3])
    restored = Frontier(3, [memoryview(h) for h in head.border])
    assert restored == head
    assert restored.to_bytes() == head.to_bytes()
    frontier = Frontier()
    frontier.extend(LEAVES[:5])
    before = frontier.to_bytes()
    with pytest.raises(ValueError):
        frontier.extend([LEAVES[5], b""])
    assert frontier.to_bytes() == before, "a rejected batch must not change the head"


def test_copy_is_independent() -> None:
    frontier = Frontier()
    frontier.extend(LEAVES[:3])
    trial = frontier.copy()
    trial.append(LEAVES[3])
    assert frontier.size == 3
    assert trial.size == 4
    assert frontier != trial


def test_frontier_speed_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Not a pass/fail check: prints how fast a million leaves go in, for the lead."""
    n = 1_000_000
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    frontier = Frontier()
    start = time.perf_counter()
    nodes = frontier.extend(leaves)
    elapsed = time.perf_counter() - start
    assert len(nodes) == n - n.bit_count()
    with capsys.disabled():
        print(
            f"\n[ledger] Frontier.extend: {n:,} leaves in {elapsed:.2f} s "
            f"({n / elapsed:,.0f} leaves/s, {len(nodes):,} nodes emitted)"
        )


def test_memory_nodes_grow_incrementally() -> None:
    whole = MemoryNodes(LEAVES)
    grown = MemoryNodes()
    for start in range(0, MAX_SIZE, 9):
        grown.extend(LEAVES[start : start + 9])
        assert grown.size == min(start + 9, MAX_SIZE)
        assert _complete_nodes(grown, grown.size) == _complete_nodes(whole, grown.size)
    assert grown.root() == whole.root()
    with pytest.raises(IndexError):
        whole.node(0, MAX_SIZE)
    with pytest.raises(IndexError):
        whole.node(8, 0)

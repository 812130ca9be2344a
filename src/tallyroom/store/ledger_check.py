"""Full re-hash check of a store's ledger: `tallyroom ledger verify`."""

from __future__ import annotations

import nacl.signing

from tallyroom.commission import origin_of
from tallyroom.ledger.checkpoint import CheckpointError, verify_checkpoint
from tallyroom.ledger.entry import EntryError, decode_entry
from tallyroom.ledger.merkle import Frontier, leaf_hash
from tallyroom.store.sql import Store


def check_store_ledger(store: Store) -> tuple[list[str], int]:
    """Recompute every leaf hash and the tree; compare with the head, nodes and checkpoints.

    Returns the problems found (empty when all is well) and the ledger size.
    """
    problems: list[str] = []
    head = store.head()
    frontier = Frontier()
    checkpoints = {size: (root, note) for size, root, _t, note in store.checkpoints()}
    roots_at: dict[int, bytes] = {}
    if 0 in checkpoints:
        roots_at[0] = frontier.root()
    expected = 0
    node_sample: list[tuple[int, int, bytes]] = []
    for idx, _kind, data, stored_leaf in store.entries():
        if idx != expected:
            problems.append(f"entry {expected} is missing (next stored is {idx})")
            expected = idx
        try:
            decode_entry(data)
        except EntryError as exc:
            problems.append(f"entry {idx}: {exc}")
        h = leaf_hash(data)
        if h != stored_leaf:
            problems.append(
                f"entry {idx}: stored leaf hash {stored_leaf.hex()[:16]}… "
                f"≠ SHA-256 of its bytes {h.hex()[:16]}…"
            )
        nodes = frontier.append(h)
        if len(node_sample) < 64:
            node_sample.extend(nodes[: 64 - len(node_sample)])
        expected += 1
        if frontier.size in checkpoints:
            roots_at[frontier.size] = frontier.root()
    if frontier.size != head.size:
        problems.append(f"head says {head.size:,} entries, the ledger holds {frontier.size:,}")
    if frontier.root() != head.root:
        problems.append(f"head root {head.root.hex()} ≠ recomputed root {frontier.root().hex()}")
    for level, index, h in node_sample:
        try:
            if store.node(level, index) != h:
                problems.append(
                    f"stored Merkle node ({level}, {index}) differs from the recomputed one"
                )
        except Exception as exc:  # a missing node is reported, not raised
            problems.append(str(exc))
    pub = store.meta("commission_public_key")
    vk = nacl.signing.VerifyKey(bytes.fromhex(pub or "00" * 32))
    name = origin_of(store).replace(" ", "_")
    for size, (root, note) in sorted(checkpoints.items()):
        if roots_at.get(size) != root:
            problems.append(
                f"checkpoint at size {size:,}: root does not match the ledger's tree at that size"
            )
        try:
            cp = verify_checkpoint(note, name, vk)
        except CheckpointError as exc:
            problems.append(f"checkpoint at size {size:,}: {exc}")
            continue
        if cp.size != size or cp.root != root:
            problems.append(f"checkpoint at size {size:,}: signed note says size {cp.size:,}")
    return problems, frontier.size

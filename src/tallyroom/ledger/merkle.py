"""RFC 6962 / RFC 9162 Merkle tree hashing, incremental frontier, and proofs.

The log is a left-balanced binary tree over leaf hashes (RFC 9162 §2.1.1). Nodes are
addressed as ``(level, index)``: level 0 holds the leaf hashes, and node ``(level, index)``
is the root of the *perfect* subtree over leaves ``[index·2^level, (index+1)·2^level)``.
Only perfect subtrees ever get an address; hashes of the ragged right edge of a tree are
recomputed from perfect ones when a proof needs them, so a store never rewrites a node.

Error policy:

* Proof *generation* (:func:`inclusion_proof`, :func:`consistency_proof`, :func:`tree_root`)
  raises :class:`ProofError` for impossible arguments (index ≥ size, old size > new size).
* Proof *checking* comes in two forms: ``check_*`` raises :class:`ProofError` naming what
  is wrong (for a verifier that must explain itself), and ``verify_*`` returns a plain
  ``bool`` and never raises for any proof, size or hash it is given — a malformed proof is
  simply one that does not verify.

A root hash does not commit to its tree size: the inclusion proof of leaf 0 in a tree of 3
also verifies as leaf 0 of a tree of 4 against the same root, because the verifier does the
same hashing for both. Check proofs only against a (size, root) pair taken together from
one signed checkpoint, never a size from one source and a root from another.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "MemoryNodes",
    "Node",
    "NodeReader",
    "ProofError",
    "check_consistency",
    "check_inclusion",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) = SHA-256() — the root of the empty tree (RFC 9162 §2.1.1)."""

Node = tuple[int, int, bytes]
"""A completed internal node as ``(level, index, hash)``, level ≥ 1."""


class ProofError(ValueError):
    """A proof cannot be produced for these arguments, or a proof does not check out."""


def leaf_hash(entry: bytes) -> bytes:
    """Return MTH({d0}) = SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1, RFC 6962 §2.1).

    The 0x00 prefix separates leaves from interior nodes, so no leaf can be passed off as
    a subtree (second-preimage resistance).
    """
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 ‖ left ‖ right), an interior node (RFC 9162 §2.1.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash MTH(D[n]) of the given leaf hashes (RFC 9162 §2.1.1).

    Computed bottom-up, one level at a time. Carrying an unpaired last node up unchanged is
    equivalent to the RFC's split at the largest power of two smaller than n, because the
    tree is left-balanced: the odd node out is always the right-edge remainder.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        paired = [
            _sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2], strict=False)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


# --------------------------------------------------------------------------- frontier


class Frontier:
    """The right border of the tree: its size and the roots of its perfect subtrees.

    A tree of size n is the concatenation of one perfect subtree per set bit of n (largest
    first); this is the "compact range" [0, n) of transparency-dev/merkle. It is all an
    append-only log has to keep to extend the tree and compute its root (RFC 9162 §2.1.1),
    so the head of the ledger fits in one small database row (see :meth:`to_bytes`).

    :meth:`append` and :meth:`extend` return the internal nodes that the new leaves
    complete, so a store can persist exactly the nodes proofs will read later. Leaf hashes
    themselves (level 0) are *not* returned; the store already holds them.
    """

    __slots__ = ("_border", "_size")

    def __init__(
        self, size: int = 0, border: Iterable[bytes | bytearray | memoryview] = ()
    ) -> None:
        # bytes(): database drivers may hand back memoryview or bytearray.
        hashes = [bytes(h) for h in border]
        if size < 0:
            raise ValueError(f"frontier size must be >= 0, got {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} perfect subtrees, "
                f"got {len(hashes)} border hashes"
            )
        for h in hashes:
            _require_hash(h, "border hash")
        self._size = size
        # Largest subtree first, so the smallest — the one an append touches — is at the
        # end of the list, where pop/append are O(1).
        self._border = hashes

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        return self._size

    @property
    def border(self) -> tuple[bytes, ...]:
        """Roots of the perfect subtrees, largest (leftmost) first."""
        return tuple(self._border)

    def copy(self) -> Frontier:
        """Return an independent copy (to try an append without committing to it)."""
        return Frontier(self._size, self._border)

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Add one leaf hash; return the nodes it completes, lowest level first.

        Appending leaf n completes one node per trailing 1-bit of n: each merge pairs the
        smallest border subtree with the new one (RFC 9162 §2.1.1, bottom-up).
        """
        _require_hash(leaf_hash, "leaf hash")
        border = self._border
        size = self._size
        h = leaf_hash
        level = 0
        index = size
        completed: list[Node] = []
        while index & 1:
            h = _sha256(_NODE_PREFIX + border.pop() + h).digest()
            level += 1
            index >>= 1
            completed.append((level, index, h))
        border.append(h)
        self._size = size + 1
        return completed

    def extend(self, leaf_hashes: Sequence[bytes]) -> list[Node]:
        """Add a batch of leaf hashes; return every node they complete.

        Nodes come level by level (all of level 1 in index order, then level 2, …). The
        batch is hashed a whole level at a time, which keeps the per-node work inside list
        comprehensions: about a million leaves per second in CPython.
        """
        count = len(leaf_hashes)
        if count == 0:
            return []
        # Two C-level passes instead of a per-item check: validation stays ~5% of the cost.
        if set(map(type, leaf_hashes)) != {bytes} or set(map(len, leaf_hashes)) != {HASH_SIZE}:
            for i, h in enumerate(leaf_hashes):
                _require_hash(h, f"leaf hash {i} of the batch")
        old_size = self._size
        new_size = old_size + count
        old_border = self._border_by_level()
        new_border: dict[int, bytes] = {}
        completed: list[Node] = []

        # `nodes` holds the nodes of `level` that are new, starting at index `first`; if
        # `first` is odd its left sibling is an old border subtree and joins the pairing.
        level = 0
        first = old_size
        nodes = list(leaf_hashes)
        while True:
            if first & 1:
                nodes.insert(0, old_border[level])
                first -= 1
            if (new_size >> level) & 1:
                new_border[level] = nodes[-1]
            if len(nodes) < 2:
                break
            parents = [
                _sha256(_NODE_PREFIX + left + right).digest()
                for left, right in zip(nodes[0::2], nodes[1::2], strict=False)
            ]
            level += 1
            first >>= 1
            completed.extend(zip(repeat(level), range(first, first + len(parents)), parents))
            nodes = parents
        # Above the last level that gained a node, old and new sizes share their bits, so
        # those border subtrees are unchanged.
        for above, h in old_border.items():
            if above > level:
                new_border[above] = h
        self._border = [new_border[lv] for lv in sorted(new_border, reverse=True)]
        self._size = new_size
        return completed

    def root(self) -> bytes:
        """Return MTH of the whole tree (RFC 9162 §2.1.1): fold the border right to left."""
        border = self._border
        if not border:
            return EMPTY_ROOT
        h = border[-1]
        for left in reversed(border[:-1]):
            h = _sha256(_NODE_PREFIX + left + h).digest()
        return h

    def to_bytes(self) -> bytes:
        """Serialise as 8-byte big-endian size followed by the border hashes (≤ 2 KiB)."""
        return self._size.to_bytes(8, "big") + b"".join(self._border)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on any malformed input."""
        if len(data) < 8:
            raise ValueError(f"frontier bytes too short: {len(data)} bytes, need at least 8")
        size = int.from_bytes(data[:8], "big")
        expected = 8 + HASH_SIZE * size.bit_count()
        if len(data) != expected:
            raise ValueError(f"frontier of size {size} must be {expected} bytes, got {len(data)}")
        border = [data[i : i + HASH_SIZE] for i in range(8, expected, HASH_SIZE)]
        return cls(size, border)

    def _border_by_level(self) -> dict[int, bytes]:
        levels = [lv for lv in range(self._size.bit_length()) if (self._size >> lv) & 1]
        return dict(zip(reversed(levels), self._border, strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._border == other._border

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


# ----------------------------------------------------------------------- node access


class NodeReader(Protocol):
    """Read access to the hashes of perfect subtrees of a log.

    ``node(level, index)`` returns the root of the perfect subtree over leaves
    ``[index·2^level, (index+1)·2^level)``; level 0 is the leaf hashes. Implementations
    raise ``LookupError`` (e.g. ``IndexError`` or ``KeyError``) for a node not stored.
    """

    def node(self, level: int, index: int) -> bytes: ...


class MemoryNodes:
    """A :class:`NodeReader` over an in-memory list of leaf hashes (all levels cached).

    Built by plain pairwise hashing, independently of :class:`Frontier`, so each can check
    the other. Used by the verifier, which rebuilds the tree from the published ledger.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes and every perfect subtree root they complete."""
        levels = self._levels
        leaves = list(leaf_hashes)
        for h in leaves:
            _require_hash(h, "leaf hash")
        levels[0].extend(leaves)
        level = 0
        while len(levels[level]) >= 2:
            below = levels[level]
            if level + 1 == len(levels):
                levels.append([])
            above = levels[level + 1]
            start = 2 * len(above)
            above.extend(
                _sha256(_NODE_PREFIX + left + right).digest()
                for left, right in zip(below[start::2], below[start + 1 :: 2], strict=False)
            )
            level += 1

    def node(self, level: int, index: int) -> bytes:
        """Return the hash of perfect subtree ``(level, index)``; ``IndexError`` if none."""
        if level < 0 or index < 0 or level >= len(self._levels):
            raise IndexError(f"no complete node at level {level}, index {index}")
        row = self._levels[level]
        if index >= len(row):
            raise IndexError(f"no complete node at level {level}, index {index}")
        return row[index]

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the tree's prefix of ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        if n > self.size:
            raise ProofError(f"tree size {n} exceeds the {self.size} leaves held")
        return tree_root(n, self)


def _range_hash(begin: int, end: int, reader: NodeReader) -> bytes:
    """Hash MTH(D[begin:end]) of a subtree that may be ragged on its right edge.

    ``begin`` must be a multiple of the largest power of two ≤ end − begin, which holds for
    every subtree the RFC 9162 §2.1.3.1/§2.1.4.1 recursions visit. The range splits into
    one perfect subtree per set bit of its width; fold them right to left.
    """
    parts: list[bytes] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        parts.append(reader.node(level, begin >> level))
        begin += 1 << level
    h = parts.pop()
    while parts:
        h = _sha256(_NODE_PREFIX + parts.pop() + h).digest()
    return h


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n ≥ 2), RFC 9162 §2.1.1's k."""
    return 1 << ((n - 1).bit_length() - 1)


def tree_root(size: int, reader: NodeReader) -> bytes:
    """Return MTH(D[0:size]) (RFC 9162 §2.1.1) from perfect subtrees only.

    Reads one node per set bit of ``size``, so any past checkpoint's root can be recomputed
    from stored nodes.
    """
    if size < 0:
        raise ProofError(f"tree size must be >= 0, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, reader)


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """Return PATH(index, D[0:size]), the inclusion proof of leaf ``index`` (RFC 9162 §2.1.3.1).

    Nodes are ordered leaf-side first, as the RFC's recursion emits them. Raises
    :class:`ProofError` unless 0 ≤ index < size. At most O(log² size) node reads.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    begin, end = 0, size
    # Walk the recursion from the root down; each step records the sibling subtree.
    while end - begin > 1:
        k = _split(end - begin)
        if index < begin + k:
            path.append(_range_hash(begin + k, end, reader))
            end = begin + k
        else:
            path.append(_range_hash(begin, begin + k, reader))
            begin += k
    path.reverse()
    return path


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[bytes]:
    """Return PROOF(old_size, D[0:new_size]) (RFC 9162 §2.1.4.1, SUBPROOF recursion).

    Empty when old_size is 0 or equals new_size (nothing to prove). Raises
    :class:`ProofError` if old_size > new_size or a size is negative.
    """
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must be >= 0, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []
    begin, end = 0, new_size
    # `whole_old_tree` is SUBPROOF's b: true while the subtree on the path still starts at
    # leaf 0, i.e. it is the old tree itself, whose root the verifier already knows.
    whole_old_tree = True
    while True:
        m = old_size - begin
        if m == end - begin:
            if not whole_old_tree:
                proof.append(_range_hash(begin, end, reader))
            break
        k = _split(end - begin)
        if m <= k:
            proof.append(_range_hash(begin + k, end, reader))
            end = begin + k
        else:
            proof.append(_range_hash(begin, begin + k, reader))
            begin += k
            whole_old_tree = False
    proof.reverse()
    return proof


# ----------------------------------------------------------------------- verification


def _require_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes):
        raise ValueError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if not isinstance(p, bytes) or len(p) != HASH_SIZE:
            got = len(p) if isinstance(p, bytes) else type(p).__name__
            raise ProofError(f"proof element {i} must be {HASH_SIZE} bytes, got {got}")


def _inclusion_proof_length(index: int, size: int) -> int:
    # Levels below the point where the paths to `index` and to the last leaf diverge have a
    # sibling each; above it, one sibling per set bit of the remaining right border.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root implied by an inclusion proof (RFC 9162 §2.1.3.2, steps 1–5).

    Raises :class:`ProofError` if index ≥ size or the proof has the wrong number or size of
    hashes; the caller compares the result with a trusted root.
    """
    if not isinstance(index, int) or not isinstance(size, int):
        raise ProofError("leaf index and tree size must be integers")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash must be {HASH_SIZE} bytes")
    _check_proof_hashes(proof)
    expected = _inclusion_proof_length(index, size)
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {size} must have "
            f"{expected} hashes, got {len(proof)}"
        )
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            # Skip the levels where this node has no right sibling (ragged right edge).
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable when the length check passed; kept as the RFC's final test
        raise ProofError("inclusion proof does not reach the root")
    return r


def check_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf ``index`` is in the tree
    of ``size`` leaves with this ``root`` (RFC 9162 §2.1.3.2)."""
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if not isinstance(root, bytes) or not hmac.compare_digest(computed, root):
        raise ProofError(
            f"inclusion proof for leaf {index} leads to root {computed.hex()}, "
            f"not the expected root of tree size {size}"
        )


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Return whether the inclusion proof verifies (RFC 9162 §2.1.3.2); never raises."""
    try:
        check_inclusion(leaf_hash, index, size, proof, root)
    except (ProofError, TypeError):
        return False
    return True


def check_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the tree of ``old_size`` leaves
    with ``old_root`` is a prefix of the tree of ``new_size`` with ``new_root``
    (RFC 9162 §2.1.4.2).

    Edge cases the RFC leaves to the caller: equal sizes need an empty proof and equal
    roots; old size 0 needs an empty proof and ``old_root`` = :data:`EMPTY_ROOT`.
    """
    if not isinstance(old_size, int) or not isinstance(new_size, int):
        raise ProofError("tree sizes must be integers")
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must be >= 0, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}")
    for name, value in (("old root", old_root), ("new root", new_root)):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofError(f"{name} must be {HASH_SIZE} bytes")
    _check_proof_hashes(proof)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofError(
                f"consistency proof from size {old_size} to {new_size} must be empty, "
                f"got {len(proof)} hashes"
            )
        if old_size == 0 and not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise ProofError("old root of an empty tree must be SHA-256 of the empty string")
        if old_size == new_size and not hmac.compare_digest(old_root, new_root):
            raise ProofError(f"roots differ for the same tree size {old_size}")
        return
    if not proof:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} is empty")

    path = list(proof)
    # A power-of-two old tree is itself a node of the new tree; the RFC leaves it out of
    # the proof since the verifier holds it as old_root.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(
                f"consistency proof from size {old_size} to {new_size} has too many hashes"
            )
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from size {old_size} to {new_size} has too few hashes")
    if not hmac.compare_digest(fr, old_root):
        raise ProofError(f"consistency proof does not lead to the old root of size {old_size}")
    if not hmac.compare_digest(sr, new_root):
        raise ProofError(f"consistency proof does not lead to the new root of size {new_size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Return whether the consistency proof verifies (RFC 9162 §2.1.4.2); never raises."""
    try:
        check_consistency(old_size, new_size, old_root, new_root, proof)
    except (ProofError, TypeError):
        return False
    return True

"""Inclusion and consistency proofs against a reference model written from RFC 9162's
recursive definitions (MTH §2.1.1, PATH §2.1.3.1, SUBPROOF §2.1.4.1).

The reference describes each proof element as the leaf range it covers. That gives:
  * the expected proof hashes (reference MTH over the range), and
  * a symbolic model of what a verifier computes from a proof, which tells exactly when
    a proof for one (index, size) or (old, new) claim must also pass for another.

A root hash does not commit to its tree size, so an inclusion proof for leaf 0 of a tree
of 3 also verifies as leaf 0 of a tree of 4 against the same root (the verifier does the
same hashing in both cases). RFC 9162 verification is only meaningful for (size, root)
pairs taken together from a signed checkpoint. The tests below therefore require a wrong
size to fail exactly when the symbolic model says the claim is distinguishable, and
everything else (wrong index, flipped bits, wrong roots, extra or missing hashes) to fail
always.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.ledger.merkle import (
    EMPTY_ROOT,
    MemoryNodes,
    ProofError,
    check_consistency,
    check_inclusion,
    consistency_proof,
    inclusion_proof,
    root_from_inclusion_proof,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

Range = tuple[int, int]
Expr = Any  # nested tuples: ("P", j) | ("LEAF",) | ("OLD",) | ("H", left, right)

MAX_SIZE = 130


# --------------------------------------------------------------- reference (RFC 9162)


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) by the recursive definition, over leaf hashes."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = ref_split(len(hashes))
    return hashlib.sha256(b"\x01" + ref_mth(hashes[:k]) + ref_mth(hashes[k:])).digest()


def ref_path(m: int, lo: int, hi: int) -> list[Range]:
    """PATH(m, D[lo:hi]) as leaf ranges, m relative to lo."""
    if hi - lo <= 1:
        return []
    k = ref_split(hi - lo)
    if m < k:
        return [*ref_path(m, lo, lo + k), (lo + k, hi)]
    return [*ref_path(m - k, lo + k, hi), (lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[Range]:
    """SUBPROOF(m, D[lo:hi], b) as leaf ranges, m relative to lo."""
    n = hi - lo
    if m == n:
        return [] if b else [(lo, hi)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, b), (lo + k, hi)]
    return [*ref_subproof(m - k, lo + k, hi, False), (lo, lo + k)]


def ref_consistency(m: int, n: int) -> list[Range]:
    if m == 0 or m == n:
        return []
    return ref_subproof(m, 0, n, True)


def _sym(lo: int, hi: int, atoms: dict[Range, Expr]) -> Expr:
    if (lo, hi) in atoms:
        return atoms[(lo, hi)]
    if hi - lo <= 1:
        return None  # this claim's proof layout cannot produce the hash
    k = ref_split(hi - lo)
    left, right = _sym(lo, lo + k, atoms), _sym(lo + k, hi, atoms)
    return None if left is None or right is None else ("H", left, right)


@cache
def sym_inclusion(index: int, size: int) -> tuple[int, Expr]:
    """(proof length, root as an expression over proof positions and the leaf)."""
    ranges = ref_path(index, 0, size)
    atoms: dict[Range, Expr] = {r: ("P", j) for j, r in enumerate(ranges)}
    atoms[(index, index + 1)] = ("LEAF",)
    return len(ranges), _sym(0, size, atoms)


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@cache
def sym_consistency(m: int, n: int) -> tuple[int, Expr, Expr]:
    """(proof length, old root expr, new root expr) over proof positions and OLD."""
    ranges = ref_consistency(m, n)
    atoms: dict[Range, Expr] = {r: ("P", j) for j, r in enumerate(ranges)}
    if _is_pow2(m):
        # The verifier uses the old root itself as the hash of [0, m).
        atoms[(0, m)] = ("OLD",)
    return len(ranges), _sym(0, m, atoms), _sym(0, n, atoms)


def _subst(expr: Expr, old: Expr) -> Expr:
    if expr == ("OLD",):
        return old
    if isinstance(expr, tuple) and expr and expr[0] == "H":
        return ("H", _subst(expr[1], old), _subst(expr[2], old))
    return expr


def inclusion_must_pass(index: int, size: int, claim_index: int, claim_size: int) -> bool:
    """Would a proof for (index, size) be indistinguishable from one for the claim?"""
    if not 0 <= claim_index < claim_size:
        return False
    return sym_inclusion(index, size) == sym_inclusion(claim_index, claim_size)


def consistency_must_pass(m: int, n: int, claim_m: int, claim_n: int) -> bool:
    """Would the (m, n) proof, with the true roots, pass as a claim (claim_m, claim_n)?"""
    length, old_expr, new_expr = sym_consistency(m, n)
    if claim_m < 1 or claim_m >= claim_n:
        return False  # such claims need an empty proof; every proof tested here has hashes
    c_length, c_old, c_new = sym_consistency(claim_m, claim_n)
    if c_length != length:
        return False
    # The value passed as the old root is the true old root: an atom if m is a power of
    # two, otherwise the expression the true proof yields for it.
    old_value = ("OLD",) if _is_pow2(m) else old_expr
    same_old: bool = _subst(c_old, old_value) == old_value
    same_new: bool = _subst(c_new, old_value) == _subst(new_expr, old_value)
    return same_old and same_new


# ------------------------------------------------------------------------- fixtures


LEAVES = [ref_leaf(b"tallyroom leaf %d" % i) for i in range(MAX_SIZE)]
NODES = MemoryNodes(LEAVES)
ROOTS = [ref_mth(LEAVES[:n]) for n in range(MAX_SIZE + 1)]
OTHER_HASH = hashlib.sha256(b"not in the tree").digest()


def _flip(h: bytes, bit: int) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def test_reference_model_is_sound() -> None:
    # The symbolic model must call every true claim indistinguishable from itself.
    for n in range(1, 40):
        for i in range(n):
            assert sym_inclusion(i, n)[1] is not None
        for m in range(1, n):
            _, old, new = sym_consistency(m, n)
            assert old is not None
            assert new is not None


def test_tree_root_matches_reference_for_every_size() -> None:
    for n in range(MAX_SIZE + 1):
        assert tree_root(n, NODES) == ROOTS[n]
        assert NODES.root(n) == ROOTS[n]


# ----------------------------------------------------------------- inclusion, all sizes


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_inclusion_every_index(size: int) -> None:
    root = ROOTS[size]
    for index in range(size):
        leaf = LEAVES[index]
        proof = inclusion_proof(index, size, NODES)
        expected = [ref_mth(LEAVES[lo:hi]) for lo, hi in ref_path(index, 0, size)]
        assert proof == expected, (index, size)
        assert root_from_inclusion_proof(leaf, index, size, proof) == root
        assert verify_inclusion(leaf, index, size, proof, root)

        # Every bit-flip in every element, a wrong leaf, wrong roots: always fail.
        for j, p in enumerate(proof):
            for bit in (0, 7):
                bad = [*proof[:j], _flip(p, bit), *proof[j + 1 :]]
                assert not verify_inclusion(leaf, index, size, bad, root)
        assert not verify_inclusion(OTHER_HASH, index, size, proof, root)
        assert not verify_inclusion(leaf, index, size, proof, OTHER_HASH)
        assert not verify_inclusion(leaf, index, size, proof, EMPTY_ROOT)
        # Extra or missing hashes: always fail.
        assert not verify_inclusion(leaf, index, size, [*proof, root], root)
        assert not verify_inclusion(leaf, index, size, [root, *proof], root)
        if proof:
            assert not verify_inclusion(leaf, index, size, proof[:-1], root)
            assert not verify_inclusion(leaf, index, size, proof[1:], root)
        # Wrong index: the leaf sits at a different position, so it must always fail.
        for other in {index - 1, index + 1, index ^ 1, index ^ 2, 0, size - 1} - {index}:
            assert not verify_inclusion(leaf, other, size, proof, root), (index, other)
        # Wrong size: fails unless the two trees hash this leaf identically.
        for other in {size - 1, size + 1, size * 2, size // 2, size + 7} - {size}:
            expect = inclusion_must_pass(index, size, index, other)
            got = verify_inclusion(leaf, index, other, proof, root)
            assert got == expect, (index, size, other)


def test_inclusion_wrong_claims_exhaustive_small() -> None:
    # Every (claimed index, claimed size) for small trees, checked against the model.
    limit = 24
    for size in range(1, limit + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, NODES)
            for claim_size in range(limit + 2):
                for claim_index in range(claim_size + 1):
                    got = verify_inclusion(
                        LEAVES[index], claim_index, claim_size, proof, ROOTS[size]
                    )
                    want = inclusion_must_pass(index, size, claim_index, claim_size)
                    assert got == want, (index, size, claim_index, claim_size)


# --------------------------------------------------------------- consistency, all sizes


@pytest.mark.parametrize("new", range(1, MAX_SIZE + 1))
def test_consistency_every_old_size(new: int) -> None:
    new_root = ROOTS[new]
    for old in range(0, new + 1):
        old_root = ROOTS[old]
        proof = consistency_proof(old, new, NODES)
        expected = [ref_mth(LEAVES[lo:hi]) for lo, hi in ref_consistency(old, new)]
        assert proof == expected, (old, new)
        assert verify_consistency(old, new, old_root, new_root, proof)
        if not proof:
            continue

        for j, p in enumerate(proof):
            for bit in (0, 4):
                bad = [*proof[:j], _flip(p, bit), *proof[j + 1 :]]
                assert not verify_consistency(old, new, old_root, new_root, bad)
        assert not verify_consistency(old, new, OTHER_HASH, new_root, proof)
        assert not verify_consistency(old, new, old_root, OTHER_HASH, proof)
        assert not verify_consistency(old, new, new_root, old_root, proof)
        assert not verify_consistency(old, new, old_root, new_root, [])
        assert not verify_consistency(old, new, old_root, new_root, proof[:-1])
        assert not verify_consistency(old, new, old_root, new_root, [*proof, old_root])
        assert not verify_consistency(old, new, old_root, new_root, [*proof, new_root])
        assert not verify_consistency(old, new, old_root, new_root, [new_root, *proof])
        assert not verify_consistency(old, new, old_root, new_root, [proof[0], *proof])
        # Wrong sizes (the probes of transparency-dev/merkle's verifier tests, and more):
        # fail unless the model says the claim is indistinguishable.
        claims = {
            (old - 1, new),
            (old + 1, new),
            (old ^ 2, new),
            (old, new - 1),
            (old, new + 1),
            (old, new * 2),
            (old, new // 2),
            (new, old),
        } - {(old, new)}
        for claim_old, claim_new in claims:
            got = verify_consistency(claim_old, claim_new, old_root, new_root, proof)
            want = consistency_must_pass(old, new, claim_old, claim_new)
            assert got == want, (old, new, claim_old, claim_new)


def test_consistency_wrong_claims_exhaustive_small() -> None:
    limit = 20
    for new in range(2, limit + 1):
        for old in range(1, new):
            proof = consistency_proof(old, new, NODES)
            for claim_new in range(limit + 2):
                for claim_old in range(claim_new + 1):
                    got = verify_consistency(claim_old, claim_new, ROOTS[old], ROOTS[new], proof)
                    want = consistency_must_pass(old, new, claim_old, claim_new)
                    assert got == want, (old, new, claim_old, claim_new)


# ------------------------------------------------------------------ edge cases, errors


def test_generation_rejects_impossible_arguments() -> None:
    for index, size in [(0, 0), (1, 1), (5, 3), (-1, 3)]:
        with pytest.raises(ProofError, match="not in a tree"):
            inclusion_proof(index, size, NODES)
    with pytest.raises(ProofError, match="larger than"):
        consistency_proof(5, 4, NODES)
    with pytest.raises(ProofError, match=">= 0"):
        consistency_proof(-1, 4, NODES)
    with pytest.raises(ProofError):
        tree_root(-1, NODES)


def test_generation_reports_missing_nodes() -> None:
    small = MemoryNodes(LEAVES[:5])
    with pytest.raises(IndexError):
        inclusion_proof(0, 8, small)
    with pytest.raises(ProofError, match="exceeds"):
        small.root(6)


def test_trivial_consistency() -> None:
    # Equal sizes: empty proof, equal roots. Size 0: empty proof, old root = SHA-256("").
    assert verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    assert not verify_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    assert not verify_consistency(5, 5, ROOTS[5], ROOTS[5], [ROOTS[5]])
    assert verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 7, ROOTS[1], ROOTS[7], [])
    assert not verify_consistency(0, 7, EMPTY_ROOT, ROOTS[7], [EMPTY_ROOT])
    assert not verify_consistency(7, 5, ROOTS[7], ROOTS[5], consistency_proof(5, 7, NODES))


def test_verify_never_raises_on_garbage() -> None:
    proof = inclusion_proof(3, 10, NODES)
    cproof = consistency_proof(3, 10, NODES)
    garbage: list[Any] = [None, [b""], [b"x" * 31], [b"x" * 33], ["text"], [None], 5]
    for g in garbage:
        assert not verify_inclusion(LEAVES[3], 3, 10, g, ROOTS[10])
        assert not verify_consistency(3, 10, ROOTS[3], ROOTS[10], g)
    assert not verify_inclusion(b"short", 3, 10, proof, ROOTS[10])
    assert not verify_inclusion(LEAVES[3], 3, 10, proof, b"short")
    assert not verify_inclusion(LEAVES[3], -1, 10, proof, ROOTS[10])
    assert not verify_inclusion(LEAVES[3], 3, -10, proof, ROOTS[10])
    assert not verify_consistency(-3, 10, ROOTS[3], ROOTS[10], cproof)
    assert not verify_consistency(3, 10, b"short", ROOTS[10], cproof)
    assert not verify_consistency(3, 10, ROOTS[3], None, cproof)  # type: ignore[arg-type]


def test_check_functions_explain_failures() -> None:
    proof = inclusion_proof(3, 10, NODES)
    with pytest.raises(ProofError, match="must have 4 hashes, got 3"):
        check_inclusion(LEAVES[3], 3, 10, proof[:-1], ROOTS[10])
    with pytest.raises(ProofError, match="element 1 must be 32 bytes"):
        check_inclusion(LEAVES[3], 3, 10, [proof[0], b"", *proof[2:]], ROOTS[10])
    with pytest.raises(ProofError, match="not the expected root"):
        check_inclusion(LEAVES[3], 3, 10, proof, ROOTS[9])
    with pytest.raises(ProofError, match="not in a tree of size 10"):
        check_inclusion(LEAVES[3], 10, 10, proof, ROOTS[10])
    cproof = consistency_proof(3, 10, NODES)
    with pytest.raises(ProofError, match="new root of size 10"):
        check_consistency(3, 10, ROOTS[3], ROOTS[9], cproof)
    with pytest.raises(ProofError, match="old root of size 3"):
        check_consistency(3, 10, ROOTS[4], ROOTS[10], cproof)
    with pytest.raises(ProofError, match="too few"):
        check_consistency(3, 10, ROOTS[3], ROOTS[10], cproof[:-1])
    with pytest.raises(ProofError, match="too many"):
        check_consistency(3, 10, ROOTS[3], ROOTS[10], [*cproof, cproof[0]])
    with pytest.raises(ProofError, match="is empty"):
        check_consistency(3, 10, ROOTS[3], ROOTS[10], [])
    with pytest.raises(ProofError, match="larger than"):
        check_consistency(10, 3, ROOTS[10], ROOTS[3], cproof)


def test_proof_reads_are_polylogarithmic() -> None:
    class Counting:
        def __init__(self) -> None:
            self.reads = 0

        def node(self, level: int, index: int) -> bytes:
            self.reads += 1
            return NODES.node(level, index)

    for size in (MAX_SIZE, 127, 100, 65):
        bound = size.bit_length() ** 2
        for index in range(size):
            counter = Counting()
            inclusion_proof(index, size, counter)
            assert counter.reads <= bound
        for old in range(1, size):
            counter = Counting()
            consistency_proof(old, size, counter)
            assert counter.reads <= bound


# ------------------------------------------------------------------------ Hypothesis


@st.composite
def tree_and_sizes(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    leaves = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=300))
    new = draw(st.integers(min_value=1, max_value=len(leaves)))
    old = draw(st.integers(min_value=0, max_value=new))
    return [ref_leaf(x) for x in leaves], old, new


@settings(max_examples=150, deadline=None)
@given(tree_and_sizes(), st.data())
def test_random_consistency(case: tuple[list[bytes], int, int], data: st.DataObject) -> None:
    leaves, old, new = case
    nodes = MemoryNodes(leaves)
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves[:new])
    proof = consistency_proof(old, new, nodes)
    assert verify_consistency(old, new, old_root, new_root, proof)
    if not proof:
        return
    j = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    bad = list(proof)
    bad[j] = bad[j][:byte] + bytes([bad[j][byte] ^ (1 << bit)]) + bad[j][byte + 1 :]
    assert not verify_consistency(old, new, old_root, new_root, bad)
    # A changed leaf inside the old tree breaks the old root or the new one.
    k = data.draw(st.integers(0, new - 1), label="changed leaf")
    changed = [*leaves[:k], hashlib.sha256(leaves[k]).digest(), *leaves[k + 1 :]]
    assert not verify_consistency(old, new, ref_mth(changed[:old]), new_root, proof) or k >= old
    assert not verify_consistency(old, new, old_root, ref_mth(changed[:new]), proof)


@settings(max_examples=150, deadline=None)
@given(tree_and_sizes(), st.data())
def test_random_inclusion(case: tuple[list[bytes], int, int], data: st.DataObject) -> None:
    leaves, _, size = case
    nodes = MemoryNodes(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    root = ref_mth(leaves[:size])
    proof = inclusion_proof(index, size, nodes)
    assert verify_inclusion(leaves[index], index, size, proof, root)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bad = list(proof)
        bad[j] = bad[j][:byte] + bytes([bad[j][byte] ^ 0x80]) + bad[j][byte + 1 :]
        assert not verify_inclusion(leaves[index], index, size, bad, root)
    other = data.draw(st.integers(0, size - 1), label="other index")
    if leaves[other] != leaves[index]:
        assert not verify_inclusion(leaves[other], index, size, proof, root)

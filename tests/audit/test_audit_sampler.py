"""Sampler test vectors, each from a cited published source."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.audit.sampler import (
    BallotDraw,
    ballot_id,
    consistent_sample,
    first_fraction,
    next_fraction,
    rivest_2011_sample,
    sample_ballots,
    sample_batches,
    sha256_hex,
    sha256_uniform,
    trim,
)

# --- Rivest 2011 sampler.py ---------------------------------------------------------------
# Source: R. L. Rivest, sampler.py, version "November 14, 2011",
# http://people.csail.mit.edu/rivest/sampler.py — the sample transcript in its docstring
# (election "Big Apple City Council", seed 3546311556112163624615351222, a=1, b=876,
# n=47, without replacement; pick 32 ("611") is rejected as a duplicate).
RIVEST_2011_SEED = "3546311556112163624615351222"
RIVEST_2011_OUTPUT = [
    740, 180, 264, 789, 238, 448, 272, 611, 761, 208,
    596, 88, 160, 113, 766, 427, 184, 816, 653, 411,
    779, 331, 339, 487, 594, 235, 65, 527, 821, 490,
    461, 251, 471, 414, 174, 567, 300, 134, 144, 357,
    786, 792, 218, 550, 787, 537, 197,
]  # fmt: skip


def test_rivest_2011_transcript() -> None:
    out = rivest_2011_sample(RIVEST_2011_SEED, 47, 1, 876, with_replacement=False)
    assert out == RIVEST_2011_OUTPUT


def test_rivest_2011_expansion_continues_the_sample() -> None:
    # sampler.py's "expanded sample": skip = size of the previous sample.
    first = rivest_2011_sample(RIVEST_2011_SEED, 20, 1, 876, with_replacement=False)
    more = rivest_2011_sample(RIVEST_2011_SEED, 27, 1, 876, with_replacement=False, skip=20)
    assert first + more == RIVEST_2011_OUTPUT


# Source: C. Jerdonek, "Test Cases for Rivest Sampling Algorithm",
# https://github.com/cjerdonek/rivest-sampler-tests, tests.json (range 1..total,
# "allowing duplicates", checked against Rivest's reference sampler.py).
@pytest.mark.parametrize(
    ("seed", "total", "expected"),
    [
        ("0", 1000, [905, 573, 160]),
        ("0", 2, [1, 1, 2]),
        ("1", 1000, [97, 89, 163]),
        ("0000000000", 1000, [978, 359, 132]),
        ("999999999999999999999999", 1000, [544, 800, 654]),
        ("abcde", 1000, [247, 427, 157]),
    ],
)
def test_rivest_2011_jerdonek_vectors(seed: str, total: int, expected: list[int]) -> None:
    assert rivest_2011_sample(seed, 3, 1, total, with_replacement=True) == expected


def test_rivest_2011_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError, match="distinct"):
        rivest_2011_sample("s", 5, 1, 4, with_replacement=False)
    with pytest.raises(ValueError, match="empty range"):
        rivest_2011_sample("s", 1, 5, 4, with_replacement=True)


# --- Rivest's consistent sampler ------------------------------------------------------------
# Source: R. L. Rivest, consistent_sampler.py (https://github.com/ron-rivest/consistent_sampler,
# code/consistent_sampler.py), doctest examples in its docstrings.


def test_sha256_primitives_docstring_vectors() -> None:
    assert sha256_hex("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert sha256_uniform("abc") == (
        "0.56998071861792858926477341561059638840106636224182943832566300809078486324348"
    )


def test_fractions_docstring_vectors() -> None:
    first = first_fraction("AB-130", "01382438112797316654")
    assert first == (
        "0.26299714122838008416507544297546663599715395525154425586041245287750224561854"
    )
    # next_ticket example
    assert next_fraction(first) == (
        "0.8232357229934205790595761924514048157652891124687533667363938813600770093316"
    )
    assert next_fraction("0.25471") == (
        "0.642853261655004694691182528114375607701032283189922170593838029306715548381901"
    )
    # draw_with_replacement example: the replacement ticket of x = ('0.234', 'x', 2)
    assert next_fraction("0.234") == (
        "0.547830802749402616364646686795722512609112766306951592422621788875312684400211"
    )
    assert trim("0.9991234567890", 4) == "0.9991234"


def test_make_ticket_heap_docstring_vector() -> None:
    seed = "xy()134!g2n"
    assert first_fraction("cat", seed) == (
        "0.24866413894129579898796850445568128508290132707747976039848637531569373309555"
    )
    assert first_fraction("dog", seed) == (
        "0.33886035615681875183111698317327684455682722683976874746986356932751818935066"
    )
    assert first_fraction("goat", seed) == (
        "0.49599842072022713663423753308080171636735689997237236247068925068573448764387"
    )
    assert first_fraction("fish", seed) == (
        "0.74685932088827950509145941729789143204056041958068799542050396198792954500593"
    )


def _short(
    ids: list[str], seed: str, take: int, replace: bool = False
) -> list[tuple[str, str, int]]:
    tickets = consistent_sample(ids, seed, take, with_replacement=replace)
    return [(trim(t.ticket_number, 9), t.item_id, t.generation) for t in tickets]


def test_sampler_docstring_vectors() -> None:
    assert [
        t.item_id
        for t in consistent_sample(["A#2", "B#7", "C#1", "D#4"], "314159", 8, with_replacement=True)
    ] == ["D#4", "C#1", "C#1", "B#7", "A#2", "C#1", "D#4", "B#7"]
    assert _short(["ab-1", "ab-2", "cd-1", "ef-3"], "314159", 10) == [
        ("0.317685817", "cd-1", 1),
        ("0.832984519", "ef-3", 1),
        ("0.9098039269", "ab-1", 1),
        ("0.9231549043", "ab-2", 1),
    ]


# Source: R. L. Rivest, consistent_sampler, USAGE_EXAMPLES.md (examples 1, 2, 4, 5, 6, 7, 8).
def test_usage_examples() -> None:
    def ids(items: list[str], seed: str, take: int = 10**9, drop: int = 0) -> list[str]:
        return [t.item_id for t in consistent_sample(items, seed, take, drop=drop)]

    assert ids(["a", "b", "c", "d"], "31") == ["b", "a", "d", "c"]
    assert ids(["a", "b", "c", "d"], "77") == ["b", "d", "c", "a"]
    hundred = [str(i) for i in range(100)]
    assert ids(hundred, "41", take=5) == ["73", "51", "17", "58", "38"]
    assert ids(hundred, "41", take=5, drop=5) == ["42", "39", "20", "11", "67"]
    assert _short(hundred, "41", 5) == [
        ("0.000508333", "73", 1),
        ("0.003446232", "51", 1),
        ("0.004419823", "17", 1),
        ("0.020115273", "58", 1),
        ("0.023482375", "38", 1),
    ]
    assert _short(["a", "b", "c", "d", "e"], "52", 15, replace=True) == [
        ("0.054468191", "d", 1),
        ("0.075709054", "d", 2),
        ("0.097719928", "d", 3),
        ("0.197384308", "b", 1),
        ("0.243379719", "d", 4),
        ("0.255926637", "b", 2),
        ("0.302883911", "e", 1),
        ("0.366142288", "a", 1),
        ("0.434726434", "d", 5),
        ("0.492683857", "c", 1),
        ("0.609720116", "e", 2),
        ("0.647437512", "a", 2),
        ("0.694790524", "d", 6),
        ("0.756017834", "a", 3),
        ("0.791946361", "b", 3),
    ]
    # Example 7: nine digits are kept after the leading run of 9s
    assert _short(["a", "b"], "52", 20, replace=True) == [
        ("0.197384308", "b", 1),
        ("0.255926637", "b", 2),
        ("0.366142288", "a", 1),
        ("0.647437512", "a", 2),
        ("0.756017834", "a", 3),
        ("0.791946361", "b", 3),
        ("0.808380564", "a", 4),
        ("0.9198557294", "a", 5),
        ("0.9413251822", "b", 4),
        ("0.9442626691", "b", 5),
        ("0.9640637133", "b", 6),
        ("0.9686329377", "a", 6),
        ("0.9768155032", "a", 7),
        ("0.99512038467", "a", 8),
        ("0.99579318063", "a", 9),
        ("0.99583860264", "b", 7),
        ("0.99600663461", "b", 8),
        ("0.99681028452", "b", 9),
        ("0.99840177044", "b", 10),
        ("0.99882694976", "b", 11),
    ]


# --- Arlo --------------------------------------------------------------------------------------
# Source: votingworks/arlo, server/tests/audit_math/test_sampler.py (test_draw_sample,
# test_draw_more_samples) and its pinned snapshot server/tests/audit_math/snapshots/
# snap_test_sampler.py: manifest pct 1..4 with ballots 1..25 each, sample of 20 with
# replacement, 18 ticket digits.
ARLO_SEED = "12345678901234567890abcdefghijklmnopqrstuvwxyz😊"
ARLO_MANIFEST = [("pct 1", 25), ("pct 2", 25), ("pct 3", 25), ("pct 4", 25)]
ARLO_SNAPSHOT = [
    ("0.000617786129909912", "pct 2", 3, 1),
    ("0.002991631653037245", "pct 3", 24, 1),
    ("0.012057030610635061", "pct 1", 25, 1),
    ("0.017930028930651931", "pct 4", 19, 1),
    ("0.025599454926985137", "pct 3", 15, 1),
    ("0.045351055354441163", "pct 1", 7, 1),
    ("0.063913979803461405", "pct 1", 8, 1),
    ("0.064553852798863609", "pct 1", 22, 1),
    ("0.078998835671540970", "pct 1", 20, 1),
    ("0.090240829778172783", "pct 3", 12, 1),
    ("0.096136506157297637", "pct 1", 20, 2),
    ("0.104280162683637014", "pct 4", 17, 1),
    ("0.108948480696023984", "pct 1", 25, 2),
    ("0.111195681310332785", "pct 1", 4, 1),
    ("0.114438612046531251", "pct 4", 3, 1),
    ("0.130457464320709301", "pct 2", 1, 1),
    ("0.133484785501449819", "pct 1", 12, 1),
    ("0.134519219670087860", "pct 3", 20, 1),
    ("0.135840440920085144", "pct 3", 10, 1),
    ("0.138772253094235762", "pct 4", 20, 1),
]


def test_arlo_draw_sample_snapshot() -> None:
    sample = sample_ballots(ARLO_SEED, ARLO_MANIFEST, 20, with_replacement=True)
    assert [msgspec_tuple(d) for d in sample] == ARLO_SNAPSHOT


def test_arlo_draw_more_samples_snapshot() -> None:
    first = sample_ballots(ARLO_SEED, ARLO_MANIFEST, 10, True)
    more = sample_ballots(ARLO_SEED, ARLO_MANIFEST, 10, True, already_sampled=10)
    assert [msgspec_tuple(d) for d in first] == ARLO_SNAPSHOT[:10]
    assert [msgspec_tuple(d) for d in more] == ARLO_SNAPSHOT[10:]


def msgspec_tuple(d: BallotDraw) -> tuple[str, str, int, int]:
    return (d.ticket_number, d.batch_id, d.ballot, d.generation)


def test_ballot_id_is_python_tuple_str() -> None:
    assert ballot_id("pct 1", 25) == "('pct 1', 25)"
    assert ballot_id("O'Hare", 1) == str(("O'Hare", 1))


def test_without_replacement_draws_each_ballot_once() -> None:
    sample = sample_ballots("seed", [("a", 3), ("b", 2)], 5, with_replacement=False)
    assert sorted((d.batch_id, d.ballot) for d in sample) == [
        ("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)
    ]  # fmt: skip
    with pytest.raises(ValueError, match="distinct"):
        sample_ballots("seed", [("a", 3)], 4, with_replacement=False)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.text(min_size=1, max_size=12),
    ids=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=12, unique=True),
    data=st.data(),
)
def test_consistency_subset_order(seed: str, ids: list[str], data: st.DataObject) -> None:
    """Rivest's consistency: sampling a subset gives the superset's order restricted to it."""
    subset = data.draw(st.lists(st.sampled_from(ids), unique=True, min_size=1))
    full = [t.item_id for t in consistent_sample(ids, seed, len(ids))]
    part = [t.item_id for t in consistent_sample(subset, seed, len(subset))]
    assert part == [i for i in full if i in set(subset)]


def test_duplicate_ids_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        consistent_sample(["a", "a"], "s", 1)


# --- PPEB batch sampling ------------------------------------------------------------------


def test_batch_draws_are_rivest_2011_values_mapped_by_cumulative_weight() -> None:
    batches = [("s1", 5), ("s2", 0), ("s3", 10), ("s4", 1)]
    draws = sample_batches("dice 31415", batches, 50)
    values = rivest_2011_sample("dice 31415", 50, 0, 15, with_replacement=True)
    assert [d.value for d in draws] == values
    for d in draws:
        expected = "s1" if d.value < 5 else ("s3" if d.value < 15 else "s4")
        assert d.batch_id == expected
    assert all(d.batch_id != "s2" for d in draws)
    # times counts repeats
    seen: Counter[str] = Counter()
    for d in draws:
        seen[d.batch_id] += 1
        assert d.times == seen[d.batch_id]
    assert [d.draw for d in draws] == list(range(1, 51))


def test_batch_sampling_escalation_continues() -> None:
    batches = [("a", 3), ("b", 7)]
    whole = sample_batches("seed", batches, 30)
    assert (
        sample_batches("seed", batches, 10)
        + sample_batches("seed", batches, 20, already_sampled=10)
        == whole
    )


def test_batch_sampling_is_proportional_to_weight() -> None:
    batches = [("a", 1), ("b", 2), ("c", 7)]
    counts = Counter(d.batch_id for d in sample_batches("proportional", batches, 20_000))
    # binomial sd for p = 0.7, n = 20000 is about 65 draws; allow 5 sd
    assert abs(counts["a"] - 2_000) < 5 * 43
    assert abs(counts["b"] - 4_000) < 5 * 57
    assert abs(counts["c"] - 14_000) < 5 * 65


def test_batch_sampling_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="zero"):
        sample_batches("s", [("a", 0)], 1)
    with pytest.raises(ValueError, match="negative"):
        sample_batches("s", [("a", -1)], 1)
    with pytest.raises(ValueError, match="duplicate"):
        sample_batches("s", [("a", 1), ("a", 1)], 1)


def test_hash_is_sha256_of_utf8() -> None:
    assert sha256_hex("😊") == hashlib.sha256("😊".encode()).hexdigest()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.text(min_size=1, max_size=12),
    n_items=st.integers(min_value=1, max_value=15),
    take=st.integers(min_value=0, max_value=20),
    replace=st.booleans(),
)
def test_shorter_sample_is_a_prefix(seed: str, n_items: int, take: int, replace: bool) -> None:
    """Only the best candidates are kept internally; that must never change a prefix."""
    ids = [f"b-{i}" for i in range(n_items)]
    if not replace:
        take = min(take, n_items)
    longer = consistent_sample(ids, seed, 2 * take + 3, with_replacement=replace)
    assert consistent_sample(ids, seed, take, with_replacement=replace) == longer[:take]
    dropped = consistent_sample(ids, seed, take, with_replacement=replace, drop=3)
    assert dropped == longer[3 : 3 + take]

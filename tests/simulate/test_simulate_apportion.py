"""Exact apportionment helpers of the simulator (tallyroom.simulate.apportion)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.simulate.apportion import (
    ApportionError,
    fit_matrix,
    int_weights,
    largest_remainder,
)


def test_hare_gives_the_official_2021_list_seats() -> None:
    # Kyrgyzstan 2021 (data/kg_2021_official/README.md): quota 813,687/54; floors give 51,
    # the 3 largest remainders go to Butun, Ata-Jurt and Ishenim -> 15/12/9/7/6/5.
    votes = [222_005, 174_470, 141_009, 106_955, 90_223, 79_025]
    assert largest_remainder(54, votes) == [15, 12, 9, 7, 6, 5]


def test_ties_go_to_the_earlier_item() -> None:
    assert largest_remainder(1, [1, 1, 1]) == [1, 0, 0]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]


def test_zero_weights_get_nothing_and_all_zero_is_refused() -> None:
    assert largest_remainder(7, [0, 3, 0, 4]) == [0, 3, 0, 4]
    assert largest_remainder(0, [0, 0]) == [0, 0]
    with pytest.raises(ApportionError):
        largest_remainder(1, [0, 0])


def test_caps_are_respected_and_the_rest_is_redistributed() -> None:
    assert largest_remainder(10, [100, 1, 1], [4, 10, 10]) == [4, 3, 3]
    with pytest.raises(ApportionError, match="caps"):
        largest_remainder(10, [1, 1], [4, 5])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ApportionError):
        largest_remainder(-1, [1])
    with pytest.raises(ApportionError):
        largest_remainder(1, [-1, 2])
    with pytest.raises(ApportionError):
        int_weights([0.5, -0.1])


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(0, 10_000),
    weights=st.lists(st.integers(0, 1_000), min_size=1, max_size=30),
    data=st.data(),
)
def test_largest_remainder_is_exact_and_within_one_of_the_quota(
    total: int, weights: list[int], data: st.DataObject
) -> None:
    if sum(weights) == 0:
        weights[0] = 1
    caps = data.draw(
        st.one_of(st.none(), st.lists(st.integers(0, 10_000), min_size=len(weights),
                                      max_size=len(weights)))
    )
    if caps is not None and sum(c for c, w in zip(caps, weights, strict=True) if w) < total:
        with pytest.raises(ApportionError):
            largest_remainder(total, weights, caps)
        return
    got = largest_remainder(total, weights, caps)
    assert sum(got) == total
    assert all(g >= 0 for g in got)
    assert all(g == 0 for g, w in zip(got, weights, strict=True) if w == 0)
    if caps is None:
        whole = sum(weights)
        for g, w in zip(got, weights, strict=True):
            assert abs(g * whole - total * w) < whole  # within one of the exact quota
    else:
        assert all(g <= c for g, c in zip(got, caps, strict=True))


@settings(max_examples=100, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_fit_matrix_has_exact_margins(rows: int, cols: int, seed: int) -> None:
    rng = random.Random(seed)
    total = rng.randint(0, 50_000)
    row_totals = largest_remainder(total, [rng.randint(0, 9) for _ in range(rows - 1)] + [1])
    col_totals = largest_remainder(total, [rng.randint(0, 9) for _ in range(cols - 1)] + [1])
    seed_matrix = [[rng.uniform(0.01, 5.0) for _ in range(cols)] for _ in range(rows)]
    m = fit_matrix(seed_matrix, row_totals, col_totals)
    assert [sum(r) for r in m] == row_totals
    assert [sum(m[i][j] for i in range(rows)) for j in range(cols)] == col_totals
    assert all(x >= 0 for r in m for x in r)
    assert m == fit_matrix(seed_matrix, row_totals, col_totals)  # deterministic


def test_fit_matrix_follows_the_seed_shape() -> None:
    # Seed rows proportional to (3, 1) and (1, 3); margins symmetric: IPF keeps the odds ratio.
    m = fit_matrix([[3.0, 1.0], [1.0, 3.0]], [400, 400], [400, 400])
    assert m == [[300, 100], [100, 300]]


def test_fit_matrix_refuses_inconsistent_margins() -> None:
    with pytest.raises(ApportionError, match="sum"):
        fit_matrix([[1.0]], [3], [4])
    with pytest.raises(ApportionError, match="no positive seed"):
        fit_matrix([[0.0, 0.0], [1.0, 1.0]], [1, 1], [1, 1])

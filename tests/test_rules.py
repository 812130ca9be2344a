"""The rules engine: linear control relationships, every violation with its values."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import DATA, kyrgyz_lines
from tallyroom.definition.compiled import compile_election
from tallyroom.definition.load import load_definition
from tallyroom.protocol.check import (
    MAX_COUNT,
    ProtocolRejected,
    check_counts,
    counts_vector,
    evaluate_rules,
)
from tallyroom.protocol.expr import ExpressionError, compile_comparison, compile_rule_sides, parse_rule

KNOWN = {"a", "b", "c", "p", "q"}
CHOICES = ["p", "q"]


@pytest.fixture(scope="module")
def party_list():  # type: ignore[no-untyped-def]
    return compile_election(load_definition((DATA / "small.yaml").read_bytes())).contest("party-list")


@pytest.mark.parametrize(
    "expr",
    [
        "a >= b + c",
        "a == sum(choices)",
        "2 * a - b <= c + 10",
        "-a + b != 0",
        "a + b - c > p * 3",
    ],
)
def test_linear_rules_parse(expr: str) -> None:
    parse_rule(expr, KNOWN, CHOICES)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("a / b == c", "not allowed"),
        ("a * b == c", "multiplication is only allowed by an integer constant"),
        ("a.real == b", "not allowed"),
        ("__import__('os') == 1", "not allowed"),
        ("max(a, b) == c", "not allowed"),
        ("a == zzz", 'unknown line "zzz"'),
        ("a + b", "must be one comparison"),
        ("a < b < c", "must be one comparison"),
        ("a == 1.5", "not allowed"),
        ("a in b", "must compare with"),
        ("a ==", "syntax error"),
    ],
)
def test_anything_but_linear_comparisons_is_refused(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse_rule(expr, KNOWN, CHOICES)


@settings(max_examples=200, deadline=None)
@given(
    coefs=st.lists(st.integers(-5, 5), min_size=5, max_size=5),
    const=st.integers(-100, 100),
    op=st.sampled_from(["==", "!=", ">=", "<=", ">", "<"]),
    values=st.lists(st.integers(0, 10_000), min_size=5, max_size=5),
)
def test_compiled_rule_equals_direct_evaluation(
    coefs: list[int], const: int, op: str, values: list[int]
) -> None:
    names = ["a", "b", "c", "p", "q"]
    left = " + ".join(f"{k} * {n}" for k, n in zip(coefs, names, strict=True))
    expr = f"{left} {op} {const}"
    cmp = parse_rule(expr, KNOWN, CHOICES)
    fn = compile_comparison(cmp, {n: i for i, n in enumerate(names)})
    env = dict(zip(names, values, strict=True))
    expected = eval(expr, {"__builtins__": {}}, env)  # the oracle: Python itself
    assert fn(values) is expected
    assert (
        cmp.left.value(env) - cmp.right.value(env)
        == sum(k * v for k, v in zip(coefs, values, strict=True)) - const
    )


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(
        st.tuples(
            st.lists(st.integers(-5, 5), min_size=5, max_size=5),
            st.lists(st.integers(-3, 3), min_size=5, max_size=5),
            st.integers(-100, 100),
            st.sampled_from(["==", "!=", ">=", "<=", ">", "<"]),
        ),
        max_size=6,
    ),
    values=st.lists(st.integers(0, 10_000), min_size=5, max_size=5),
)
def test_all_sides_of_a_contests_rules_in_one_call_equal_each_rule_alone(
    rules: list[tuple[list[int], list[int], int, str]], values: list[int]
) -> None:
    """compile_rule_sides gives, for every rule in order, its left and right side as the
    parsed expression values them and the verdict of the rule compiled on its own."""
    names = ["a", "b", "c", "p", "q"]
    index = {n: i for i, n in enumerate(names)}
    env = dict(zip(names, values, strict=True))
    comparisons = []
    for left_coefs, right_coefs, const, op in rules:
        left = " + ".join(f"{k} * {n}" for k, n in zip(left_coefs, names, strict=True))
        right = " + ".join(f"{k} * {n}" for k, n in zip(right_coefs, names, strict=True))
        comparisons.append(parse_rule(f"{left} {op} {right} + {const}", KNOWN, CHOICES))
    got = compile_rule_sides(comparisons, index)(values)
    want: list[int | bool] = []
    for cmp in comparisons:
        want += [cmp.left.value(env), cmp.right.value(env), compile_comparison(cmp, index)(values)]
    assert got == tuple(want)
    assert [type(x) for x in got[2::3]] == [bool] * len(comparisons)


def test_valid_protocol_passes(party_list) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    for _ in range(200):
        lines = kyrgyz_lines(list(party_list.choice_ids), rng.randint(0, 3000), rng)
        counts = counts_vector(party_list, lines)
        assert check_counts(party_list, counts) == []


def test_every_violation_is_listed_with_values(party_list) -> None:  # type: ignore[no-untyped-def]
    lines = kyrgyz_lines(list(party_list.choice_ids), 1000, random.Random(2))
    lines["valid"] += 7  # breaks valid == sum(choices) and boxes == invalid + valid
    counts = counts_vector(party_list, lines)
    with pytest.raises(ProtocolRejected) as info:
        check_counts(party_list, counts)
    failed = {v.rule: v for v in info.value.violations}
    assert {"boxes-equal-invalid-plus-valid", "valid-equals-choices"} <= set(failed)
    v = failed["valid-equals-choices"]
    assert v.left == lines["valid"]
    assert v.right == sum(lines[c] for c in party_list.choice_ids)
    assert v.values["valid"] == lines["valid"] and "ata-jurt" in v.values
    assert 'rule "valid-equals-choices" (valid == sum(choices)) fails' in str(v)


def test_warning_rules_accept_with_a_flag(party_list) -> None:  # type: ignore[no-untyped-def]
    lines = kyrgyz_lines(list(party_list.choice_ids), 1000, random.Random(3))
    lines["ballots_received"] += 1  # ballots-balance is a warning
    warnings = check_counts(party_list, counts_vector(party_list, lines))
    assert [w.rule for w in warnings] == ["ballots-balance"]
    assert warnings[0].severity == "warning"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"valid": -1}, "lines.valid: must be ≥ 0, got -1"),
        ({"valid": 10**20}, "is larger than any station can count"),
        ({"valid": "12"}, "lines.valid: must be a whole number, got '12'"),
        ({"valid": 12.0}, "lines.valid: must be a whole number, got 12.0"),
        ({"valid": True}, "lines.valid: must be a whole number, got True"),
        ({"bogus": 1}, 'lines.bogus: not a line of contest "party-list"'),
    ],
)
def test_bad_lines_are_named(party_list, change: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    lines: dict[str, object] = dict(kyrgyz_lines(list(party_list.choice_ids), 900, random.Random(4)))
    lines.update(change)
    with pytest.raises(ProtocolRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        counts_vector(party_list, lines)


def test_missing_lines_are_each_named(party_list) -> None:  # type: ignore[no-untyped-def]
    lines = kyrgyz_lines(list(party_list.choice_ids), 900, random.Random(5))
    del lines["invalid"], lines["ishenim"]
    with pytest.raises(ProtocolRejected) as info:
        counts_vector(party_list, lines)
    assert {p.line for p in info.value.problems} == {"invalid", "ishenim"}


def test_figure_order_is_enforced_even_without_a_law_rule(party_list) -> None:  # type: ignore[no-untyped-def]
    lines = kyrgyz_lines(list(party_list.choice_ids), 100, random.Random(6))
    # More ballots in the boxes than voters on the lists: stuffing.
    extra = 500
    lines["in_stationary_boxes"] += extra
    lines["valid"] += extra
    lines["ata-jurt"] += extra
    names = {v.rule for v in evaluate_rules(party_list, counts_vector(party_list, lines))}
    assert "order:ballots-cast-le-registered" in names


def test_max_count_is_documented_size() -> None:
    assert MAX_COUNT == 10_000_000


def test_a_renamed_line_is_reported_as_unknown_and_missing(party_list) -> None:  # type: ignore[no-untyped-def]
    lines: dict[str, object] = dict(kyrgyz_lines(list(party_list.choice_ids), 900, random.Random(7)))
    lines["valid_ballots"] = lines.pop("valid")
    with pytest.raises(ProtocolRejected) as info:
        counts_vector(party_list, lines)
    assert {(p.line, p.message) for p in info.value.problems} == {
        ("valid_ballots", 'not a line of contest "party-list"'),
        ("valid", "missing"),
    }

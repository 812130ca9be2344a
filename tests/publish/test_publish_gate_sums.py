"""The gate's column sums of an area's parts (``_line_sums``, summed by ``zip``) equal the sums
made value by value, and every part that is not exactly what the display step writes is left
to the value-by-value sum, so that a malformed record is judged as before."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.publish.gate import _line_sums

LINE_IDS = ["registered", "valid", "invalid", "c0", "c1", "c2"]


def slow(line_ids: list[str], parts: list[dict[str, Any]]) -> list[int]:
    """The sums as ``children_sum`` makes them when ``_line_sums`` declines."""
    total = [0] * len(line_ids)
    for r in parts:
        for i, lid in enumerate(line_ids):
            total[i] += int(r["lines"].get(lid, 0))
    return total


right_part = st.lists(st.integers(0, 10**9), min_size=len(LINE_IDS), max_size=len(LINE_IDS)).map(
    lambda vals: {"lines": dict(zip(LINE_IDS, vals, strict=True))}
)


@st.composite
def wrong_part(draw: st.DrawFn) -> dict[str, Any]:
    """A part whose lines are not exactly the contest's, in order, as ints."""
    lines = dict(draw(right_part)["lines"])
    how = draw(st.sampled_from(["drop", "extra", "reorder", "float", "bool", "text"]))
    lid = draw(st.sampled_from(LINE_IDS))
    if how == "drop":
        del lines[lid]
    elif how == "extra":
        lines["c9"] = draw(st.integers(0, 100))
    elif how == "reorder":
        lines = dict(reversed(list(lines.items())))
    elif how == "float":
        lines[lid] = draw(st.integers(0, 100)) + 0.5
    elif how == "bool":
        lines[lid] = True
    else:
        lines[lid] = str(draw(st.integers(0, 100)))
    return {"lines": lines}


@settings(max_examples=300, deadline=None)
@given(st.lists(right_part, max_size=12))
def test_right_parts_are_summed_by_zip_to_the_same_totals(parts: list[dict[str, Any]]) -> None:
    got = _line_sums(LINE_IDS, parts)
    if not parts:
        assert got is None
        return
    assert got == slow(LINE_IDS, parts)
    assert all(x.__class__ is int for x in got)


@settings(max_examples=300, deadline=None)
@given(st.lists(right_part, max_size=6), wrong_part(), st.lists(right_part, max_size=6))
def test_a_part_not_as_the_display_step_writes_it_is_left_to_the_slow_sum(
    before: list[dict[str, Any]], wrong: dict[str, Any], after: list[dict[str, Any]]
) -> None:
    parts = [*before, wrong, *after]
    got = _line_sums(LINE_IDS, parts)
    lines = wrong["lines"]
    exact_ints = list(lines) == LINE_IDS and all(v.__class__ in (int, bool) for v in lines.values())
    if exact_ints:  # a bool is an int: summed alike both ways
        assert got == slow(LINE_IDS, parts)
    else:
        assert got is None


def test_a_float_is_not_summed_into_a_whole_number_it_is_not() -> None:
    """2.5 + 0.5 is 3.0 by zip, but 2 + 0 value by value: the fast sum must decline."""
    a = {"lines": dict(zip(LINE_IDS, [1, 2.5, 0, 0, 0, 0], strict=True))}
    b = {"lines": dict(zip(LINE_IDS, [1, 0.5, 0, 0, 0, 0], strict=True))}
    assert _line_sums(LINE_IDS, [a, b]) is None
    assert slow(LINE_IDS, [a, b])[1] == 2

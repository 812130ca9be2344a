"""The gate's quick test of a station record (``record_passes``) never lets through a record
that the full check (``check_published_row``) finds wrong, and lets the right ones through."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from publish_support import displayed, make_store

from tallyroom.publish.gate import check_published_row, record_passes
from tallyroom.tally.record import Choice
from tallyroom.tally.report import percent

FIGURES = ("valid", "took_part", "ballots_cast", "registered")


@st.composite
def right_records(draw: st.DrawFn) -> dict[str, Any]:
    """A station record whose numbers add up, as the display step writes it."""
    votes = draw(st.lists(st.integers(0, 400), max_size=6))
    valid = sum(votes) + draw(st.integers(0, 50))
    invalid = draw(st.integers(0, 50))
    cast = valid + invalid
    took = cast + draw(st.integers(0, 20))
    registered = took + draw(st.integers(0, 2000))
    figures = {"valid": valid, "took_part": took, "ballots_cast": cast, "registered": registered}
    fig = draw(st.sampled_from(FIGURES))
    base = figures[fig]
    ids = [f"c{i}" for i in range(len(votes))]
    lines = {"valid": valid, "invalid": invalid, **dict(zip(ids, votes, strict=True))}
    row: dict[str, Any] = {
        "contest": "party-list",
        "station": "ps-1",
        "count_kind": "hand",
        "stations_reporting": 1,
        "stations_expected": 1,
        "registered": registered,
        "took_part": took,
        "ballots_cast": cast,
        "valid": valid,
        "invalid": invalid,
        "turnout_percent": percent(took, registered),
        "percent_base": {"figure": fig, "words": fig, "value": base},
        "choices": [
            Choice(
                against_all=False, id=i, name=i.upper(), percent=percent(v, base), percent_base=fig, votes=v
            )
            for i, v in zip(ids, votes, strict=True)
        ],
        "lines": lines,
    }
    return row


def _mutate(row: dict[str, Any], data: st.DataObject) -> None:
    """One fault, of the kinds a display step could make."""
    choices = row.get("choices") or []
    what = data.draw(
        st.sampled_from(
            [
                "figure",
                "votes",
                "line",
                "percent",
                "base-value",
                "base-figure",
                "missing",
                "reporting",
                "turnout",
                "reporting-percent",
                "dict-choice",
            ]
        )
    )
    value = st.one_of(st.none(), st.integers(-5, 5000), st.just(12.0), st.just("12"), st.just(True))
    if what == "figure":
        row[data.draw(st.sampled_from([*FIGURES, "invalid"]))] = data.draw(value)
    elif what in ("votes", "line", "percent", "dict-choice") and choices:
        i = data.draw(st.integers(0, len(choices) - 1))
        c = choices[i]
        if not isinstance(c, Choice):
            return
        if what == "votes":
            c.votes = data.draw(st.integers(-5, 5000))
        elif what == "line" and "lines" in row:
            row["lines"][c.id] = data.draw(value)
        elif what == "percent" and isinstance(c, Choice):
            c.percent = data.draw(
                st.one_of(st.none(), st.sampled_from(["0.00", "100.00", "33.33", "-1.00", "7.5", "x"]))
            )
        else:
            choices[i] = {f: getattr(c, f) for f in c.__struct_fields__}
    elif what == "base-value" and "percent_base" in row:
        row["percent_base"]["value"] = data.draw(value)
    elif what == "base-figure" and "percent_base" in row:
        row["percent_base"]["figure"] = data.draw(st.sampled_from([*FIGURES, "invalid", "nothing"]))
    elif what == "missing" and row:
        del row[data.draw(st.sampled_from(sorted(row)))]
    elif what == "reporting":
        row[data.draw(st.sampled_from(["stations_reporting", "stations_expected"]))] = data.draw(value)
    elif what == "turnout":
        row["turnout_percent"] = data.draw(st.sampled_from([None, "0.00", "50.00", "100.00"]))
    elif what == "reporting-percent":
        row["stations_reporting_percent"] = data.draw(st.sampled_from([None, "0.00", "100.00"]))


def _full(row: dict[str, Any]) -> list[tuple[str, str]] | None:
    """What the full check finds, None when it cannot read the row at all."""
    try:
        return check_published_row(row)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@settings(max_examples=600, deadline=None)
@given(right_records(), st.data())
def test_a_record_passes_quickly_only_when_the_full_check_finds_nothing(
    row: dict[str, Any], data: st.DataObject
) -> None:
    assert _full(row) == []
    # A base of 0 (nobody voted) gives no shares: left to the full check.
    assert record_passes(row) or row["percent_base"]["value"] == 0, row
    faulty = copy.deepcopy(row)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(faulty, data)
    if record_passes(faulty):
        assert _full(faulty) == [], faulty


def test_every_record_of_a_real_snapshot_takes_the_quick_path(tmp_path: Path) -> None:
    """The quick test is the one that runs on election night: every station record the
    display step makes for the Kyrgyz example passes it (and the full check agrees)."""
    store, _key = make_store(tmp_path, machine=None, hand=None)
    records = list(displayed(store).results.stations.values())
    assert len(records) > 100
    assert all(record_passes(r) for r in records)
    assert all(check_published_row(r) == [] for r in records[:200])

"""The tally: running totals, roll-up, exact percentages, and the invariant checker."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import DATA, kyrgyz_lines
from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import load_definition
from tallyroom.tally.invariants import check_row, check_tally
from tallyroom.tally.report import percent, tally_row
from tallyroom.tally.running import Tally, TallyKey

KINDS = ["machine", "hand"]


@pytest.fixture(scope="module")
def election() -> CompiledElection:
    return compile_election(load_definition((DATA / "small.yaml").read_bytes()))


def _protocols(election: CompiledElection, seed: int) -> list[tuple[int, int, str, list[int]]]:
    rng = random.Random(seed)
    out = []
    for contest in election.contests:
        for s in contest.stations:
            for kind in KINDS:
                if rng.random() < 0.7:
                    lines = kyrgyz_lines(list(contest.choice_ids), election.stations[s].registered, rng)
                    out.append((contest.index, s, kind, [lines[n] for n in contest.line_ids]))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), split=st.integers(0, 40))
def test_batch_and_single_application_agree_and_roll_up(
    election: CompiledElection, seed: int, split: int
) -> None:
    protos = _protocols(election, seed)
    one = Tally(election)
    for c, s, k, counts in protos:
        one.apply(c, s, k, counts)
    batched = Tally(election)
    batched.apply_batch(protos[:split])
    batched.apply_batch(protos[split:])
    assert one.totals == batched.totals
    # Machine and hand counts are never mixed: each key's reporting counts only its kind.
    for kind in KINDS:
        n = sum(1 for c, _, k, _ in protos if k == kind and c == 0)
        got = one.get(0, election.area_index["kg"], kind)
        assert (got.reporting if got else 0) == n
    stations = {(c, s, k): counts for c, s, k, counts in protos}
    assert check_tally(election, one, stations) == []
    # Removing every protocol brings every total back to zero.
    for c, s, k, counts in protos:
        one.apply(c, s, k, counts, sign=-1)
    assert one.nonzero() == {}


def test_the_2021_fault_a_figure_added_twice_is_caught(election: CompiledElection) -> None:
    protos = _protocols(election, 7)
    tally = Tally(election)
    tally.apply_batch(protos)
    stations = {(c, s, k): counts for c, s, k, counts in protos}
    kg = election.area_index["kg"]
    contest = election.contest("party-list")
    key = TallyKey(contest.index, kg, "hand")
    # A display step "adds two positions that should not have been added": the national
    # total gets the Chui figures a second time.
    chui = tally.totals[TallyKey(contest.index, election.area_index["chui"], "hand")]
    bad = tally.totals[key]
    bad.counts = [a + b for a, b in zip(bad.counts, chui.counts, strict=True)]
    failures = check_tally(election, tally, stations)
    assert any(f.invariant == "children-sum-to-parent" and f.area == "kg" for f in failures)
    assert all(f.area == "kg" for f in failures)


def test_shares_over_100_percent_are_caught(election: CompiledElection) -> None:
    contest = election.contest("party-list")
    protos = [p for p in _protocols(election, 8) if p[0] == contest.index and p[2] == "hand"]
    tally = Tally(election)
    tally.apply_batch(protos)
    kg = election.area_index["kg"]
    row = tally_row(election, contest, kg, "hand", tally.get(contest.index, kg, "hand"))
    assert check_row(row) == []
    # Double every party's votes on the page but keep the base: >100% in total.
    from dataclasses import replace

    doubled = replace(
        row,
        choices=tuple(
            replace(c, votes=c.votes * 2, percent=percent(c.votes * 2, row.percent_base_value or 0))
            for c in row.choices
        ),
    )
    names = {f.invariant for f in check_row(doubled)}
    assert "shares-le-100" in names and "shares-sum-le-100" in names
    # A percentage computed on the wrong base (valid instead of took part) is caught too.
    wrong = replace(
        row,
        choices=tuple(replace(c, percent=percent(c.votes, row.valid or 0)) for c in row.choices),
    )
    assert "share-matches-base" in {f.invariant for f in check_row(wrong)}


@given(part=st.integers(0, 10**9), extra=st.integers(1, 10**9), decimals=st.integers(0, 4))
def test_percent_rounds_half_up_exactly(part: int, extra: int, decimals: int) -> None:
    whole = part + extra
    text = percent(part, whole, decimals)
    assert text is not None
    exact = Fraction(part * 100, whole)
    scale = 10**decimals
    expected = (exact * scale + Fraction(1, 2)).__floor__()
    got = int(text.replace(".", ""))
    assert got == expected


def test_percent_known_values() -> None:
    # Ata-Jurt Kyrgyzstan 2021: 222,005 of 1,281,622 voters who took part = 17.32%.
    assert percent(222_005, 1_281_622) == "17.32"
    assert percent(1, 8) == "12.50"
    assert percent(1, 800) == "0.13"  # 0.125 rounds half up
    assert percent(0, 0) is None


def test_row_states_its_base(election: CompiledElection) -> None:
    contest = election.contest("party-list")
    protos = [p for p in _protocols(election, 9) if p[0] == contest.index]
    tally = Tally(election)
    tally.apply_batch(protos)
    kg = election.area_index["kg"]
    d = tally_row(election, contest, kg, "hand", tally.get(contest.index, kg, "hand")).to_dict()
    assert d["percent_base"]["figure"] == "took_part"
    assert d["percent_base"]["words"] == "voters who took part"
    took_part = d["lines"]["issued_early"] + d["lines"]["issued_station"] + d["lines"]["issued_outside"]
    assert d["percent_base"]["value"] == d["took_part"] == took_part
    for c in d["choices"]:
        assert c["percent"] == percent(c["votes"], took_part)

"""Reconciliation of machine vs hand counts: injected differences are found exactly."""

from __future__ import annotations

import random
from collections.abc import Mapping
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.audit.assertions import pairwise_assertions, threshold_assertions
from tallyroom.audit.macro import ReportedBatch, contest_margins
from tallyroom.audit.reconcile import (
    AbsoluteDifference,
    AnyDifference,
    OutcomeAtRisk,
    RecountRule,
    RelativeDifference,
    SeatChange,
    StationCounts,
    compare_station,
    difference_histogram,
    reconcile,
    summarize_by_region,
)

PARTIES = ["Ata", "Ish", "Ynt", "All", "But"]
LINES = ["registered", "took_part", "invalid", *PARTIES]
REGIONS = ["Batken", "Chui", "Osh"]


def simulated_election(rng: random.Random, n: int) -> list[StationCounts]:
    stations = []
    for i in range(n):
        registered = rng.randint(800, 2000)
        took = rng.randint(registered // 4, registered // 2)
        invalid = rng.randint(0, took // 20)
        valid = took - invalid
        weights = [rng.random() + 0.2 for _ in PARTIES]
        votes = [int(valid * w / sum(weights)) for w in weights]
        votes[0] += valid - sum(votes)
        lines = {"registered": registered, "took_part": took, "invalid": invalid}
        lines |= dict(zip(PARTIES, votes, strict=True))
        stations.append(StationCounts(f"st-{i:04d}", lines))
    return stations


def inject(
    machine: list[StationCounts], rng: random.Random, how_many: int
) -> tuple[list[StationCounts], dict[str, dict[str, int]]]:
    """Hand counts equal to the machine counts except in ``how_many`` stations."""
    chosen = rng.sample(range(len(machine)), how_many)
    injected: dict[str, dict[str, int]] = {}
    hand = []
    for i, m in enumerate(machine):
        lines = dict(m.lines)
        if i in chosen:
            changes: dict[str, int] = {}
            for line in rng.sample(LINES, rng.randint(1, 3)):
                delta = rng.choice([-1, 1]) * rng.randint(1, 40)
                delta = max(delta, -lines[line])
                if delta == 0:
                    delta = 1
                lines[line] += delta
                changes[line] = delta
            injected[m.station_id] = changes
        hand.append(StationCounts(m.station_id, lines))
    return hand, injected


def test_injected_differences_are_found_exactly() -> None:
    rng = random.Random(2021)
    machine = simulated_election(rng, 400)
    hand, injected = inject(machine, rng, 25)
    result = reconcile(machine, hand, rules=[AnyDifference()])
    found = {s.station_id: set(s.differing_lines()) for s in result.flagged()}
    assert found == {sid: set(changes) for sid, changes in injected.items()}
    for s in result.stations:
        for d in s.differences:
            assert d.difference == injected.get(s.station_id, {}).get(d.line, 0)
            assert d.hand - d.machine == d.difference
    assert {s.station_id for s in result.differing()} == set(injected)
    assert result.machine_only == () and result.hand_only == ()


def test_overstatement_of_winner_loser_margins() -> None:
    machine = StationCounts("s1", {"A": 120, "B": 80, "C": 10, "took_part": 220})
    hand = StationCounts("s1", {"A": 110, "B": 85, "C": 10, "took_part": 220})
    assertions = pairwise_assertions("c", {"A": 1000, "B": 900, "C": 50}, ["A"])
    station = compare_station(machine, hand, assertions)
    over = {o.assertion: o.overstatement for o in station.overstatements}
    # A - B: machine 40, hand 25 → overstated by 15; A - C: machine 110, hand 100 → 10
    assert over == {"c: A > B": 15, "c: A > C": 10}
    rel = {d.line: d.relative for d in station.differences}
    assert rel["A"] == Fraction(-10, 120)
    assert rel["B"] == Fraction(5, 80)
    assert rel["C"] == 0


def test_threshold_rules_on_named_lines() -> None:
    machine = [
        StationCounts("s1", {"A": 100, "B": 50}),
        StationCounts("s2", {"A": 100, "B": 50}),
        StationCounts("s3", {"A": 0, "B": 50}),
    ]
    hand = [
        StationCounts("s1", {"A": 104, "B": 50}),  # +4 on A: 4%
        StationCounts("s2", {"A": 106, "B": 50}),  # +6 on A: 6%
        StationCounts("s3", {"A": 1, "B": 50}),  # machine 0 → relative ∞
    ]
    result = reconcile(
        machine,
        hand,
        rules=[AbsoluteDifference("A", 5), RelativeDifference("A", Fraction(5, 100))],
    )
    flags = {s.station_id: sorted(f.rule for f in s.flags) for s in result.stations}
    assert flags == {
        "s1": [],
        "s2": ["absolute_difference", "relative_difference"],
        "s3": ["relative_difference"],
    }
    s3 = result.stations[2]
    assert "∞" in s3.flags[0].detail
    assert s3.differences[0].relative is None


def test_outcome_at_risk_rule() -> None:
    # national totals: A 10,000, B 9,950 → margin 50; X at 5.02% of 100,000 took part
    totals = {"A": 10_000, "B": 9_950, "X": 5_020, "took_part": 100_000}
    reported = [ReportedBatch("nation", 100_000, totals)]
    pairs = pairwise_assertions("c", {"A": 10_000, "B": 9_950}, ["A"])
    thresholds = threshold_assertions(
        "list", totals, ["X"], Fraction(5, 100), base_line="took_part"
    )
    assertions = pairs + thresholds
    margins = contest_margins(assertions, reported)
    assert margins == {"c: A > B": 50, "list: X passed 5%": 20}
    rule = OutcomeAtRisk(assertions, margins)
    small = compare_station(
        StationCounts("s1", {"A": 300, "B": 200, "X": 40, "took_part": 600}),
        StationCounts("s1", {"A": 290, "B": 210, "X": 39, "took_part": 600}),
        rules=[rule],
    )
    assert small.flags == ()  # overstatements 20 < 50 and 1 < 20
    big = compare_station(
        StationCounts("s2", {"A": 300, "B": 200, "X": 40, "took_part": 600}),
        StationCounts("s2", {"A": 270, "B": 230, "X": 15, "took_part": 600}),
        rules=[rule],
    )
    assert sorted(f.assertion or "" for f in big.flags) == ["c: A > B", "list: X passed 5%"]
    # understatements never flag
    helpful = compare_station(
        StationCounts("s3", {"A": 300, "B": 200, "X": 40, "took_part": 600}),
        StationCounts("s3", {"A": 400, "B": 100, "X": 90, "took_part": 600}),
        rules=[rule],
    )
    assert helpful.flags == ()


def largest_remainder(votes: Mapping[str, int], seats: int) -> dict[str, int]:
    total = sum(votes.values())
    quotas = {p: Fraction(v * seats, total) for p, v in votes.items()}
    out = {p: int(q) for p, q in quotas.items()}
    rest = seats - sum(out.values())
    for p in sorted(votes, key=lambda p: (-(quotas[p] - out[p]), p))[:rest]:
        out[p] += 1
    return out


def test_seat_change_rule() -> None:
    totals = {"A": 5_400, "B": 3_350, "C": 1_250}  # 10 seats: quotas 5.4, 3.35, 1.25
    assert largest_remainder(totals, 10) == {"A": 6, "B": 3, "C": 1}
    rule = SeatChange(totals, 10, largest_remainder)
    quiet = compare_station(
        StationCounts("s", {"A": 100, "B": 50, "C": 10}),
        StationCounts("s", {"A": 99, "B": 51, "C": 10}),
        rules=[rule],
    )
    assert quiet.flags == ()
    # hand count moves 60 votes from A to B at this station: A 5.34, B 3.41 → B takes the seat
    loud = compare_station(
        StationCounts("s", {"A": 100, "B": 50, "C": 10}),
        StationCounts("s", {"A": 40, "B": 110, "C": 10}),
        rules=[rule],
    )
    assert len(loud.flags) == 1
    assert "A 6→5" in loud.flags[0].detail and "B 3→4" in loud.flags[0].detail


def test_missing_lines_and_unmatched_stations() -> None:
    machine = [StationCounts("s1", {"A": 5, "B": 3}), StationCounts("s2", {"A": 1})]
    hand = [StationCounts("s1", {"A": 5, "C": 0}), StationCounts("s3", {"A": 2})]
    result = reconcile(machine, hand, rules=[AnyDifference()])
    assert result.machine_only == ("s2",)
    assert result.hand_only == ("s3",)
    s1 = result.stations[0]
    assert s1.missing_in_hand == ("B",)
    assert s1.missing_in_machine == ("C",)
    assert set(s1.differing_lines()) == {"B", "C"}
    assert {f.line for f in s1.flags} == {"B", "C"}


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        reconcile([StationCounts("a", {}), StationCounts("a", {})], [])
    with pytest.raises(ValueError, match="twice"):
        reconcile([], [StationCounts("a", {}), StationCounts("a", {})])
    with pytest.raises(ValueError, match="negative"):
        compare_station(StationCounts("a", {"A": -1}), StationCounts("a", {"A": 1}))
    with pytest.raises(ValueError, match="differ"):
        compare_station(StationCounts("a", {}), StationCounts("b", {}))


def test_region_summary_and_histogram() -> None:
    rng = random.Random(7)
    machine = simulated_election(rng, 90)
    hand, injected = inject(machine, rng, 12)
    region_of = {m.station_id: REGIONS[i % 3] for i, m in enumerate(machine)}
    assertions = pairwise_assertions(
        "c", {p: 1000 - 10 * i for i, p in enumerate(PARTIES)}, ["Ata"]
    )
    result = reconcile(machine, hand, assertions=assertions, rules=[AnyDifference()])
    summary = summarize_by_region(result, region_of)
    assert [r.region for r in summary] == REGIONS
    assert sum(r.stations for r in summary) == 90
    for r in summary:
        members = [sid for sid, reg in region_of.items() if reg == r.region]
        assert r.stations == 30
        assert r.stations_differing == sum(1 for sid in members if sid in injected)
        assert r.stations_flagged == r.stations_differing
        for line in LINES:
            expected = sum(injected.get(sid, {}).get(line, 0) for sid in members)
            assert r.net_difference[line] == expected
            assert r.absolute_difference[line] == sum(
                abs(injected.get(sid, {}).get(line, 0)) for sid in members
            )
        # overstatement of "Ata > Ish" = -(Δ Ata - Δ Ish) summed over the region
        expected_over = -sum(
            injected.get(sid, {}).get("Ata", 0) - injected.get(sid, {}).get("Ish", 0)
            for sid in members
        )
        assert r.overstatement["c: Ata > Ish"] == expected_over

    hist = difference_histogram(result, "took_part", bin_width=10)
    assert sum(b.count for b in hist) == 90
    assert all(b.high - b.low == 10 for b in hist)
    assert [b.low for b in hist] == list(range(hist[0].low, hist[-1].high, 10))
    zero_bin = next(b for b in hist if b.low == 0)
    changed = [c["took_part"] for c in injected.values() if "took_part" in c]
    assert zero_bin.count == 90 - len(changed) + sum(1 for d in changed if 0 <= d < 10)
    with pytest.raises(ValueError):
        difference_histogram(result, "took_part", bin_width=0)
    assert difference_histogram(result, "no such line") == ()


counts = st.dictionaries(
    st.sampled_from(LINES), st.integers(min_value=0, max_value=10**6), min_size=1
)


@settings(max_examples=200, deadline=None)
@given(st.lists(counts, min_size=1, max_size=8))
def test_identical_counts_raise_no_flags(station_lines: list[dict[str, int]]) -> None:
    machine = [StationCounts(f"s{i}", lines) for i, lines in enumerate(station_lines)]
    hand = [StationCounts(f"s{i}", dict(lines)) for i, lines in enumerate(station_lines)]
    assertions = pairwise_assertions("c", {p: 100 - i for i, p in enumerate(PARTIES)}, ["Ata"])
    assertions += threshold_assertions(
        "list",
        {"took_part": 1000, "Ata": 60, "Ish": 40},
        ["Ata", "Ish"],
        Fraction(5, 100),
        base_line="took_part",
    )
    rules: list[RecountRule] = [
        AnyDifference(),
        AbsoluteDifference("took_part", 0),
        RelativeDifference("Ata", Fraction(0)),
        OutcomeAtRisk(assertions, {a.name: Fraction(1) for a in assertions}, Fraction(0)),
    ]
    result = reconcile(machine, hand, assertions=assertions, rules=rules)
    assert result.flagged() == ()
    assert result.differing() == ()
    for s in result.stations:
        assert all(o.overstatement == 0 for o in s.overstatements)
        assert all(d.difference == 0 and d.relative == 0 for d in s.differences)

"""MACRO batch-comparison audits: error bounds, taints, P-values, state, Monte Carlo risk."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallyroom.audit.assertions import (
    AuditImpossibleError,
    LinearAssertion,
    pairwise_assertions,
    threshold_assertions,
)
from tallyroom.audit.macro import (
    AuditedBatch,
    BatchBound,
    MacroAudit,
    ReportedBatch,
    batch_error_bound,
    batch_relative_overstatement,
    contest_margins,
    kaplan_markov_p_values,
    macro_sample_size,
    ppeb_weights,
    taint,
)

# --- error bounds (Stark 2008) ----------------------------------------------------------------
# The three-contest example of Arlo's server/tests/audit_math/test_macro.py::test_max_error:
# 400 batches (200 of 400 ballots, 200 "AV" of 200), contest A in all, B in 200, C in 120.


def arlo_batches() -> list[ReportedBatch]:
    out = []
    for i in range(200):
        big: dict[str, int] = {"A:w": 200, "A:l": 180}
        small: dict[str, int] = {"A:w": 100, "A:l": 90}
        if i < 100:
            big |= {"B:w": 200, "B:l": 160}
            small |= {"B:w": 100, "B:l": 80}
        if i < 30 or 100 <= i < 130:
            big |= {"C:w": 200, "C:l": 140}
            small |= {"C:w": 100, "C:l": 70}
        out.append(ReportedBatch(f"Batch {i}", 400, big))
        out.append(ReportedBatch(f"Batch {i} AV", 200, small))
    return out


def contest_assertions(name: str) -> tuple[LinearAssertion, ...]:
    totals = {"A": (60000, 54000), "B": (30000, 24000), "C": (18000, 12600)}[name]
    return pairwise_assertions(
        name, {f"{name}:w": totals[0], f"{name}:l": totals[1]}, [f"{name}:w"]
    )


def test_arlo_max_error_per_contest() -> None:
    batches = arlo_batches()
    by_id = {b.batch_id: b for b in batches}
    for name, big, small, where in [
        ("A", Fraction(7, 100), Fraction(35, 1000), range(200)),
        ("B", Fraction(440, 6000), Fraction(220, 6000), range(100)),
        ("C", Fraction(460, 5400), Fraction(230, 5400), [*range(30), *range(100, 130)]),
    ]:
        assertions = contest_assertions(name)
        margins = contest_margins(assertions, batches)
        for i in where:
            assert batch_error_bound(assertions, margins, by_id[f"Batch {i}"]) == big
            assert batch_error_bound(assertions, margins, by_id[f"Batch {i} AV"]) == small
    # Arlo's rounded expectations: 0.0700, 0.0733, 0.0852 and halves
    assert round(float(Fraction(440, 6000)), 4) == 0.0733
    assert round(float(Fraction(460, 5400)), 4) == 0.0852


def test_across_contest_bound_is_the_maximum() -> None:
    batches = arlo_batches()
    assertions = contest_assertions("A") + contest_assertions("B") + contest_assertions("C")
    margins = contest_margins(assertions, batches)
    by_id = {b.batch_id: b for b in batches}
    # a batch in all three contests: max(0.07, 0.0733, 0.0852)
    assert batch_error_bound(assertions, margins, by_id["Batch 0"]) == Fraction(460, 5400)
    # a batch in A and B only
    assert batch_error_bound(assertions, margins, by_id["Batch 50"]) == Fraction(440, 6000)
    # a batch in A only
    assert batch_error_bound(assertions, margins, by_id["Batch 150"]) == Fraction(7, 100)


def test_initial_sample_size_and_p_value_by_hand() -> None:
    # Contest A alone: U = 200·0.07 + 200·0.035 = 21. At α = 25%,
    # n = ⌈ln 0.25 / ln(20/21)⌉ = ⌈28.41⌉ = 29, and 29 clean draws give P = (20/21)^29.
    batches = arlo_batches()
    audit = MacroAudit.start(Fraction(1, 4), "seed", contest_assertions("A"), batches)
    assert audit.total_error_bound() == 21
    assert audit.initial_sample_size() == 29
    assert macro_sample_size(Fraction(21), 0.25) == 29
    p = kaplan_markov_p_values([Fraction(0)] * 29, Fraction(21))
    assert p[-1] == Fraction(20, 21) ** 29
    assert p[-2] is not None and p[-2] > Fraction(1, 4) >= p[-1]

    # Arlo's test_compute_risk batches 100..105: winner 190, loser 190 instead of 200/180.
    # ω = 20 votes, e = 20/6000, u = 0.07 → taint = 1/21, so the factor is exactly 1.
    reported = {b.batch_id: b for b in batches}["Batch 100"]
    audited = AuditedBatch("Batch 100", {"A:w": 190, "A:l": 190})
    assertions = contest_assertions("A")
    margins = contest_margins(assertions, batches)
    e = batch_relative_overstatement(assertions, margins, reported, audited)
    assert e == Fraction(20, 6000)
    assert taint(e, Fraction(7, 100)) == Fraction(1, 21)


def test_kaplan_markov_taint_one_blows_up() -> None:
    assert kaplan_markov_p_values([Fraction(0), Fraction(1), Fraction(0)], Fraction(10)) == [
        Fraction(9, 10),
        None,
        None,
    ]
    # understatement counts as zero
    assert taint(Fraction(-1, 100), Fraction(1, 10)) == 0


def test_sample_size_with_expected_taint_and_prior_p() -> None:
    u = Fraction(21)
    assert macro_sample_size(u, 0.25, p_value=Fraction(1, 5)) == 0
    n0 = macro_sample_size(u, 0.25)
    assert macro_sample_size(u, 0.25, expected_taint=Fraction(1, 50)) > n0
    with pytest.raises(ValueError, match="does not fall"):
        macro_sample_size(u, 0.25, expected_taint=Fraction(1, 21))


# --- threshold assertions ------------------------------------------------------------------


def test_threshold_assertion_bounds() -> None:
    # base = voters who took part; X passed 5%: margin v_X - t·B; bound of a batch whose
    # base equals its ballots is v_X (all of X's votes could be fake).
    batches = [
        ReportedBatch("s1", 100, {"took_part": 100, "X": 10, "Y": 90}),
        ReportedBatch("s2", 200, {"took_part": 200, "X": 5, "Y": 195}),
    ]
    totals = {"took_part": 300, "X": 15, "Y": 285}
    passed, _ = threshold_assertions(
        "list", totals, ["X", "Y"], Fraction(1, 25), base_line="took_part"
    )
    assert passed.kind == "threshold_passed"
    margins = contest_margins([passed], batches)
    assert margins[passed.name] == 15 - Fraction(1, 25) * 300  # 3 votes
    assert passed.max_overstatement(batches[0].lines, 100) == 10
    assert batch_error_bound([passed], margins, batches[0]) == Fraction(10, 3)
    # failed assertion for a party under the threshold (4% of 300 = 12 > 11)
    failed = threshold_assertions(
        "list", {"took_part": 300, "X": 11}, ["X"], Fraction(1, 25), base_line="took_part"
    )[0]
    assert failed.kind == "threshold_failed"
    assert failed.margin({"took_part": 300, "X": 11}) == 1
    # hand count finds X had 2 more votes in a batch: the "failed" margin is overstated by 2
    assert failed.overstatement({"took_part": 100, "X": 4}, {"X": 6}) == 2


def test_threshold_on_valid_votes_folds_base_into_terms() -> None:
    totals = {"X": 6, "Y": 94}
    (x, _) = threshold_assertions("c", totals, ["X", "Y"], Fraction(1, 20))
    assert x.margin(totals) == 6 - Fraction(1, 20) * 100
    assert x.terms == {"X": Fraction(19, 20), "Y": Fraction(-1, 20)}


def test_tie_or_wrong_assertion_is_impossible_to_audit() -> None:
    batches = [ReportedBatch("s", 10, {"A": 5, "B": 5})]
    with pytest.raises(AuditImpossibleError, match="by hand"):
        MacroAudit.start(0.1, "s", pairwise_assertions("c", {"A": 5, "B": 5}, ["A"]), batches)


# --- audit state ----------------------------------------------------------------------------


def small_election() -> tuple[list[ReportedBatch], tuple[LinearAssertion, ...]]:
    rng = random.Random(3)
    batches = []
    for i in range(60):
        ballots = rng.randint(300, 500)
        a = int(ballots * 0.55)
        b = int(ballots * 0.35)
        batches.append(ReportedBatch(f"st-{i:02d}", ballots, {"A": a, "B": b}))
    totals = {"A": sum(b.lines["A"] for b in batches), "B": sum(b.lines["B"] for b in batches)}
    return batches, pairwise_assertions("c", totals, ["A"])


def test_audit_state_machine() -> None:
    batches, assertions = small_election()
    audit = MacroAudit.start(Fraction(1, 10), "public dice 4 8 1 5", assertions, batches)
    n = audit.initial_sample_size()
    audit = audit.draw_round(n)
    status = audit.status()
    assert status.status == "awaiting_counts"
    assert set(status.pending) == {d.batch_id for d in audit.draws()}
    reported = {b.batch_id: b for b in batches}
    # counts for the first pending batch only: still waiting for the rest
    first = audit.draws()[0].batch_id
    audit = audit.record([AuditedBatch(first, dict(reported[first].lines))])
    assert audit.status().status == "awaiting_counts"
    audit = audit.record([AuditedBatch(b, dict(reported[b].lines)) for b in audit.status().pending])
    status = audit.status()
    assert status.status == "confirmed"
    assert status.p_value is not None and status.p_value <= Fraction(1, 10)
    assert all(r.taint == 0 for r in status.counted_draws)
    # idempotent re-record; conflicting re-record refused
    assert audit.record([AuditedBatch(first, dict(reported[first].lines))]) == audit
    with pytest.raises(ValueError, match="different hand count"):
        audit.record([AuditedBatch(first, {"A": 0, "B": 0})])
    with pytest.raises(ValueError, match="unknown batch"):
        audit.record([AuditedBatch("nope", {})])
    with pytest.raises(ValueError, match="unknown lines"):
        audit.record([AuditedBatch(first, {"Z": 1})])


def test_audit_escalates_on_taint_one_and_full_count_decides() -> None:
    batches, assertions = small_election()
    audit = MacroAudit.start(Fraction(1, 10), "seed", assertions, batches).draw_round(5)
    reported = {b.batch_id: b for b in batches}
    worst = []
    for d in audit.draws():
        # the whole batch really voted for the loser: overstatement = its full bound
        worst.append(AuditedBatch(d.batch_id, {"A": 0, "B": reported[d.batch_id].ballots}))
    audit = audit.record(worst)
    assert audit.status().status == "full_hand_count"
    # complete the hand count with everything as reported except the audited batches
    rest = [
        AuditedBatch(b.batch_id, dict(b.lines))
        for b in batches
        if b.batch_id not in {a.batch_id for a in audit.audited}
    ]
    done = audit.record(rest).status()
    assert done.status == "hand_count_complete"
    flipped = {a.batch_id for a in audit.audited}
    margin_after = sum(
        (0 - b.ballots) if b.batch_id in flipped else b.lines["A"] - b.lines["B"] for b in batches
    )
    assert done.outcome_holds is (margin_after > 0)


def test_audit_continue_gives_next_round_size() -> None:
    batches, assertions = small_election()
    audit = MacroAudit.start(Fraction(1, 10), "seed-2", assertions, batches).draw_round(4)
    reported = {b.batch_id: b for b in batches}
    audit = audit.record([AuditedBatch(b, dict(reported[b].lines)) for b in audit.status().pending])
    status = audit.status()
    assert status.status == "continue"
    assert status.next_round_size is not None
    assert status.p_value is not None
    u = status.total_error_bound
    assert status.p_value == (1 - 1 / u) ** 4
    assert status.next_round_size == macro_sample_size(u, 0.1, p_value=status.p_value)
    extended = audit.draw_round(status.next_round_size)
    assert [d.draw for d in extended.draws()] == list(range(1, 5 + status.next_round_size))


def test_macro_json_round_trip() -> None:
    batches, assertions = small_election()
    audit = MacroAudit.start(Fraction(1, 10), "seed", assertions, batches).draw_round(3)
    data = audit.to_json()
    again = MacroAudit.from_json(data)
    assert again == audit
    assert again.to_json() == data
    assert again.status() == audit.status()
    # the stored PPEB weights are checked against the reported counts
    first = audit.bounds[0]
    doubled = BatchBound(first.batch_id, first.error_bound * 2, first.weight * 2)
    tampered = msgspec.structs.replace(audit, bounds=(doubled, *audit.bounds[1:]))
    with pytest.raises(ValueError, match="do not match"):
        MacroAudit.from_json(tampered.to_json())


def test_ppeb_weights_round_up() -> None:
    batches, assertions = small_election()
    margins = contest_margins(assertions, batches)
    for bound, batch in zip(ppeb_weights(assertions, batches, 1000), batches, strict=True):
        exact = batch_error_bound(assertions, margins, batch)
        assert exact <= bound.error_bound < exact + Fraction(1, 1000)
        assert bound.error_bound == Fraction(bound.weight, 1000)


# --- Monte Carlo --------------------------------------------------------------------------


def run_audit(
    reported: Sequence[ReportedBatch],
    truth: dict[str, dict[str, int]],
    assertions: Sequence[LinearAssertion],
    alpha: Fraction,
    seed: str,
    max_rounds: int = 6,
) -> str:
    """Run rounds until the audit ends; hand counts come from ``truth``."""
    audit = MacroAudit.start(alpha, seed, assertions, reported)
    size = audit.initial_sample_size()
    for _ in range(max_rounds):
        audit = audit.draw_round(size)
        pending = audit.status().pending
        audit = audit.record([AuditedBatch(b, truth[b]) for b in pending])
        status = audit.status()
        if status.status != "continue":
            return status.status
        assert status.next_round_size is not None
        size = status.next_round_size
    return "full_hand_count"


def election(rng: random.Random, n: int) -> list[ReportedBatch]:
    out = []
    for i in range(n):
        ballots = rng.randint(300, 600)
        a = rng.randint(int(ballots * 0.44), int(ballots * 0.48))
        b = rng.randint(int(ballots * 0.38), int(ballots * 0.42))
        x = rng.randint(int(ballots * 0.04), int(ballots * 0.08))
        out.append(
            ReportedBatch(f"st-{i:03d}", ballots, {"took_part": ballots, "A": a, "B": b, "X": x})
        )
    return out


def totals(batches: Sequence[ReportedBatch]) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in batches:
        for k, v in b.lines.items():
            out[k] = out.get(k, 0) + v
    return out


TRIALS = 400


def slack(alpha: float, trials: int) -> float:
    """Three binomial standard deviations: exceeded by luck with probability below 0.2%."""
    return 3 * math.sqrt(alpha * (1 - alpha) / trials)


def falsify_whole_batches(
    reported: list[ReportedBatch], overstate: dict[str, int], need: int, rng: random.Random
) -> dict[str, dict[str, int]]:
    """Truth in which randomly chosen batches were wholly falsified, until the outcome flips.

    ``overstate`` maps each batch to the truth that realises its full error bound; batches are
    falsified until the summed overstatement reaches ``need`` (the reported margin), so the
    reported outcome is wrong. Every falsified batch has taint exactly 1 and every other
    batch taint 0: for the Kaplan–Markov bound this is the hardest wrong outcome to catch
    (confirming needs n clean draws, probability ≈ (1 - 1/U)^n ≈ α).
    """
    truth = {b.batch_id: dict(b.lines) for b in reported}
    order = list(range(len(reported)))
    rng.shuffle(order)
    done = 0
    for i in order:
        if done >= need:
            break
        b = reported[i]
        truth[b.batch_id] = overstate_batch(b, overstate)
        done += overstate[b.batch_id]
    return truth


def overstate_batch(b: ReportedBatch, how: dict[str, int]) -> dict[str, int]:
    # for pairwise A > B the worst truth is every ballot for B; for "X passed" X had none
    if "pairwise" in how:
        return {**b.lines, "A": 0, "B": b.ballots, "X": 0}
    return {**b.lines, "X": 0}


@pytest.mark.slow
def test_monte_carlo_wrong_winner_worst_case_confirms_at_most_alpha() -> None:
    rng = random.Random("macro-worst-case")
    reported = election(rng, 100)
    rt = totals(reported)
    assertions = pairwise_assertions("c", {"A": rt["A"], "B": rt["B"], "X": rt["X"]}, ["A"])
    margin = rt["A"] - rt["B"]
    how = {b.batch_id: b.lines["A"] - b.lines["B"] + b.ballots for b in reported}
    how["pairwise"] = 1
    alpha = Fraction(1, 10)
    confirmed = 0
    for i in range(TRIALS):
        truth = falsify_whole_batches(reported, how, margin, rng)
        tt = totals([ReportedBatch(k, 0, v) for k, v in truth.items()])
        assert tt["A"] <= tt["B"]  # the reported winner did not win
        confirmed += run_audit(reported, truth, assertions, alpha, f"w-{i}") == "confirmed"
    rate = confirmed / TRIALS
    assert rate <= 0.1 + slack(0.1, TRIALS), rate


@pytest.mark.slow
def test_monte_carlo_wrong_threshold_worst_case_confirms_at_most_alpha() -> None:
    rng = random.Random("threshold-worst-case")
    reported = election(rng, 100)
    rt = totals(reported)
    assertions = threshold_assertions("list", rt, ["X"], Fraction(5, 100), base_line="took_part")
    assert assertions[0].kind == "threshold_passed"
    margin = math.floor(rt["X"] - Fraction(5, 100) * rt["took_part"]) + 1
    how = {b.batch_id: b.lines["X"] for b in reported}
    confirmed = 0
    for i in range(TRIALS):
        truth = falsify_whole_batches(reported, how, margin, rng)
        tx = sum(v["X"] for v in truth.values())
        assert tx < Fraction(5, 100) * rt["took_part"]  # X truly failed the threshold
        run = run_audit(reported, truth, assertions, Fraction(1, 10), f"t-{i}")
        confirmed += run == "confirmed"
    assert confirmed / TRIALS <= 0.1 + slack(0.1, TRIALS)


@pytest.mark.slow
def test_monte_carlo_thinly_spread_errors_are_caught() -> None:
    """A wrong winner made by shifting a few votes in every station: taints add up."""
    rng = random.Random("spread")
    reported = election(rng, 100)
    rt = totals(reported)
    margin = rt["A"] - rt["B"]
    per = math.ceil((margin + 1) / 2 / 100)
    truth = {
        b.batch_id: {**b.lines, "A": b.lines["A"] - per, "B": b.lines["B"] + per} for b in reported
    }
    tt = totals([ReportedBatch(k, 0, v) for k, v in truth.items()])
    assert tt["A"] < tt["B"]
    assertions = pairwise_assertions("c", {"A": rt["A"], "B": rt["B"]}, ["A"])
    outcomes = [
        run_audit(reported, truth, assertions, Fraction(1, 10), f"s-{i}") for i in range(100)
    ]
    assert outcomes.count("confirmed") <= 10 + 3 * 3


def test_monte_carlo_correct_outcome_confirms() -> None:
    rng = random.Random("honest")
    batches = election(rng, 120)
    truth = {}
    for b in batches:
        lines = dict(b.lines)
        if rng.random() < 0.2:  # small honest errors both ways in a fifth of the stations
            lines["A"] = max(0, lines["A"] + rng.choice([-2, -1, 1, 2]))
        truth[b.batch_id] = lines
    rt = totals(batches)
    assertions = pairwise_assertions("c", {"A": rt["A"], "B": rt["B"], "X": rt["X"]}, ["A"])
    outcomes = [
        run_audit(batches, truth, assertions, Fraction(1, 10), f"honest-{i}") for i in range(40)
    ]
    assert outcomes.count("confirmed") >= 38


# --- margins in integers ------------------------------------------------------------------------

_LINES = ("a", "b", "c", "took_part")
_COEF = st.fractions(min_value=-3, max_value=3, max_denominator=40)


@given(
    st.dictionaries(st.sampled_from(_LINES[:3]), _COEF, min_size=1),
    st.sampled_from([None, "took_part", "a"]),
    _COEF,
    st.dictionaries(st.sampled_from(_LINES), st.integers(0, 10**6)),
    st.dictionaries(st.sampled_from(_LINES), st.integers(0, 10**6)),
)
def test_margins_are_the_exact_sums_of_their_terms(
    terms: dict[str, Fraction],
    base_line: str | None,
    base_coefficient: Fraction,
    reported: dict[str, int],
    audited: dict[str, int],
) -> None:
    """Stark 2008: margin = Σ terms[c]·lines[c] + base_coefficient·lines[base_line], exactly;
    the overstatement is the reported margin minus the audited one (a base line the audit
    did not count is taken as reported)."""
    a = LinearAssertion("x", "c", terms, base_line=base_line, base_coefficient=base_coefficient)

    def margin(lines: dict[str, int]) -> Fraction:
        total = sum((coef * lines.get(line, 0) for line, coef in terms.items()), Fraction(0))
        if base_line is not None:
            total += base_coefficient * lines.get(base_line, 0)
        return total

    for _ in range(2):  # the second time from the assertion's cached integer coefficients
        assert a.margin(reported) == margin(reported)
        recounted = dict(audited)
        if base_line is not None and base_line not in recounted:
            recounted[base_line] = reported.get(base_line, 0)
        assert a.overstatement(reported, audited) == margin(reported) - margin(recounted)

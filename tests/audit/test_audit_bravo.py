"""BRAVO: published ASN numbers, exact stopping probabilities, audit state, Monte Carlo risk."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from tallyroom.audit.assertions import AuditImpossibleError
from tallyroom.audit.bravo import (
    BravoAudit,
    BravoContest,
    BravoPair,
    as_risk_limit,
    bravo_asn,
    bravo_sample_size,
    contest_asn,
    pair_test,
    stopping_probability,
)

# Lindeman, Stark & Yates 2012, "BRAVO: Ballot-polling Risk-limiting Audits to Verify
# Outcomes", Table 1 (ASN for two candidates, N = 10,000 ballots); the same numbers are
# produced by Arlo's bravo.get_expected_sample_sizes, which rounds up.
ASN_TABLE = [
    (Fraction(10, 100), 9000, 8),
    (Fraction(10, 100), 8000, 14),
    (Fraction(10, 100), 7000, 31),
    (Fraction(10, 100), 6000, 119),
    (Fraction(10, 100), 5500, 470),
    (Fraction(5, 100), 9000, 9),
    (Fraction(5, 100), 8000, 17),
    (Fraction(5, 100), 7000, 39),
    (Fraction(5, 100), 6000, 154),
    (Fraction(5, 100), 5500, 608),
]


@pytest.mark.parametrize(("alpha", "winner", "asn"), ASN_TABLE)
def test_asn_table(alpha: Fraction, winner: int, asn: int) -> None:
    assert bravo_asn(winner, 10_000 - winner, 10_000, alpha) == asn
    assert bravo_asn(winner, 10_000 - winner, 10_000, float(alpha)) == asn


def test_asn_is_the_papers_formula_rounded_up() -> None:
    # (ln(1/α) + z_w/2) / (p_w z_w + p_l z_l) for 6000/4000: 118.88 → 119
    z_w, z_l = math.log(1.2), math.log(0.8)
    raw = (math.log(10) + z_w / 2) / (0.6 * z_w + 0.4 * z_l)
    assert 118.8 < raw < 118.9
    assert bravo_asn(6000, 4000, 10_000, 0.1) == 119


# Arlo, server/tests/audit_math/test_bravo.py::test_expected_sample_sizes (α = 10%).
@pytest.mark.parametrize(
    ("votes", "ballots", "winners", "asn"),
    [
        ({"c1": 600, "c2": 400}, 1000, ("c1",), 119),
        ({"c1": 600, "c2": 200, "c3": 100}, 900, ("c1",), 22),
        ({"c1": 300, "c2": 200, "c3": 200}, 1000, ("c1",), 238),
        ({"c1": 300, "c2": 200, "c3": 100}, 700, ("c1", "c2"), 101),
        ({"c1": 300, "c2": 300, "c3": 100}, 700, ("c1", "c2"), 34),
        ({"c1": 600, "c2": 300, "c3": 100}, 1000, ("c1", "c2"), 48),
        ({"c1": 600, "c2": 400, "c3": 0}, 1000, ("c1",), 119),
    ],
)
def test_arlo_contest_asns(
    votes: dict[str, int], ballots: int, winners: tuple[str, ...], asn: int
) -> None:
    assert contest_asn(BravoContest("t", votes, ballots, winners), Fraction(1, 10)) == asn


def test_asn_refuses_ties_and_losses() -> None:
    with pytest.raises(AuditImpossibleError, match="tie"):
        bravo_asn(5000, 5000, 10_000, 0.1)
    with pytest.raises(AuditImpossibleError):
        bravo_asn(4000, 5000, 10_000, 0.1)
    with pytest.raises(ValueError, match="total ballots"):
        bravo_asn(6000, 5000, 10_000, 0.1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        bravo_asn(6000, 4000, 10_000, 1.5)


def test_asn_when_loser_has_no_votes() -> None:
    # every sampled pair ballot is for the winner: T doubles per winner ballot (s_w = 1)
    # ASN = (ln 10 + ln2/2) / (0.5 ln 2) = 7.64 → 8
    assert bravo_asn(500, 0, 1000, 0.1) == 8


# --- exact stopping probability -------------------------------------------------------------


def brute_force_stop(w: int, loser: int, n_ballots: int, alpha: float, n: int) -> float:
    """Direct sum over the trinomial distribution of (winner, loser, other) draws."""
    p_w, p_l = w / n_ballots, loser / n_ballots
    p_o = 1 - p_w - p_l
    up, down = math.log(2 * w / (w + loser)), math.log(2 * loser / (w + loser))
    total = 0.0
    for k_w in range(n + 1):
        for k_l in range(n - k_w + 1):
            if k_w * up + k_l * down >= math.log(1 / alpha):
                rest = n - k_w - k_l
                total += (
                    math.comb(n, k_w) * math.comb(n - k_w, k_l) * p_w**k_w * p_l**k_l * p_o**rest
                )
    return total


@pytest.mark.parametrize("n", [1, 5, 17, 40, 83])
def test_stopping_probability_matches_brute_force(n: int) -> None:
    for w, loser, total in [(600, 300, 1000), (550, 450, 1000), (700, 300, 1000)]:
        exact = stopping_probability(w, loser, total, 0.1, n)
        assert exact == pytest.approx(brute_force_stop(w, loser, total, 0.1, n), abs=1e-9)


def test_sample_size_hits_the_probability() -> None:
    n = bravo_sample_size(600, 400, 1000, 0.1, 0.9)
    assert n is not None
    assert stopping_probability(600, 400, 1000, 0.1, n) >= 0.9
    assert stopping_probability(600, 400, 1000, 0.1, n - 1) < 0.9


# Arlo, server/tests/audit_math/test_bravo.py::test_bravo_sample_sizes and
# test_get_sample_size: Mark Lindeman's normal approximation with a binomial check. Our exact
# binomial sizes must agree to within 3% (they are different approximations of one quantity).
@pytest.mark.parametrize(
    ("w", "loser", "total", "prob", "arlo", "ours"),
    [
        (600, 400, 1000, 0.7, 184, 180),
        (600, 400, 1000, 0.8, 244, 240),
        (600, 400, 1000, 0.9, 351, 353),
        (600, 200, 900, 0.9, 57, 59),
        (300, 200, 1000, 0.9, 702, 706),
        (10_000, 9_000, 20_000, 0.9, 5426, 5428),
        (4000, 3200, 10_000, 0.9, 1599, 1601),
        (3600, 3200, 10_000, 0.9, 6067, 6069),
        (3600, 3200, 10_000, 0.6, 2476, 2475),
        (4000, 3200, 10_000, 0.4, 409, 409),
    ],
)
def test_sample_sizes_agree_with_arlo(
    w: int, loser: int, total: int, prob: float, arlo: int, ours: int
) -> None:
    n = bravo_sample_size(w, loser, total, 0.1, prob)
    assert n == ours
    assert abs(n - arlo) <= max(2, 0.03 * arlo)


def test_sample_size_after_a_round_and_when_done() -> None:
    assert bravo_sample_size(600, 400, 1000, 0.1, 0.9, winner_sampled=200, loser_sampled=0) == 0
    after = bravo_sample_size(600, 400, 1000, 0.1, 0.9, winner_sampled=72, loser_sampled=47)
    fresh = bravo_sample_size(600, 400, 1000, 0.1, 0.9)
    assert after is not None and fresh is not None and after < fresh
    # a margin too small to confirm within the ballots cast: full hand count is better
    assert bravo_sample_size(501, 499, 1000, 0.1, 0.9) is None


# --- test statistic -------------------------------------------------------------------------


def test_pair_test_arlo_compute_risk() -> None:
    # Arlo test_compute_risk "test1": 600/400, sample 72/47 → P ≈ 0.07, confirmed at 10%
    pair = BravoPair("c1", "c2", 600, 400)
    result = pair_test(pair, 72, 47, 0.1)
    assert result.confirmed
    assert result.p_value == pytest.approx(0.07, abs=0.01)
    # exact value: 1 / (1.2^72 · 0.8^47)
    assert result.p_value == pytest.approx(1 / (1.2**72 * 0.8**47), rel=1e-9)


def test_exact_boundary_is_decided_in_integers() -> None:
    # v_w = 3, v_l = 1: a winner ballot multiplies T by 3/2. Three winner ballots give
    # T = 27/8 exactly; with α = 8/27 that is exactly 1/α, which confirms (T ≥ 1/α).
    pair = BravoPair("w", "l", 3, 1)
    assert pair_test(pair, 3, 0, Fraction(8, 27)).confirmed
    assert not pair_test(pair, 2, 0, Fraction(8, 27)).confirmed
    assert not pair_test(pair, 3, 0, Fraction(8, 27) - Fraction(1, 10**30)).confirmed


def test_per_ballot_update_equals_counts() -> None:
    pair = BravoPair("w", "l", 550, 450)
    rng = random.Random(7)
    log_t = 0.0
    k_w = k_l = 0
    for _ in range(500):
        choice = rng.choice(["w", "l", "x"])
        log_t = pair.update(log_t, choice)
        k_w += choice == "w"
        k_l += choice == "l"
    assert log_t == pytest.approx(pair_test(pair, k_w, k_l, 0.1).log_statistic)


# --- audit state ----------------------------------------------------------------------------


def contest() -> BravoContest:
    return BravoContest("mayor", {"A": 600, "B": 300, "C": 100}, 1000, ("A",))


def test_audit_rounds_and_status() -> None:
    audit = BravoAudit.start(contest(), Fraction(1, 10), "seed")
    first = audit.status()
    assert first.status == "continue"
    assert first.next_round_size == bravo_sample_size(600, 300, 1000, Fraction(1, 10), 0.9)
    audit = audit.record_round(10, {"A": 6, "B": 3, "C": 1})
    assert audit.status().status == "continue"
    audit = audit.record_round(40, {"A": 30, "B": 8, "C": 2})
    status = audit.status()
    assert status.status == "confirmed"
    assert status.sampled == 50
    assert {(p.winner, p.loser) for p in status.pairs} == {("A", "B"), ("A", "C")}
    with pytest.raises(ValueError, match="ended"):
        audit.record_round(1, {"A": 1})


def test_audit_escalates_to_full_count() -> None:
    audit = BravoAudit.start(contest(), 0.1, "seed", max_sample_size=30)
    audit = audit.record_round(30, {"A": 10, "B": 15, "C": 5})
    assert audit.status().status == "full_hand_count"


def test_audit_refuses_bad_rounds() -> None:
    audit = BravoAudit.start(contest(), 0.1, "seed")
    with pytest.raises(ValueError, match="unknown"):
        audit.record_round(5, {"Z": 1})
    with pytest.raises(ValueError, match="more than"):
        audit.record_round(5, {"A": 6})
    with pytest.raises(ValueError, match="at least one"):
        audit.record_round(0, {})
    with pytest.raises(AuditImpossibleError):
        BravoAudit.start(BravoContest("t", {"A": 5, "B": 5}, 10, ("A",)), 0.1, "s")
    with pytest.raises(ValueError, match="ballots"):
        BravoAudit.start(BravoContest("t", {"A": 8, "B": 5}, 10, ("A",)), 0.1, "s")


def test_audit_json_round_trip_is_canonical() -> None:
    audit = BravoAudit.start(contest(), Fraction(1, 10), "dice 123").record_round(
        10, {"C": 1, "A": 6, "B": 3}
    )
    data = audit.to_json()
    assert b'"risk_limit":"1/10"' in data
    again = BravoAudit.from_json(data)
    assert again == audit
    assert again.to_json() == data
    with pytest.raises(ValueError):
        BravoAudit.from_json(data.replace(b'"1/10"', b'"3/2"'))


def test_risk_limit_parsing() -> None:
    assert as_risk_limit(0.1) == Fraction(1, 10)
    assert as_risk_limit(Fraction(1, 20)) == Fraction(1, 20)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(ValueError):
            as_risk_limit(bad)


# --- Monte Carlo: the risk is limited, correct outcomes confirm --------------------------


def run_rounds(
    rng: random.Random,
    reported: BravoContest,
    truth: dict[str, int],
    alpha: Fraction,
    rounds: list[int],
) -> str:
    """Run an audit with a fixed round schedule; ballots are drawn from the *true* results."""
    audit = BravoAudit.start(reported, alpha, "unused", max_sample_size=sum(rounds))
    choices = list(truth)
    cumulative = []
    acc = 0
    for c in choices:
        acc += truth[c]
        cumulative.append(acc)
    for size in rounds:
        counts = dict.fromkeys(choices, 0)
        for _ in range(size):
            x = rng.randrange(reported.ballots)
            for c, edge in zip(choices, cumulative, strict=True):
                if x < edge:
                    counts[c] += 1
                    break
        audit = audit.record_round(size, counts)
        status = audit.status(None).status
        if status != "continue":
            return status
    return audit.status(None).status


TRIALS = 2000


def slack(alpha: float, trials: int) -> float:
    """Three binomial standard deviations: the chance of exceeding it by luck is < 0.2%."""
    return 3 * math.sqrt(alpha * (1 - alpha) / trials)


@pytest.mark.slow
def test_monte_carlo_wrong_outcome_confirms_at_most_alpha() -> None:
    alpha = Fraction(1, 10)
    reported = BravoContest("c", {"A": 1100, "B": 900}, 2000, ("A",))
    # the truth is a tie: the reported winner did not win (the hardest wrong outcome)
    truth = {"A": 1000, "B": 1000}
    rng = random.Random(20211128)
    confirmed = sum(
        run_rounds(rng, reported, truth, alpha, [200, 300, 500, 1000]) == "confirmed"
        for _ in range(TRIALS)
    )
    rate = confirmed / TRIALS
    assert rate <= 0.1 + slack(0.1, TRIALS), rate


@pytest.mark.slow
def test_monte_carlo_sequential_checking_still_limits_risk() -> None:
    """Checking after every ballot (the most aggressive stopping rule) is covered by Ville."""
    alpha = 0.1
    pair = BravoPair("A", "B", 1100, 900)
    up, down = pair.log_weights()
    target = math.log(1 / alpha)
    rng = random.Random(1)
    confirmed = 0
    for _ in range(TRIALS):
        log_t = 0.0
        for _ in range(2000):
            log_t += up if rng.random() < 0.5 else down
            if log_t >= target:
                confirmed += 1
                break
    assert confirmed / TRIALS <= alpha + slack(alpha, TRIALS)


def test_monte_carlo_correct_wide_margin_confirms() -> None:
    alpha = Fraction(1, 10)
    reported = BravoContest("c", {"A": 1300, "B": 600, "C": 100}, 2000, ("A",))
    rng = random.Random(42)
    trials = 300
    confirmed = sum(
        run_rounds(rng, reported, dict(reported.votes), alpha, [100, 200, 400]) == "confirmed"
        for _ in range(trials)
    )
    assert confirmed / trials >= 0.99


@pytest.mark.slow
def test_end_to_end_with_consistent_sampler() -> None:
    """Draw real ballot positions with the seeded sampler and look up each ballot's vote."""
    manifest = [("st-1", 250), ("st-2", 200), ("st-3", 150)]
    rng = random.Random(5)

    def election(a: int, b: int) -> dict[tuple[str, int], str]:
        votes = ["A"] * a + ["B"] * b + ["X"] * (600 - a - b)
        rng.shuffle(votes)
        positions = [(s, i) for s, n in manifest for i in range(1, n + 1)]
        return dict(zip(positions, votes, strict=True))

    reported = BravoContest("c", {"A": 400, "B": 180}, 600, ("A",))

    def audit_once(ballots: dict[tuple[str, int], str], seed: str) -> str:
        audit = BravoAudit.start(reported, 0.1, seed, max_sample_size=600)
        for size in (40, 80, 160):
            draws = audit.draw(size, manifest)
            assert len(draws) == size
            counts = {"A": 0, "B": 0}
            for d in draws:
                vote = ballots[(d.batch_id, d.ballot)]
                if vote in counts:
                    counts[vote] += 1
            audit = audit.record_round(size, counts)
            if audit.status(None).status != "continue":
                break
        return audit.status(None).status

    honest = election(400, 180)
    results = [audit_once(honest, f"seed-{i}") for i in range(60)]
    assert results.count("confirmed") >= 57
    # the reported winner actually lost 280 to 300
    stolen = election(280, 300)
    results = [audit_once(stolen, f"seed-{i}") for i in range(60)]
    assert results.count("confirmed") <= 6  # α = 10% of 60, expected about 0

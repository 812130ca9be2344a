"""BRAVO ballot-polling risk-limiting audits of plurality contests (one or more winners).

Implements M. Lindeman, P. B. Stark, V. S. Yates, "BRAVO: Ballot-polling Risk-limiting Audits
to Verify Outcomes", EVT/WOTE 2012 (cited below as LSY 2012), as summarised in Lindeman &
Stark, "A Gentle Introduction to Risk-limiting Audits", IEEE Security & Privacy 2012.

For every pair (reported winner w, reported loser l) with reported votes v_w > v_l, let
``s_w = v_w / (v_w + v_l)``. Ballots are drawn uniformly at random with replacement from all
ballots cast in the contest; a ballot for w multiplies the pair's test statistic T by
``2·s_w``, a ballot for l multiplies it by ``2·(1 - s_w)``, any other ballot leaves it alone.
T is a likelihood ratio (Wald's SPRT) of "w's share among w+l is s_w" against "w and l tie";
under a tie it is a non-negative martingale with expectation 1, so (Ville's inequality) the
chance that it ever reaches ``1/α`` is at most α. The audit confirms the outcome once every
pair has ``T ≥ 1/α``; its P-value for a pair is ``min(1, 1/T)``.

All functions are pure; :class:`BravoAudit` is immutable state that can be serialised to
canonical JSON for a ledger entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Literal

import msgspec

from tallyroom.audit import _codec
from tallyroom.audit.assertions import AuditImpossibleError
from tallyroom.audit.sampler import BallotDraw, sample_ballots

RiskLimit = Fraction | float


def as_risk_limit(risk_limit: RiskLimit | str) -> Fraction:
    """Return the risk limit α as an exact fraction; must lie strictly between 0 and 1.

    Floats are read through their shortest decimal representation (``0.1`` is exactly 1/10).
    """
    if isinstance(risk_limit, float):
        if not math.isfinite(risk_limit):
            raise ValueError(f"risk limit must be a finite number, got {risk_limit}")
        alpha = Fraction(repr(risk_limit))
    else:
        alpha = Fraction(risk_limit)
    if not 0 < alpha < 1:
        raise ValueError(f"risk limit must be strictly between 0 and 1, got {alpha}")
    return alpha


def _check_pair(winner_votes: int, loser_votes: int, total_ballots: int) -> None:
    if loser_votes < 0 or winner_votes < 0:
        raise ValueError("vote counts must be non-negative")
    if winner_votes <= loser_votes:
        raise AuditImpossibleError(
            f"the reported winner has {winner_votes} votes and the loser {loser_votes}: "
            "no ballot-polling audit can confirm a tie or a loss; count all ballots by hand"
        )
    if total_ballots < winner_votes + loser_votes:
        raise ValueError(
            f"total ballots ({total_ballots}) is less than the votes of the pair "
            f"({winner_votes} + {loser_votes})"
        )


def _log_weights(winner_votes: int, loser_votes: int) -> tuple[float, float]:
    """``(ln 2·s_w, ln 2·(1 - s_w))``; the second is ``-inf`` when the loser has no votes."""
    pair = winner_votes + loser_votes
    up = math.log(2 * winner_votes / pair)
    down = math.log(2 * loser_votes / pair) if loser_votes else -math.inf
    return up, down


def bravo_asn(
    winner_votes: int, loser_votes: int, total_ballots: int, risk_limit: RiskLimit
) -> int:
    """Average sample number (expected ballots drawn) of BRAVO for one winner–loser pair.

    LSY 2012, §4 (the approximation tabulated in their Table 1)::

        ASN ≈ (ln(1/α) + z_w / 2) / (p_w·z_w + p_l·z_l),
        z_w = ln(2·s_w),  z_l = ln(2 - 2·s_w),  s_w = p_w / (p_w + p_l),

    with ``p_w``, ``p_l`` the pair's shares of all ballots cast. Rounded up to an integer
    (as Arlo's ``bravo.get_expected_sample_sizes`` does). Example: 10,000 ballots, 9,000 vs
    1,000, α = 10% gives 8.

    Raises :class:`AuditImpossibleError` if ``winner_votes <= loser_votes``.
    """
    alpha = as_risk_limit(risk_limit)
    _check_pair(winner_votes, loser_votes, total_ballots)
    z_w, z_l = _log_weights(winner_votes, loser_votes)
    p_w = winner_votes / total_ballots
    p_l = loser_votes / total_ballots
    drift = p_w * z_w + (p_l * z_l if loser_votes else 0.0)
    return math.ceil((math.log(1 / alpha) + z_w / 2) / drift)


# --- contests, pairs and the test statistic --------------------------------------------------


class BravoContest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A plurality contest as reported: votes per choice, ballots cast, reported winners.

    ``ballots`` is the number of ballots cast in the contest (the population sampled),
    including blank and invalid ones; each ballot carries at most one vote in this contest.
    """

    name: str
    votes: Mapping[str, int]
    ballots: int
    winners: tuple[str, ...]

    def losers(self) -> tuple[str, ...]:
        """Choices that are not reported winners, in the order of ``votes``."""
        return tuple(c for c in self.votes if c not in self.winners)

    def validate(self) -> None:
        """Raise ``ValueError`` (:class:`AuditImpossibleError` on a tie) if not auditable."""
        if not self.winners:
            raise ValueError("a contest needs at least one reported winner")
        missing = [w for w in self.winners if w not in self.votes]
        if missing:
            raise ValueError(f"reported winners not among the choices: {', '.join(missing)}")
        if any(v < 0 for v in self.votes.values()):
            raise ValueError("vote counts must be non-negative")
        if sum(self.votes.values()) > self.ballots:
            raise ValueError(
                f"the choices have {sum(self.votes.values())} votes but only "
                f"{self.ballots} ballots were cast"
            )
        if not self.losers():
            raise ValueError("every choice is a winner: there is no outcome to audit")
        for pair in self.pairs():
            _check_pair(pair.winner_votes, pair.loser_votes, self.ballots)

    def pairs(self) -> tuple[BravoPair, ...]:
        """Every (reported winner, reported loser) pair with their reported votes."""
        return tuple(
            BravoPair(w, loser, self.votes[w], self.votes[loser])
            for w in self.winners
            for loser in self.losers()
        )

    def hardest_pair(self) -> BravoPair:
        """The pair with the smallest margin: weakest winner against strongest loser."""
        self.validate()
        winner = min(self.winners, key=lambda c: self.votes[c])
        loser = max(self.losers(), key=lambda c: self.votes[c])
        return BravoPair(winner, loser, self.votes[winner], self.votes[loser])


class BravoPair(msgspec.Struct, frozen=True):
    """One reported winner and one reported loser with their reported votes."""

    winner: str
    loser: str
    winner_votes: int
    loser_votes: int

    def log_weights(self) -> tuple[float, float]:
        """``(ln 2·s_w, ln 2·(1 - s_w))``: the log-statistic step for a w or an l ballot."""
        return _log_weights(self.winner_votes, self.loser_votes)

    def update(self, log_statistic: float, choice: str | None) -> float:
        """Update ``ln T`` for one sampled ballot showing ``choice`` (LSY 2012, §3, step 4).

        ``None`` or any other choice (blank, invalid, a third candidate) leaves T unchanged.
        """
        up, down = self.log_weights()
        if choice == self.winner:
            return log_statistic + up
        if choice == self.loser:
            return log_statistic + down
        return log_statistic


class PairTest(msgspec.Struct, frozen=True):
    """BRAVO test of one pair after a sample: counts seen, ln T, P-value, decision."""

    winner: str
    loser: str
    winner_sampled: int
    loser_sampled: int
    log_statistic: float
    p_value: float
    confirmed: bool


def _statistic_reaches(pair: BravoPair, k_w: int, k_l: int, alpha: Fraction) -> bool:
    """Exact check of ``T ≥ 1/α`` in integers, used when the float test is too close to call."""
    v_w, v_l = pair.winner_votes, pair.loser_votes
    lhs = (2 * v_w) ** k_w * (2 * v_l) ** k_l * alpha.numerator
    rhs = (v_w + v_l) ** (k_w + k_l) * alpha.denominator
    return bool(lhs >= rhs)


def pair_test(
    pair: BravoPair, winner_sampled: int, loser_sampled: int, risk_limit: RiskLimit
) -> PairTest:
    """Test one pair on cumulative sample counts (LSY 2012, §3).

    ``ln T = k_w·ln(2 s_w) + k_l·ln(2 - 2 s_w)``; confirmed iff ``T ≥ 1/α`` (decided exactly
    in integer arithmetic near the boundary); P-value ``min(1, 1/T)``.
    """
    alpha = as_risk_limit(risk_limit)
    if winner_sampled < 0 or loser_sampled < 0:
        raise ValueError("sample counts must be non-negative")
    up, down = pair.log_weights()
    if loser_sampled and pair.loser_votes == 0:
        log_t = -math.inf
    else:
        log_t = winner_sampled * up + (loser_sampled * down if loser_sampled else 0.0)
    target = math.log(1 / alpha)
    if math.isinf(log_t) or abs(log_t - target) > 1e-9 * max(1.0, abs(target)):
        confirmed = log_t >= target
    else:
        confirmed = _statistic_reaches(pair, winner_sampled, loser_sampled, alpha)
    p_value = 1.0 if log_t <= 0 else math.exp(-log_t)
    return PairTest(
        pair.winner, pair.loser, winner_sampled, loser_sampled, log_t, p_value, confirmed
    )


def contest_tests(
    contest: BravoContest, sample_counts: Mapping[str, int], risk_limit: RiskLimit
) -> tuple[PairTest, ...]:
    """Test every winner–loser pair of ``contest`` on cumulative ``sample_counts``."""
    return tuple(
        pair_test(p, sample_counts.get(p.winner, 0), sample_counts.get(p.loser, 0), risk_limit)
        for p in contest.pairs()
    )


def contest_asn(contest: BravoContest, risk_limit: RiskLimit) -> int:
    """ASN of the contest: :func:`bravo_asn` of its hardest pair (LSY 2012, §5)."""
    pair = contest.hardest_pair()
    return bravo_asn(pair.winner_votes, pair.loser_votes, contest.ballots, risk_limit)


# --- exact stopping probability and sample sizes ---------------------------------------------


class _Tails:
    """``tail[m] = P(Bin(m, s) ≥ c(m))``: chance that m pair ballots reach the threshold.

    ``c(m)`` is the least number of winner ballots among m pair ballots with
    ``c·up + (m - c)·down ≥ need``. Because ``0 < -down / (up - down) < 1``, c grows by 0 or 1
    per step, so ``P(Bin(m+1, s) ≥ c) = P(Bin(m, s) ≥ c) + s·P(Bin(m, s) = c - 1)`` gives every
    tail in O(1) from the previous one.
    """

    def __init__(self, s: float, up: float, down: float, need: float) -> None:
        self.s = s
        self.up = up
        self.down = down
        self.need = need
        self.log_s = math.log(s)
        self.log_f = math.log1p(-s) if s < 1 else -math.inf
        self.tail: list[float] = [1.0 if self._c(0) <= 0 else 0.0]
        self.c = self._c(0)

    def _c(self, m: int) -> int:
        if self.need <= 0:
            return 0
        if math.isinf(self.down):  # the loser has no reported votes
            return m if m * self.up >= self.need - 1e-12 else m + 1
        return max(0, math.ceil((self.need - m * self.down) / (self.up - self.down) - 1e-9))

    def _pmf(self, m: int, k: int) -> float:
        if k < 0 or k > m:
            return 0.0
        if self.s == 1.0:
            return 1.0 if k == m else 0.0
        log_p = (
            math.lgamma(m + 1)
            - math.lgamma(k + 1)
            - math.lgamma(m - k + 1)
            + k * self.log_s
            + (m - k) * self.log_f
        )
        return math.exp(log_p)

    def get(self, m: int) -> float:
        while len(self.tail) <= m:
            prev = len(self.tail) - 1
            value = self.tail[prev] + self.s * self._pmf(prev, self.c - 1)
            c_next = self._c(prev + 1)
            for c in range(self.c, c_next):
                value -= self._pmf(prev + 1, c)
            self.c = c_next
            self.tail.append(min(1.0, max(0.0, value)))
        return self.tail[m]


def _binomial_window(n: int, q: float) -> range:
    if q >= 1.0:
        return range(n, n + 1)
    sd = math.sqrt(n * q * (1 - q))
    low = max(0, math.floor(n * q - 12 * sd - 2))
    high = min(n, math.ceil(n * q + 12 * sd + 2))
    return range(low, high + 1)


def _stop_probability(tails: _Tails, n: int, q: float) -> float:
    if q >= 1.0:
        return tails.get(n)
    log_q, log_r = math.log(q), math.log1p(-q)
    total = 0.0
    for m in _binomial_window(n, q):
        log_p = (
            math.lgamma(n + 1)
            - math.lgamma(m + 1)
            - math.lgamma(n - m + 1)
            + m * log_q
            + (n - m) * log_r
        )
        total += math.exp(log_p) * tails.get(m)
    return min(1.0, total)


def _tails_for(
    winner_votes: int,
    loser_votes: int,
    total_ballots: int,
    risk_limit: RiskLimit,
    winner_sampled: int,
    loser_sampled: int,
) -> tuple[_Tails, float]:
    alpha = as_risk_limit(risk_limit)
    _check_pair(winner_votes, loser_votes, total_ballots)
    up, down = _log_weights(winner_votes, loser_votes)
    if loser_sampled and not loser_votes:
        already = -math.inf
    else:
        already = winner_sampled * up + (loser_sampled * down if loser_sampled else 0.0)
    need = math.log(1 / alpha) - already
    s = winner_votes / (winner_votes + loser_votes)
    q = (winner_votes + loser_votes) / total_ballots
    return _Tails(s, up, down, need), q


def stopping_probability(
    winner_votes: int,
    loser_votes: int,
    total_ballots: int,
    risk_limit: RiskLimit,
    sample_size: int,
    *,
    winner_sampled: int = 0,
    loser_sampled: int = 0,
) -> float:
    """Exact chance that a round of ``sample_size`` more draws confirms the pair.

    Assumes the reported shares are the true ones. Draws are with replacement, so the
    number m of draws showing w or l is Binomial(n, q) with ``q = (v_w + v_l)/N``, and given
    m the number showing w is Binomial(m, s_w); the round confirms if at its end
    ``k_w·ln(2 s_w) + k_l·ln(2 - 2 s_w)`` (added to what earlier rounds gave) reaches
    ``ln(1/α)``. Exact up to floating-point rounding (LSY 2012, §4 give the ASN; this is the
    distribution whose quantiles Arlo approximates in ``bravo_sample_sizes``).
    """
    if sample_size < 0:
        raise ValueError("sample size must be non-negative")
    tails, q = _tails_for(
        winner_votes, loser_votes, total_ballots, risk_limit, winner_sampled, loser_sampled
    )
    return _stop_probability(tails, sample_size, q)


def bravo_sample_size(
    winner_votes: int,
    loser_votes: int,
    total_ballots: int,
    risk_limit: RiskLimit,
    probability: float = 0.9,
    *,
    winner_sampled: int = 0,
    loser_sampled: int = 0,
    max_sample_size: int | None = None,
) -> int | None:
    """Draws for the next round so that it confirms with at least ``probability``.

    Uses :func:`stopping_probability` (exact binomial) and bisection: returns n with
    ``P(n) ≥ probability > P(n - 1)``. (P is not perfectly monotone because counts are
    integers, so a slightly smaller n can occasionally also qualify.) Returns 0 when earlier
    rounds already confirm the pair, and ``None`` if even ``max_sample_size`` draws (default:
    all ``total_ballots``) would not reach the probability — then a full hand count is the
    better plan.
    """
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    tails, q = _tails_for(
        winner_votes, loser_votes, total_ballots, risk_limit, winner_sampled, loser_sampled
    )
    if tails.need <= 0:
        return 0
    cap = total_ballots if max_sample_size is None else max_sample_size
    lo, hi = 0, 1
    while _stop_probability(tails, hi, q) < probability:
        lo = hi
        if hi >= cap:
            return None
        hi = min(cap, hi * 2)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _stop_probability(tails, mid, q) >= probability:
            hi = mid
        else:
            lo = mid
    return hi


# --- audit state ----------------------------------------------------------------------------

BravoStatusKind = Literal["continue", "confirmed", "full_hand_count"]


class BravoRound(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Result of one round: ``sample_size`` draws, ``counts`` votes seen per choice."""

    round_number: int
    sample_size: int
    counts: Mapping[str, int]


class BravoStatus(msgspec.Struct, frozen=True):
    """Where the audit stands after its recorded rounds.

    ``status``: ``confirmed`` (every pair reached 1/α), ``continue`` (draw
    ``next_round_size`` more ballots, sized for a 90% chance to finish), or
    ``full_hand_count`` (the sample reached ``max_sample_size`` without confirming: count
    every ballot by hand; that count is the outcome).
    """

    status: BravoStatusKind
    risk_limit: Fraction
    sampled: int
    pairs: tuple[PairTest, ...]
    max_p_value: float
    next_round_size: int | None


class BravoAudit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Immutable state of a BRAVO audit of one contest.

    ``seed`` is the public seed for :func:`tallyroom.audit.sampler.sample_ballots`;
    ``max_sample_size`` is where the audit escalates to a full hand count (default: the number
    of ballots cast). Each ``record_round`` returns a new state; ``to_json`` gives canonical
    bytes for a ledger entry.
    """

    contest: BravoContest
    risk_limit: Fraction
    seed: str
    max_sample_size: int | None = None
    rounds: tuple[BravoRound, ...] = ()

    @classmethod
    def start(
        cls,
        contest: BravoContest,
        risk_limit: RiskLimit,
        seed: str,
        *,
        max_sample_size: int | None = None,
    ) -> BravoAudit:
        """Validate the contest and return an audit with no rounds yet."""
        contest.validate()
        if not seed:
            raise ValueError("the seed must not be empty")
        return cls(contest, as_risk_limit(risk_limit), seed, max_sample_size)

    def sampled(self) -> int:
        """Draws made so far (all rounds)."""
        return sum(r.sample_size for r in self.rounds)

    def cumulative_counts(self) -> dict[str, int]:
        """Votes seen per choice over all rounds."""
        totals = dict.fromkeys(self.contest.votes, 0)
        for r in self.rounds:
            for choice, n in r.counts.items():
                totals[choice] += n
        return totals

    def draw(self, sample_size: int, manifest: Sequence[tuple[str, int]]) -> list[BallotDraw]:
        """The next ``sample_size`` ballots to retrieve, continuing the sample of earlier rounds."""
        total = sum(n for _, n in manifest)
        if total != self.contest.ballots:
            raise ValueError(
                f"the manifest lists {total} ballots, the contest {self.contest.ballots}"
            )
        return sample_ballots(
            self.seed, manifest, sample_size, True, already_sampled=self.sampled()
        )

    def record_round(self, sample_size: int, counts: Mapping[str, int]) -> BravoAudit:
        """Add a round's results; refuses once the audit has ended or on inconsistent counts."""
        current = self.status(None).status
        if current != "continue":
            raise ValueError(f"the audit has ended ({current}); no more rounds")
        if sample_size <= 0:
            raise ValueError("a round must draw at least one ballot")
        unknown = [c for c in counts if c not in self.contest.votes]
        if unknown:
            raise ValueError(f"unknown choices in round counts: {', '.join(unknown)}")
        if any(n < 0 for n in counts.values()):
            raise ValueError("round counts must be non-negative")
        if sum(counts.values()) > sample_size:
            raise ValueError(
                f"round counts add up to {sum(counts.values())}, more than the "
                f"{sample_size} ballots drawn"
            )
        new = BravoRound(len(self.rounds) + 1, sample_size, dict(counts))
        return msgspec.structs.replace(self, rounds=(*self.rounds, new))

    def status(self, probability: float | None = 0.9) -> BravoStatus:
        """Test every pair on the cumulative sample and say what happens next.

        ``probability`` sizes the next round (chance it confirms if the reported shares are
        right); ``None`` skips that computation (``next_round_size`` is then ``None``).
        """
        tests = contest_tests(self.contest, self.cumulative_counts(), self.risk_limit)
        max_p = max(t.p_value for t in tests)
        sampled = self.sampled()
        cap = self.contest.ballots if self.max_sample_size is None else self.max_sample_size
        if all(t.confirmed for t in tests):
            return BravoStatus("confirmed", self.risk_limit, sampled, tests, max_p, None)
        if sampled >= cap:
            return BravoStatus("full_hand_count", self.risk_limit, sampled, tests, max_p, None)
        if probability is None:
            return BravoStatus("continue", self.risk_limit, sampled, tests, max_p, None)
        worst = min((t for t in tests if not t.confirmed), key=lambda t: t.log_statistic)
        size = bravo_sample_size(
            self.contest.votes[worst.winner],
            self.contest.votes[worst.loser],
            self.contest.ballots,
            self.risk_limit,
            probability,
            winner_sampled=worst.winner_sampled,
            loser_sampled=worst.loser_sampled,
            max_sample_size=cap - sampled,
        )
        next_size = cap - sampled if size is None else size
        return BravoStatus("continue", self.risk_limit, sampled, tests, max_p, next_size)

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, fractions as strings) for a ledger entry."""
        return _codec.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> BravoAudit:
        """Inverse of :meth:`to_json`; validates types and the contest."""
        audit = _codec.decode(data, cls)
        audit.contest.validate()
        as_risk_limit(audit.risk_limit)
        return audit

"""MACRO batch-comparison risk-limiting audits with polling stations as batches.

Implements P. B. Stark, "A sharper discrepancy measure for post-election audits", Annals of
Applied Statistics 2(3), 2008 (MACRO: the Maximum Across-Contest Relative Overstatement), with
sampling proportional to error bounds (PPEB) and the Kaplan–Markov P-value of P. B. Stark,
"Risk-limiting post-election audits: P-values from common probability inequalities", IEEE
Trans. Inf. Forensics and Security 4(4), 2009. Background: Stark 2008, "Conservative
statistical post-election audits", Annals of Applied Statistics 2(2); Lindeman & Stark 2012,
"A Gentle Introduction to Risk-limiting Audits".

The audit compares each sampled station's reported (machine) count with a hand count. For
every assertion a (see :mod:`tallyroom.audit.assertions`) with reported margin ``M_a > 0``:

* overstatement of batch p:       ``ω_pa = margin_a(reported_p) - margin_a(audited_p)``
* MACRO of batch p:               ``e_p = max_a ω_pa / M_a``
* error bound of batch p:         ``u_p = max_a (largest possible ω_pa) / M_a``
* total error bound:              ``U = Σ_p u_p``   (the outcome is wrong only if Σ e_p ≥ 1)
* taint of a draw:                ``t = max(e_p, 0) / u_p ≤ 1``

Batches are drawn with replacement with probability ``u_p / U``. After n draws with taints
``t_1 … t_n`` the Kaplan–Markov P-value is ``P_n = Π_j (1 - 1/U) / (1 - t_j)``; the audit
stops when ``min_{j≤n} P_j ≤ α`` (``1/P`` is a non-negative supermartingale under any wrong
outcome, so Ville's inequality bounds the risk by α even when checked after every draw).
Understatements (``e_p < 0``) are counted as zero, which is conservative (as Arlo does).

Error bounds are rounded *up* to multiples of ``1/resolution`` (default 10⁻⁹), which keeps
them valid bounds, makes the sampling weights integers (so the sample is reproducible with
Rivest's 2011 sampler) and keeps every P-value an exact fraction that a verifier can
recompute bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Literal

import msgspec

from tallyroom.audit import _codec
from tallyroom.audit.assertions import AuditImpossibleError, LinearAssertion
from tallyroom.audit.bravo import RiskLimit, as_risk_limit
from tallyroom.audit.sampler import BatchDraw, sample_batches

DEFAULT_RESOLUTION = 10**9


class ReportedBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A batch (polling station) as reported: its lines and the most ballots it can hold.

    ``ballots`` bounds the number of ballots in the batch (e.g. voters who took part, or
    ballots issued); the error bound assumes at most that many ballots, one vote each per
    contest.
    """

    batch_id: str
    ballots: int
    lines: Mapping[str, int]


class AuditedBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The hand count of one batch: counted lines (a base line may be omitted)."""

    batch_id: str
    lines: Mapping[str, int]


class BatchBound(msgspec.Struct, frozen=True):
    """Error bound of a batch: ``error_bound = weight / resolution ≥ u_p``."""

    batch_id: str
    error_bound: Fraction
    weight: int


class DrawResult(msgspec.Struct, frozen=True):
    """A counted draw: the batch, its MACRO ``e_p``, taint, and the P-value after it."""

    draw: int
    batch_id: str
    relative_overstatement: Fraction
    taint: Fraction
    p_value: Fraction | None


# --- pure functions -------------------------------------------------------------------------


def contest_margins(
    assertions: Sequence[LinearAssertion], batches: Sequence[ReportedBatch]
) -> dict[str, Fraction]:
    """Reported margin ``M_a = Σ_p margin_a(reported_p)`` of every assertion, by name.

    Raises :class:`AuditImpossibleError` if a margin is not positive (a tie, or an assertion the
    reported result does not satisfy): such an outcome can only be checked by a full count.
    """
    names = [a.name for a in assertions]
    if len(set(names)) != len(names):
        raise ValueError("assertion names must be unique")
    margins: dict[str, Fraction] = {}
    for a in assertions:
        margin = sum((a.margin(b.lines) for b in batches), Fraction(0))
        if margin <= 0:
            raise AuditImpossibleError(
                f"assertion {a.name!r} has reported margin {margin}: not a positive margin, "
                "so no sample can confirm it; count every batch by hand"
            )
        margins[a.name] = margin
    return margins


def batch_error_bound(
    assertions: Sequence[LinearAssertion],
    margins: Mapping[str, Fraction],
    batch: ReportedBatch,
) -> Fraction:
    """``u_p = max(0, max_a max_overstatement_a(batch) / M_a)`` (Stark 2008, MACRO)."""
    bounds = [a.max_overstatement(batch.lines, batch.ballots) / margins[a.name] for a in assertions]
    return max([Fraction(0), *bounds])


def batch_relative_overstatement(
    assertions: Sequence[LinearAssertion],
    margins: Mapping[str, Fraction],
    reported: ReportedBatch,
    audited: AuditedBatch,
) -> Fraction:
    """MACRO of one batch: ``e_p = max_a ω_pa / M_a`` (may be negative: an understatement)."""
    return max(a.overstatement(reported.lines, audited.lines) / margins[a.name] for a in assertions)


def ppeb_weights(
    assertions: Sequence[LinearAssertion],
    batches: Sequence[ReportedBatch],
    resolution: int = DEFAULT_RESOLUTION,
) -> tuple[BatchBound, ...]:
    """Error bounds rounded up to ``1/resolution`` and the matching integer PPEB weights."""
    if resolution < 1:
        raise ValueError("resolution must be a positive integer")
    return _bounds(assertions, contest_margins(assertions, batches), batches, resolution)


def _bounds(
    assertions: Sequence[LinearAssertion],
    margins: Mapping[str, Fraction],
    batches: Sequence[ReportedBatch],
    resolution: int,
) -> tuple[BatchBound, ...]:
    out: list[BatchBound] = []
    for b in batches:
        weight = math.ceil(batch_error_bound(assertions, margins, b) * resolution)
        out.append(BatchBound(b.batch_id, Fraction(weight, resolution), weight))
    return tuple(out)


def taint(relative_overstatement: Fraction, error_bound: Fraction) -> Fraction:
    """``t = max(e_p, 0) / u_p``; understatements count as zero (conservative)."""
    if error_bound <= 0:
        raise ValueError("a batch with error bound 0 cannot have been drawn")
    return max(relative_overstatement, Fraction(0)) / error_bound


#: P-values are kept as multiples of 2^-96, rounded up after every draw.
P_RESOLUTION = 2**96


def round_up(p: Fraction) -> Fraction:
    """Keep a P-value exact while it is small, else round it up to a multiple of 2^-96.

    The exact product of hundreds of draws has numerators tens of thousands of digits long
    (and costs seconds to multiply); rounding *up* keeps every P-value within about 1e-29 of
    the exact one and never below it, so the audit stays conservative.
    """
    if p.denominator.bit_length() <= 256:
        return p
    return Fraction(-((-p.numerator * P_RESOLUTION) // p.denominator), P_RESOLUTION)


def kaplan_markov_p_values(taints: Sequence[Fraction], total_error_bound: Fraction) -> list[Fraction | None]:
    """P-value after each draw: ``P_n = Π_{j≤n} (1 - 1/U) / (1 - t_j)`` (Stark 2009, §4).

    ``None`` stands for +∞: a draw with taint 1 (the batch's whole error bound was realised)
    means the bound can no longer be met — escalate to a full hand count.
    """
    if total_error_bound <= 1:
        raise ValueError("the total error bound U must exceed 1")
    factor = 1 - 1 / total_error_bound
    p: Fraction | None = Fraction(1)
    out: list[Fraction | None] = []
    for t in taints:
        if p is not None:
            p = None if t >= 1 else round_up(p * factor / (1 - t))
        out.append(p)
    return out


def macro_sample_size(
    total_error_bound: Fraction,
    risk_limit: RiskLimit,
    *,
    p_value: Fraction = Fraction(1),
    expected_taint: Fraction = Fraction(0),
) -> int:
    """Draws needed to reach α from ``p_value`` if every draw has ``expected_taint``.

    Smallest n with ``p_value · ((1 - 1/U) / (1 - t))ⁿ ≤ α`` (checked exactly). With
    ``t = 0`` and ``p_value = 1`` this is the initial sample size
    ``⌈ln α / ln(1 - 1/U)⌉`` (Stark 2009; Arlo's ``macro.get_sample_sizes``).
    """
    alpha = as_risk_limit(risk_limit)
    if p_value <= alpha:
        return 0
    if total_error_bound <= 1:
        raise ValueError("the total error bound U must exceed 1")
    factor = (1 - 1 / total_error_bound) / (1 - expected_taint)
    if expected_taint < 0 or factor >= 1:
        raise ValueError(
            f"with expected taint {expected_taint} the P-value does not fall; choose 0 ≤ taint < 1/U"
        )
    n = max(0, math.ceil(math.log(alpha / p_value) / math.log(factor)) - 1)
    while p_value * factor**n > alpha:
        n += 1
    return n


# --- audit state ----------------------------------------------------------------------------

MacroStatusKind = Literal[
    "continue", "awaiting_counts", "confirmed", "full_hand_count", "hand_count_complete"
]


class MacroRound(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One round: its draws (in order), continuing the draws of earlier rounds."""

    round_number: int
    draws: tuple[BatchDraw, ...]


class MacroStatus(msgspec.Struct, frozen=True):
    """Where a MACRO audit stands.

    ``status``:
    ``awaiting_counts`` — drawn batches still lack hand counts (``pending``);
    ``confirmed`` — the P-value reached the risk limit;
    ``continue`` — draw ``next_round_size`` more (enough if they show no errors);
    ``full_hand_count`` — a draw had taint 1, or the next round would cover about as many
    draws as there are batches: count every batch by hand;
    ``hand_count_complete`` — every batch has a hand count; ``outcome_holds`` says whether the
    reported outcome survives it (the hand count is then the result).
    """

    status: MacroStatusKind
    risk_limit: Fraction
    total_error_bound: Fraction
    draws: int
    counted_draws: tuple[DrawResult, ...]
    p_value: Fraction | None
    pending: tuple[str, ...]
    next_round_size: int | None
    outcome_holds: bool | None = None


class MacroAudit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Immutable state of a MACRO audit; ``to_json`` gives canonical bytes for the ledger.

    ``margins`` (per assertion) and ``bounds`` (per batch: rounded-up error bound and PPEB
    weight) are derived from the reported counts once, in :meth:`start`, and stored so that
    they are published with the audit (anyone can re-draw the sample from the seed and the
    weights); :meth:`from_json` recomputes them and refuses state whose stored values differ.
    """

    risk_limit: Fraction
    seed: str
    assertions: tuple[LinearAssertion, ...]
    batches: tuple[ReportedBatch, ...]
    margins: Mapping[str, Fraction]
    bounds: tuple[BatchBound, ...]
    resolution: int = DEFAULT_RESOLUTION
    rounds: tuple[MacroRound, ...] = ()
    audited: tuple[AuditedBatch, ...] = ()

    @classmethod
    def start(
        cls,
        risk_limit: RiskLimit,
        seed: str,
        assertions: Sequence[LinearAssertion],
        batches: Sequence[ReportedBatch],
        *,
        resolution: int = DEFAULT_RESOLUTION,
    ) -> MacroAudit:
        """Validate inputs (unique ids, positive margins) and return an audit with no rounds."""
        if not seed:
            raise ValueError("the seed must not be empty")
        if not assertions:
            raise ValueError("at least one assertion is needed")
        if resolution < 1:
            raise ValueError("resolution must be a positive integer")
        ids = [b.batch_id for b in batches]
        if len(set(ids)) != len(ids):
            raise ValueError("batch ids must be unique")
        for b in batches:
            if b.ballots < 0 or any(v < 0 for v in b.lines.values()):
                raise ValueError(f"batch {b.batch_id!r} has negative counts")
        margins = contest_margins(assertions, batches)  # AuditImpossibleError if ≤ 0
        bounds = _bounds(assertions, margins, batches, resolution)
        return cls(
            as_risk_limit(risk_limit),
            seed,
            tuple(assertions),
            tuple(batches),
            margins,
            bounds,
            resolution,
        )

    # derived quantities
    def total_error_bound(self) -> Fraction:
        """``U``: the sum of the (rounded-up) batch error bounds."""
        return Fraction(sum(b.weight for b in self.bounds), self.resolution)

    def draws(self) -> tuple[BatchDraw, ...]:
        """All draws so far, in order."""
        return tuple(d for r in self.rounds for d in r.draws)

    def initial_sample_size(self) -> int:
        """Draws that confirm the outcome at the risk limit if they find no errors."""
        return macro_sample_size(self.total_error_bound(), self.risk_limit)

    # transitions
    def draw_round(self, sample_size: int) -> MacroAudit:
        """Draw ``sample_size`` more batches (PPEB, continuing earlier draws) as a new round."""
        if sample_size <= 0:
            raise ValueError("a round must draw at least one batch")
        draws = sample_batches(
            self.seed,
            [(b.batch_id, b.weight) for b in self.bounds],
            sample_size,
            already_sampled=len(self.draws()),
        )
        new = MacroRound(len(self.rounds) + 1, tuple(draws))
        return msgspec.structs.replace(self, rounds=(*self.rounds, new))

    def record(self, counts: Sequence[AuditedBatch]) -> MacroAudit:
        """Add hand counts. Re-recording identical counts is a no-op; different ones are refused."""
        known = {b.batch_id: b for b in self.batches}
        lines = {line for b in self.batches for line in b.lines}
        have = {a.batch_id: a for a in self.audited}
        added: list[AuditedBatch] = []
        for c in counts:
            if c.batch_id not in known:
                raise ValueError(f"unknown batch {c.batch_id!r}")
            unknown = sorted(set(c.lines) - lines)
            if unknown:
                raise ValueError(f"batch {c.batch_id!r}: unknown lines {', '.join(unknown)}")
            if any(v < 0 for v in c.lines.values()):
                raise ValueError(f"batch {c.batch_id!r}: negative counts")
            previous = have.get(c.batch_id)
            if previous is not None:
                if dict(previous.lines) != dict(c.lines):
                    raise ValueError(
                        f"batch {c.batch_id!r} already has a different hand count; "
                        "a correction needs its own procedure"
                    )
                continue
            have[c.batch_id] = c
            added.append(c)
        return msgspec.structs.replace(self, audited=(*self.audited, *added))

    def status(self) -> MacroStatus:
        """Compute taints and the Kaplan–Markov P-value and say what happens next."""
        alpha = self.risk_limit
        margins = self.margins
        bounds = {b.batch_id: b for b in self.bounds}
        total = self.total_error_bound()
        reported = {b.batch_id: b for b in self.batches}
        audited = {a.batch_id: a for a in self.audited}
        draws = self.draws()

        if len(audited) == len(self.batches):
            holds = all(
                sum(
                    (a.margin(_with_base(a, reported[b].lines, audited[b].lines)) for b in reported),
                    Fraction(0),
                )
                > 0
                for a in self.assertions
            )
            return MacroStatus("hand_count_complete", alpha, total, len(draws), (), None, (), None, holds)

        results: list[DrawResult] = []
        p: Fraction | None = Fraction(1)
        best: Fraction | None = Fraction(1)
        factor = 1 - 1 / total
        pending: list[str] = []
        for i, d in enumerate(draws):
            hand = audited.get(d.batch_id)
            if hand is None:
                missing = (x.batch_id for x in draws[i:] if x.batch_id not in audited)
                pending = list(dict.fromkeys(missing))
                break
            e = batch_relative_overstatement(self.assertions, margins, reported[d.batch_id], hand)
            t = taint(e, bounds[d.batch_id].error_bound)
            if p is not None:
                p = None if t >= 1 else round_up(p * factor / (1 - t))
            if p is not None and best is not None and p < best:
                best = p
            results.append(DrawResult(d.draw, d.batch_id, e, t, p))
            if p is None:
                best = None
                break
            if best is not None and best <= alpha:
                break

        counted = tuple(results)
        n = len(draws)
        if best is not None and best <= alpha:
            return MacroStatus("confirmed", alpha, total, n, counted, best, (), None)
        if best is None:
            return MacroStatus("full_hand_count", alpha, total, n, counted, None, (), None)
        if pending:
            return MacroStatus("awaiting_counts", alpha, total, n, counted, best, tuple(pending), None)
        assert p is not None
        more = macro_sample_size(total, alpha, p_value=p)
        if n + more >= len(self.batches):
            return MacroStatus("full_hand_count", alpha, total, n, counted, best, (), None)
        return MacroStatus("continue", alpha, total, n, counted, best, (), more)

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys, fractions as strings) for a ledger entry."""
        return _codec.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> MacroAudit:
        """Inverse of :meth:`to_json`; re-validates the audit."""
        audit = _codec.decode(data, cls)
        fresh = cls.start(
            audit.risk_limit,
            audit.seed,
            audit.assertions,
            audit.batches,
            resolution=audit.resolution,
        )
        if dict(fresh.margins) != dict(audit.margins) or fresh.bounds != audit.bounds:
            raise ValueError("stored margins or error bounds do not match the reported counts")
        return audit


def _with_base(
    assertion: LinearAssertion, reported: Mapping[str, int], audited: Mapping[str, int]
) -> Mapping[str, int]:
    """Audited lines, with the assertion's base line taken from the report if not recounted."""
    base = assertion.base_line
    if base is not None and base not in audited:
        return {**audited, base: reported.get(base, 0)}
    return audited

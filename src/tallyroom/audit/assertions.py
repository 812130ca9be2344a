"""Linear assertions: the facts a reported outcome rests on, each a margin that must be > 0.

A reported outcome is correct if every one of its assertions holds. An assertion is linear
in the counts of one station's protocol lines::

    margin(lines) = Σ_c terms[c] · lines[c]  +  base_coefficient · lines[base_line]

and its contest-wide margin is the sum over stations (linearity). Two families cover
plurality and party-list contests:

* **pairwise** "w beat l": ``terms = {w: 1, l: -1}``; margin ``V_w - V_l`` (Stark 2008,
  "Conservative statistical post-election audits"; Lindeman & Stark 2012, "A Gentle
  Introduction to Risk-limiting Audits", §4: one assertion per reported winner–loser pair).
* **threshold** "X passed t of base": ``V_X - t·B ≥ 0``; "X failed": ``t·B - V_X > 0``. With
  the base B a protocol line (voters who took part) the base enters through
  ``base_coefficient``; with the base "valid votes" (the sum of the choice lines) it is folded
  into ``terms`` (``1 - t`` for X, ``-t`` for every other choice).

The overstatement of an assertion by a station is ``margin(reported) - margin(audited)``: the
votes by which the reported count made the outcome look safer than it is. MACRO divides it by
the contest-wide margin (Stark 2008, "A sharper discrepancy measure for post-election
audits").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Literal

import msgspec

AssertionKind = Literal["pairwise", "threshold_passed", "threshold_failed", "custom"]


class AuditImpossibleError(ValueError):
    """The reported outcome has no positive margin (a tie or a wrong assertion): count by hand."""


class LinearAssertion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One linear assertion ``Σ terms[c]·lines[c] + base_coefficient·lines[base_line] > 0``.

    ``terms`` are coefficients on choice lines (votes that a recount can move between
    choices); ``base_line`` (optional) names a line that is not a choice, e.g. the number of
    voters who took part, weighted by ``base_coefficient``. ``description`` is for people.
    """

    name: str
    contest: str
    terms: Mapping[str, Fraction]
    kind: AssertionKind = "custom"
    base_line: str | None = None
    base_coefficient: Fraction = Fraction(0)
    description: str = ""

    def margin(self, lines: Mapping[str, int]) -> Fraction:
        """Margin of this assertion in one set of counts (missing lines count as 0)."""
        numerator, den = _scaled_margin(self, lines)
        return Fraction(numerator, den)

    def overstatement(self, reported: Mapping[str, int], audited: Mapping[str, int]) -> Fraction:
        """Votes by which ``reported`` overstates the margin relative to ``audited``.

        Positive: the reported count favoured the reported outcome. A base line absent from
        ``audited`` is taken from ``reported`` (it is not recounted).
        """
        if self.base_line is not None and self.base_line not in audited:
            audited = {**audited, self.base_line: reported.get(self.base_line, 0)}
        r, den = _scaled_margin(self, reported)
        a, _ = _scaled_margin(self, audited)
        return Fraction(r - a, den)

    def applies_to(self, lines: Mapping[str, int]) -> bool:
        """Whether a batch reporting ``lines`` carries this contest (reports any of its lines)."""
        return any(line in lines for line in self.terms) or (
            self.base_line is not None and self.base_line in lines
        )

    def max_overstatement(self, reported: Mapping[str, int], ballots: int) -> Fraction:
        """Largest possible overstatement in a batch of at most ``ballots`` ballots.

        A batch that reports none of the assertion's lines does not carry the contest and
        contributes 0 (as in Arlo's ``macro.compute_max_error``).

        The true counts are unknown but feasible: choice votes ``≥ 0`` summing to at most
        ``ballots`` (one vote per ballot in this contest), and the base line in
        ``[0, ballots]``. The smallest true margin is then
        ``ballots · (min(0, min terms) + min(0, base_coefficient))``, and the bound is the
        reported margin minus it (Stark 2008: ``u_p = (v_wp - v_lp + b_p) / V_wl`` for a
        pairwise assertion, before dividing by the margin).
        """
        if not self.applies_to(reported):
            return Fraction(0)
        worst_term = min((*self.terms.values(), Fraction(0)))
        worst_base = min(self.base_coefficient, Fraction(0)) if self.base_line else Fraction(0)
        return self.margin(reported) - ballots * (worst_term + worst_base)


#: Each assertion's coefficients as integers over their common denominator, by ``id`` (with
#: the assertion, so that the id cannot be reused): a reconciliation evaluates the same few
#: dozen assertions on every station whose two counts differ, thousands of times each.
_SCALED: dict[int, tuple[LinearAssertion, int, tuple[tuple[str, int], ...]]] = {}


def _scaled_margin(a: LinearAssertion, lines: Mapping[str, int]) -> tuple[int, int]:
    """``(margin × den, den)``: the margin exactly, in integers (Fraction sums are far slower)."""
    got = _SCALED.get(id(a))
    if got is None or got[0] is not a:
        if len(_SCALED) > 10_000:
            _SCALED.clear()
        den = math.lcm(a.base_coefficient.denominator, *(c.denominator for c in a.terms.values()))
        terms = [(line, c.numerator * (den // c.denominator)) for line, c in a.terms.items()]
        if a.base_line is not None:
            c = a.base_coefficient
            terms.append((a.base_line, c.numerator * (den // c.denominator)))
        got = _SCALED[id(a)] = (a, den, tuple(terms))
    acc = 0
    for line, k in got[2]:
        value = lines.get(line, 0)
        if value:
            acc += k * value
    return acc, got[1]


def percent(fraction: Fraction) -> str:
    """Format a fraction as a percentage without rounding noise: ``Fraction(1, 20) -> "5%"``."""
    value = fraction * 100
    if value.denominator == 1:
        return f"{value.numerator}%"
    return f"{float(value):.6g}%"


def pairwise_assertions(
    contest: str, totals: Mapping[str, int], winners: Sequence[str]
) -> tuple[LinearAssertion, ...]:
    """One assertion "w beat l" for every reported winner w and every other choice l.

    Inputs: ``totals`` reported votes per choice (only choice lines); ``winners`` the reported
    winners. Output: the assertions, winners and losers in the order of ``totals``.
    """
    unknown = [w for w in winners if w not in totals]
    if unknown:
        raise ValueError(f"winners not among the choices: {', '.join(unknown)}")
    winner_set = set(winners)
    out: list[LinearAssertion] = []
    for w in totals:
        if w not in winner_set:
            continue
        for loser in totals:
            if loser in winner_set:
                continue
            out.append(
                LinearAssertion(
                    name=f"{contest}: {w} > {loser}",
                    contest=contest,
                    terms={w: Fraction(1), loser: Fraction(-1)},
                    kind="pairwise",
                    description=f"{w} received more votes than {loser}",
                )
            )
    return tuple(out)


def threshold_assertions(
    contest: str,
    totals: Mapping[str, int],
    choices: Sequence[str],
    threshold: Fraction,
    *,
    base_line: str | None = None,
) -> tuple[LinearAssertion, ...]:
    """For each choice, the assertion that it passed (or failed) ``threshold`` of the base.

    Inputs: ``totals`` reported counts including the base line if any; ``choices`` the
    party lines; ``threshold`` e.g. ``Fraction(5, 100)``; ``base_line`` the line holding the
    base (e.g. voters who took part) or ``None`` for valid votes (sum of ``choices``).
    A choice passes if ``votes ≥ threshold · base`` (as the Kyrgyz law's "at least 5%").
    Output: one "passed" or "failed" assertion per choice, in the order of ``choices``.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if base_line is not None and base_line not in totals:
        raise ValueError(f"base line {base_line!r} missing from totals")
    base_label = base_line if base_line is not None else "valid votes"
    out: list[LinearAssertion] = []
    for choice in choices:
        if base_line is None:
            terms = {c: (1 - threshold if c == choice else -threshold) for c in choices}
            base_coefficient = Fraction(0)
        else:
            terms = {choice: Fraction(1)}
            base_coefficient = -threshold
        passed = LinearAssertion(
            name=f"{contest}: {choice} passed {percent(threshold)}",
            contest=contest,
            terms=terms,
            kind="threshold_passed",
            base_line=base_line,
            base_coefficient=base_coefficient,
        )
        if passed.margin(totals) >= 0:
            out.append(
                msgspec.structs.replace(
                    passed,
                    description=f"{choice} has at least {percent(threshold)} of {base_label}",
                )
            )
        else:
            out.append(
                LinearAssertion(
                    name=f"{contest}: {choice} failed {percent(threshold)}",
                    contest=contest,
                    terms={c: -v for c, v in terms.items()},
                    kind="threshold_failed",
                    base_line=base_line,
                    base_coefficient=-base_coefficient,
                    description=f"{choice} has less than {percent(threshold)} of {base_label}",
                )
            )
    return tuple(out)

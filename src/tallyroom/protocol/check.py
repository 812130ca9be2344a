"""Check a protocol's lines against its contest's form and control rules.

Every problem is reported at once, each naming the line or rule and the values involved
(DESIGN invariant 5). Rules of severity `error` reject a protocol; `warning` rules accept it
with a flag that is stored and shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tallyroom.definition.compiled import CompiledContest
from tallyroom.definition.model import Severity

#: The largest count any one line of one station's protocol may hold. The largest polling
#: stations in the data we know (Russia 2016) have under 10,000 voters; ten million leaves a
#: wide margin for pseudo-stations (electronic voting) while refusing absurd numbers.
MAX_COUNT = 10_000_000


_INT_ONLY = {int}


@dataclass(frozen=True, slots=True)
class LineProblem:
    line: str
    message: str

    def __str__(self) -> str:
        return f"lines.{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    expr: str
    severity: Severity
    left: int
    right: int
    values: dict[str, int]

    def __str__(self) -> str:
        vals = ", ".join(f"{k}={v:,}" for k, v in self.values.items())
        return (
            f'rule "{self.rule}" ({self.expr}) {"fails" if self.severity == "error" else "warns"}:'
            f" {self.left:,} vs {self.right:,} with {vals}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "expr": self.expr,
            "severity": str(self.severity),
            "left": self.left,
            "right": self.right,
            "values": self.values,
        }


class ProtocolRejected(ValueError):
    """A protocol whose lines are malformed or that breaks an error rule."""

    def __init__(
        self, problems: Sequence[LineProblem] = (), violations: Sequence[Violation] = ()
    ) -> None:
        self.problems = list(problems)
        self.violations = list(violations)
        super().__init__("; ".join([*map(str, self.problems), *map(str, self.violations)]))


def counts_vector(contest: CompiledContest, lines: Mapping[str, object]) -> list[int]:
    """Turn `{line: count}` into the contest's vector, or raise naming every bad line."""
    if len(lines) == len(contest.line_ids) and tuple(lines) == contest.line_ids:
        # Fast path: every line present in form order, all plain non-negative ints in range.
        vals = list(lines.values())
        if set(map(type, vals)) == _INT_ONLY:
            ints: list[int] = vals  # type: ignore[assignment]  # every value is an int
            if min(ints) >= 0 and max(ints) <= MAX_COUNT:
                return ints
    problems: list[LineProblem] = []
    vec = [0] * len(contest.line_ids)
    index = contest.line_index
    for name, value in lines.items():
        i = index.get(name)
        if i is None:
            problems.append(LineProblem(name, f'not a line of contest "{contest.id}"'))
        elif type(value) is not int:
            problems.append(LineProblem(name, f"must be a whole number, got {value!r}"))
        elif value < 0:
            problems.append(LineProblem(name, f"must be ≥ 0, got {value}"))
        elif value > MAX_COUNT:
            problems.append(
                LineProblem(name, f"{value} is larger than any station can count ({MAX_COUNT:,})")
            )
        else:
            vec[i] = value
    for name in contest.line_ids:
        if name not in lines:
            problems.append(LineProblem(name, "missing"))
    if problems:
        raise ProtocolRejected(problems)
    return vec


def evaluate_rules(contest: CompiledContest, counts: Sequence[int]) -> list[Violation]:
    """Every rule of the contest that the counts break (errors and warnings)."""
    out: list[Violation] = []
    for r in contest.rules:
        if r.holds(counts):
            continue
        cmp = r.comparison
        values = {contest.line_ids[i]: counts[i] for i in r.line_indices}
        out.append(
            Violation(
                rule=r.rule.id,
                expr=r.rule.expr,
                severity=r.rule.severity,
                left=cmp.left.value(values),
                right=cmp.right.value(values),
                values=values,
            )
        )
    return out


def check_counts(contest: CompiledContest, counts: Sequence[int]) -> list[Violation]:
    """Raise `ProtocolRejected` if an error rule fails; return the warnings otherwise."""
    if contest.all_rules_hold(counts):
        return []
    violations = evaluate_rules(contest, counts)
    if any(v.severity == Severity.ERROR for v in violations):
        raise ProtocolRejected(violations=violations)
    return violations

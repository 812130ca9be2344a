"""Control-rule expressions: linear integer arithmetic over protocol lines.

A rule is a comparison between two linear expressions over line ids, integer constants and
`sum(choices)`, e.g. `registered >= issued_early + issued_station + issued_outside` or
`valid == sum(choices)`. Laws state their control relationships in exactly this shape
(Russian Federal Law 20-FZ art. 67 and the CEC's protocol instructions; Kyrgyz CEC protocol
forms), so nothing more general is accepted: no calls besides `sum(choices)`, no division, no
attribute access. Expressions are parsed with Python's `ast` module and compiled into a
closure over a counts vector, so evaluating a protocol costs a few microseconds.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_COMPARATORS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.GtE: ">=",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.Lt: "<",
}


class ExpressionError(ValueError):
    """An expression that is not a comparison of linear integer terms over known lines."""


@dataclass(frozen=True, slots=True)
class Linear:
    """A linear combination `Σ coef·line + constant` with integer coefficients."""

    terms: tuple[tuple[str, int], ...]
    constant: int

    def value(self, counts: Mapping[str, int]) -> int:
        return sum(coef * counts[name] for name, coef in self.terms) + self.constant

    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.terms)


@dataclass(frozen=True, slots=True)
class Comparison:
    left: Linear
    op: str
    right: Linear

    def names(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for name in (*self.left.names(), *self.right.names()):
            seen.setdefault(name, None)
        return tuple(seen)


def _combine(a: dict[str, int], b: Mapping[str, int], sign: int) -> dict[str, int]:
    out = dict(a)
    for name, coef in b.items():
        out[name] = out.get(name, 0) + sign * coef
    return out


def _int_constant(node: ast.expr) -> int | None:
    """An integer literal, possibly negated (`-1` parses as a unary minus on 1)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_constant(node.operand)
        return None if inner is None else -inner
    return None


def _linear(node: ast.expr, known: set[str], choices: Sequence[str]) -> tuple[dict[str, int], int]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        lt, lc = _linear(node.left, known, choices)
        rt, rc = _linear(node.right, known, choices)
        sign = 1 if isinstance(node.op, ast.Add) else -1
        return _combine(lt, rt, sign), lc + sign * rc
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for const, other in ((node.left, node.right), (node.right, node.left)):
            k = _int_constant(const)
            if k is not None:
                terms, c = _linear(other, known, choices)
                return {n: k * v for n, v in terms.items()}, k * c
        raise ExpressionError("multiplication is only allowed by an integer constant")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        terms, c = _linear(node.operand, known, choices)
        return {n: -v for n, v in terms.items()}, -c
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return {}, node.value
    if isinstance(node, ast.Name):
        if node.id not in known:
            raise ExpressionError(f'unknown line "{node.id}"')
        return {node.id: 1}, 0
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "sum"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id == "choices"
    ):
        return {c: 1 for c in choices}, 0
    raise ExpressionError(f"not allowed in a rule: {ast.unparse(node)!r}")


def parse_rule(expr: str, known: set[str], choices: Sequence[str]) -> Comparison:
    """Parse `LEFT op RIGHT` into two linear terms over the given line ids.

    `choices` are the ids that `sum(choices)` expands to; `known` must include them.
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    body = tree.body
    if not isinstance(body, ast.Compare) or len(body.ops) != 1:
        raise ExpressionError("a rule must be one comparison: LEFT (==|!=|>=|<=|>|<) RIGHT")
    op = _COMPARATORS.get(type(body.ops[0]))
    if op is None:
        raise ExpressionError("a rule must compare with ==, !=, >=, <=, > or <")
    lt, lc = _linear(body.left, known, choices)
    rt, rc = _linear(body.comparators[0], known, choices)
    return Comparison(
        Linear(tuple((n, c) for n, c in lt.items() if c), lc),
        op,
        Linear(tuple((n, c) for n, c in rt.items() if c), rc),
    )


def parse_linear(expr: str, known: set[str], choices: Sequence[str]) -> Linear:
    """Parse a linear expression (used for a form's figures, e.g. `took_part`)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    terms, const = _linear(tree.body, known, choices)
    return Linear(tuple((n, c) for n, c in terms.items() if c), const)


def _source(lin: Linear, index: Mapping[str, int]) -> str:
    """`(c[1] + c[2] - 3*c[5] + 7)`: coefficients of ±1 and a zero constant are left out."""
    out = ""
    for name, coef in lin.terms:
        sign, size = ("-", -coef) if coef < 0 else ("+", coef)
        term = f"c[{index[name]}]" if size == 1 else f"{size}*c[{index[name]}]"
        out = (f"-{term}" if sign == "-" else term) if not out else f"{out} {sign} {term}"
    if lin.constant or not out:
        sign, size = ("-", -lin.constant) if lin.constant < 0 else ("+", lin.constant)
        out = f"{sign}{size}" if not out else f"{out} {sign} {size}"
    return f"({out})"


def compile_comparison(
    cmp: Comparison, index: Mapping[str, int]
) -> Callable[[Sequence[int]], bool]:
    """Compile a comparison into `f(counts_vector) -> holds`.

    The generated source is built only from validated integers and indices, never from the
    user's text, so evaluating it cannot run anything but arithmetic.
    """
    src = f"lambda c: {_source(cmp.left, index)} {cmp.op} {_source(cmp.right, index)}"
    fn: Callable[[Sequence[int]], bool] = eval(compile(src, "<rule>", "eval"), {"__builtins__": {}})
    return fn


def compile_rule_sides(
    comparisons: Sequence[Comparison], index: Mapping[str, int]
) -> Callable[[Sequence[int]], tuple[int | bool, ...]]:
    """Compile `f(counts_vector) -> (left₀, right₀, holds₀, left₁, right₁, holds₁, …)`: both
    sides of every comparison and whether it holds, in one call (a published rule check
    shows all three). Built like :func:`compile_comparison`, from validated integers and
    indices only; each side is computed once and compared as computed."""
    parts = []
    for i, cmp in enumerate(comparisons):
        parts += [
            f"(l{i} := {_source(cmp.left, index)})",
            f"(r{i} := {_source(cmp.right, index)})",
            f"l{i} {cmp.op} r{i}",
        ]
    src = f"lambda c: ({', '.join(parts)},)" if parts else "lambda c: ()"
    fn: Callable[[Sequence[int]], tuple[int | bool, ...]] = eval(
        compile(src, "<rules>", "eval"), {"__builtins__": {}}
    )
    return fn


def compile_linear(lin: Linear, index: Mapping[str, int]) -> Callable[[Sequence[int]], int]:
    src = f"lambda c: {_source(lin, index)}"
    fn: Callable[[Sequence[int]], int] = eval(
        compile(src, "<figure>", "eval"), {"__builtins__": {}}
    )
    return fn


def compile_failing(
    comparisons: Sequence[Comparison], index: Mapping[str, int]
) -> Callable[[Sequence[Sequence[int]]], list[int]]:
    """Compile `f(list of counts) -> positions of those breaking any comparison`.

    One call checks a whole chunk of protocols, the rules inlined in one comprehension. A sum
    that several rules share (`sum(choices)`, the ballots issued) is computed once per
    protocol: its first use names it (`:=`), later uses read the name, and since the rules
    are tested left to right a later use always comes after the first.
    """
    if not comparisons:
        return lambda rows: []
    sources = [_source(side, index) for c in comparisons for side in (c.left, c.right)]
    repeated = {src for src in sources if sources.count(src) > 1 and ("+" in src or "-" in src[2:])}
    names: dict[str, str] = {}

    def term(src: str) -> str:
        if src not in repeated:
            return src
        if src in names:
            return names[src]
        names[src] = f"_s{len(names)}"
        return f"({names[src]} := {src})"

    body = " and ".join(
        f"({term(sources[2 * i])} {c.op} {term(sources[2 * i + 1])})" for i, c in enumerate(comparisons)
    )
    fn: Callable[[Sequence[Sequence[int]]], list[int]] = eval(
        compile(f"lambda rows: [i for i, c in enumerate(rows) if not ({body})]", "<rules>", "eval"),
        {"__builtins__": {"enumerate": enumerate}},
    )
    return fn


def compile_all(
    comparisons: Sequence[Comparison], index: Mapping[str, int]
) -> Callable[[Sequence[int]], bool]:
    """Compile `f(counts) -> every comparison holds` as one expression."""
    if not comparisons:
        return lambda c: True
    body = " and ".join(
        f"({_source(c.left, index)} {c.op} {_source(c.right, index)})" for c in comparisons
    )
    fn: Callable[[Sequence[int]], bool] = eval(
        compile(f"lambda c: {body}", "<rules>", "eval"), {"__builtins__": {}}
    )
    return fn

"""Exact integer apportionment for synthetic elections: split totals so that sums stay exact.

Two tools, both pure and deterministic:

* :func:`largest_remainder` splits one integer total over integer weights by the largest
  remainder (Hamilton / Hare) rule, with optional per-item upper bounds. Ties go to the
  earlier item, so the result depends on nothing but the inputs.
* :func:`fit_matrix` builds a non-negative integer matrix whose row sums and column sums are
  exactly the given totals and whose shape follows a positive seed matrix: iterative
  proportional fitting (Deming & Stephan 1940) in floating point, then every column split by
  largest remainder, then single-ballot transfers inside columns until every row sum is exact
  ("controlled rounding"). Floats only ever shape *weights*; every count is an exact integer.

Example: the 2021 Kyrgyz list seats, Hare quota over the six parties above the thresholds::

    >>> largest_remainder(54, [222005, 174470, 141009, 106955, 90223, 79025])
    [15, 12, 9, 7, 6, 5]
"""

from __future__ import annotations

from collections.abc import Sequence

#: Floats become integer weights at this resolution (a millionth of a unit).
WEIGHT_SCALE = 1_000_000


class ApportionError(ValueError):
    """The totals cannot be split as asked (negative numbers, or caps below the total)."""


def int_weights(values: Sequence[float]) -> list[int]:
    """Non-negative floats as integer weights at :data:`WEIGHT_SCALE` resolution."""
    out = []
    for v in values:
        if v < 0:
            raise ApportionError(f"a weight must be ≥ 0, got {v}")
        out.append(round(v * WEIGHT_SCALE))
    return out


def largest_remainder(
    total: int, weights: Sequence[int], caps: Sequence[int] | None = None
) -> list[int]:
    """Split `total` over `weights` by largest remainder; `caps[i]` bounds item i.

    Returns integers summing exactly to `total`. Items of weight 0 get 0 (unless every weight
    is 0, which is refused when `total` > 0). With caps, items that would exceed their cap are
    fixed at it and the rest is split again over the others, until nothing exceeds its cap.
    """
    if total < 0:
        raise ApportionError(f"the total must be ≥ 0, got {total}")
    if any(w < 0 for w in weights):
        raise ApportionError("weights must be ≥ 0")
    n = len(weights)
    if caps is not None:
        if len(caps) != n:
            raise ApportionError("caps and weights differ in length")
        if sum(c for c, w in zip(caps, weights, strict=True) if w > 0) < total:
            raise ApportionError(f"the caps allow less than the total {total}")
    result = [0] * n
    free = [i for i in range(n) if weights[i] > 0]
    remaining = total
    while True:
        part = _hamilton(remaining, [weights[i] for i in free])
        if caps is None:
            for i, v in zip(free, part, strict=True):
                result[i] = v
            return result
        over = [i for i, v in zip(free, part, strict=True) if v > caps[i]]
        if not over:
            for i, v in zip(free, part, strict=True):
                result[i] = v
            return result
        for i in over:
            result[i] = caps[i]
            remaining -= caps[i]
        fixed = set(over)
        free = [i for i in free if i not in fixed]


def _hamilton(total: int, weights: Sequence[int]) -> list[int]:
    whole = sum(weights)
    if whole == 0:
        if total == 0:
            return [0] * len(weights)
        raise ApportionError(f"cannot split {total} over weights that are all 0")
    floors = []
    remainders = []
    for i, w in enumerate(weights):
        q, r = divmod(total * w, whole)
        floors.append(q)
        remainders.append((-r, i))
    short = total - sum(floors)
    for _, i in sorted(remainders)[:short]:
        floors[i] += 1
    return floors


def fit_matrix(
    seed: Sequence[Sequence[float]],
    row_totals: Sequence[int],
    col_totals: Sequence[int],
    *,
    max_iterations: int = 200,
) -> list[list[int]]:
    """An integer matrix with exactly these row and column sums, shaped like `seed`.

    `seed[i][j]` > 0 wherever a count may fall. Raises :class:`ApportionError` when the
    margins disagree or a row or column with a positive total has no positive seed cell.
    """
    rows, cols = len(row_totals), len(col_totals)
    if sum(row_totals) != sum(col_totals):
        raise ApportionError(
            f"row totals sum to {sum(row_totals)}, column totals to {sum(col_totals)}"
        )
    if any(t < 0 for t in (*row_totals, *col_totals)):
        raise ApportionError("totals must be ≥ 0")
    if len(seed) != rows or any(len(r) != cols for r in seed):
        raise ApportionError("the seed matrix does not match the totals")
    w = [[float(x) if x > 0 else 0.0 for x in r] for r in seed]
    for i in range(rows):
        if row_totals[i] > 0 and not any(w[i]):
            raise ApportionError(f"row {i} must hold {row_totals[i]} but has no positive seed")
        if row_totals[i] == 0:
            w[i] = [0.0] * cols
    for j in range(cols):
        if col_totals[j] == 0:
            for i in range(rows):
                w[i][j] = 0.0
        elif not any(w[i][j] for i in range(rows)):
            raise ApportionError(f"column {j} must hold {col_totals[j]} but has no positive seed")

    for _ in range(max_iterations):
        col_sums = [0.0] * cols
        for r in w:
            for j, x in enumerate(r):
                col_sums[j] += x
        factors = [t / s if s > 0 else 0.0 for t, s in zip(col_totals, col_sums, strict=True)]
        worst = 0.0
        for i, r in enumerate(w):
            for j in range(cols):
                r[j] *= factors[j]
            s = sum(r)
            worst = max(worst, abs(s - row_totals[i]))
            if s > 0:
                f = row_totals[i] / s
                w[i] = [x * f for x in r]
        if worst < 0.25:
            break
    # Finish on the columns so that they are exact in floating point before rounding.
    col_sums = [sum(w[i][j] for i in range(rows)) for j in range(cols)]
    for j in range(cols):
        if col_sums[j] > 0:
            f = col_totals[j] / col_sums[j]
            for i in range(rows):
                w[i][j] *= f

    out = [[0] * cols for _ in range(rows)]
    for j in range(cols):
        column = largest_remainder(col_totals[j], int_weights([w[i][j] for i in range(rows)]))
        for i in range(rows):
            out[i][j] = column[i]
    _fix_rows(out, w, row_totals)
    return out


def _fix_rows(out: list[list[int]], fitted: list[list[float]], row_totals: Sequence[int]) -> None:
    """Move single units inside columns, from rows over their total to rows under it."""
    diff = [sum(r) - t for r, t in zip(out, row_totals, strict=True)]
    over = [i for i, d in enumerate(diff) if d > 0]
    under = [i for i, d in enumerate(diff) if d < 0]
    oi = ui = 0
    cols = len(out[0]) if out else 0
    while oi < len(over) and ui < len(under):
        a, b = over[oi], under[ui]
        best, best_gain = -1, 0.0
        for j in range(cols):
            if out[a][j] <= 0 or fitted[b][j] <= 0:
                continue
            gain = (out[a][j] - fitted[a][j]) - (out[b][j] - fitted[b][j])
            if best < 0 or gain > best_gain:
                best, best_gain = j, gain
        if best < 0:  # no column that row b may receive from row a: try the next donor
            for j in range(cols):
                if out[a][j] > 0:
                    best = j
                    break
        out[a][best] -= 1
        out[b][best] += 1
        diff[a] -= 1
        diff[b] += 1
        if diff[a] == 0:
            oi += 1
        if diff[b] == 0:
            ui += 1

"""Seat allocation speed: 1,000 parties × 1,000 seats, every method, against votelib.

    .venv/bin/python benchmarks/bench_seats.py [--repeat N]

Prints, per method, the best time of N runs for tallyroom and for votelib on the same input in
the same run, the ratio, and whether tallyroom stays within the 5 ms budget (issue 3). The input
is fixed (seeded), and the two results are compared so the timing is of equal work. Exits 1 if
any method is over budget or the results differ.

votelib 0.4.0's "huntington_hill" divisor is a Decimal its own code cannot divide by, so it is
given the same divisor as a Fraction of a 28-digit Decimal square root, with the first seats in
advance (``prev_gains``), which is how votelib expects Huntington–Hill to be run.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from votelib.component.divisor import modified_first_coef, sainte_lague
from votelib.evaluate.proportional import HighestAverages, LargestRemainder

from tallyroom.seats import Method, allocate

PARTIES = 1000
SEATS = 1000
BUDGET_MS = 5.0


def votelib_runner(method: Method, votes: dict[str, int]) -> Callable[[], dict[str, int]]:
    quota = {
        Method.HARE: "hare",
        Method.DROOP: "droop",
        Method.HAGENBACH_BISCHOFF: "hagenbach_bischoff",
        Method.IMPERIALI_QUOTA: "imperiali",
    }
    if method in quota:
        lr = LargestRemainder(quota[method], on_overaward="subtract")
        return lambda: lr.evaluate(votes, SEATS)
    divisors: dict[Method, Any] = {
        Method.DHONDT: "d_hondt",
        Method.SAINTE_LAGUE: "sainte_lague",
        Method.MODIFIED_SAINTE_LAGUE: modified_first_coef(sainte_lague, Fraction(7, 5)),
        Method.DANISH: "danish",
        Method.IMPERIALI: "imperiali",
        Method.HUNTINGTON_HILL: lambda s: Fraction(Decimal(s * (s + 1)).sqrt()),
    }
    ha = HighestAverages(divisors[method])
    if method is Method.HUNTINGTON_HILL:
        first = dict.fromkeys(votes, 1)

        def run() -> dict[str, int]:
            extra = ha.evaluate(votes, SEATS, prev_gains=first)
            return {name: 1 + extra.get(name, 0) for name in votes}

        return run
    return lambda: ha.evaluate(votes, SEATS)


def best_ms(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    rng = random.Random(2021)
    votes = {f"party {i:04d}": rng.randint(1, 1_000_000) for i in range(PARTIES)}
    print(f"{PARTIES} parties × {SEATS} seats, best of {args.repeat} runs (ms)")
    print(f"{'method':24} {'tallyroom':>10} {'votelib':>10} {'ratio':>8}  budget")
    failed = False
    for method in Method:
        ours = allocate(votes, SEATS, method)
        oracle_run = votelib_runner(method, votes)
        oracle = oracle_run()
        same = ours.winners() == {k: v for k, v in oracle.items() if v}
        t_ours = best_ms(lambda m=method: allocate(votes, SEATS, m), args.repeat)  # type: ignore[misc]
        t_votelib = best_ms(oracle_run, max(3, args.repeat // 4))
        ok = t_ours <= BUDGET_MS and same
        failed |= not ok
        note = "ok" if ok else ("OVER" if same else "RESULTS DIFFER")
        print(
            f"{method.value:24} {t_ours:10.2f} {t_votelib:10.2f} {t_votelib / t_ours:7.1f}×  {note}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

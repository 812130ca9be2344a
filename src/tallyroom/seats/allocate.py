"""``allocate``: thresholds, against-all, the method, caps, ties — one explained result.

Example (Kyrgyzstan, 28 Nov 2021, the six lists that passed; CEC resolution No. 836)::

    >>> from tallyroom.seats import allocate, Base, PercentThreshold
    >>> votes = {"Ata-Jurt Kyrgyzstan": 222005, "Ishenim": 174470, "Yntymak": 141009,
    ...          "Alliance": 106955, "Butun Kyrgyzstan": 90223, "Yiman Nuru": 79025}
    >>> took_part = Base("voters who took part", 1281622)
    >>> result = allocate(votes, 54, "hare", cap=27,
    ...                   thresholds=[PercentThreshold(5, took_part)])
    >>> list(result.seats.values())
    [15, 12, 9, 7, 6, 5]

Order of work:

1. inputs are checked (whole non-negative votes, at least one seat, known names);
2. choices flagged ``against_all`` are set aside: they never take seats;
3. every threshold is decided for every other choice (numbers, base, pass/fail);
4. the method allocates the seats among the choices that passed;
5. if a cap is set and a choice got more, it is held at the cap and all seats not yet fixed are
   allocated again among the others by the same method, until no one exceeds it (Kyrgyzstan:
   at most 27 of 54 list seats in 2021, 65 of 120 in 2020 — Constitutional Law "On elections of
   the President and deputies of the Jogorku Kenesh", art. 60).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from fractions import Fraction

from tallyroom.seats.divisor import DEFAULT_FIRST_DIVISOR, divisor_rule, highest_averages
from tallyroom.seats.errors import NoEligibleChoicesError, SeatsError
from tallyroom.seats.exact import as_count, as_fraction, check_votes
from tallyroom.seats.model import (
    QUOTA_METHODS,
    Allocation,
    CapStep,
    Explanation,
    Method,
    MethodInfo,
    PartyLine,
    Provisional,
    RoundResult,
    Status,
    parse_method,
)
from tallyroom.seats.quota import largest_remainder, quota_rule
from tallyroom.seats.thresholds import Threshold, evaluate_thresholds
from tallyroom.seats.ties import ListedOrder, TieRecord, TieRule

__all__ = ["allocate", "method_info", "run_method"]

_SOURCES = {
    Method.HARE: "T. Hare (1859); Hamilton's method — Balinski & Young, Fair Representation "
    "(2001) ch. 2; Pukelsheim, Proportional Representation (2017) ch. 5; Kyrgyz Constitutional "
    "Law on elections art. 60; Russian Federal Law 20-FZ art. 88",
    Method.DROOP: "H. R. Droop (1881); Pukelsheim, Proportional Representation (2017) ch. 5",
    Method.HAGENBACH_BISCHOFF: "E. Hagenbach-Bischoff (1888); Pukelsheim (2017) ch. 5",
    Method.IMPERIALI_QUOTA: "Imperiali quota (Italy); Pukelsheim (2017) ch. 5",
    Method.DHONDT: "V. D'Hondt (1882) = Jefferson's method — Balinski & Young (2001); "
    "Pukelsheim (2017) ch. 4; Dutch Kieswet art. P 6–P 7",
    Method.SAINTE_LAGUE: "A. Sainte-Laguë (1910) = Webster's method — Balinski & Young (2001); "
    "Pukelsheim (2017) ch. 4",
    Method.MODIFIED_SAINTE_LAGUE: "Sainte-Laguë with a raised first divisor (Norway, Sweden, "
    "Nepal); Pukelsheim (2017) ch. 4",
    Method.DANISH: "Danish divisors 1, 4, 7, … (Folketing); Pukelsheim (2017) ch. 4",
    Method.IMPERIALI: "Imperiali divisors 1, 1.5, 2, … (Belgian municipal elections)",
    Method.HUNTINGTON_HILL: "Huntington–Hill (equal proportions), US House apportionment since "
    "1941 — Balinski & Young (2001)",
}


def method_info(method: Method, first_divisor: Fraction = DEFAULT_FIRST_DIVISOR) -> MethodInfo:
    """Name, family, rule in words and source citation of ``method``."""
    if method in QUOTA_METHODS:
        return MethodInfo(method.value, "largest remainder", quota_rule(method), _SOURCES[method])
    rule = divisor_rule(method, first_divisor)
    return MethodInfo(
        method.value,
        "highest averages",
        f"divisors {rule.sequence}; seats to the largest quotients votes ÷ divisor",
        _SOURCES[method],
    )


def run_method(
    names: Sequence[str],
    votes: Sequence[int],
    seats: int,
    method: Method,
    *,
    tie_rule: TieRule,
    position: Mapping[str, int],
    first_divisor: Fraction = DEFAULT_FIRST_DIVISOR,
) -> RoundResult:
    """One run of ``method`` (no thresholds, no caps) over already-checked inputs."""
    if method in QUOTA_METHODS:
        return largest_remainder(names, votes, seats, method, tie_rule=tie_rule, position=position)
    rule = divisor_rule(method, first_divisor)
    return highest_averages(names, votes, seats, rule, tie_rule=tie_rule, position=position)


def allocate(
    votes: Mapping[str, int],
    seats: int,
    method: Method | str,
    *,
    thresholds: Sequence[Threshold] = (),
    cap: int | None = None,
    against_all: Collection[str] = (),
    tie_rule: TieRule | None = None,
    first_divisor: Fraction | str | int | None = None,
    provisional: Provisional | None = None,
) -> Allocation:
    """Allocate ``seats`` among ``votes`` (``{name: votes}``, in ballot order) by ``method``.

    ``thresholds`` must all be passed (see :mod:`tallyroom.seats.thresholds`); ``cap`` is the most
    seats one choice may hold; ``against_all`` names the choices that never take seats;
    ``tie_rule`` breaks ties (default: :class:`ListedOrder` — input order) and every tie that
    decided a seat is in the explanation; ``first_divisor`` is only for modified Sainte-Laguë
    (default 7/5); ``provisional`` marks a projection on an incomplete count.

    Raises :class:`SeatsError` for bad input (zero seats, negative or non-integer votes, unknown
    names, a cap that makes the seats impossible) and :class:`NoEligibleChoicesError` when no choice
    passes the thresholds (the exception carries every threshold decision).
    """
    chosen = parse_method(method)
    counts = check_votes(votes)
    if not counts:
        raise SeatsError("no choices: nothing to allocate seats to")
    total_seats = as_count(seats, "number of seats", minimum=1)
    seat_cap = None if cap is None else as_count(cap, "seat cap", minimum=1)
    rule = tie_rule if tie_rule is not None else ListedOrder()
    if first_divisor is not None and chosen is not Method.MODIFIED_SAINTE_LAGUE:
        raise SeatsError(f"a first divisor applies only to modified-sainte-lague, not {chosen}")
    first = (
        DEFAULT_FIRST_DIVISOR
        if first_divisor is None
        else as_fraction(first_divisor, "first divisor")
    )
    info = method_info(chosen, first)
    excluded = set(against_all)
    unknown = sorted(excluded - counts.keys())
    if unknown:
        raise SeatsError(f"against-all choice(s) {', '.join(map(repr, unknown))} not in the votes")

    report = evaluate_thresholds(counts, thresholds, seats=total_seats, exclude=excluded)
    eligible = list(report.passed)
    if not eligible:
        if report.failed:
            raise NoEligibleChoicesError(
                f"no list passed the thresholds ({len(report.failed)} checked): no seats can be "
                "allocated",
                report.checks,
            )
        raise NoEligibleChoicesError(
            "no choice can take seats (only against-all lines)", report.checks
        )
    if sum(counts[name] for name in eligible) == 0:
        raise SeatsError("the lists eligible for seats have no votes: nothing to allocate")
    if seat_cap is not None and seat_cap * len(eligible) < total_seats:
        lists = len(eligible)
        raise SeatsError(
            f"a cap of {_plural(seat_cap, 'seat')} × {_plural(lists, 'eligible list')} = "
            f"{seat_cap * lists} is fewer than {total_seats} seats: the cap makes "
            f"{total_seats} seats impossible"
        )

    position = {name: i for i, name in enumerate(counts)}
    result, cap_steps, capped, ties = _allocate_with_cap(
        eligible, counts, total_seats, chosen, seat_cap, rule, position, first
    )

    final_lines = {line.name: line for line in result.lines}
    lines: list[PartyLine] = []
    seats_by_name: dict[str, int] = {}
    for name, count in counts.items():
        if name in excluded:
            line = PartyLine(name=name, votes=count, seats=0, status=Status.AGAINST_ALL)
        elif name in capped:
            line = capped[name]
        elif name in final_lines:
            line = final_lines[name]
        else:
            line = PartyLine(name=name, votes=count, seats=0, status=Status.BELOW_THRESHOLD)
        lines.append(line)
        seats_by_name[name] = line.seats

    notes = list(result.notes)
    if excluded:
        notes.insert(0, f"against all ({', '.join(sorted(excluded))}) never takes seats")
    if report.failed:
        notes.insert(0, f"{len(report.failed)} below the thresholds: {', '.join(report.failed)}")
    explanation = Explanation(
        method=info,
        seats=total_seats,
        votes_considered=sum(counts[name] for name in eligible),
        lines=tuple(lines),
        quota=result.quota,
        divisors=result.divisors,
        electoral_key=result.electoral_key,
        thresholds=report.checks,
        caps=tuple(cap_steps),
        ties=tuple(ties),
        notes=tuple(notes),
    )
    if sum(seats_by_name.values()) != total_seats:  # the invariant every path must keep
        raise RuntimeError(f"internal error: {seats_by_name} does not add up to {total_seats}")
    return Allocation(
        method=chosen.value,
        seats_total=total_seats,
        seats=seats_by_name,
        explanation=explanation,
        provisional=provisional,
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _allocate_with_cap(
    eligible: list[str],
    counts: Mapping[str, int],
    seats: int,
    method: Method,
    cap: int | None,
    tie_rule: TieRule,
    position: Mapping[str, int],
    first_divisor: Fraction,
) -> tuple[RoundResult, list[CapStep], dict[str, PartyLine], list[TieRecord]]:
    """Run the method; hold any choice over the cap at the cap and rerun for the others."""
    active = eligible
    remaining = seats
    steps: list[CapStep] = []
    capped: dict[str, PartyLine] = {}
    ties: list[TieRecord] = []
    round_no = 1
    while True:
        result = run_method(
            active,
            [counts[name] for name in active],
            remaining,
            method,
            tie_rule=tie_rule,
            position=position,
            first_divisor=first_divisor,
        )
        ties.extend(result.ties)
        over = [] if cap is None else [i for i, n in enumerate(result.seats) if n > cap]
        if not over:
            break
        assert cap is not None
        held = {active[i] for i in over}
        others = tuple(name for name in active if name not in held)
        for i in over:
            line = result.lines[i]
            steps.append(
                CapStep(
                    round=round_no,
                    name=line.name,
                    cap=cap,
                    seats_before=line.seats,
                    excess=line.seats - cap,
                    redistributed_to=others,
                )
            )
            capped[line.name] = PartyLine(
                name=line.name,
                votes=line.votes,
                seats=cap,
                status=Status.CAPPED,
                quotient=line.quotient,
                full_seats=line.full_seats,
                remainder=line.remainder,
                last_quotient=line.last_quotient,
                next_quotient=line.next_quotient,
            )
        remaining -= cap * len(over)
        active = list(others)
        if sum(counts[name] for name in active) == 0:
            raise SeatsError(
                f"after holding {', '.join(sorted(held))} at the cap of {cap}, the remaining "
                f"{remaining} seats would go to lists with no votes"
            )
        round_no += 1
        # a tie in a superseded round is kept: it may have decided who exceeded the cap
        ties = [_in_round(tie, round_no - 1, "before cap redistribution") for tie in ties]
    if round_no > 1:
        ties = [_in_round(tie, round_no, "final") for tie in ties]
    return result, steps, capped, ties


def _in_round(tie: TieRecord, round_no: int, what: str) -> TieRecord:
    if tie.stage.startswith("round "):
        return tie
    return TieRecord(
        stage=f"round {round_no} ({what}): {tie.stage}",
        value=tie.value,
        tied=tie.tied,
        places=tie.places,
        winners=tie.winners,
        rule=tie.rule,
        draws=tie.draws,
    )

"""The Dutch seat rules, as they changed from 1918 to today.

The whole country is one constituency; the *kiesdeler* (electoral quota) is the votes for all lists
divided by the seats, and every list first gets one seat per full kiesdeler (today Kieswet art.
P 5–P 6). What happens to the remaining seats (*restzetels*) changed over time; see
``docs/decisions/0003-seat-rules-by-year.md`` for the evidence behind each row:

============================  ==================================================================
Tweede Kamer 1918             largest remainders; only lists with at least ½ kiesdeler may take
                              a remainder seat (Kieswet of 1917, first election under PR)
Tweede Kamer 1922             the same with ¾ kiesdeler; each list counted on its own
Tweede Kamer 1925–1933        largest remainders, but a list takes a remainder seat only if its
                              votes per seat *including* that seat stay at least ¾ kiesdeler;
                              seats still left go by largest averages, at most one per list, to
                              lists with ≥ ¾ kiesdeler ("De verdeeling der zetels", Nieuws- en
                              Advertentieblad voor Zeeuwsch-Vlaanderen, 9 June 1931)
Tweede Kamer 1937–1972, 2017  D'Hondt (largest averages) among lists with at least one full
                              kiesdeler (Kieswet art. P 7; compendiumpolitiek.nl "Kiesdeler en
                              kiesdrempel": the kiesdeler is the threshold since 1937)
Tweede Kamer 1977–2012        as 1937, but lists could be combined (*lijstencombinaties*), which
                              per-list totals do not show: not supported here
Provinciale Staten 2019       D'Hondt among all lists (art. P 7(1): bodies of 19 seats or more;
                              no kiesdeler threshold — art. P 7(2) is for the Tweede Kamer)
============================  ==================================================================

Not applied: the limit of seats to the number of candidates on a list (the files have no
candidate counts) and the absolute-majority clause (a list with more than half of the votes gets
more than half of the seats; no list in the files has more than half of the votes). Ties are
decided by lot in the law; pass a :class:`~tallyroom.seats.ties.Lot` to do the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from tallyroom.seats.allocate import allocate
from tallyroom.seats.errors import SeatsError
from tallyroom.seats.exact import as_count, check_votes
from tallyroom.seats.model import Allocation, Explanation, MethodInfo, PartyLine, Status
from tallyroom.seats.thresholds import Base, FullQuota, ThresholdCheck
from tallyroom.seats.ties import ListedOrder, TieRecord, TieRule, settle

__all__ = ["PROVINCIALE_STATEN", "TWEEDE_KAMER", "DutchRule", "allocate_nl", "rule_for"]

TWEEDE_KAMER = "TK"
PROVINCIALE_STATEN = "PS"


@dataclass(frozen=True, slots=True)
class DutchRule:
    """One period's rule: an identifier, the years, the rule in words and its source."""

    key: str
    years: str
    description: str
    source: str


RULE_1918 = DutchRule(
    "tk-1918",
    "1918",
    "kiesdeler = votes ÷ seats; a seat per full kiesdeler; remainder seats by largest "
    "remainders to lists with at least 1/2 kiesdeler",
    "Kieswet 1917/1918; compendiumpolitiek.nl, 'Kiesdeler en kiesdrempel'",
)
RULE_1922 = DutchRule(
    "tk-1922",
    "1922",
    "as 1918, but remainder seats only to lists with at least 3/4 kiesdeler; each list on its own",
    "Kieswet as amended 1921; compendiumpolitiek.nl, 'Kiesdeler en kiesdrempel'",
)
RULE_1925 = DutchRule(
    "tk-1925",
    "1925–1933",
    "largest remainders, a remainder seat only if votes ÷ (seats + 1) ≥ 3/4 kiesdeler; seats "
    "still left by largest averages, at most one per list, among lists with at least 3/4 "
    "kiesdeler",
    "Kieswet as amended before 1925; 'De verdeeling der zetels', Nieuws- en Advertentieblad voor "
    "Zeeuwsch-Vlaanderen, 9 June 1931",
)
RULE_1937 = DutchRule(
    "tk-1937",
    "1937–1972, 2017",
    "D'Hondt among lists with at least one full kiesdeler",
    "Kieswet art. P 5–P 7 (P 7(2): no remainder seats below the kiesdeler); "
    "compendiumpolitiek.nl, 'De Tweede Kamer'",
)
RULE_PS = DutchRule(
    "ps-2019",
    "2019",
    "D'Hondt among all lists (19 seats or more)",
    "Kieswet art. P 5–P 7(1)",
)


def rule_for(body: str, year: int) -> DutchRule:
    """The rule in force for ``body`` (``"TK"`` or ``"PS"``) in ``year``; raise if unsupported."""
    if body == TWEEDE_KAMER:
        if year < 1918:
            raise SeatsError(f"no proportional Tweede Kamer election before 1918 (got {year})")
        if year < 1922:
            return RULE_1918
        if year < 1925:
            return RULE_1922
        if year < 1937:
            return RULE_1925
        if 1973 <= year <= 2016:
            raise SeatsError(
                f"Tweede Kamer {year}: from 1977 to 2012 lists could be combined "
                "(lijstencombinaties), which per-list votes do not show; not supported"
            )
        return RULE_1937
    if body == PROVINCIALE_STATEN:
        if year < 2019:
            raise SeatsError(
                f"Provinciale Staten {year}: only the rules from 2019 on (no list combinations) "
                "are supported"
            )
        return RULE_PS
    raise SeatsError(f"unknown Dutch body {body!r}: use 'TK' (Tweede Kamer) or 'PS'")


def allocate_nl(
    votes: Mapping[str, int],
    seats: int,
    *,
    body: str,
    year: int,
    tie_rule: TieRule | None = None,
) -> Allocation:
    """Seats for ``votes`` (``{list: votes}``) under the rule in force for ``body`` in ``year``."""
    rule = rule_for(body, year)
    counts = check_votes(votes, "list votes")
    total_seats = as_count(seats, "number of seats", minimum=1)
    if not counts or sum(counts.values()) == 0:
        raise SeatsError("no votes for any list: nothing to allocate")
    ties = tie_rule if tie_rule is not None else ListedOrder()
    if rule is RULE_PS:
        return allocate(counts, total_seats, "dhondt", tie_rule=ties)
    if rule is RULE_1937:
        return allocate(counts, total_seats, "dhondt", thresholds=[FullQuota()], tie_rule=ties)
    minimum = Fraction(1, 2) if rule is RULE_1918 else Fraction(3, 4)
    return _remainder_era(counts, total_seats, rule, minimum, ties)


def _remainder_era(
    counts: dict[str, int],
    seats: int,
    rule: DutchRule,
    minimum: Fraction,
    tie_rule: TieRule,
) -> Allocation:
    """1918–1933: full kiesdelers, then remainder seats under the period's eligibility rule."""
    names = list(counts)
    votes = [counts[name] for name in names]
    position = {name: i for i, name in enumerate(names)}
    total = sum(votes)
    kiesdeler = Fraction(total, seats)
    qn, qd = kiesdeler.numerator, kiesdeler.denominator
    full = [v * qd // qn for v in votes]
    rem = [v * qd - f * qn for v, f in zip(votes, full, strict=True)]
    remainders = [Fraction(r, qd) for r in rem]
    alloc = full[:]
    per_average = rule is RULE_1925
    base = Base("votes for all lists", total)

    # who may take a remainder seat
    checks: list[ThresholdCheck] = []
    eligible: list[int] = []
    for i, name in enumerate(names):
        factor = full[i] + 1 if per_average else 1
        required = minimum * factor * kiesdeler
        ok = votes[i] >= required
        label = (
            f"remainder seat: votes ÷ (full seats + 1) at least {minimum} kiesdeler"
            if per_average
            else f"remainder seat: at least {minimum} kiesdeler"
        )
        checks.append(
            ThresholdCheck(
                threshold=label,
                choice=name,
                passed=ok,
                measure="votes",
                value=votes[i],
                required=required,
                base=base,
                percent=minimum * factor * 100 / seats,
                share=Fraction(votes[i] * 100, total),
            )
        )
        if ok:
            eligible.append(i)

    records: list[TieRecord] = []
    notes = [f"kiesdeler = {kiesdeler} ({total} votes ÷ {seats} seats)"]
    left = seats - sum(alloc)
    won_remainder = [False] * len(names)
    first_round = True
    while left > 0 and eligible:
        places = min(left, len(eligible))
        chosen = _largest(
            eligible, remainders, places, names, position, tie_rule, records, "remainder seats"
        )
        for i in chosen:
            alloc[i] += 1
            won_remainder[i] = True
        left -= len(chosen)
        if per_average or not first_round:
            break
        first_round = False
        if left:
            notes.append(f"{left} seats left after one remainder seat each: a second round")
    if left > 0:
        pool = (
            [i for i in range(len(names)) if votes[i] >= minimum * kiesdeler]
            if per_average
            else [i for i in range(len(names)) if i not in set(eligible)]
        )
        if not pool:
            raise SeatsError(f"{left} seats cannot be allocated under the {rule.years} rule")
        notes.append(
            f"{left} seat{'s' if left != 1 else ''} left after the remainder round: "
            + ("largest averages" if per_average else "largest remainders of the other lists")
        )
        while left > 0:  # rounds of at most one seat per list (as Kieswet art. P 8 today)
            if per_average:
                score = [Fraction(votes[i], alloc[i] + 1) for i in range(len(names))]
                stage = "largest averages after the remainder round"
            else:
                score = remainders
                stage = "remainder seats, lists below the threshold"
            places = min(left, len(pool))
            for i in _largest(pool, score, places, names, position, tie_rule, records, stage):
                alloc[i] += 1
            left -= places

    lines = tuple(
        PartyLine(
            name=names[i],
            votes=votes[i],
            seats=alloc[i],
            status=Status.ALLOCATED,
            quotient=Fraction(votes[i] * qd, qn),
            full_seats=full[i],
            remainder=remainders[i],
            remainder_seat=won_remainder[i],
        )
        for i in range(len(names))
    )
    explanation = Explanation(
        method=MethodInfo(
            name=f"dutch {rule.key}",
            family="largest remainder",
            rule=rule.description,
            source=rule.source,
        ),
        seats=seats,
        votes_considered=total,
        lines=lines,
        quota=kiesdeler,
        thresholds=tuple(checks),
        ties=tuple(records),
        notes=tuple(notes),
    )
    return Allocation(
        method=f"dutch {rule.key}",
        seats_total=seats,
        seats={names[i]: alloc[i] for i in range(len(names))},
        explanation=explanation,
    )


def _largest(
    pool: list[int],
    score: list[Fraction],
    places: int,
    names: list[str],
    position: Mapping[str, int],
    tie_rule: TieRule,
    records: list[TieRecord],
    stage: str,
) -> list[int]:
    """The ``places`` members of ``pool`` with the largest ``score`` (ties by the rule)."""
    order = sorted(pool, key=lambda i: (-score[i], position[names[i]]))
    if places >= len(order):
        return order
    cut = score[order[places - 1]]
    above = [i for i in order if score[i] > cut]
    level = [i for i in order if score[i] == cut]
    room = places - len(above)
    if len(level) <= room:
        return above + level
    winners, record = settle(
        stage=stage,
        value=cut,
        tied=[names[i] for i in sorted(level)],
        places=room,
        rule=tie_rule,
        input_position=position,
    )
    records.append(record)
    won = set(winners)
    return above + [i for i in level if names[i] in won]

"""A checked definition turned into fast lookup tables: what intake, tally and pages use.

Each contest's protocol is a vector of integers in a fixed order (form lines, then choices);
rules and figures are compiled closures over that vector; each station knows the indices of
every area it counts towards, in every hierarchy. Nothing here touches a store or the web.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tallyroom.definition.load import LoadedDefinition, resolve_form
from tallyroom.definition.model import (
    Area,
    Choice,
    Contest,
    CountKind,
    Definition,
    Figure,
    Form,
    Name,
    Rule,
    Severity,
    Station,
)
from tallyroom.protocol.expr import (
    Comparison,
    compile_all,
    compile_comparison,
    compile_linear,
    parse_linear,
    parse_rule,
)


def name_in(name: Name, lang: str = "en") -> str:
    """A name in the requested language, falling back to English, then to any language."""
    if isinstance(name, str):
        return name
    return name.get(lang) or name.get("en") or next(iter(name.values()), "")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    comparison: Comparison
    holds: Callable[[Sequence[int]], bool]
    #: Indices of the lines the rule reads, to report their values when it fails.
    line_indices: tuple[int, ...]


@dataclass(frozen=True)
class CompiledContest:
    index: int
    contest: Contest
    form: Form
    #: Line ids in vector order: the form's lines, then one per choice.
    line_ids: tuple[str, ...]
    line_index: dict[str, int]
    choice_ids: tuple[str, ...]
    #: Vector index of the first choice line; choices occupy [choice_start, len(line_ids)).
    choice_start: int
    rules: tuple[CompiledRule, ...]
    figures: dict[Figure, Callable[[Sequence[int]], int]]
    figure_exprs: dict[Figure, str]
    #: Station indices voting in this contest.
    stations: tuple[int, ...]
    station_set: frozenset[int]
    #: For each area index, how many of this contest's stations lie inside it.
    stations_expected: dict[int, int]
    #: All rules (errors and warnings) in one compiled test: the common case costs one call.
    all_rules_hold: Callable[[Sequence[int]], bool]

    @property
    def id(self) -> str:
        return self.contest.id

    @property
    def official_count(self) -> CountKind:
        return self.contest.official_count

    def choice(self, choice_id: str) -> Choice:
        return self.contest.choices[self.choice_ids.index(choice_id)]

    def figure(self, fig: Figure, counts: Sequence[int]) -> int | None:
        fn = self.figures.get(fig)
        return None if fn is None else fn(counts)


@dataclass(frozen=True)
class CompiledElection:
    loaded: LoadedDefinition
    areas: tuple[Area, ...]
    area_index: dict[str, int]
    #: Area indices ordered so that every child comes before its parent.
    areas_bottom_up: tuple[int, ...]
    children: dict[int, tuple[int, ...]]
    stations: tuple[Station, ...]
    station_index: dict[str, int]
    #: For each station index, every area index it counts towards (ancestors in all hierarchies).
    station_areas: tuple[tuple[int, ...], ...]
    contests: tuple[CompiledContest, ...]
    contest_index: dict[str, int]
    roots: tuple[int, ...] = field(default=())
    #: For each station index, its own areas (one per hierarchy), as area indices.
    station_direct: tuple[tuple[int, ...], ...] = field(default=())
    #: For each area index, the area and all its ancestors.
    area_chain: tuple[tuple[int, ...], ...] = field(default=())

    @property
    def definition(self) -> Definition:
        return self.loaded.definition

    @property
    def sha256(self) -> str:
        return self.loaded.sha256

    def contest(self, contest_id: str) -> CompiledContest:
        return self.contests[self.contest_index[contest_id]]


def compile_election(loaded: LoadedDefinition) -> CompiledElection:
    """Build the lookup tables of a definition that `load_definition` already checked."""
    d = loaded.definition
    areas = tuple(d.areas)
    area_index = {a.id: i for i, a in enumerate(areas)}
    parent = [area_index[a.parent] if a.parent is not None else -1 for a in areas]
    children_l: dict[int, list[int]] = {i: [] for i in range(len(areas))}
    for i, p in enumerate(parent):
        if p >= 0:
            children_l[p].append(i)
    depth = [0] * len(areas)
    for i in range(len(areas)):
        n, k = i, 0
        while parent[n] >= 0:
            n, k = parent[n], k + 1
        depth[i] = k
    bottom_up = tuple(sorted(range(len(areas)), key=lambda i: -depth[i]))

    ancestors_cache: dict[int, tuple[int, ...]] = {}

    def ancestors(i: int) -> tuple[int, ...]:
        got = ancestors_cache.get(i)
        if got is None:
            chain = [i]
            while parent[chain[-1]] >= 0:
                chain.append(parent[chain[-1]])
            got = ancestors_cache[i] = tuple(chain)
        return got

    stations = tuple(d.stations)
    station_index = {s.id: i for i, s in enumerate(stations)}
    station_areas = tuple(
        tuple(dict.fromkeys(a for aid in s.areas for a in ancestors(area_index[aid])))
        for s in stations
    )
    contests = tuple(
        _compile_contest(d, ci, c, area_index, station_areas) for ci, c in enumerate(d.contests)
    )
    return CompiledElection(
        loaded=loaded,
        areas=areas,
        area_index=area_index,
        areas_bottom_up=bottom_up,
        children={k: tuple(v) for k, v in children_l.items()},
        stations=stations,
        station_index=station_index,
        station_areas=station_areas,
        contests=contests,
        contest_index={c.contest.id: c.index for c in contests},
        roots=tuple(i for i, p in enumerate(parent) if p < 0),
        station_direct=tuple(tuple(area_index[aid] for aid in s.areas) for s in stations),
        area_chain=tuple(ancestors(i) for i in range(len(areas))),
    )


#: Orders that hold for every protocol of every law (DESIGN invariant 2), checked at intake
#: so that a station can never bring a published total out of order.
_FIGURE_ORDER = (
    ("choices-le-valid", "sum(choices)", Figure.VALID),
    ("valid-le-ballots-cast", Figure.VALID, Figure.BALLOTS_CAST),
    ("ballots-cast-le-registered", Figure.BALLOTS_CAST, Figure.REGISTERED),
    ("took-part-le-registered", Figure.TOOK_PART, Figure.REGISTERED),
)


def _figure_order_rules(form: Form) -> list[Rule]:
    def expr(x: str | Figure) -> str | None:
        return form.figures.get(x) if isinstance(x, Figure) else x

    out = []
    for rule_id, small, big in _FIGURE_ORDER:
        a, b = expr(small), expr(big)
        if a is not None and b is not None:
            out.append(Rule(id=f"order:{rule_id}", expr=f"({a}) <= ({b})", severity=Severity.ERROR))
    return out


def _compile_contest(
    d: Definition,
    ci: int,
    c: Contest,
    area_index: dict[str, int],
    station_areas: tuple[tuple[int, ...], ...],
) -> CompiledContest:
    form = resolve_form(d, c.form)
    assert form is not None  # load_definition has checked it
    choice_ids = tuple(ch.id for ch in c.choices)
    line_ids = (*(ln.id for ln in form.lines), *choice_ids)
    line_index = {lid: i for i, lid in enumerate(line_ids)}
    known = set(line_ids)
    rules = []
    for rule in (*form.rules, *c.rules, *_figure_order_rules(form)):
        cmp = parse_rule(rule.expr, known, choice_ids)
        rules.append(
            CompiledRule(
                rule,
                cmp,
                compile_comparison(cmp, line_index),
                tuple(line_index[n] for n in cmp.names()),
            )
        )
    figures = {
        fig: compile_linear(parse_linear(expr, known, choice_ids), line_index)
        for fig, expr in form.figures.items()
    }
    all_hold = compile_all([r.comparison for r in rules], line_index)
    root = area_index[c.area]
    members = tuple(i for i, areas in enumerate(station_areas) if root in areas)
    expected: dict[int, int] = {}
    for s in members:
        for a in station_areas[s]:
            expected[a] = expected.get(a, 0) + 1
    return CompiledContest(
        index=ci,
        contest=c,
        form=form,
        line_ids=line_ids,
        line_index=line_index,
        choice_ids=choice_ids,
        choice_start=len(form.lines),
        rules=tuple(rules),
        figures=figures,
        figure_exprs=dict(form.figures),
        stations=members,
        station_set=frozenset(members),
        stations_expected=expected,
        all_rules_hold=all_hold,
    )


__all__ = [
    "CompiledContest",
    "CompiledElection",
    "CompiledRule",
    "Severity",
    "compile_election",
    "name_in",
]

"""The night's ingredients without a server: scaled elections, faults, broken bodies, the plan.

Each broken body is run through intake's own parser and checks, offline, so the answer the
simulator expects for a fault is the answer intake gives (the live runs check it again).
"""

from __future__ import annotations

import random
from collections import Counter

import msgspec
import pytest

from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import load_definition
from tallyroom.intake.errors import Rejection
from tallyroom.intake.signature import generate_key
from tallyroom.intake.submission import RegisteredKey, check_body
from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.simulate.faults import (
    DEFAULT_RATES,
    MALFORMED,
    MAX_BODY,
    Fault,
    FaultSpecError,
    malformed_body,
    misread,
    parse_faults,
    unbalanced,
)
from tallyroom.simulate.plan import HAND_WINDOW, MACHINE_WINDOW, NightOptions, Role, plan_night

N = 150
Small = tuple[CompiledElection, dict[str, list[tuple[str, str, dict[str, int]]]]]


@pytest.fixture(scope="module")
def small() -> Small:
    definition = kg.generate_definition(4, N)
    hand = kg.generate_protocols(definition, 4)
    machine = kg.machine_counts(hand, 4)
    election = compile_election(load_definition(msgspec.json.encode(definition), "d.json"))
    return election, {
        "hand": [(p.station, p.contest, p.lines) for p in hand],
        "machine": [(p.station, p.contest, p.lines) for p in machine],
    }


# -- scaled elections ------------------------------------------------------------------------


def test_the_official_shape_is_kept_for_2494_stations() -> None:
    assert kg.shape_for(2494) == kg.OFFICIAL_SHAPE
    assert kg.took_part_for(kg.OFFICIAL_SHAPE.registered) == 1_281_622


@pytest.mark.parametrize("n", [100, 150, 1000, 2000, 5000])
def test_scaled_shapes_keep_the_country_in_proportion(n: int) -> None:
    shape = kg.shape_for(n)
    assert shape.stations == n
    assert abs(shape.registered / n - 3_703_420 / 2494) < 1
    assert shape.smd_count == min(36, max(20, n // 10))
    assert shape.stations_abroad >= 1


def test_too_small_a_country_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 100"):
        kg.shape_for(99)


def test_a_scaled_election_passes_every_rule(small: Small) -> None:
    election, protocols = small
    assert len(election.stations) == N
    assert len({s.id for s in election.stations}) == N
    for kind, rows in protocols.items():
        assert len(rows) == 2 * N, kind  # the party list and one constituency per station
        for station, contest, lines in rows:
            c = election.contest(contest)
            assert c.all_rules_hold([lines[i] for i in c.line_ids]), (kind, station, contest)
    took_part = sum(
        lines["issued_station"] + lines["issued_outside"] + lines["issued_early"]
        for _s, c, lines in protocols["hand"]
        if c == kg.PARTY_LIST
    )
    assert took_part == kg.took_part_for(sum(s.registered for s in election.stations))


def test_large_countries_get_longer_station_numbers() -> None:
    definition = kg.generate_definition(1, 12_000)
    ids = [s.id for s in definition.stations]
    assert len(set(ids)) == 12_000
    assert any(len(i) > len("ps-1001") for i in ids)


# -- faults ----------------------------------------------------------------------------------


def test_fault_specs() -> None:
    assert parse_faults("all") == DEFAULT_RATES
    assert set(parse_faults("none").values()) == {0.0}
    rates = parse_faults("duplicate,forged=0.25")
    assert rates[Fault.DUPLICATE] == DEFAULT_RATES[Fault.DUPLICATE]
    assert rates[Fault.FORGED] == 0.25
    assert rates[Fault.SLOW] == 0.0
    assert all(0 < r < DEFAULT_RATES[f] for f, r in parse_faults("light").items())
    for bad, message in (("bogus", "unknown fault"), ("slow=2", "between 0 and 1"), ("slow=x", "number")):
        with pytest.raises(FaultSpecError, match=message):
            parse_faults(bad)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_each_broken_body_gets_the_answer_the_simulator_expects(kind: str, small: Small) -> None:
    election, protocols = small
    station, contest, lines = protocols["hand"][0]
    obj = {
        "election": election.sha256,
        "station": station,
        "contest": contest,
        "count_kind": "hand",
        "lines": lines,
        "sequence": 1,
        "time": "2021-11-28T20:00:00+06:00",
    }
    body = malformed_body(kind, obj, random.Random(1))
    status, reason = MALFORMED[kind]
    if kind == "too-large":
        assert len(body) > MAX_BODY
        return
    device = generate_key(station)
    key = RegisteredKey(device.key_id, station, device.signing_key.verify_key)
    with pytest.raises(Rejection) as info:
        check_body(election, key, body, {})
    assert (info.value.status, info.value.reason) == (status, reason)


def test_misreadings_pass_the_rules_and_unbalanced_ones_do_not(small: Small) -> None:
    election, protocols = small
    rng = random.Random(2)
    for _station, contest, lines in protocols["machine"][:40]:
        c = election.contest(contest)
        other = misread(lines, list(c.choice_ids), rng)
        assert other != lines
        assert c.all_rules_hold([other[i] for i in c.line_ids])
        broken = unbalanced(lines, list(c.choice_ids), rng)
        assert not c.all_rules_hold([broken[i] for i in c.line_ids])


# -- the plan --------------------------------------------------------------------------------


def test_the_plan_is_a_pure_function_of_the_seed(small: Small) -> None:
    election, protocols = small
    options = NightOptions(duration=100, rates=DEFAULT_RATES)
    a = plan_night(election, protocols, 9, options)
    b = plan_night(election, protocols, 9, options)
    c = plan_night(election, protocols, 10, options)
    assert a == b
    assert a != c


def test_the_plan_states_the_final_truth(small: Small) -> None:
    election, protocols = small
    options = NightOptions(
        duration=100, rates={f: 0.2 for f in Fault}, corrections=5, annulments=3, annul_kinds=("machine",)
    )
    plan = plan_night(election, protocols, 3, options)
    roles = Counter(p.role for d in plan.devices for p in d.protocols)
    assert roles[Role.CORRECTION] == 5
    annulled = [p for d in plan.devices for p in d.protocols if p.role == Role.ANNULMENT]
    assert len({p.station for p in annulled}) == 3
    assert {p.kind for p in annulled} == {"machine"}
    assert roles[Role.OUT_OF_ORDER] > 0 and roles[Role.CONFLICT] > 0
    for d in plan.devices:
        lo, hi = MACHINE_WINDOW if d.kind == "machine" else HAND_WINDOW
        assert lo * 100 <= d.at <= hi * 100
        for p in d.protocols:
            if p.role == Role.ANNULMENT:
                assert p.key not in plan.final
            else:
                assert plan.final[p.key] == p.truth
            if p.role in (Role.CORRECTION, Role.OUT_OF_ORDER, Role.CONFLICT):
                assert p.other is not None and p.other != p.truth
            if p.role in (Role.CORRECTION, Role.ANNULMENT, Role.OUT_OF_ORDER):
                assert Fault.REPLAY in p.faults
            assert p.malformed is None or Fault.MALFORMED in p.faults
    assert len(plan.final) == 4 * N - len(annulled)


def test_no_faults_means_a_clean_night(small: Small) -> None:
    election, protocols = small
    plan = plan_night(
        election,
        protocols,
        3,
        NightOptions(duration=10, rates=parse_faults("none"), corrections=0, annulments=0),
    )
    assert all(p.role == Role.NORMAL and not p.faults for d in plan.devices for p in d.protocols)
    assert len(plan.final) == 4 * N

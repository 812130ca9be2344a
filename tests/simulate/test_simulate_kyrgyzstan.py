"""The synthetic Kyrgyzstan 2021 election (tallyroom.simulate.kyrgyzstan).

Official figures: data/kg_2021_official/ (CEC resolution No. 836 of 15 Dec 2021 as reported by
TRT Kyrgyz, Kabar/Trend.az, Interfax, 24.kg); P-codes: data/kg_boundaries/ (OCHA COD-AB 2018);
2020 station data: data/kg_2020_parl_kloop/ (KloopMedia/ParliamentCalculatorV2 @1e616c2).
See ../shared/data/SOURCES.md. Tests that need those files skip when they are absent; the
others check against the figures the module embeds, which the data tests pin to the files.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml
from simulate_support import SEED, Generated

from support import shared_data
from tallyroom.definition.model import ContestKind
from tallyroom.protocol.check import check_counts, counts_vector, evaluate_rules
from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.simulate import kyrgyzstan_data as data

WINNERS = {
    "ata_jurt_kyrgyzstan": 222_005,
    "ishenim": 174_470,
    "yntymak": 141_009,
    "alliance": 106_955,
    "butun_kyrgyzstan": 90_223,
    "yiman_nuru": 79_025,
}
NINE = ["batken", "chui", "issyk-kul", "jalal-abad", "naryn", "osh-oblast", "talas", "bishkek",
        "osh-city"]


def _took_part(lines: dict[str, int]) -> int:
    return lines["issued_early"] + lines["issued_station"] + lines["issued_outside"]


def _national(protocols: list[kg.GeneratedProtocol]) -> Counter[str]:
    total: Counter[str] = Counter()
    for p in protocols:
        if p.contest == kg.PARTY_LIST:
            total.update(p.lines)
    return total


# -- the definition -------------------------------------------------------------------------------


def test_yaml_loads_and_round_trips(gen: Generated) -> None:
    # The fixture loaded gen.raw with load_definition (which raises listing every error).
    assert gen.election.loaded.raw == gen.raw
    assert gen.election.definition == gen.definition
    top = list(yaml.load(gen.raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    assert top == ["election", "profile", "hierarchies", "areas", "stations", "contests"]


def test_election_metadata(gen: Generated) -> None:
    e = gen.definition.election
    assert (e.id, e.date, e.languages) == ("kg-2021-parliament", "2021-11-28", ["ky", "ru", "en"])
    assert gen.definition.profile == "kyrgyzstan"
    assert isinstance(e.name, dict) and set(e.name) == {"ky", "ru", "en"}


def test_stations_and_registered_voters(gen: Generated) -> None:
    d = gen.definition
    assert len(d.stations) == 2_494
    abroad = [s for s in d.stations if s.abroad]
    assert len(abroad) == 59
    assert sum(s.registered for s in d.stations) == 3_703_420
    assert sum(s.registered for s in abroad) == 84_128
    areas = {a.id: a for a in d.areas}
    for s in d.stations:
        hierarchies = sorted(areas[a].hierarchy for a in s.areas)
        assert hierarchies == ["admin", "smd"], s.id
        assert (areas[s.areas[0]].id == "abroad") == s.abroad
        assert s.registered > 0 and s.id.isascii()
        assert isinstance(s.name, dict) and set(s.name) == {"ky", "ru", "en"}


def test_areas_regions_and_constituencies(gen: Generated) -> None:
    areas = gen.definition.areas
    regions = [a for a in areas if a.parent == "kg"]
    assert [a.id for a in regions] == [*NINE[:7], "bishkek", "osh-city", "abroad"]
    assert {a.name["en"] for a in regions if isinstance(a.name, dict)} >= {
        "Osh oblast", "Bishkek city", "Osh city", "Batken", "Chui", "Issyk-Kul", "Jalal-Abad",
        "Naryn", "Talas",
    }
    for a in areas:
        assert a.id.isascii()
        assert isinstance(a.name, dict) and set(a.name) == {"ky", "ru", "en"}
    smds = [a for a in areas if a.hierarchy == "smd"]
    assert [a.id for a in smds] == [f"smd-{i:02d}" for i in range(1, 37)]
    # Every constituency lies in one region (abroad votes in Bishkek's), Bishkek has several.
    region_of: dict[str, set[str]] = defaultdict(set)
    registered: Counter[str] = Counter()
    for s in gen.definition.stations:
        if not s.abroad:
            region_of[s.areas[1]].add(s.areas[0])
        registered[s.areas[1]] += s.registered
    assert all(len(r) == 1 for r in region_of.values()) and len(region_of) == 36
    per_region = Counter(next(iter(r)) for r in region_of.values())
    assert per_region["bishkek"] >= 4 and set(per_region) == set(NINE)
    # Roughly equal constituencies: none over twice the average (Talas, a single one, is largest).
    assert max(registered.values()) < 2 * 3_703_420 / 36


def test_p_codes_match_the_boundary_file(gen: Generated) -> None:
    geo = json.loads(shared_data("kg_boundaries", "kg_regions_geo.json").read_text("utf-8"))
    codes = {f["properties"]["ADM1_PCODE"] for f in geo["features"]}
    ours = {a.code for a in gen.definition.areas if a.parent == "kg" and a.code}
    assert ours == codes and len(codes) == 9
    by_code = {f["properties"]["ADM1_PCODE"]: f["properties"] for f in geo["features"]}
    for a in gen.definition.areas:
        if a.code in by_code:
            assert isinstance(a.name, dict)
            assert a.name["en"].split()[0] == by_code[a.code]["ADM1_EN"].split()[0]


def test_party_list_contest(gen: Generated) -> None:
    c = gen.definition.contests[0]
    assert (c.id, c.kind, c.area, c.form) == ("party-list", ContestKind.PARTY_LIST, "kg",
                                              "jogorku-kenesh")
    assert (str(c.official_count), str(c.percent_base)) == ("hand", "took_part")
    assert len(c.choices) == 22 and [ch.against_all for ch in c.choices].count(True) == 1
    assert c.choices[-1].against_all
    a = c.allocation
    assert a is not None and a.regional_threshold is not None
    assert (a.method, a.seats, a.threshold_percent, str(a.threshold_base), a.cap,
            a.women_min_share_percent) == ("hare", 54, "5", "took_part", 27, "30")
    assert (a.regional_threshold.percent, a.regional_threshold.areas) == ("0.5", NINE)


def test_party_names_are_the_official_ones(gen: Generated) -> None:
    official = json.loads(shared_data("kg_2021_official", "results.json").read_text("utf-8"))
    names = set(official["asu_preliminary_percent_at_2247_of_2494_stations"]) - {"against all"}
    c = gen.definition.contests[0]
    ours = {ch.name["en"] for ch in c.choices if not ch.against_all and isinstance(ch.name, dict)}
    assert ours == names and len(names) == 21
    assert set(official["winners"]) <= names
    asu = official["asu_preliminary_percent_at_2247_of_2494_stations"]
    for p in (*data.PARTIES, data.AGAINST_ALL):
        assert p.asu_share == round(asu[p.en if p is not data.AGAINST_ALL else "against all"] * 100)
    en = {p.id: p.en for p in data.PARTIES}
    official_votes = {k: v["votes"] for k, v in official["winners"].items()}
    assert {en[k]: v for k, v in data.WINNER_VOTES.items()} == official_votes
    assert {en[k]: v for k, v in WINNERS.items()} == official_votes
    assert (
        official["registered_voters"], official["voters_took_part"],
        official["polling_stations"], official["stations_abroad"],
    ) == (data.REGISTERED, data.TOOK_PART, data.STATIONS, data.STATIONS_ABROAD)
    assert [r.en for r in data.REGIONS if r.code] == official["threshold_regions"]


def test_constituency_contests(gen: Generated) -> None:
    smd = [c for c in gen.definition.contests if c.kind == ContestKind.CANDIDATES]
    assert [c.id for c in smd] == [f"smd-{i:02d}" for i in range(1, 37)]
    for c in smd:
        assert c.area == c.id and c.form == "jogorku-kenesh"
        assert 4 <= len(c.choices) <= 9 and c.choices[-1].against_all
        assert sum(ch.against_all for ch in c.choices) == 1
        assert len({str(ch.name) for ch in c.choices}) == len(c.choices)


def test_the_regional_shapes_come_from_the_2020_file() -> None:
    path = shared_data("kg_2020_parl_kloop", "PARTIES_RESULTS_REACT_LEVEL_ONE_NEW.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    stations = Counter(data.KLOOP_REGION[r["level_one"]] for r in rows)
    assert {r.id: r.stations_2020 for r in data.REGIONS} == dict(stations)
    total = sum(float(r["total"]) for r in rows)
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        region = data.KLOOP_REGION[r["level_one"]]
        for party, column in data.KLOOP_PARTY.items():
            by_region[region][party] += float(r[column])
        by_region[region]["total"] += float(r["total"])
    for party, column in data.KLOOP_PARTY.items():
        national = sum(float(r[column]) for r in rows) / total
        got = tuple(
            round(by_region[r.id][party] / by_region[r.id]["total"] / national * 100)
            for r in data.REGIONS
        )
        assert got == data.REGIONAL_STRENGTH_2020[party], party


# -- the protocols --------------------------------------------------------------------------------


def test_one_protocol_per_station_and_contest(gen: Generated) -> None:
    keys = [(p.station, p.contest) for p in gen.hand]
    assert len(keys) == len(set(keys)) == 2 * 2_494
    expected = {
        (gen.election.stations[s].id, c.id) for c in gen.election.contests for s in c.stations
    }
    assert set(keys) == expected
    assert [(p.station, p.contest) for p in gen.machine] == keys


@pytest.mark.parametrize("kind", ["hand", "machine"])
def test_every_protocol_passes_every_rule(gen: Generated, kind: str) -> None:
    protocols = gen.hand if kind == "hand" else gen.machine
    stations = {s.id: s for s in gen.definition.stations}
    for p in protocols:
        contest = gen.election.contest(p.contest)
        assert list(p.lines) == list(contest.line_ids)
        counts = counts_vector(contest, p.lines)
        check_counts(contest, counts)  # raises on any error rule
        assert evaluate_rules(contest, counts) == [], (p.station, p.contest)  # no warnings
        assert p.lines["registered_main"] + p.lines["registered_additional"] == (
            stations[p.station].registered
        )


def test_national_hand_totals_equal_the_official_figures(gen: Generated) -> None:
    total = _national(gen.hand)
    took_part = _took_part(total)
    assert took_part == 1_281_622
    assert total["registered_main"] + total["registered_additional"] == 3_703_420
    for party, votes in WINNERS.items():
        assert total[party] == votes, party
    assert 9.5 <= 100 * total["invalid"] / took_part <= 9.7
    # The others follow the scanner shares, scaled to what is left of the valid votes.
    others = [p for p in (*data.PARTIES, data.AGAINST_ALL) if p.id not in WINNERS]
    rest = total["valid"] - sum(WINNERS.values())
    asu = sum(p.asu_share for p in others)
    for p in others:
        assert abs(total[p.id] * asu - rest * p.asu_share) < asu, p.id
    assert total["valid"] == sum(total[p.id] for p in (*data.PARTIES, data.AGAINST_ALL))


def test_thresholds_pass_for_the_winners_only(gen: Generated) -> None:
    regions = {s.id: s.areas[0] for s in gen.definition.stations}
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    for p in gen.hand:
        if p.contest == kg.PARTY_LIST:
            by_region[regions[p.station]].update(p.lines)
    total = _national(gen.hand)
    took_part = _took_part(total)
    for party in WINNERS:
        assert total[party] * 100 >= 5 * took_part, party
        for region in NINE:
            assert by_region[region][party] * 1000 >= 5 * _took_part(by_region[region]), (
                party, region
            )
    for p in data.PARTIES:
        if p.id not in WINNERS:
            assert total[p.id] * 100 < 5 * took_part, p.id
    for big in ("ata_meken", "social_democrats", "el_umutu", "azattyk"):
        assert 2 * took_part < total[big] * 100 < 5 * took_part, big


def test_turnout_varies_by_region(gen: Generated) -> None:
    regions = {s.id: s.areas[0] for s in gen.definition.stations}
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    for p in gen.hand:
        if p.contest == kg.PARTY_LIST:
            by_region[regions[p.station]].update(p.lines)
    turnout = {
        r: _took_part(c) / (c["registered_main"] + c["registered_additional"])
        for r, c in by_region.items()
    }
    assert turnout["bishkek"] < 0.3 < 0.4 < turnout["talas"]
    assert turnout["abroad"] < 0.2
    assert max(turnout.values()) - min(turnout.values()) > 0.2


def test_against_all_beats_everyone_in_pervomaisky_and_sverdlovsky(gen: Generated) -> None:
    won: list[str] = []
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for p in gen.hand:
        if p.contest != kg.PARTY_LIST:
            totals[p.contest].update(p.lines)
    for contest in gen.definition.contests[1:]:
        choice_ids = [c.id for c in contest.choices]
        leader = max(choice_ids, key=lambda c: totals[contest.id][c])
        if leader == "against_all":
            assert isinstance(contest.name, dict)
            won.append(contest.name["en"])
    assert len(won) == 2
    assert any("Pervomaisky" in n for n in won) and any("Sverdlovsky" in n for n in won)


def test_machine_counts_differ_at_about_the_chosen_rate(gen: Generated) -> None:
    differing = set()
    for h, m in zip(gen.hand, gen.machine, strict=True):
        if h.lines != m.lines:
            differing.add(h.station)
            diff = {k: m.lines[k] - h.lines[k] for k in h.lines if m.lines[k] != h.lines[k]}
            assert set(diff) - set(kg.FORM_LINES) or "invalid" in diff
            assert all(abs(v) <= 4 for v in diff.values()), diff
            for line in kg.FORM_LINES[:9]:  # the ballot account is never changed
                assert m.lines[line] == h.lines[line]
    share = len(differing) / 2_494
    assert 0.02 <= share <= 0.04, share
    hand, machine = _national(gen.hand), _national(gen.machine)
    assert hand != machine and _took_part(hand) == _took_part(machine)


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
def test_machine_count_rate_is_honoured(gen: Generated, rate: float) -> None:
    machine = kg.machine_count_from(gen.hand, random.Random(7), rate)
    differing = {h.station for h, m in zip(gen.hand, machine, strict=True) if h.lines != m.lines}
    assert abs(len(differing) / 2_494 - rate) <= 0.03
    for p in machine[:: 7]:
        contest = gen.election.contest(p.contest)
        check_counts(contest, counts_vector(contest, p.lines))


# -- files and determinism ------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(gen: Generated, tmp_path: Path) -> None:
    a = kg.write_example(tmp_path / "a", SEED)
    b = kg.write_example(tmp_path / "b", SEED)
    assert a["definition"].read_bytes() == gen.raw
    for key in ("definition", "hand", "machine", "mapping"):
        assert a[key].read_bytes() == b[key].read_bytes(), key
    assert a["hand"].read_bytes() == kg.protocols_csv(gen.hand)
    other = kg.generate_definition(SEED + 1)
    assert kg.definition_yaml(other) != gen.raw
    assert kg.protocols_csv(kg.generate_protocols(gen.definition, SEED + 1)) != (
        kg.protocols_csv(gen.hand)
    )


def test_csv_round_trip(gen: Generated, tmp_path: Path) -> None:
    path = tmp_path / "hand.csv"
    kg.write_protocols_csv(gen.hand, path)
    assert kg.read_protocols_csv(path) == gen.hand
    header = path.read_text("utf-8").splitlines()[0].split(",")
    assert header[:2] == ["station", "contest"] and header[2:13] == list(kg.FORM_LINES)

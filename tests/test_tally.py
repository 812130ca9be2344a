"""The tally: running totals, roll-up, exact percentages, and the invariant checker."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import DATA, kyrgyz_lines
from tallyroom.definition.compiled import CompiledElection, compile_election
from tallyroom.definition.load import load_definition
from tallyroom.tally.invariants import check_row, check_tally
from tallyroom.tally.report import percent, tally_row
from tallyroom.tally.running import Tally, TallyKey

KINDS = ["machine", "hand"]


@pytest.fixture(scope="module")
def election() -> CompiledElection:
    return compile_election(load_definition((DATA / "small.yaml").read_bytes()))


def _protocols(election: CompiledElection, seed: int) -> list[tuple[int, int, str, list[int]]]:
    rng = random.Random(seed)
    out = []
    for contest in election.contests:
        for s in contest.stations:
            for kind in KINDS:
                if rng.random() < 0.7:
                    lines = kyrgyz_lines(list(contest.choice_ids), election.stations[s].registered, rng)
                    out.append((contest.index, s, kind, [lines[n] for n in contest.line_ids]))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), split=st.integers(0, 40))
def test_batch_and_single_application_agree_and_roll_up(
    election: CompiledElection, seed: int, split: int
) -> None:
    protos = _protocols(election, seed)
    one = Tally(election)
    for c, s, k, counts in protos:
        one.apply(c, s, k, counts)
    batched = Tally(election)
    batched.apply_batch(protos[:split])
    batched.apply_batch(protos[split:])
    assert one.totals == batched.totals
    # Machine and hand counts are never mixed: each key's reporting counts only its kind.
    for kind in KINDS:
        n = sum(1 for c, _, k, _ in protos if k == kind and c == 0)
        got = one.get(0, election.area_index["kg"], kind)
        assert (got.reporting if got else 0) == n
    stations = {(c, s, k): counts for c, s, k, counts in protos}
    assert check_tally(election, one, stations) == []
    # Removing every protocol brings every total back to zero.
    for c, s, k, counts in protos:
        one.apply(c, s, k, counts, sign=-1)
    assert one.nonzero() == {}


def test_the_2021_fault_a_figure_added_twice_is_caught(election: CompiledElection) -> None:
    protos = _protocols(election, 7)
    tally = Tally(election)
    tally.apply_batch(protos)
    stations = {(c, s, k): counts for c, s, k, counts in protos}
    kg = election.area_index["kg"]
    contest = election.contest("party-list")
    key = TallyKey(contest.index, kg, "hand")
    # A display step "adds two positions that should not have been added": the national
    # total gets the Chui figures a second time.
    chui = tally.totals[TallyKey(contest.index, election.area_index["chui"], "hand")]
    bad = tally.totals[key]
    bad.counts = [a + b for a, b in zip(bad.counts, chui.counts, strict=True)]
    failures = check_tally(election, tally, stations)
    assert any(f.invariant == "children-sum-to-parent" and f.area == "kg" for f in failures)
    assert all(f.area == "kg" for f in failures)


def test_shares_over_100_percent_are_caught(election: CompiledElection) -> None:
    contest = election.contest("party-list")
    protos = [p for p in _protocols(election, 8) if p[0] == contest.index and p[2] == "hand"]
    tally = Tally(election)
    tally.apply_batch(protos)
    kg = election.area_index["kg"]
    row = tally_row(election, contest, kg, "hand", tally.get(contest.index, kg, "hand"))
    assert check_row(row) == []
    # Double every party's votes on the page but keep the base: >100% in total.
    from dataclasses import replace

    doubled = replace(
        row,
        choices=tuple(
            replace(c, votes=c.votes * 2, percent=percent(c.votes * 2, row.percent_base_value or 0))
            for c in row.choices
        ),
    )
    names = {f.invariant for f in check_row(doubled)}
    assert "shares-le-100" in names and "shares-sum-le-100" in names
    # A percentage computed on the wrong base (valid instead of took part) is caught too.
    wrong = replace(
        row,
        choices=tuple(replace(c, percent=percent(c.votes, row.valid or 0)) for c in row.choices),
    )
    assert "share-matches-base" in {f.invariant for f in check_row(wrong)}


@given(part=st.integers(0, 10**9), extra=st.integers(1, 10**9), decimals=st.integers(0, 4))
def test_percent_rounds_half_up_exactly(part: int, extra: int, decimals: int) -> None:
    whole = part + extra
    text = percent(part, whole, decimals)
    assert text is not None
    exact = Fraction(part * 100, whole)
    scale = 10**decimals
    expected = (exact * scale + Fraction(1, 2)).__floor__()
    got = int(text.replace(".", ""))
    assert got == expected


def test_percent_known_values() -> None:
    # Ata-Jurt Kyrgyzstan 2021: 222,005 of 1,281,622 voters who took part = 17.32%.
    assert percent(222_005, 1_281_622) == "17.32"
    assert percent(1, 8) == "12.50"
    assert percent(1, 800) == "0.13"  # 0.125 rounds half up
    assert percent(0, 0) is None


def test_row_states_its_base(election: CompiledElection) -> None:
    contest = election.contest("party-list")
    protos = [p for p in _protocols(election, 9) if p[0] == contest.index]
    tally = Tally(election)
    tally.apply_batch(protos)
    kg = election.area_index["kg"]
    d = tally_row(election, contest, kg, "hand", tally.get(contest.index, kg, "hand")).to_dict()
    assert d["percent_base"]["figure"] == "took_part"
    assert d["percent_base"]["words"] == "voters who took part"
    took_part = d["lines"]["issued_early"] + d["lines"]["issued_station"] + d["lines"]["issued_outside"]
    assert d["percent_base"]["value"] == d["took_part"] == took_part
    for c in d["choices"]:
        assert c["percent"] == percent(c["votes"], took_part)


def _rebuild_one_by_one(
    election: CompiledElection, entries: list[tuple[int, bytes]]
) -> dict[object, object]:
    """What `rebuild` folds, entry by entry the plain way (dict lines, one decode each)."""
    import msgspec

    from tallyroom.ledger.entry import EntryKind, encode_entry
    from tallyroom.tally.rebuild import RebuildError

    class Counted(msgspec.Struct):
        station: str
        contest: str
        count_kind: str
        lines: dict[str, int]

    header = encode_entry(EntryKind.PROTOCOL, b"")
    active: dict[object, object] = {}
    for idx, data in entries:
        if not data.startswith(header):
            continue
        body = msgspec.json.decode(data[data.index(b"\n", len(header)) + 1 :], type=Counted)
        contest = election.contests[election.contest_index[body.contest]]
        counts = [0] * len(contest.line_ids)
        for name, value in body.lines.items():
            counts[contest.line_index[name]] = value
        key = (contest.index, election.station_index[body.station], body.count_kind)
        if key in active:
            raise RebuildError(f"entry {idx}")
        active[key] = (idx, counts)
    return active


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_rebuild_decodes_runs_as_entries_one_by_one(election: CompiledElection, seed: int) -> None:
    """Runs of entries decoded a list at a time (the contest guessed, lines as a struct) give
    what decoding each entry on its own gives: lines in any order, several contests mixed."""
    from tallyroom.ledger.entry import EntryKind, encode_entry
    from tallyroom.protocol.model import ProtocolBody, encode_body
    from tallyroom.protocol.pending import protocol_payload
    from tallyroom.tally.rebuild import rebuild

    rng = random.Random(seed)
    entries = [(0, encode_entry(EntryKind.DEFINITION, b"{}"))]
    for contest, station, kind, counts in _protocols(election, seed):
        c = election.contests[contest]
        lines = dict(zip(c.line_ids, counts, strict=True))
        if rng.random() < 0.3:
            items = list(lines.items())
            rng.shuffle(items)
            lines = dict(items)
        body = ProtocolBody(
            election=election.sha256,
            station=election.stations[station].id,
            contest=c.id,
            count_kind=kind,
            lines=lines,
        )
        payload = protocol_payload({}, encode_body(body))
        entries.append((len(entries), encode_entry(EntryKind.PROTOCOL, payload)))
        if rng.random() < 0.1:
            entries.append((len(entries), encode_entry(EntryKind.CHECKPOINT, b"note")))
    rebuilt = rebuild(election, entries)
    assert rebuilt.active == _rebuild_one_by_one(election, entries[1:])
    assert rebuilt.protocols == len(rebuilt.active)
    expected = Tally(election)
    expected.apply_batch((c, s, k, v[1]) for (c, s, k), v in rebuilt.active.items())
    one_by_one = Tally(election)
    for (c, s, k), (_i, counts) in rebuilt.active.items():
        one_by_one.apply(c, s, k, counts)
    assert rebuilt.tally.nonzero() == one_by_one.nonzero()


TWIN_CONTESTS = """
election: {id: twins, name: Twins, date: "2021-11-28", country: KG}
profile: kyrgyzstan
hierarchies: [{id: admin, name: Regions}]
areas:
  - {id: kg, name: Kyrgyzstan, hierarchy: admin, kind: country}
  - {id: a, name: A, hierarchy: admin, parent: kg, kind: oblast}
stations:
  - {id: "1", name: One, areas: [a], registered: 1000}
  - {id: "2", name: Two, areas: [a], registered: 1000}
contests:
  - {id: first, name: First, kind: candidates, area: kg, form: jogorku-kenesh,
     choices: [{id: x, name: X}, {id: y, name: Y}]}
  - {id: second, name: Second, kind: candidates, area: kg, form: jogorku-kenesh,
     choices: [{id: x, name: X}, {id: y, name: Y}]}
"""


def _entry(election: CompiledElection, contest: str, station: str, kind: str, seed: int) -> bytes:
    from tallyroom.ledger.entry import EntryKind, encode_entry
    from tallyroom.protocol.model import ProtocolBody, encode_body
    from tallyroom.protocol.pending import protocol_payload

    c = election.contest(contest)
    lines = kyrgyz_lines(list(c.choice_ids), 1000, random.Random(seed))
    body = ProtocolBody(
        election=election.sha256, station=station, contest=contest, count_kind=kind, lines=lines
    )
    return encode_entry(EntryKind.PROTOCOL, protocol_payload({}, encode_body(body)))


def test_rebuild_tells_contests_with_the_same_lines_apart() -> None:
    from tallyroom.tally.rebuild import rebuild

    election = compile_election(load_definition(TWIN_CONTESTS.encode()))
    for entries in (
        [(1, _entry(election, "first", "1", "hand", 1)), (2, _entry(election, "second", "2", "hand", 2))],
        [(1, _entry(election, "second", "1", "hand", 1)), (2, _entry(election, "first", "2", "hand", 2))],
        [
            (1, _entry(election, "first", "1", "hand", 1)),
            (2, _entry(election, "second", "1", "hand", 2)),
            (3, _entry(election, "second", "2", "hand", 3)),
            (4, _entry(election, "first", "2", "hand", 4)),
        ],
    ):
        assert rebuild(election, entries).active == _rebuild_one_by_one(election, entries)


def test_rebuild_refuses_a_second_protocol_in_a_run() -> None:
    from tallyroom.tally.rebuild import RebuildError, rebuild

    election = compile_election(load_definition(TWIN_CONTESTS.encode()))
    first = _entry(election, "first", "1", "hand", 1)
    other = _entry(election, "first", "2", "hand", 2)
    again = _entry(election, "first", "1", "hand", 3)
    for entries in ([(1, first), (2, other), (3, again)], [(1, first), (2, first)]):
        with pytest.raises(RebuildError, match=r"ledger entry \d+: a second hand protocol for station 1"):
            rebuild(election, entries)
    # A second protocol of another count kind is no conflict.
    assert len(rebuild(election, [(1, first), (2, _entry(election, "first", "1", "machine", 3))]).active) == 2

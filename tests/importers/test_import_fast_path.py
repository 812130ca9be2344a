"""The fast import path means exactly what the plain one means.

Imports check and encode rows a list at a time (`RowBlock`), read files in worker processes a
chunk of lines at a time (`LineSource`), and encode bodies with a template (`BodyTemplate`);
rebuilds decode runs of entries at once. Each shortcut is compared here with the plain way it
replaces: the same ledger bytes, rows, totals and messages, on inputs made to be awkward.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import kyrgyz_lines
from tallyroom.definition.compiled import compile_election
from tallyroom.definition.load import load_definition
from tallyroom.definition.model import CountKind
from tallyroom.importers import generic, pipeline
from tallyroom.importers.pipeline import ImportRow, import_rows, import_source
from tallyroom.protocol.bulk import BodyTemplate, json_string
from tallyroom.protocol.expr import compile_failing
from tallyroom.protocol.model import ProtocolBody, Source, encode_body
from tallyroom.store.sql import open_store
from tallyroom.tally.rebuild import rebuild

DEFINITION = """\
election: {id: fast-test, name: "Fast path test", date: "2021-11-28", country: KG}
profile: kyrgyzstan
hierarchies: [{id: admin, name: Regions}]
areas:
  - {id: kg, name: Kyrgyzstan, hierarchy: admin, kind: country}
  - {id: chui, name: Chui, hierarchy: admin, parent: kg, kind: oblast}
  - {id: naryn, name: Naryn, hierarchy: admin, parent: kg, kind: oblast}
stations:
%s
contests:
  - id: party-list
    name: Party list
    kind: party_list
    area: kg
    form: jogorku-kenesh
    percent_base: took_part
    choices:
      - {id: ata-jurt, name: "Ata-Jurt"}
      - {id: ishenim, name: "Ishenim"}
      - {id: against-all, name: "Against all", against_all: true}
  - id: mayor
    name: Mayor of Naryn
    kind: candidates
    area: naryn
    form: jogorku-kenesh
    choices:
      - {id: cand-a, name: "Candidate A"}
      - {id: against-all, name: "Against all", against_all: true}
"""
STATIONS = 600


def _definition(tmp_path: Path) -> Path:
    lines = [
        f'  - {{id: "s{i}", name: "Station {i}", areas: [{"chui" if i % 2 else "naryn"}], registered: 1500}}'
        for i in range(STATIONS)
    ]
    path = tmp_path / "def.yaml"
    path.write_text(DEFINITION % "\n".join(lines))
    return path


def _csv(tmp_path: Path, rng: random.Random, both: bool, clean: bool = False) -> str:
    """Rows of the party list (and with `both` the mayor's, by a contest column), with every
    kind of awkward cell somewhere: some change the value, some only how it is written.
    `clean`: only cells that still read as JSON numbers, so whole chunks decode at once."""
    loaded = load_definition(_definition(tmp_path).read_bytes())
    election = compile_election(loaded)
    party = election.contest("party-list")
    mayor = election.contest("mayor")
    header = ["station", *(["contest"] if both else []), *party.line_ids, *(["cand-a"] if both else [])]
    first = 2 if both else 1
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n" if rng.random() < 0.5 else "\n")
    w.writerow(header)
    awkward = ["-3", "", "12.0", "99999999999", "1e3", "5,6", "0", "-0", "10000000"]
    for i in range(STATIONS):
        contest = mayor if both and i % 3 == 0 and i % 2 == 0 else party
        lines = kyrgyz_lines(list(contest.choice_ids), 1500, rng)
        cells = [str(lines.get(lid, "")) for lid in header[first:]]
        k = rng.randrange(len(cells))
        roll = rng.random()
        if clean:
            if roll < 0.05:
                cells[-1] += ",0"
            elif roll < 0.1:
                cells[k] = " " + cells[k]
            roll = 1.0
        if roll < 0.08 and cells[k]:
            # The same number written differently: the body must still say the number.
            cells[k] = rng.choice(["00", " ", "0"]) + cells[k] if rng.random() < 0.7 else cells[k] + " "
        elif roll < 0.12:
            cells[k] = rng.choice(awkward)
        elif roll < 0.14:
            cells[-1] = str(int(cells[-1] or 0) + 1)  # breaks a rule
        elif roll < 0.16:
            cells[6] = str(int(cells[6]) + 1)  # cancelled: a warning
        elif roll < 0.17:
            cells[k] = "１２"
        elif roll < 0.18:
            cells[0] = "99999999"  # too large, though every rule holds
        elif roll < 0.19:
            cells[0], cells[1] = str(int(cells[0]) + 5), "-5"  # negative, though every rule holds
        elif roll < 0.20:
            cells[-1] += ",0"  # one cell, two numbers: the first 26 still add up
        station = f"s{i}" if rng.random() > 0.01 else "nowhere"
        w.writerow([station, *([contest.id] if both else []), *cells])
        if rng.random() < 0.02:
            w.writerow([station, *([contest.id] if both else []), *cells])  # the same protocol twice
        elif rng.random() < 0.01:
            again = [str(int(c) + 1) if c.isdigit() else c for c in cells]
            w.writerow([station, *([contest.id] if both else []), *again])  # a conflict
    text = out.getvalue()
    if rng.random() < 0.5:
        # A quoted line break in a cell, somewhere in the middle.
        cut = text.index("\n", len(text) // 2) + 1
        end = text.index(",", cut)
        text = text[:cut] + '"' + text[cut:end] + '\n"' + text[end:]
    return text


def _mapping(both: bool) -> generic.ColumnMapping:
    if both:
        return generic.ColumnMapping(station_column="station", contest_column="contest")
    return generic.ColumnMapping(station_column="station", contest="party-list")


def _import_into(store: Any, text: str, workers: int, both: bool) -> pipeline.ImportReport:
    election = store.election()
    f = generic.parse("t.csv", text.encode(), _mapping(both), "m.yaml", election)
    return import_source(
        store,
        generic.GenericRows(f, election),
        fmt="csv",
        file_name="t.csv",
        file_hash="0" * 64,
        count_kind=CountKind.HAND,
        workers=workers,
    )


def _import(tmp_path: Path, name: str, text: str, workers: int, both: bool) -> tuple[list[object], str]:
    db = str(tmp_path / f"{name}.db")
    store = open_store(db)
    store.initialize(load_definition(_definition(tmp_path).read_bytes()), b"\x01" * 32)
    election = store.election()
    report = _import_into(store, text, workers, both)
    entries = [(i, d) for i, _k, d, _h in store.entries()]
    rows = store.conn.execute(
        "SELECT entry_idx, station, contest, count_kind, counts, status, warnings, body_sha256 "
        "FROM protocols ORDER BY entry_idx"
    ).fetchall()
    tallies = sorted(store.tally().nonzero().items())
    assert rebuild(election, entries).tally.nonzero() == store.tally().nonzero()
    store.close()
    return [entries, rows, tallies], str(report.to_dict())


@pytest.mark.parametrize(
    ("seed", "both", "clean"), [(1, False, False), (2, False, False), (3, False, True), (4, True, False)]
)
def test_workers_chunks_and_blocks_mean_what_the_plain_rows_mean(
    tmp_path: Path, seed: int, both: bool, clean: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _csv(tmp_path, random.Random(seed), both, clean)
    monkeypatch.setattr(pipeline, "CHUNK_CHARS", 4_000)  # many chunks, some cut mid-way
    monkeypatch.setattr(pipeline, "CHUNK", 50)
    one = _import(tmp_path, "one", text, workers=1, both=both)
    two = _import(tmp_path, "two", text, workers=2, both=both)
    assert one == two

    # The plain path: every row as an ImportRow, checked one by one.
    db = str(tmp_path / "plain.db")
    store = open_store(db)
    store.initialize(load_definition(_definition(tmp_path).read_bytes()), b"\x01" * 32)
    election = store.election()
    f = generic.parse("t.csv", text.encode(), _mapping(both), "m.yaml", election)
    plain_rows = list(generic.iter_rows(f, election))
    # Lines given as a Mapping that is not a dict take the row-by-row path.
    report = import_rows(
        store,
        (ImportRow(r.row, r.station, r.contest, _NotADict(r.lines)) for r in plain_rows),
        fmt="csv",
        file_name="t.csv",
        file_hash="0" * 64,
        count_kind=CountKind.HAND,
    )
    entries = [(i, d) for i, _k, d, _h in store.entries()]
    rows = store.conn.execute(
        "SELECT entry_idx, station, contest, count_kind, counts, status, warnings, body_sha256 "
        "FROM protocols ORDER BY entry_idx"
    ).fetchall()
    plain = ([entries, rows, sorted(store.tally().nonzero().items())], str(report.to_dict()))
    assert plain == one


class _NotADict(dict[str, object]):
    """Lines the fast path must not take (it takes exact dicts only)."""


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    station=_text,
    contest=_text,
    line_ids=st.lists(_text, max_size=6, unique=True),
    values=st.lists(st.integers(0, 10_000_000), min_size=6, max_size=6),
    fmt=_text,
    file_name=st.none() | _text,
    row=st.integers(0, 10**9),
    kind=st.sampled_from(list(CountKind)),
)
def test_body_template_is_encode_body(
    station: str,
    contest: str,
    line_ids: list[str],
    values: list[int],
    fmt: str,
    file_name: str | None,
    row: int,
    kind: CountKind,
) -> None:
    sha = "ab" * 32
    template = BodyTemplate.for_shape(sha, contest, kind, line_ids, fmt, "cd" * 32, file_name)
    assert template is not None
    lines = dict(zip(line_ids, values, strict=False))
    body = ProtocolBody(
        election=sha,
        station=station,
        contest=contest,
        count_kind=kind,
        lines=lines,
        source=Source(format=fmt, file_sha256="cd" * 32, row=row, file_name=file_name),
    )
    want = encode_body(body)
    assert template.render(json_string(station), list(lines.values()), row).encode() == want
    assert template.render(json_string(station), [str(v) for v in lines.values()], row).encode() == want


@pytest.mark.parametrize("newline", ["\n", ""])
def test_lines_are_the_lines_of_a_stringio(newline: str) -> None:
    rng = random.Random(7)
    pieces = ["a", ",", '"', "\n", "\r", "\r\n", "\u2028", "\x0b", "é", "1"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        want = list(io.StringIO(text, newline=newline))
        assert pipeline._lines(text, newline) == want
        assert list(pipeline.text_lines(text, 0, newline)) == want
        rows = pipeline.read_lines(text, newline)
        if rows is not None:  # then a reader over the text gives those rows, one a line
            assert rows == list(csv.reader(io.StringIO(text, newline=newline)))
            assert len(rows) == len(want)


def test_failing_rules_are_the_rules_that_fail(tmp_path: Path) -> None:
    election = compile_election(load_definition(_definition(tmp_path).read_bytes()))
    rng = random.Random(3)
    for contest in election.contests:
        failing = compile_failing([r.comparison for r in contest.rules], contest.line_index)
        rows = []
        for _ in range(3000):
            lines = kyrgyz_lines(list(contest.choice_ids), 1500, rng)
            counts = [lines[lid] for lid in contest.line_ids]
            if rng.random() < 0.5:
                counts[rng.randrange(len(counts))] += rng.choice([-1, 1, 50])
            rows.append(counts)
        assert failing(rows) == [i for i, c in enumerate(rows) if not contest.all_rules_hold(c)]


def test_a_killed_worker_stops_the_import_with_a_clear_error_and_a_rerun_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`multiprocessing.Pool` waited for a killed worker's chunk for ever (`tallyroom import`
    hung); now the import stops at once, keeps what it appended, and the same file imported
    again adds exactly the rest."""
    text = _csv(tmp_path, random.Random(5), both=False, clean=True)
    monkeypatch.setattr(pipeline, "CHUNK_CHARS", 4_000)
    monkeypatch.setattr(pipeline, "CHUNK", 50)
    work = pipeline._work
    # The worker dies on the third chunk, one the parent must wait for: every chunk up to it
    # reads as one record per line. (Killing on "the first chunk past row N" was flaky: the
    # other worker could take a later chunk first and die on one the parent never needed,
    # because it reads the file in order from an earlier chunk; that import is whole.)
    election = compile_election(load_definition(_definition(tmp_path).read_bytes()))
    parsed = generic.parse("t.csv", text.encode(), _mapping(False), "m.yaml", election)
    source = generic.GenericRows(parsed, election)
    bounds = list(pipeline.chunk_bounds(text, source.start, source.first_row, pipeline.CHUNK_CHARS))
    assert len(bounds) > 4
    assert all(source.parse(text[a:b], row) is not None for a, b, row in bounds[:3])

    monkeypatch.setattr(_Killer, "row", bounds[2][2], raising=False)
    monkeypatch.setattr(_Killer, "marker", tmp_path / "killed", raising=False)
    monkeypatch.setattr(_Killer, "work", work, raising=False)
    monkeypatch.setattr(pipeline, "_work", _dies_on_the_doomed_chunk)
    def fresh(name: str) -> Any:
        store = open_store(str(tmp_path / name))
        store.initialize(load_definition(_definition(tmp_path).read_bytes()), b"\x01" * 32)
        return store

    def run(store: Any, workers: int) -> pipeline.ImportReport:
        return _import_into(store, text, workers, both=False)

    store = fresh("killed.db")
    with pytest.raises(pipeline.ImportInterrupted, match="killed before the import finished") as info:
        run(store, 2)
    first = store.head().size - 1  # protocols (entry 0 is the definition)
    assert f"the {first:,} protocols accepted before it are in the ledger" in str(info.value)
    monkeypatch.setattr(pipeline, "_work", work)
    again = run(store, 2)
    whole_store = fresh("whole.db")
    whole = run(whole_store, 1)
    # Not all were appended. Usually the two chunks before the killed one were; but a chunk the
    # other worker had not returned when the death was noticed fails with it (1 run in 40 here
    # appended nothing), and the message then says 0.
    assert 0 <= first < whole.accepted, first
    # Every protocol appended before the kill is a duplicate now; the rest is what one
    # uninterrupted import makes of the file.
    assert again.duplicates == whole.duplicates + first
    assert again.accepted == whole.accepted - first
    assert again.rejected == whole.rejected
    assert sorted(e[2] for e in store.entries()) == sorted(e[2] for e in whole_store.entries())
    assert store.tally().nonzero() == whole_store.tally().nonzero()
    store.close()
    whole_store.close()


class _Killer:
    row: int
    marker: Path
    work: Any


def _dies_on_the_doomed_chunk(bounds: tuple[int, int, int]) -> object:
    """`pipeline._work`, except that the worker that gets the chunk starting at row
    `_Killer.row` is killed, the first time only (module level: the executor sends the
    function to its workers by name)."""
    import os
    import signal

    if bounds[2] == _Killer.row:
        try:
            os.close(os.open(_Killer.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return _Killer.work(bounds)

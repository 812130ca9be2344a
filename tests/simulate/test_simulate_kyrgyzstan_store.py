"""The generated Kyrgyzstan 2021 protocols in a real store: through the import pipeline
(`load_protocols`) and through `tallyroom import --format csv` with the example's mapping.

Official figures: data/kg_2021_official/ (CEC resolution No. 836 of 15 Dec 2021).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from simulate_support import SEED, Generated

from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.store.sql import open_store
from tallyroom.tally.report import tally_row

WINNERS = {
    "ata_jurt_kyrgyzstan": 222_005,
    "ishenim": 174_470,
    "yntymak": 141_009,
    "alliance": 106_955,
    "butun_kyrgyzstan": 90_223,
    "yiman_nuru": 79_025,
}


def test_load_protocols_gives_the_official_national_result(
    gen: Generated, tmp_path: Path
) -> None:
    with open_store(str(tmp_path / "kg.db")) as store:
        store.initialize(gen.election.loaded, b"\x01" * 32)
        for kind, protocols in (("machine", gen.machine), ("hand", gen.hand)):
            report = kg.load_protocols(store, protocols, kind)
            assert (report.rows, report.accepted, report.rejected, report.warnings) == (
                4_988, 4_988, [], 0
            )
        again = kg.load_protocols(store, gen.hand, "hand")  # re-sent: duplicates, no change
        assert (again.accepted, again.duplicates) == (0, 4_988)

        e = store.election()
        contest = e.contest(kg.PARTY_LIST)
        rows = {
            kind: tally_row(e, contest, e.area_index["kg"], kind,
                            store.totals(contest.index, e.area_index["kg"], kind))
            for kind in ("machine", "hand")
        }
        hand = rows["hand"]
        assert (hand.stations_reporting, hand.stations_expected) == (2_494, 2_494)
        assert (hand.registered, hand.took_part) == (3_703_420, 1_281_622)
        votes = {c.id: c.votes for c in hand.choices}
        assert {p: votes[p] for p in WINNERS} == WINNERS
        assert [c.percent for c in hand.choices if c.id in WINNERS] == [
            "7.04", "8.35", "6.17", "11.00", "13.61", "17.32"  # ballot order, official shares
        ]
        machine = {c.id: c.votes for c in rows["machine"].choices}
        assert machine != votes and rows["machine"].took_part == 1_281_622

        # A constituency and a region add up to their stations' protocols.
        bishkek = Counter[str]()
        stations = {s.id: s for s in gen.definition.stations}
        for p in gen.hand:
            if p.contest == kg.PARTY_LIST and stations[p.station].areas[0] == "bishkek":
                bishkek.update(p.lines)
        t = store.totals(contest.index, e.area_index["bishkek"], "hand")
        assert t is not None
        assert dict(zip(contest.line_ids, t.counts, strict=True)) == dict(bishkek)
        smd = e.contest("smd-36")
        t = store.totals(smd.index, e.area_index["smd-36"], "hand")
        assert t is not None and t.reporting == sum(1 for p in gen.hand if p.contest == "smd-36")


@pytest.mark.slow
def test_the_example_imports_with_the_generic_csv_importer(tmp_path: Path) -> None:
    pytest.importorskip("tallyroom.importers.generic")
    from tallyroom.cli import main

    paths = kg.write_example(tmp_path / "kg", SEED)
    db = str(tmp_path / "kg.db")
    runner = CliRunner()
    done = runner.invoke(main, ["--db", db, "init", str(paths["definition"])])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["--db", db, "import", "--format", "csv", "--mapping",
                                str(paths["mapping"]), "--count-kind", "hand",
                                str(paths["hand"])])
    assert done.exit_code == 0, done.output
    assert "4,988 protocols accepted" in done.output and "0 rejected" in done.output
    done = runner.invoke(main, ["--db", db, "results", "--contest", "party-list",
                                "--count-kind", "hand", "--format", "json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["took_part"] == 1_281_622 and result["registered"] == 3_703_420
    assert {c["id"]: c["votes"] for c in result["choices"] if c["id"] in WINNERS} == WINNERS

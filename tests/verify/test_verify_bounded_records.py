"""A verifier that keeps only a few rebuilt station records (as it must at 1,000,000 stations)
reaches the same verdict, counts the same numbers and names the same tampering as one that
keeps them all."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from tamper import copy_publish, edit_json, read, rewrite
from verify_support import Pub

from tallyroom.cli import main
from tallyroom.verify import expected
from tallyroom.verify.expected import forget_oldest


@given(st.integers(1, 40), st.lists(st.integers(0, 60), max_size=300))
def test_forget_oldest_keeps_the_newest_half_and_never_more_than_kept(kept: int, keys: list[int]) -> None:
    cache: dict[int, int] = {}
    order: list[int] = []  # insertion order of what the cache should hold
    for k in keys:
        if k in cache:
            continue
        before = list(cache)
        forget_oldest(cache, kept)
        if len(before) >= kept:
            order = order[len(order) - kept // 2 :] if kept // 2 else []
        else:
            assert list(cache) == before
        assert list(cache) == order
        cache[k] = k
        order.append(k)
        assert len(cache) <= kept


def _verify(pub: Path, report: Path, workers: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(main, ["verify", str(pub), "--workers", workers, "--report", str(report)])
    return result, json.loads(report.read_text())


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_same_verdict_and_count_with_four_records_kept(
    mini_pub: Pub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    whole, _ = _verify(mini_pub.out, tmp_path / "whole.json", workers)
    monkeypatch.setattr(expected, "RECORDS_KEPT", 4)  # forked workers inherit it
    few, _ = _verify(mini_pub.out, tmp_path / "few.json", workers)
    assert whole.exit_code == few.exit_code == 0, few.output
    last = whole.output.rstrip().splitlines()[-1]
    assert last.endswith(": 0 mismatches") and last == few.output.rstrip().splitlines()[-1]


def test_a_station_changed_in_two_files_is_named_in_both_with_four_records_kept(
    mini_pub: Pub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The region's station file and its CSV are checked after many other records were built
    and dropped: the record each compares with is rebuilt, not missing or stale."""
    pub = copy_publish(mini_pub.out, tmp_path / "pub")
    snap = (pub / "current").resolve()
    records = json.loads(read(snap, "data/stations/chui.json"))["stations"]
    victim = records[len(records) // 2]
    key = (victim["contest"], victim["station"], victim["count_kind"])

    def lower(doc: dict[str, Any]) -> None:
        for r in doc["stations"]:
            if (r["contest"], r["station"], r["count_kind"]) == key:
                r["lines"]["valid"] -= 3

    edit_json(snap, "data/stations/chui.json", lower)
    rows = list(csv.reader(io.StringIO(read(snap, "data/csv/stations/chui.csv").decode())))
    head = rows[0]
    where = (head.index("area"), head.index("contest"), head.index("count_kind"))
    hit = next(i for i, r in enumerate(rows) if tuple(r[c] for c in where) == (key[1], key[0], key[2]))
    votes = head.index("votes")
    rows[hit][votes] = str(int(rows[hit][votes]) + 3)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    rewrite(snap, "data/csv/stations/chui.csv", out.getvalue().encode())

    monkeypatch.setattr(expected, "RECORDS_KEPT", 4)
    result, report = _verify(pub, tmp_path / "report.json", "1")
    assert result.exit_code == 1, result.output
    # api/v1/downloads.json lists each download's SHA-256: it names both files as changed too.
    got = sorted(
        (m["file"], m["where"], m["published"], m["expected"])
        for m in report["mismatches"]
        if m["file"] != "api/v1/downloads.json"
    )
    valid = victim["lines"]["valid"]
    votes_was = int(rows[hit][votes]) - 3
    assert [g[0] for g in got] == ["data/csv/stations/chui.csv", "data/stations/chui.json"], got
    assert victim["station"] in got[0][1] and "votes" in got[0][1], got
    assert (got[0][2], got[0][3]) == (f'"{votes_was + 3}"', f'"{votes_was}"'), got
    assert got[1][1].endswith("lines.valid") and (got[1][2], got[1][3]) == (str(valid - 3), str(valid)), got

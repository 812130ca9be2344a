"""`tallyroom verify` recomputes the machine-vs-hand reconciliation and the outcome sensitivity
(docs/bulletin.md §14) from the ledger: a clean snapshot verifies; one changed difference in the
JSON, the CSV or a page, or one changed sensitivity figure, is a mismatch naming the file, the
number, what it should be and why."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tamper import copy_publish, edit_json, edit_text, rewrite
from verify_support import Pub

from tallyroom.cli import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args, "--workers", "1"])


def report_of(tmp_path: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    out = tmp_path / "report.json"
    result = run(*args, "--report", str(out))
    return result, json.loads(out.read_text())


def messages(report: dict[str, Any]) -> list[str]:
    out = []
    for m in report["mismatches"]:
        head = " › ".join(p for p in (m["file"], m["where"]) if p)
        out.append(f"{head}: {m['published']} | {m['expected']} | {m['why']}")
    return out


@pytest.fixture
def pub_copy(mini_pub: Pub, tmp_path: Path) -> Path:
    return copy_publish(mini_pub.out, tmp_path / "pub")


def current(pub: Path) -> Path:
    return (pub / "current").resolve()


def _party(snap: Path) -> dict[str, Any]:
    doc = json.loads((snap / "data/reconciliation.json").read_bytes())
    party: dict[str, Any] = next(c for c in doc["contests"] if c["contest"] == "party-list")
    assert party["stations"], "the fixture's counts differ at some station"
    return party


def test_a_clean_snapshot_checks_every_reconciliation_file(mini_pub: Pub, tmp_path: Path) -> None:
    result, report = report_of(tmp_path, str(mini_pub.out))
    assert result.exit_code == 0, result.output
    assert report["mismatches"] == []
    snap = mini_pub.snapshot()
    manifest = json.loads((snap / "manifest.json").read_bytes())["files"]
    assert "data/reconciliation.json" in manifest and "data/reconciliation.csv" in manifest
    assert "api/v1/reconcile/party-list/difference.json" in manifest
    assert "ru/reconcile/party-list/region.html" in manifest


def test_one_changed_difference_in_the_json(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    station = _party(snap)["stations"][0]
    line = station["lines"][0]

    def bump(doc: dict[str, Any]) -> None:
        party = next(c for c in doc["contests"] if c["contest"] == "party-list")
        party["stations"][0]["lines"][0]["difference"] += 3

    edit_json(snap, "data/reconciliation.json", bump)
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    want = (
        f"data/reconciliation.json › contests[party-list].stations[station={station['station']}]"
        f".lines[line={line['line']}].difference: {line['difference'] + 3:,} | {line['difference']:,} | "
        f"hand − machine on line {line['line']} of station {station['station']}: hand count (ledger entry "
    )
    assert any(m.startswith(want) for m in messages(report)), messages(report)
    assert report["mismatches_by_check"] == {"reconciliation": 1, "downloads": 1}


def test_one_changed_difference_in_the_csv(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    lines = (snap / "data/reconciliation.csv").read_text().splitlines()
    n, line = next((i, ln) for i, ln in enumerate(lines) if ln.startswith("party-list,"))
    cells = line.split(",")
    cells[6] = str(int(cells[6]) - 1)
    lines[n] = ",".join(cells)
    rewrite(snap, "data/reconciliation.csv", ("\n".join(lines) + "\n").encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith("data/reconciliation.csv")]
    assert msgs == [
        f"data/reconciliation.csv › line {n + 1} (party-list / {cells[1]} / {cells[3]}) › difference: "
        f'"{cells[6]}" | "{int(cells[6]) + 1}" | hand − machine on line {cells[3]} of station {cells[1]}: '
        + msgs[0].split(f"of station {cells[1]}: ", 1)[1]
    ]


def test_one_changed_difference_on_a_page(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    station = _party(snap)["stations"][0]
    line = station["lines"][0]
    rel = "ru/reconcile/party-list/overstatement.html"
    text = (snap / rel).read_text(encoding="utf-8")
    row = re.search(rf'<tr data-station="{station["station"]}">.*?</tr>', text, re.S)
    assert row is not None
    sign = "+" if line["difference"] > 0 else ""
    shown = f'<span class="d">{sign}{line["difference"]}</span>'
    assert shown in row.group(0)
    wrong = f'<span class="d">{sign}{line["difference"] * 10}</span>'
    edit_text(snap, rel, row.group(0), row.group(0).replace(shown, wrong, 1))
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith(rel)]
    assert len(msgs) == 1
    assert msgs[0].startswith(
        f"{rel} › tr[data-station={station['station']}] › {line['line']} › difference: "
        f'"{sign}{line["difference"] * 10}" | "{sign}{line["difference"]}" | hand − machine on line'
    ), msgs


def test_a_station_left_off_the_page_and_a_histogram_count(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    party = _party(snap)
    station = party["stations"][0]["station"]
    rel = "en/reconcile/party-list/difference.html"
    text = (snap / rel).read_text(encoding="utf-8")
    row = re.search(rf'<tr data-station="{station}">.*?</tr>\n', text, re.S)
    assert row is not None
    bins = party["histogram"]["bins"]
    low, count = bins[0]["low"], bins[0]["count"]
    first = f'<tr data-low="{low}"><th scope="row">{low}</th><td class="n">{count:,}</td>'
    assert first in text
    text = text.replace(row.group(0), "").replace(
        first, first.replace(f">{bins[0]['count']:,}<", f">{bins[0]['count'] + 1:,}<")
    )
    rewrite(snap, rel, text.encode("utf-8"))
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith(rel)]
    missing = f"{rel} › tr[data-station={station}]: None | None | its counts differ, but it is not listed"
    assert missing in msgs
    assert any(m.startswith(f"{rel} › histogram › {bins[0]['low']}: ") for m in msgs), msgs


def test_sensitivity_changed_on_the_national_page(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    page = json.loads((snap / "api/v1/results/index.json").read_bytes())
    hand = next(s for s in page["sections"] if (s["contest"], s["count_kind"]) == ("party-list", "hand"))
    move = hand["sensitivity"]["seat_move"]
    assert move is not None

    def fewer(doc: dict[str, Any]) -> None:
        s = next(s for s in doc["sections"] if (s["contest"], s["count_kind"]) == ("party-list", "hand"))
        s["sensitivity"]["seat_move"]["votes"] -= 1

    edit_json(snap, "api/v1/results/index.json", fewer)
    shown = f"{move['votes']:,}"
    edit_text(
        snap,
        "en/index.html",
        f"The last seat would move if {shown} votes",
        f"The last seat would move if {move['votes'] + 100:,} votes",
    )
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    assert any(
        m.startswith(
            "api/v1/results/index.json › sections[party-list / hand].sensitivity.seat_move.votes: "
            f"{move['votes'] - 1:,} | {move['votes']:,} | recomputed from the national row"
        )
        for m in msgs
    ), msgs
    assert any(
        m.startswith(
            f'en/index.html › sensitivity[party-list / hand] › last seat: "{move["votes"] + 100:,}" | '
            f'"{shown}"'
        )
        for m in msgs
    ), msgs

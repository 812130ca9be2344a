"""`tallyroom verify` on real published snapshots: clean ones verify; each tampering is caught
with a message that names the file, the number, what it should be and why."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tamper import copy_publish, edit_json, edit_text, rewrite, rewrite_manifest
from verify_support import Pub, forge_protocol, publish

from tallyroom.cli import main
from tallyroom.verify.numbers import percent

SUMMARY = re.compile(
    r"^verified [\d,]+ numbers in [\d,]+ files against [\d,]+ signed protocols: ([\d,]+) mismatch(es)?$"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args, "--workers", "1"])


def summary(result: Result) -> str:
    last = result.output.rstrip("\n").splitlines()[-1]
    assert SUMMARY.match(last), last
    return last


def mismatches(result: Result) -> int:
    m = SUMMARY.match(summary(result))
    assert m is not None
    return int(m.group(1).replace(",", ""))


def report_of(tmp_path: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    out = tmp_path / "report.json"
    result = run(*args, "--report", str(out))
    return result, json.loads(out.read_text())


def report_with_two_workers(tmp_path: Path, source: str) -> tuple[Result, dict[str, Any]]:
    """:func:`report_of` with the work shared by two worker processes, as on a large source."""
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["verify", source, "--workers", "2", "--report", str(out)])
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


# -- clean snapshots ---------------------------------------------------------------------------


def test_clean_kyrgyz_snapshot_verifies(mini_pub: Pub) -> None:
    result = run(str(mini_pub.out))
    assert result.exit_code == 0, result.output
    assert mismatches(result) == 0
    numbers = int(summary(result).split()[1].replace(",", ""))
    assert numbers > 100_000
    # the current snapshot's ledger has a correction, an annulment and an audit
    assert "audit of party-list" in result.output
    # an earlier snapshot verifies on its own too, as a snapshot folder
    result = run(str(mini_pub.snapshot(1)))
    assert result.exit_code == 0, result.output


def test_every_listed_file_and_signed_protocol_is_counted(mini_pub: Pub, tmp_path: Path) -> None:
    result, report = report_of(tmp_path, str(mini_pub.snapshot(2)))
    assert result.exit_code == 0, result.output
    manifest = json.loads((mini_pub.snapshot(2) / "manifest.json").read_bytes())
    assert report["files"] == len(manifest["files"]) + 1  # and manifest.json itself
    entries = [
        json.loads(line)
        for p in sorted((mini_pub.snapshot(2) / "bulletin/entries").glob("*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    protocol_bodies = sum(1 for e in entries if e["kind"] == "protocol") + sum(
        1
        for e in entries
        if e["kind"] == "correction"
        and json.loads(base64.b64decode(e["data"]).split(b"\n")[1])["action"] == "supersede"
    )
    assert report["protocols"] == protocol_bodies


def test_unreadable_source_exits_2(tmp_path: Path) -> None:
    for source in (str(tmp_path / "nowhere"), str(tmp_path), "http://127.0.0.1:9/"):
        result = run(source)
        assert result.exit_code == 2, (source, result.output)
        assert "cannot be read" in result.output.splitlines()[-1]


# -- tampering: published numbers -------------------------------------------------------------


def _kg_hand(doc: dict[str, Any]) -> dict[str, Any]:
    return next(
        r for r in doc["rows"] if (r["contest"], r["area"], r["count_kind"]) == ("party-list", "kg", "hand")
    )


def test_one_number_changed_in_a_json_file(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    original = {}

    def bump(doc: dict[str, Any]) -> None:
        row = _kg_hand(doc)
        c = row["choices"][2]
        original.update(c)
        c["votes"] += 1000

    edit_json(snap, "data/results.json", bump)
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    votes = original["votes"]
    want = (
        f"data/results.json › rows[party-list / kg / hand] › choices.{original['id']}.votes: "
        f"{votes + 1000:,} | {votes:,} | sum of line {original['id']} over the "
    )
    assert any(m.startswith(want) for m in messages(report)), messages(report)
    assert report["mismatches_by_check"] == {"results-json": 1, "downloads": 1}


def test_one_number_changed_in_a_csv(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    lines = (snap / "data/csv/admin-1.csv").read_text().splitlines()
    n, line = next((i, ln) for i, ln in enumerate(lines) if ",party-list,hand," in ln and ",chui," in ln)
    cells = line.split(",")
    cells[11] = str(int(cells[11]) - 7)  # valid
    lines[n] = ",".join(cells)
    rewrite(snap, "data/csv/admin-1.csv", ("\n".join(lines) + "\n").encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith("data/csv/admin-1.csv")]
    assert msgs == [
        f"data/csv/admin-1.csv › line {n + 1} (party-list / chui / hand / {cells[16]}) › valid: "
        f'"{int(cells[11])}" | "{int(cells[11]) + 7}" | sum of line valid over the '
        f"{int(cells[6]):,} hand-count protocols in force in chui"
    ], msgs


def test_a_station_file_missing_a_protocol_and_holding_another_s(pub_copy: Path, tmp_path: Path) -> None:
    """data/stations/<region>.json must hold exactly the protocols in force in the region: one
    dropped and one taken from another region are both named."""
    snap = current(pub_copy)
    other = json.loads((snap / "data/stations/naryn.json").read_bytes())["stations"][0]
    dropped: dict[str, Any] = {}

    def swap(doc: dict[str, Any]) -> None:
        dropped.update(doc["stations"].pop(3))
        doc["stations"].append(other)

    edit_json(snap, "data/stations/chui.json", swap)
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith("data/stations/chui.json")]
    n = len(json.loads((snap / "data/stations/chui.json").read_bytes())["stations"]) - 1
    assert msgs == [
        f"data/stations/chui.json › stations[{n}]: None | None | protocol {other['contest']} / "
        f"{other['station']} / {other['count_kind']} is not in force in this region according to the ledger",
        f"data/stations/chui.json › stations: None | None | protocol {dropped['contest']} / "
        f"{dropped['station']} / {dropped['count_kind']} (ledger entry {dropped['ledger_index']}) is in "
        "force but not published",
    ], msgs


@pytest.mark.parametrize("field", ["ledger_index", "leaf_hash", "body_sha256", "lines"])
def test_a_station_record_naming_another_entry_or_other_lines(
    pub_copy: Path, tmp_path: Path, field: str
) -> None:
    """A record of data/stations/<region>.json that points at another ledger entry, or shows
    other lines than the protocol in force, is named field by field."""
    snap = current(pub_copy)
    records = json.loads((snap / "data/stations/chui.json").read_bytes())["stations"]
    r = records[5]
    other = records[6]
    changed = {**r["lines"], "valid": r["lines"]["valid"] + 1} if field == "lines" else other[field]

    def edit(doc: dict[str, Any]) -> None:
        doc["stations"][5][field] = changed

    edit_json(snap, "data/stations/chui.json", edit)
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith("data/stations/chui.json")]
    label = f"stations[{r['contest']} / {r['station']} / {r['count_kind']}]"
    if field == "lines":
        valid = r["lines"]["valid"]
        head = f"data/stations/chui.json › {label} › lines.valid: {valid + 1} | {valid} | "
        assert len(msgs) == 1 and msgs[0].startswith(head), msgs
    else:
        assert msgs == [
            f"data/stations/chui.json › {label} › {field}: {json.dumps(changed)} | {json.dumps(r[field])} | "
            f"the ledger entry in force for this protocol ({r['ledger_index']})"
        ], msgs


def test_one_number_changed_in_an_html_page(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    row = _kg_hand(json.loads((snap / "data/results.json").read_bytes()))
    top = max(row["choices"], key=lambda c: c["votes"])
    shown = f"{top['votes']:,}".replace(",", "\u00a0")
    wrong = f"{top['votes'] + 50:,}".replace(",", "\u00a0")
    edit_text(snap, "ru/index.html", f'<tr data-choice="{top["id"]}">', f'<tr data-choice="{top["id"]}">', 1)
    text = (snap / "ru/index.html").read_text()
    start = text.index('data-kind="hand"')
    i = text.index(f'<td class="n votes">{shown}</td>', start)
    rewrite(
        snap,
        "ru/index.html",
        (
            text[:i]
            + f'<td class="n votes">{wrong}</td>'
            + text[i + len(f'<td class="n votes">{shown}</td>') :]
        ).encode(),
    )
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith("ru/index.html")]
    assert msgs == [
        f'ru/index.html › section[party-list / hand] › {top["id"]} › votes: "{wrong}" | "{shown}" | '
        f"sum of line {top['id']} over the {row['stations_reporting']} hand-count protocols in force in kg"
    ]


def test_a_percentage_computed_on_the_wrong_base(pub_copy: Path, tmp_path: Path) -> None:
    """The 2021 kind of display bug: a share of valid votes shown as the share of voters who
    took part (the Kyrgyz law's base)."""
    snap = current(pub_copy)
    doc = json.loads((snap / "data/results.json").read_bytes())
    row = _kg_hand(doc)
    c = row["choices"][0]
    wrong = percent(c["votes"], row["valid"])
    assert wrong != c["percent"]

    def on_valid(d: dict[str, Any]) -> None:
        _kg_hand(d)["choices"][0]["percent"] = wrong

    edit_json(snap, "data/results.json", on_valid)
    edit_json(snap, "api/v1/results/party-list/hand/kg.json", lambda d: d["choices"][0].update(percent=wrong))
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    want = (
        f'data/results.json › rows[party-list / kg / hand] › choices.{c["id"]}.percent: "{wrong}" | '
        f'"{c["percent"]}" | {c["votes"]:,} of {row["took_part"]:,} voters who took part (the stated base, '
        f"took_part) × 100, rounded half up; the published {wrong}% is {c['votes']:,} of {row['valid']:,} "
        "valid votes — a share computed on the wrong base"
    )
    assert want in messages(report), messages(report)
    assert any(
        m.startswith("api/v1/results/party-list/hand/kg.json") and "wrong base" in m for m in messages(report)
    )


def test_seats_changed(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)

    def steal(d: dict[str, Any]) -> None:
        parties = d["parties"]
        parties[0]["seats"] += 1
        parties[1]["seats"] -= 1

    edit_json(snap, "api/v1/results/seats/party-list/hand.json", steal)
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    assert any(
        m.startswith("api/v1/results/seats/party-list/hand.json › parties.")
        and ".seats:" in m
        and "seats allocated to it by the recomputed allocation" in m
        for m in messages(report)
    )


def test_numbers_in_nist_and_sqlite(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)

    def nist(d: dict[str, Any]) -> None:
        sel = d["Election"][0]["Contest"][0]["ContestSelection"][0]
        sel["VoteCounts"][0]["Count"] += 5

    edit_json(snap, "data/nist-err-hand.json", nist)
    import sqlite3

    db = snap / "data/tallyroom.sqlite"
    tmp = tmp_path / "x.sqlite"
    shutil.copy(db, tmp)
    with sqlite3.connect(tmp) as conn:
        conn.execute(
            "UPDATE results SET took_part = took_part + 1 WHERE area = 'kg' AND count_kind = 'hand' "
            "AND contest = 'party-list'"
        )
    rewrite(snap, "data/tallyroom.sqlite", tmp.read_bytes())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    assert any(
        m.startswith("data/nist-err-hand.json › Contest[contest-party-list].") and ".VoteCounts[gp-" in m
        for m in msgs
    ), msgs
    assert any(
        m.startswith("data/tallyroom.sqlite › results[party-list / hand / kg].took_part") for m in msgs
    ), msgs


def test_sqlite_protocol_lines_missing_extra_duplicate_and_changed(pub_copy: Path, tmp_path: Path) -> None:
    """The protocol lines table is compared as it streams by in key order: every kind of
    wrong row is still named, whatever the file's own key and collation say."""
    import sqlite3

    snap = current(pub_copy)
    tmp = tmp_path / "x.sqlite"
    shutil.copy(snap / "data/tallyroom.sqlite", tmp)
    with sqlite3.connect(tmp) as conn:
        cols = "contest, count_kind, station, line, value"
        first, second, third = conn.execute(
            f"SELECT {cols} FROM protocol_lines ORDER BY contest, count_kind, station, line LIMIT 3"
        ).fetchall()
        # A copy of the table without its primary key, so that a key can come twice.
        conn.execute(f"CREATE TABLE copy AS SELECT {cols} FROM protocol_lines")
        conn.execute("DROP TABLE protocol_lines")
        conn.execute("ALTER TABLE copy RENAME TO protocol_lines")
        conn.execute(
            "DELETE FROM protocol_lines WHERE contest = ? AND count_kind = ? AND station = ? AND line = ?",
            first[:4],
        )
        conn.execute(f"INSERT INTO protocol_lines ({cols}) VALUES (?, ?, ?, ?, ?)", second)
        conn.execute(
            "UPDATE protocol_lines SET value = value + 7 "
            "WHERE contest = ? AND count_kind = ? AND station = ? AND line = ?",
            third[:4],
        )
        conn.execute(
            f"INSERT INTO protocol_lines ({cols}) VALUES (?, ?, ?, ?, ?)", (*third[:3], "no-such-line", 1)
        )
    rewrite(snap, "data/tallyroom.sqlite", tmp.read_bytes())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    where = "data/tallyroom.sqlite › protocol_lines"
    name = " / ".join(map(str, first[:4]))
    assert any(m.startswith(f"{where}[{name}]") and "row is missing" in m for m in msgs), msgs
    assert any(m.startswith(where) and "1 duplicate rows" in m for m in msgs), msgs
    name = " / ".join(map(str, third[:4]))
    changed = f"{where}[{name}].value: {third[4] + 7} | {third[4]} | line {third[3]} of the protocol in force"
    assert any(m.startswith(changed) for m in msgs), msgs
    name = " / ".join(map(str, (*third[:3], "no-such-line")))
    assert any(m.startswith(f"{where}[{name}]") and "should not exist" in m for m in msgs), msgs


@pytest.mark.parametrize("how", ["text value", "two lines in one"])
def test_sqlite_protocol_lines_that_read_the_same_joined(pub_copy: Path, tmp_path: Path, how: str) -> None:
    """The lines table keeps its primary key, so the check first compares each protocol's lines
    joined by SQLite: a number stored as text, or two lines folded into one row whose name
    holds the first, joins to the same text and must still be named."""
    import sqlite3

    snap = current(pub_copy)
    tmp = tmp_path / "x.sqlite"
    shutil.copy(snap / "data/tallyroom.sqlite", tmp)
    key = "contest = ? AND count_kind = ? AND station = ? AND line = ?"
    with sqlite3.connect(tmp) as conn:
        first, second = conn.execute(
            "SELECT contest, count_kind, station, line, value FROM protocol_lines "
            "ORDER BY contest, count_kind, station, line LIMIT 2"
        ).fetchall()
        if how == "text value":
            # A column without a type, so that SQLite keeps the text as text.
            conn.execute(
                "CREATE TABLE copy (contest TEXT, count_kind TEXT, station TEXT, line TEXT, value, "
                "PRIMARY KEY (contest, count_kind, station, line)) WITHOUT ROWID"
            )
            conn.execute("INSERT INTO copy SELECT * FROM protocol_lines")
            conn.execute("DROP TABLE protocol_lines")
            conn.execute("ALTER TABLE copy RENAME TO protocol_lines")
            conn.execute(f"UPDATE protocol_lines SET value = CAST(value AS TEXT) WHERE {key}", first[:4])
        else:
            conn.execute(f"DELETE FROM protocol_lines WHERE {key}", first[:4])
            folded = f"{first[3]}={first[4]},{second[3]}"
            conn.execute(f"UPDATE protocol_lines SET line = ? WHERE {key}", (folded, *second[:4]))
    rewrite(snap, "data/tallyroom.sqlite", tmp.read_bytes())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith("data/tallyroom.sqlite › protocol_lines")]
    where = "data/tallyroom.sqlite › protocol_lines"
    if how == "text value":
        name = " / ".join(map(str, first[:4]))
        want = f'{where}[{name}].value: "{first[4]}" | {first[4]} | line {first[3]} of the protocol in force'
        assert len(msgs) == 1 and msgs[0].startswith(want), msgs
    else:
        assert sorted(msgs) == sorted(
            [
                f"{where}[{' / '.join(map(str, first[:4]))}]: None | None | row is missing",
                f"{where}[{' / '.join(map(str, second[:4]))}]: None | None | row is missing",
                f"{where}[{' / '.join(map(str, (*second[:3], folded)))}]: None | None | "
                "a row that should not exist",
            ]
        ), msgs


def test_file_changed_without_fixing_the_manifest(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    path = snap / "api/v1/results/party-list/hand/kg.json"
    doc = json.loads(path.read_bytes())
    doc["took_part"] += 1
    rewrite(
        snap,
        "api/v1/results/party-list/hand/kg.json",
        json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n",
        fix_manifest=False,
    )
    (snap / "en/index.html.br").unlink()
    (snap / "en/index.html.br").write_bytes(b"not brotli")
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    assert any(m.startswith("api/v1/results/party-list/hand/kg.json › SHA-256") for m in msgs)
    assert any(m.startswith("api/v1/results/party-list/hand/kg.json › took_part") for m in msgs)
    assert any(m.startswith("en/index.html.br") for m in msgs)


# -- tampering: the ledger -----------------------------------------------------------------------


def _entries(snap: Path) -> tuple[str, list[str]]:
    rel = "bulletin/entries/000000000000.jsonl"
    return rel, (snap / rel).read_text().splitlines()


def test_an_entry_removed_from_the_ledger(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    rel, lines = _entries(snap)
    removed = json.loads(lines[40])
    assert removed["kind"] == "protocol"
    del lines[40]
    rewrite(snap, rel, ("\n".join(lines) + "\n").encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    assert msgs[0] == (
        f"{rel} › line 41: index: 41 | 40 | indices must run 0, 1, 2, … without gaps: entry 40 is "
        "missing; the published entries no longer hash to the signed roots"
    ), msgs[:3]
    assert any(
        m.startswith("bulletin/checkpoints.jsonl › line 1 (size ")
        and "the commission signed a different tree" in m
        for m in msgs
    )
    sizes = [
        re.fullmatch(
            r"checkpoint.txt › root: None \| None \| signed checkpoint of size ([\d,]+), but only "
            r"([\d,]+) entries are published",
            m,
        )
        for m in msgs
    ]
    found = [m for m in sizes if m is not None]
    assert (
        len(found) == 1
        and int(found[0].group(1).replace(",", "")) == int(found[0].group(2).replace(",", "")) + 1
    )


@pytest.mark.parametrize("data", ["!", " ", "=", "A"])
def test_an_entry_whose_data_is_not_standard_base64(pub_copy: Path, tmp_path: Path, data: str) -> None:
    """A character outside the alphabet, a space, a misplaced or missing pad: the line is named
    and its field given, and nothing is read from it (docs/bulletin.md §3)."""
    snap = current(pub_copy)
    rel, lines = _entries(snap)
    entry = json.loads(lines[7])
    entry["data"] = entry["data"][:8] + data + entry["data"][8:]
    lines[7] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    rewrite(snap, rel, ("\n".join(lines) + "\n").encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    assert msgs[0].startswith(f"{rel} › line 8: None | None | not a ledger entry line: "), msgs[:3]
    assert "base64" in msgs[0] and "$.data" in msgs[0], msgs[0]
    assert msgs[1].startswith(f"{rel} › line 9: index: 8 | 7 | "), msgs[:3]


def test_an_entry_listed_under_another_kind(pub_copy: Path, tmp_path: Path) -> None:
    """The kind beside an entry in the bulletin must be the one its own header names."""
    snap = current(pub_copy)
    rel, lines = _entries(snap)
    entry = json.loads(lines[7])
    assert entry["kind"] == "protocol"
    entry["kind"] = "annulment"
    lines[7] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    rewrite(snap, rel, ("\n".join(lines) + "\n").encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    why = "the kind in the entry's own header line"
    assert f'{rel} › line 8 (entry 7): kind: "annulment" | "protocol" | {why}' in msgs, msgs[:3]


def test_an_entry_s_bytes_changed(pub_copy: Path, tmp_path: Path) -> None:
    snap = current(pub_copy)
    rel, lines = _entries(snap)
    entry = json.loads(lines[7])
    data = base64.b64decode(entry["data"])
    changed = data.replace(b'"valid":', b'"valid":1', 1)
    assert changed != data
    entry["data"] = base64.b64encode(changed).decode()
    lines[7] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    rewrite(snap, rel, ("\n".join(lines) + "\n").encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    leaf = hashlib.sha256(b"\x00" + changed).hexdigest()
    assert msgs[0] == (
        f'{rel} › line 8 (entry 7): leaf_hash: "{entry["leaf_hash"]}" | "{leaf}" | '
        "SHA-256(0x00 ‖ entry bytes) of the published entry bytes"
    ), msgs[:3]
    assert any("the commission signed a different tree" in m for m in msgs)


@pytest.mark.parametrize("beside", [False, True])
def test_a_checkpoint_re_signed_over_a_different_tree(
    mini_pub: Pub, pub_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, beside: bool
) -> None:
    """The commission's own key signs a tree in which one protocol was changed; the entries,
    the checkpoint and its leaf hashes are all made to agree. Earlier signed checkpoints (and
    the ledger's own records of them) still bind the old tree. ``beside``: the checkpoints
    checked by a worker process beside the protocol bodies, as on a large ledger."""
    if beside:
        from tallyroom.verify import ledger as ledger_mod

        monkeypatch.setattr(ledger_mod, "PARALLEL_BODIES", 1)
    from tallyroom.ledger.checkpoint import Checkpoint, parse_signed_checkpoint, sign_checkpoint
    from tallyroom.ledger.merkle import leaf_hash, root_from_leaf_hashes
    from tallyroom.ledger.note import parse_skey

    snap = current(pub_copy)
    rel, lines = _entries(snap)
    entries = [json.loads(x) for x in lines]
    e = entries[12]
    data = base64.b64decode(e["data"])
    e["data"] = base64.b64encode(data.replace(b'"invalid":', b'"invalid":0', 1)).decode()
    for x in entries:
        x["leaf_hash"] = leaf_hash(base64.b64decode(x["data"])).hex()
    rewrite(
        snap,
        rel,
        ("\n".join(json.dumps(x, sort_keys=True, separators=(",", ":")) for x in entries) + "\n").encode(),
    )
    root = root_from_leaf_hashes([bytes.fromhex(x["leaf_hash"]) for x in entries])
    old, _ = parse_signed_checkpoint((snap / "checkpoint.txt").read_bytes())
    name, key = parse_skey(mini_pub.key.read_text().strip())
    note = sign_checkpoint(Checkpoint(old.origin, old.size, root, old.time), name, key)
    rewrite(snap, "checkpoint.txt", note)
    cps = (snap / "bulletin/checkpoints.jsonl").read_text().splitlines()
    cps[-1] = json.dumps(
        {"note": note.decode(), "root": root.hex(), "size": old.size, "time": old.time},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    rewrite(snap, "bulletin/checkpoints.jsonl", ("\n".join(cps) + "\n").encode())
    manifest = json.loads((snap / "manifest.json").read_bytes())
    manifest["snapshot"]["root"] = root.hex()
    rewrite_manifest(snap, manifest)
    result, report = (report_with_two_workers if beside else report_of)(tmp_path, str(snap))
    assert result.exit_code == 1
    msgs = messages(report)
    first_size = json.loads(cps[0])["size"]
    assert any(
        m.startswith(f"bulletin/checkpoints.jsonl › line 1 (size {first_size:,})")
        and "the commission signed a different tree" in m
        for m in msgs
    ), msgs[:5]
    assert any(
        m.startswith("bulletin/checkpoints.jsonl › lines 1–2") and "published history was rewritten" in m
        for m in msgs
    ), msgs[:5]
    assert any("snapshot 1 was computed from a history this ledger no longer contains" in m for m in msgs)


def test_a_new_history_that_does_not_extend_the_old_one(mini_pub: Pub, tmp_path: Path) -> None:
    """Snapshot 1 as published, then a snapshot 2 from a ledger written anew (the same
    protocols in another order): each looks fine alone; together they prove history was
    rewritten."""
    from publish_support import load, mini
    from verify_support import store_with_key

    folder = tmp_path / "other"
    folder.mkdir()
    store, key = store_with_key(folder, mini_pub.key)
    load(store, "machine", mini().machine)
    load(store, "hand", list(reversed(mini().hand[:100])))
    other = folder / "pub"
    publish(store, other, key)
    load(store, "hand", mini().hand[100:110])
    publish(store, other, key)
    store.close()
    assert run(str(other)).exit_code == 0
    mixed = copy_publish(mini_pub.out, tmp_path / "mixed")
    shutil.rmtree(mixed / "snapshots" / "2")
    shutil.copytree(other / "snapshots" / "2", mixed / "snapshots" / "2", symlinks=True)
    shutil.copy(other / "current.json", mixed / "current.json")
    result, report = report_of(tmp_path, str(mixed))
    assert result.exit_code == 1
    msgs = messages(report)
    assert any(
        m.startswith("snapshots/1/manifest.json › SHA-256") and "was changed or replaced" in m for m in msgs
    ), msgs
    assert any(
        m.startswith("snapshots/1/checkpoint.txt › root at size")
        and "the new history does not extend the old one" in m
        for m in msgs
    ), msgs


def test_an_earlier_snapshot_changed_after_publication(pub_copy: Path, tmp_path: Path) -> None:
    edit_json(pub_copy / "snapshots" / "1", "data/results.json", lambda d: _kg_hand(d).update(took_part=1))
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    assert any(
        m.startswith("snapshots/1/manifest.json › SHA-256") and "ledger entry " in m for m in messages(report)
    ), messages(report)


def test_unlisted_file(pub_copy: Path, tmp_path: Path) -> None:
    (current(pub_copy) / "en" / "extra.html").write_text("<p>Results: 99%</p>")
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    assert messages(report) == [
        "en/extra.html: None | None | in the snapshot folder but not in manifest.json: nothing vouches for it"
    ]


# -- station signatures ------------------------------------------------------------------------------


def test_signed_protocols_verify(signed_pub: Pub, tmp_path: Path) -> None:
    result, report = report_of(tmp_path, str(signed_pub.out))
    assert result.exit_code == 0, result.output
    # 24 device submissions and one accepted conflict (a correction carrying the device's signature)
    assert report["signatures"] == 25


def test_a_protocol_signed_by_another_station_s_key(signed_pub: Pub, tmp_path: Path) -> None:
    forged, victim, thief = forge_protocol(signed_pub, tmp_path)
    result, report = report_of(tmp_path, str(forged.out))
    assert result.exit_code == 1
    msgs = messages(report)
    sig = [
        m for m in msgs if "station-signature" in json.dumps(report["mismatches_by_check"]) and victim in m
    ]
    assert len(sig) == 1, msgs
    assert re.search(
        rf"protocol of station {victim} is signed with key ed25519:[0-9a-f]{{16}}, which is "
        rf"registered for station {thief} \(ledger entry \d+\): another station's key",
        sig[0],
    ), sig
    assert report["mismatches_by_check"] == {"station-signature": 1}


@pytest.mark.parametrize("parallel", [False, True])
def test_a_signature_that_does_not_match_the_body(
    signed_pub: Pub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    """The body of a signed protocol changed and every hash and root recomputed, as a
    commission that controls the log could: the station's signature still betrays it."""
    if parallel:  # checked by two workers while the main process recomputes the tally
        from tallyroom.verify import ledger as ledger_mod

        monkeypatch.setattr(ledger_mod, "PARALLEL_SIGNATURES", 1)
        monkeypatch.setattr(ledger_mod.BadSignatures, "TASK", 7)
    pub = copy_publish(signed_pub.out, tmp_path / "pub")
    snap = current(pub)
    rel, lines = _entries(snap)
    n, entry = next(
        (i, json.loads(x))
        for i, x in enumerate(lines)
        if json.loads(x)["kind"] == "protocol" and b"key_id" in base64.b64decode(json.loads(x)["data"])
    )
    header, envelope, body = base64.b64decode(entry["data"]).split(b"\n", 2)
    doc = json.loads(body)
    lines_ = doc["lines"]
    donor = next(c for c in ("ata_jurt_kyrgyzstan", "ishenim", "yntymak", "alliance") if lines_[c] > 0)
    lines_[donor] -= 1
    lines_["ata_meken" if donor != "ata_meken" else "bagyt"] += 1  # every control rule still holds
    entry["data"] = base64.b64encode(b"\n".join([header, envelope, json.dumps(doc).encode()])).decode()
    lines[n] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    rewrite(snap, rel, ("\n".join(lines) + "\n").encode())
    result, report = (report_with_two_workers if parallel else report_of)(tmp_path, str(snap))
    assert result.exit_code == 1
    sig = [m for m in messages(report) if "Ed25519 signature does not match" in m]
    assert len(sig) == 1 and sig[0].startswith(f"{rel} line {n + 1} › entry {entry['index']} (station "), sig


def test_numbers_in_maps_and_area_tables(pub_copy: Path, tmp_path: Path) -> None:
    """Numbers outside the results table: a region's share in the map's tooltip, and a region's
    turnout in the national page's table of regions (ky page, so `34,03%`)."""
    snap = current(pub_copy)
    text = (snap / "en/index.html").read_text()
    m = re.search(r'(<a href="area/chui.html"><path [^>]*><title>[^<]*?)(\d+\.\d\d)%', text)
    assert m is not None
    rewrite(snap, "en/index.html", (text[: m.start(2)] + "99.99" + text[m.end(2) :]).encode())
    text = (snap / "ky/index.html").read_text()
    m = re.search(
        r'<tr data-area="naryn">.*?<td class="n">[^<]*</td><td class="n">(\d+),(\d\d)%</td>', text, re.S
    )
    assert m is not None
    shown = f"{m.group(1)},{m.group(2)}%"
    rewrite(snap, "ky/index.html", (text[: m.start(1)] + "12,34%" + text[m.end(2) + 1 :]).encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = messages(report)
    assert any(m.startswith('en/index.html › map › chui › leading share: "99.99"') for m in msgs), msgs
    assert any(
        m.startswith(f'ky/index.html › tr[data-area=naryn] › turnout: "12,34%" | "{shown}"') for m in msgs
    ), msgs


def test_a_protocol_signed_with_a_revoked_key(signed_pub: Pub, tmp_path: Path) -> None:
    forged, victim, _ = forge_protocol(signed_pub, tmp_path, "revoked-key")
    result, report = report_of(tmp_path, str(forged.out))
    assert result.exit_code == 1
    assert report["mismatches_by_check"] == {"station-signature": 1}, messages(report)
    assert re.search(
        rf"entry \d+ \(station {victim}\): None \| None \| signed with key ed25519:[0-9a-f]{{16}}, "
        r"revoked at ledger entry \d+, before this entry",
        messages(report)[0],
    ), messages(report)


def test_a_protocol_that_breaks_an_error_rule(signed_pub: Pub, tmp_path: Path) -> None:
    forged, victim, _ = forge_protocol(signed_pub, tmp_path, "broken-rule")
    result, report = report_of(tmp_path, str(forged.out))
    assert result.exit_code == 1
    assert report["mismatches_by_check"] == {"protocol-rules": 1}, messages(report)
    msg = messages(report)[0]
    assert f"(station {victim}, party-list, hand)" in msg and "intake must have refused it" in msg, msg
    assert 'rule "valid-eq-choices"' in msg or "valid" in msg, msg


def test_stations_listed_on_an_area_page(pub_copy: Path, tmp_path: Path) -> None:
    """An area page lists its own stations with each count's turnout and leader: a leader's
    votes, a turnout and a leader that is not the leader are each named in the page's JSON,
    and a turnout on its HTML page."""
    snap = current(pub_copy)
    files = json.loads((snap / "manifest.json").read_bytes())["files"]
    rel = next(
        r
        for r in sorted(files)
        if r.startswith("api/v1/results/area/") and len(json.loads((snap / r).read_bytes())["stations"]) >= 3
    )
    doc = json.loads((snap / rel).read_bytes())
    shown = [st for st in doc["stations"] if (st["kinds"].get("hand") or {}).get("leader")][:3]
    assert len(shown) == 3
    a, b, c = (st["kinds"]["hand"] for st in shown)
    votes, turnout, leader = a["leader"]["votes"], b["turnout_percent"], c["leader"]["id"]

    def edit(d: dict[str, Any]) -> None:
        by_id = {st["id"]: st["kinds"]["hand"] for st in d["stations"]}
        by_id[shown[0]["id"]]["leader"]["votes"] = votes + 1
        by_id[shown[1]["id"]]["turnout_percent"] = "99.99"
        by_id[shown[2]["id"]]["leader"]["id"] = "no-such-choice"

    edit_json(snap, rel, edit)
    area = rel[len("api/v1/results/area/") : -len(".json")]
    page = f"en/area/{area}.html"
    text = (snap / page).read_text()
    m = re.search(rf'<tr data-station="{shown[1]["id"]}">.*?</tr>', text, re.S)
    assert m is not None and f"{turnout}%" in m.group(0)
    row = m.group(0).replace(f"{turnout}%", "12.34%", 1)
    rewrite(snap, page, (text[: m.start()] + row + text[m.end() :]).encode())
    result, report = report_of(tmp_path, str(pub_copy))
    assert result.exit_code == 1
    msgs = [m for m in messages(report) if m.startswith((rel, page))]
    first, second, third = (f"{rel} › stations[{st['id']}] › kinds.hand › " for st in shown)
    assert any(m.startswith(f"{first}leader.votes: {votes + 1} | {votes} | ") for m in msgs), msgs
    assert any(m.startswith(f'{second[:-3]}.turnout_percent: "99.99" | "{turnout}" | ') for m in msgs), msgs
    assert any(
        m.startswith(f'{third}leader: "no-such-choice" | "{leader}') and "the choice with the most votes" in m
        for m in msgs
    ), msgs
    assert any(
        m.startswith(f'{page} › tr[data-station={shown[1]["id"]}] › hand turnout: "12.34" | "{turnout}"')
        for m in msgs
    ), msgs
    assert len(msgs) == 4, msgs

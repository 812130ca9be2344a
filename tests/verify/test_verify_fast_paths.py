"""The verifier's fast paths (docs/decisions/0009-verify-speed.md) catch what the detailed
checks catch: a compressed copy is decompressed and compared byte for byte; a station page is
read on its bytes, and any difference goes to the detailed check that names it."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from tamper import copy_publish, read, rewrite
from verify_support import Pub

from tallyroom.cli import main
from tallyroom.verify import compare_html, compare_tables
from tallyroom.verify.expected import FIGURES
from tallyroom.verify.numbers import symbols
from tallyroom.verify.run import verify_snapshot
from tallyroom.verify.source import open_source


def _verify(tmp_path: Path, pub: Path) -> tuple[int, list[str]]:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["verify", str(pub), "--workers", "1", "--report", str(out)])
    report: dict[str, Any] = json.loads(out.read_text())
    msgs = []
    for m in report["mismatches"]:
        head = " › ".join(p for p in (m["file"], m["where"]) if p)
        msgs.append(f"{head}: {m['published']} | {m['expected']} | {m['why']}")
    return result.exit_code, msgs


@pytest.fixture
def snap(mini_pub: Pub, tmp_path: Path) -> Path:
    return (copy_publish(mini_pub.out, tmp_path / "pub") / "current").resolve()


def _station_page(snap: Path, lang: str) -> str:
    files = json.loads((snap / "manifest.json").read_bytes())["files"]
    return next(
        rel
        for rel in sorted(files)
        if rel.startswith(f"{lang}/station/")
        and '<td class="n votes" data-kind="hand">' in read(snap, rel).decode()
    )


@pytest.mark.parametrize("how", ["other bytes", "truncated"])
def test_a_gzip_copy_that_is_not_the_file(snap: Path, tmp_path: Path, how: str) -> None:
    files = json.loads((snap / "manifest.json").read_bytes())["files"]
    rel = next(r for r in sorted(files) if r.startswith("en/area/") and "gzip" in files[r][2])
    data = (snap / rel).read_bytes()
    copy = snap / f"{rel}.gz"
    copy.unlink()
    if how == "other bytes":
        copy.write_bytes(gzip.compress(data.replace(b"</html>", b"<!-- x -->\n</html>"), mtime=0))
    else:
        copy.write_bytes(gzip.compress(data, mtime=0)[:-20])
    code, msgs = _verify(tmp_path, snap.parent.parent)
    assert code == 1
    assert len(msgs) == 1 and msgs[0].startswith(f"{rel}.gz: None | None | decompresses to "), msgs
    assert f"not the bytes of {rel}" in msgs[0]


def test_a_station_page_stored_only_as_gzip_that_does_not_decompress(snap: Path, tmp_path: Path) -> None:
    rel = _station_page(snap, "en")
    copy = snap / f"{rel}.gz"
    raw = copy.read_bytes()
    copy.unlink()
    copy.write_bytes(raw[:-20])
    code, msgs = _verify(tmp_path, snap.parent.parent)
    assert code == 1
    assert len(msgs) == 1 and msgs[0].startswith(f"{rel}: None | None | gzip data does not decompress"), msgs


@pytest.mark.parametrize("extra", ["plain", "br"])
def test_a_second_copy_beside_a_gzip_only_station_page(snap: Path, tmp_path: Path, extra: str) -> None:
    """A copy that the manifest does not list would be served by nginx (try_files, or
    brotli_static) without anything vouching for it."""
    rel = _station_page(snap, "ru")
    data = read(snap, rel).replace(b"</html>", b"<p>forged</p></html>")
    if extra == "plain":
        (snap / rel).write_bytes(data)
        why = f"manifest.json lists this file as stored only as its gzip copy ({rel}.gz); a plain copy"
        want = f"{rel}: None | None | {why}"
    else:
        (snap / f"{rel}.br").write_bytes(brotli.compress(data))
        want = f"{rel}.br: None | None | manifest.json lists no br copy of {rel}: nothing vouches for it"
    code, msgs = _verify(tmp_path, snap.parent.parent)
    assert code == 1
    assert len(msgs) == 1 and msgs[0].startswith(want), msgs


@pytest.mark.parametrize("lang", ["en", "ru", "ky"])
def test_a_vote_changed_on_a_station_page(snap: Path, tmp_path: Path, lang: str) -> None:
    rel = _station_page(snap, lang)
    text = read(snap, rel).decode()
    m = re.search(
        r'<tr data-choice="([^"]+)">.*?<td class="n votes" data-kind="hand">([^<]*)</td>', text, re.S
    )
    assert m is not None
    shown = m.group(2)
    votes = int(shown.replace(",", "").replace("\u00a0", ""))
    wrong = f"{votes + 1000:,}".replace(",", "," if lang == "en" else "\u00a0")
    rewrite(snap, rel, (text[: m.start(2)] + wrong + text[m.end(2) :]).encode())
    code, msgs = _verify(tmp_path, snap.parent.parent)
    assert code == 1
    assert len(msgs) == 1, msgs
    choice = m.group(1)
    want = f'{rel} › protocol[party-list] › {choice} › hand votes: "{wrong}" | "{shown}" | line {choice} of '
    assert msgs[0].startswith(want + "ledger entry "), msgs


@pytest.mark.parametrize("lang", ["en", "ky"])
def test_a_rule_shown_as_failing_on_a_station_page(snap: Path, tmp_path: Path, lang: str) -> None:
    """The rules table's body is compared as bytes when it is what the verifier expects; a
    cell changed from "✓" to a failure must still be named, cell by cell."""
    rel = _station_page(snap, lang)
    text = read(snap, rel).decode()
    first_cell = r'<tbody><tr><th scope="row"><code>([^<]*)</code></th><td>(✓)</td>'
    m = re.search(r'<table class="rules"[^>]*>.*?' + first_cell, text, re.S)
    assert m is not None
    wrong = '<span class="no">✗ 1 / 2 (error)</span>'
    rewrite(snap, rel, (text[: m.start(2)] + wrong + text[m.end(2) :]).encode())
    code, msgs = _verify(tmp_path, snap.parent.parent)
    assert code == 1
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith(f'{rel} › rules › '), msgs
    assert '"✗ 1 / 2 (error)" | "✓" | ' in msgs[0] and msgs[0].endswith(" holds on the protocol"), msgs


_FRAGMENTS = [
    b'<table class="history" data-contest="c" data-kind="hand">',
    b'<table class="history" data-contest="c"',
    b'<table class="history" ',
    b"</table>",
    b'<dl class="receipt" data-kind="hand">',
    b"</dl>",
    b'<figure class="protocol-image" data-kind="machine">',
    b"</figure>",
    b"x\n",
    "— 1\u00a0281".encode(),
]


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=14))
def test_the_bytes_reader_finds_what_the_expressions_find(parts: list[bytes]) -> None:
    """Each block the station pages' fast path cuts with ``bytes.find`` is what the detailed
    check's regular expression finds."""
    data = b"".join(parts)
    for full, head, prefix, end in (
        (compare_html._HISTORY_TABLE, compare_html._B_HISTORY_HEAD, b'<table class="history" ', b"</table>"),
        (compare_html._RECEIPT, compare_html._B_RECEIPT_HEAD, b'<dl class="receipt" ', b"</dl>"),
        (compare_html._FIGURE, compare_html._B_FIGURE_HEAD, b'<figure class="protocol-image" ', b"</figure>"),
    ):
        text = data.decode()
        want = [tuple(g.encode() for g in found) for found in full.findall(text)]
        assert compare_html._b_blocks(data, head, prefix, end) == want


_RULE_EXPR = st.text(st.sampled_from(list("ab_+=<>&\"' ()/")), min_size=1, max_size=24).map(
    lambda text: compare_html._escape(text).encode()
)
_RULE_CELL = st.one_of(
    st.just("✓".encode()),
    st.just(b""),
    st.builds(
        lambda a, b, severity: f'<span class="no">✗ {a:,} / {b:,} ({severity})</span>'.encode(),
        st.integers(0, 10**7),
        st.integers(0, 10**7),
        st.sampled_from(["error", "warning"]),
    ),
)
_RULE_HEAD = st.lists(
    st.sampled_from([b"<thead><tr>", b'<th scope="col">Rule</th>', b"</tr></thead>", b"\n", b"<tr>"]),
    max_size=5,
)


@given(st.lists(st.tuples(_RULE_EXPR, st.lists(_RULE_CELL, min_size=1, max_size=5)), max_size=6), _RULE_HEAD)
def test_a_rules_table_holding_the_expected_rows_is_what_the_expressions_find(
    rows: list[tuple[bytes, list[bytes]]], head: list[bytes]
) -> None:
    """A station page whose rules table holds exactly the expected body is not parsed: the
    expressions must find in that body exactly the expected rows and cells, and a row that
    begins before it must send the page to the expressions."""
    body = compare_html._rules_bytes(rows)
    page = b"".join([b'<table class="rules">', *head, b"<tbody>", body, b"</tbody></table>"])
    parsed = compare_html._parse_station_bytes(page, symbols("en"))[2]
    assert parsed == rows
    region = page[len(b'<table class="rules">') : page.index(b"</tbody>")]
    assert compare_html._holds_rows(region, body) == bool(rows)
    extra = compare_html._RULE_START + b"x</code></th><td>1</td></tr>"
    assert not compare_html._holds_rows(region.replace(b"<tbody>", extra + b"<tbody>", 1), body)


_CELL_TEXT = st.text(st.sampled_from('ab,"\r\n é'), max_size=6)
_NUMBER = st.one_of(st.none(), st.integers(-5, 10**7))
_SHARE = st.one_of(st.none(), st.sampled_from(["0.00", "12.50", "100.00"]))


@st.composite
def _csv_rows(draw: st.DrawFn) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
    rows = []
    for i in range(draw(st.integers(0, 3))):
        row: dict[str, Any] = {
            "contest": draw(_CELL_TEXT),
            "count_kind": draw(st.sampled_from(["hand", "machine"])),
            "official": draw(st.booleans()),
            "area": f"a{i}",
            "area_name": draw(_CELL_TEXT),
            "percent_base": {"figure": "took_part", "value": draw(_NUMBER)},
            "turnout_percent": draw(_SHARE),
            "choices": [
                {
                    "id": draw(_CELL_TEXT),
                    "name": draw(_CELL_TEXT),
                    "votes": draw(_NUMBER),
                    "percent": draw(_SHARE),
                }
                for _ in range(draw(st.integers(0, 3)))
            ],
        }
        for f in ("stations_reporting", "stations_expected", *FIGURES):
            row[f] = draw(_NUMBER)
        rows.append(((row["contest"], row["area"], row["count_kind"]), row))
    return rows


@given(_csv_rows(), st.sampled_from(["stations", "admin-1"]))
def test_the_csv_written_line_by_line_is_what_the_csv_module_writes(
    rows: list[tuple[tuple[str, str, str], dict[str, Any]]], level: str
) -> None:
    """The CSV check's fast path compares the file with :func:`compare_tables.render_rows`;
    it must be byte for byte what ``csv.writer`` makes of the expected cells (quotes, commas
    and line breaks in names included), or a right file would take the slow path and a file
    quoted wrongly could pass."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(compare_tables.CSV_COLUMNS)
    writer.writerows(cells for _key, row in rows for _k, cells in compare_tables.csv_lines(level, row))
    assert compare_tables.render_rows(level, rows) == buf.getvalue().encode("utf-8")


def _reference_tokens(lang: str, text: str) -> list[str]:
    """docs/bulletin.md §13's number, as first written: the condition before a number looked
    at from each position of the text."""
    sym = symbols(lang)
    g, d = re.escape(sym.group), re.escape(sym.decimal)
    pattern = re.compile(rf"(?<![\w.,])\d{{1,3}}(?:{g}\d{{3}})*(?:{d}\d+)?(?![\w])|(?<![\w.,])\d+")
    return [m.group(0) for m in pattern.finditer(text)]


_TEXT = st.text(alphabet=st.sampled_from(list("0123456789,. \xa0\u202fa٣—%:(")), max_size=40)


@given(st.sampled_from(["ky", "ru", "en"]), _TEXT)
def test_numbers_in_running_text_are_found_as_the_specification_finds_them(lang: str, text: str) -> None:
    assert symbols(lang).tokens(text) == _reference_tokens(lang, text)


@pytest.mark.parametrize(
    ("lang", "text", "numbers"),
    [
        ("en", "of 1,281,622 voters, 12.50% (x1 2a 3)", ["1,281,622", "12.50", "2", "3"]),
        ("ru", "из 1\xa0281\xa0622 избирателей, 12,50%", ["1\xa0281\xa0622", "12,50"]),
        ("ky", ".5 ,6 7", ["7"]),
    ],
)
def test_numbers_in_running_text(lang: str, text: str, numbers: list[str]) -> None:
    assert symbols(lang).tokens(text) == numbers


def test_every_station_page_of_a_clean_snapshot_takes_the_fast_path(
    mini_pub: Pub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path's expected structure is the page's, in every language: grouped
    thousands, decimal signs, dashes for counts not yet in, both counts side by side.
    Otherwise every page would be read twice (the detailed check still passing it). The
    same for the stations' CSV files, written from each protocol's facts, and for the SQLite
    download's protocol lines, compared a protocol at a time."""
    detailed: list[str] = []
    real = compare_html._check_station_html

    def check(file: str, *args: Any) -> None:
        detailed.append(file)
        real(file, *args)

    def check_csv(file: str, *args: Any) -> None:
        if file.startswith("data/csv/stations/"):
            detailed.append(file)
        real_csv(file, *args)

    def compare_table(conn: Any, file: str, table: str, *args: Any) -> None:
        if table == "protocol_lines":
            detailed.append(f"{file} › {table}")
        real_table(conn, file, table, *args)

    real_csv, real_table = compare_tables.check_csv, compare_tables._compare_table
    monkeypatch.setattr(compare_html, "_check_station_html", check)
    monkeypatch.setattr(compare_tables, "check_csv", check_csv)
    monkeypatch.setattr(compare_tables, "_compare_table", compare_table)
    code, msgs = _verify(tmp_path, mini_pub.out)
    assert (code, msgs) == (0, [])
    assert detailed == []
    snap = (mini_pub.out / "current").resolve()
    pages = {rel: read(snap, rel) for rel in json.loads((snap / "manifest.json").read_bytes())["files"]}
    shown = b"".join(data for rel, data in pages.items() if "/station/" in rel and rel.endswith(".html"))
    # What the pages hold, so that the fast path is seen to take each on.
    assert b"\xc2\xa0" in shown and re.search(rb'class="n">\d{1,3},\d{3}</td>', shown)
    assert b'<td class="n">\xe2\x80\x94</td><td class="n">\xe2\x80\x94</td>' in shown


def test_protocol_facts_are_what_the_published_records_hold(mini_pub: Pub) -> None:
    """Station pages and station CSVs are checked against each protocol's facts, not its
    published record; both are recomputed from the same counts and must agree field by field."""
    opened = open_source(str(mini_pub.out))
    ex = verify_snapshot(opened.snapshot, opened.publish, opened.number_hint, workers=1).expected
    assert ex is not None
    for key in ex.in_force:
        row, f = ex.stations[key], ex.protocol(key)
        assert f is not None
        contest = ex.election.contest(key[0])
        assert (f.index, f.official, f.leaf_hash, f.body_sha256, f.envelope) == (
            row["ledger_index"],
            row["official"],
            row["leaf_hash"],
            row["body_sha256"],
            row["envelope"],
        )
        assert f.figures == tuple(row[name] for name in FIGURES)
        assert (f.took_part, f.turnout_percent) == (row["took_part"], row["turnout_percent"])
        assert (f.base_figure, f.base_value) == (row["percent_base"]["figure"], row["percent_base"]["value"])
        assert f.lines == [row["lines"][lid] for lid in contest.line_ids[: contest.choice_start]]
        assert f.votes == [c["votes"] for c in row["choices"]]
        assert f.percents == [c["percent"] for c in row["choices"]]
    assert ex.in_force and ex.groups
    for group, keys in ex.groups.items():
        want = compare_tables.render_rows("stations", compare_tables.station_rows(ex, group))
        assert compare_tables.render_station_rows(ex, keys) == want

"""Receipts, observers' own protocol copies, watching a live site, HTTP sources, the Russia 2016
import, and the rule that the verifier trusts nothing of the server's code."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tamper import copy_publish, edit_json
from verify_support import Pub, free_port, stop, wait_http

from tallyroom.cli import main

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"^verified [\d,]+ numbers in [\d,]+ files against [\d,]+ signed protocols: ([\d,]+) mismatch"
)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["verify", *args, "--workers", "1"])


def last(result: Result) -> str:
    return result.output.rstrip("\n").splitlines()[-1]


# -- trust: nothing of the store, the server or the publisher ----------------------------------


FORBIDDEN = ("tallyroom.store", "tallyroom.web", "tallyroom.publish")


def test_verify_imports_nothing_of_store_web_or_publish() -> None:
    """Statically: no module of tallyroom.verify names them in an import."""
    folder = REPO / "src" / "tallyroom" / "verify"
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_a_verification_loads_nothing_of_store_web_or_publish(mini_pub: Pub) -> None:
    """Dynamically, in a fresh interpreter: after a whole verification (receipts and copies
    included) not one module of the store, the server or the publisher has been imported."""
    code = f"""
import sys
from tallyroom.verify.cli import verify
from tallyroom.verify.source import open_source
from tallyroom.verify.run import verify_opened
v = verify_opened(open_source({str(mini_pub.out)!r}), workers=1)
assert v.report.ok, v.report.messages()[:3]
bad = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))
print("LOADED", bad)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout


# -- receipts ------------------------------------------------------------------------------------


def test_receipts_are_proved_included(signed_pub: Pub, tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in signed_pub.receipts))
    result = run(str(signed_pub.out), "--receipts", str(path))
    assert result.exit_code == 0, result.output
    assert (
        f"{len(signed_pub.receipts)} of {len(signed_pub.receipts)} receipts proved included" in result.output
    )
    # a JSON list of intake responses works too
    path2 = tmp_path / "responses.json"
    path2.write_text(json.dumps([{"status": "accepted", "receipt": r} for r in signed_pub.receipts[:3]]))
    assert run(str(signed_pub.out), "--receipts", str(path2)).exit_code == 0


def test_a_receipt_whose_entry_is_missing_is_flagged(signed_pub: Pub, tmp_path: Path) -> None:
    receipts = [dict(r) for r in signed_pub.receipts[:4]]
    # another log's entry at the same index (leaf differs), with a valid signature: as if the
    # commission had replaced the entry after issuing the receipt
    from tallyroom.commission import load_key
    from tallyroom.intake.receipts import statement
    from tallyroom.ledger.checkpoint import parse_signed_checkpoint

    _name, key = load_key(signed_pub.key)
    r = receipts[2]
    r["leaf_hash"] = "ab" * 32
    cp, _ = parse_signed_checkpoint(str(r["checkpoint"]).encode())
    text = statement(
        cp.origin,
        int(r["ledger_index"]),
        str(r["leaf_hash"]),
        str(r["entry_hash"]),
        str(r["body_sha256"]),
        cp.size,
    )
    import base64

    r["signature"] = base64.b64encode(key.sign(text).signature).decode()
    receipts[3]["entry_hash"] = "00" * 32  # altered after issue: its signature no longer holds
    path = tmp_path / "receipts.json"
    path.write_text(json.dumps(receipts))
    out = tmp_path / "report.json"
    result = run(str(signed_pub.out), "--receipts", str(path), "--report", str(out))
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    by = {(m["check"], m["where"].split(" › ")[0]) for m in report["mismatches"]}
    idx2, idx3 = receipts[2]["ledger_index"], receipts[3]["ledger_index"]
    assert ("receipt-missing", f"receipt 3 (ledger entry {idx2})") in by, by
    assert ("receipt", f"receipt 4 (ledger entry {idx3})") in by, by
    assert "2 of 4 receipts proved included" in result.output


def test_a_bad_checkpoint_signature_or_field_in_a_receipt_is_named(signed_pub: Pub, tmp_path: Path) -> None:
    receipts = [dict(r) for r in signed_pub.receipts[:5]]
    receipts[0]["checkpoint"] = "not a checkpoint"
    receipts[1]["signature"] = "!!! not base64"
    del receipts[2]["ledger_index"]
    idx0, idx1 = receipts[0]["ledger_index"], receipts[1]["ledger_index"]
    path = tmp_path / "receipts.json"
    path.write_text(json.dumps(receipts))
    out = tmp_path / "report.json"
    result = run(str(signed_pub.out), "--receipts", str(path), "--report", str(out))
    assert result.exit_code == 1, result.output
    got = sorted((m["where"], m["why"].split(":")[0]) for m in json.loads(out.read_text())["mismatches"])
    assert got == [
        (
            f"receipt 1 (ledger entry {idx0})",
            "its checkpoint is not signed by the commission key tallyroom/kg-2021-parliament",
        ),
        (f"receipt 2 (ledger entry {idx1})", "the commission's signature over the receipt does not hold"),
        ("receipt 3", "lacks ledger_index, leaf_hash or checkpoint"),
    ], got
    assert "2 of 5 receipts proved included" in result.output


def test_a_receipt_newer_than_the_snapshot_is_not_yet_checkable(signed_pub: Pub, tmp_path: Path) -> None:
    r = dict(signed_pub.receipts[0])
    r["ledger_index"] = 10_000
    r.pop("signature")
    from tallyroom.commission import load_key
    from tallyroom.ledger.checkpoint import Checkpoint, sign_checkpoint

    name, key = load_key(signed_pub.key)
    r["checkpoint"] = sign_checkpoint(
        Checkpoint("tallyroom/kg-2021-parliament", 10_001, b"\x00" * 32, 1), name, key
    ).decode()
    path = tmp_path / "late.json"
    path.write_text(json.dumps(r))
    result = run(str(signed_pub.out), "--receipts", str(path))
    assert result.exit_code == 0, result.output
    assert "not yet in the published ledger" in result.output


def test_unreadable_receipts_file_exits_2(mini_pub: Pub, tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text("{not json\n")
    assert run(str(mini_pub.out), "--receipts", str(bad)).exit_code == 2


# -- observers' protocol copies ------------------------------------------------------------------


def _copies(pub: Pub, n: int) -> tuple[list[str], list[list[str]]]:
    doc = json.loads((pub.snapshot() / "data/stations/chui.json").read_bytes())
    records = [r for r in doc["stations"] if r["contest"] == "party-list"][:n]
    lines = list(records[0]["lines"])
    header = ["station", "contest", "count_kind", *lines]
    rows = [
        [r["station"], r["contest"], r["count_kind"], *(str(r["lines"][x]) for x in lines)] for r in records
    ]
    return header, rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    import csv

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def test_matching_copies_pass(mini_pub: Pub, tmp_path: Path) -> None:
    header, rows = _copies(mini_pub, 6)
    rows[1][4] = ""  # a line not copied is skipped
    path = tmp_path / "mine.csv"
    _write_csv(path, header, rows)
    result = run(str(mini_pub.out), "--compare", str(path))
    assert result.exit_code == 0, result.output
    assert "6 of your protocol copies compared" in result.output


def test_every_difference_is_listed_by_station_and_line(mini_pub: Pub, tmp_path: Path) -> None:
    header, rows = _copies(mini_pub, 5)
    col = header.index("valid")
    published = int(rows[2][col])
    rows[2][col] = str(published + 12)
    party = header[-1]
    rows[4][header.index(party)] = str(int(rows[4][header.index(party)]) + 1)
    rows.append(["ps-10001", "party-list", "recount", *["1"] * (len(header) - 3)])
    path = tmp_path / "mine.csv"
    _write_csv(path, header, rows)
    out = tmp_path / "report.json"
    result = run(str(mini_pub.out), "--compare", str(path), "--report", str(out))
    assert result.exit_code == 1
    report = json.loads(out.read_text())
    found = sorted((m["where"], m["why"]) for m in report["mismatches"])
    assert len(found) == 3, found
    assert any(
        w.endswith(f"station {rows[2][0]}, party-list, {rows[2][2]} › valid")
        and f"your copy says {published + 12:,}" in why
        and f"says {published:,}" in why
        for w, why in found
    )
    assert any(w.endswith(f"› {party}") and rows[4][0] in w for w, _ in found)
    assert any("no protocol of this count is published" in why for _, why in found)


# -- HTTP sources ------------------------------------------------------------------------------------


@pytest.fixture
def http_server(mini_pub: Pub, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``python -m http.server`` on loopback serving a copy of the publish folder."""
    root = copy_publish(mini_pub.out, tmp_path / "site")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url + "current.json", proc)
        yield url, root
    finally:
        stop(proc)


def test_a_site_over_http_verifies(http_server: tuple[str, Path]) -> None:
    url, _root = http_server
    result = CliRunner().invoke(main, ["verify", url, "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert SUMMARY.match(last(result)).group(1) == "0"  # type: ignore[union-attr]
    # one snapshot by its own URL
    result = run(url + "snapshots/1/")
    assert result.exit_code == 0, result.output


def test_a_tampered_site_over_http(http_server: tuple[str, Path]) -> None:
    url, root = http_server
    snap = (root / "current").resolve()
    edit_json(snap, "api/v1/results/party-list/hand/kg.json", lambda d: d.update(valid=d["valid"] + 1))
    result = run(url)
    assert result.exit_code == 1
    assert "api/v1/results/party-list/hand/kg.json › valid: published" in result.output


def test_the_site_app_serving_precompressed_copies(mini_pub: Pub, tmp_path: Path) -> None:
    """Through tallyroom's own site app (brotli copies served): a corrupted .br copy is what a
    browser would get, so the verifier checks that very copy."""
    root = copy_publish(mini_pub.out, tmp_path / "site")
    port = free_port()
    code = (
        "import uvicorn; from tallyroom.web.site import site_app; "
        f"uvicorn.run(site_app({str(root)!r}), host='127.0.0.1', port={port}, log_level='warning')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_http(url + "current.json", proc)
        result = run(url + "snapshots/1/")
        assert result.exit_code == 0, result.output
        # the app keeps files it has served in memory: change one it has not served yet
        snap = (root / "current").resolve()
        br = snap / "api/v1/results/index.json.br"
        import brotli  # type: ignore[import-untyped]

        data = json.loads(brotli.decompress(br.read_bytes()))
        data["sections"][0]["took_part"] += 1
        br.unlink()
        br.write_bytes(brotli.compress(json.dumps(data).encode()))
        result = run(url + f"snapshots/{snap.name}/")
        assert result.exit_code == 1
        assert "api/v1/results/index.json › SHA-256" in result.output
    finally:
        stop(proc)


# -- watching ---------------------------------------------------------------------------------------


def test_watch_a_static_site_stops_after_max_polls(mini_pub: Pub) -> None:
    result = CliRunner().invoke(
        main,
        ["verify", str(mini_pub.out), "--watch", "--interval", "0", "--max-polls", "3", "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "snapshots verified: 2" in result.output
    assert "snapshot 2 unchanged" in result.output


def test_watch_sees_a_new_snapshot_that_extends_the_old(mini_pub: Pub, tmp_path: Path) -> None:
    from tallyroom.verify.watch import watch

    pub = copy_publish(mini_pub.out, tmp_path / "pub")
    os.unlink(pub / "current")
    os.symlink("snapshots/1", pub / "current")
    _pointer(pub, 1)

    def advance(_seconds: float) -> None:
        os.unlink(pub / "current")
        os.symlink("snapshots/2", pub / "current")
        _pointer(pub, 2)

    outcome = watch(str(pub), 0, 2, 1, lambda r: None, lambda m: None, sleep=advance)
    assert (outcome.code, outcome.verified, outcome.alert) == (0, [1, 2], None)


def test_watch_alerts_on_rewritten_history(mini_pub: Pub, tmp_path: Path) -> None:
    """The site first shows snapshot 2; then a snapshot 3 built on a different ledger."""
    from publish_support import load, mini
    from verify_support import publish, store_with_key

    from tallyroom.verify.watch import watch

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    store, key = store_with_key(other_dir, mini_pub.key)
    load(store, "machine", list(reversed(mini().machine)))
    other = other_dir / "pub"
    hand = mini().hand
    third = len(hand) // 3 + 1
    for i in range(3):  # a longer ledger than the one seen, so it is not merely shorter
        load(store, "hand", hand[third * i : third * (i + 1)])
        publish(store, other, key)
    store.close()
    pub = copy_publish(mini_pub.out, tmp_path / "pub")

    def rewrite_history(_seconds: float) -> None:
        shutil.copytree(other / "snapshots" / "3", pub / "snapshots" / "3", symlinks=True)
        os.unlink(pub / "current")
        os.symlink("snapshots/3", pub / "current")
        shutil.copy(other / "current.json", pub / "current.json")

    reports: list[object] = []
    outcome = watch(str(pub), 0, 3, 1, reports.append, lambda m: None, sleep=rewrite_history)
    assert outcome.code == 1
    assert outcome.verified == [2]
    assert outcome.alert is not None and "snapshot 3 rewrites history" in outcome.alert, outcome.alert
    assert "the new history does not extend the old one" in outcome.alert


def test_watch_alerts_when_a_snapshot_changes_under_its_number(mini_pub: Pub, tmp_path: Path) -> None:
    from tallyroom.verify.watch import watch

    pub = copy_publish(mini_pub.out, tmp_path / "pub")

    def change(_seconds: float) -> None:
        edit_json(pub / "snapshots" / "2", "changes.json", lambda d: d.update(rows_changed_total=0))

    outcome = watch(str(pub), 0, 3, 1, lambda r: None, lambda m: None, sleep=change)
    assert outcome.code == 1 and outcome.alert is not None
    assert "snapshot 2 changed after publication" in outcome.alert


def test_watch_unreachable_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["verify", "http://127.0.0.1:9/", "--watch", "--max-polls", "1"])
    assert result.exit_code == 2


def _pointer(pub: Path, n: int) -> None:
    import hashlib

    manifest = pub / "snapshots" / str(n) / "manifest.json"
    doc = json.loads(manifest.read_bytes())
    pointer = {
        "format": "tallyroom-current/1",
        "snapshot": n,
        "path": f"snapshots/{n}/",
        "ledger_size": doc["snapshot"]["ledger_size"],
        "root": doc["snapshot"]["root"],
        "published_at": doc["snapshot"]["published_at"],
        "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
    }
    (pub / "current.json").unlink()
    (pub / "current.json").write_text(json.dumps(pointer, sort_keys=True, separators=(",", ":")) + "\n")


# -- the Russia 2016 import ---------------------------------------------------------------------------


def test_a_russia_2016_import_verifies(russia_pub: Pub) -> None:
    result = CliRunner().invoke(main, ["verify", str(russia_pub.out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert SUMMARY.match(last(result)).group(1) == "0"  # type: ignore[union-attr]


def test_the_verifier_s_walk_agrees_with_tally_rebuild(mini_pub: Pub) -> None:
    """Two independent readings of §6.1 (protocols in force, corrections, annulments): the
    verifier's own walk and tallyroom.tally.rebuild give the same protocols and totals."""
    from tallyroom.tally.rebuild import rebuild
    from tallyroom.verify.bulletin import parse_manifest, read_ledger
    from tallyroom.verify.expected import compute
    from tallyroom.verify.ledger import walk
    from tallyroom.verify.report import Tally
    from tallyroom.verify.source import DirSnapshot

    snap = DirSnapshot(mini_pub.snapshot())
    out = Tally()
    ledger = read_ledger(snap, parse_manifest(snap.read("manifest.json")), out)
    w = walk(ledger, None, out)
    assert out.count == 0
    assert w.corrections == 1 and w.annulments == 1 and len(w.audits) == 1
    assert w.election is not None
    rebuilt = rebuild(w.election, enumerate(ledger.data))
    assert {k: (v.index, v.counts) for k, v in w.active.items()} == {
        k: (idx, list(counts)) for k, (idx, counts) in rebuilt.active.items()
    }
    mine = compute(w).tally.nonzero()
    theirs = rebuilt.tally.nonzero()
    assert {k: (t.counts, t.reporting) for k, t in mine.items()} == {
        k: (t.counts, t.reporting) for k, t in theirs.items()
    }

"""``tallyroom verify SOURCE``: the observer's verifier (a contract; docs/verify.md).

Exit codes: 0 when everything checked is consistent, 1 on any mismatch, 2 when SOURCE (or a
given file) cannot be read or the verification could not finish. The last line always
summarises what was checked::

    verified 1,234,567 numbers in 3,210 files against 96,871 signed protocols: 0 mismatches
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tallyroom.verify.report import Report

#: Mismatches printed in full (all are in --report FILE).
SHOWN = 60

CHECK_TITLES = {
    "file-hash": "file bytes differ from the manifest",
    "file-missing": "files missing",
    "unlisted-file": "files not in the manifest",
    "compressed-copy": "compressed copies differ",
    "ledger-gap": "ledger entries missing or out of order",
    "ledger-leaf-hash": "ledger leaf hashes",
    "ledger-entry": "malformed ledger entries",
    "checkpoint-root": "signed roots that the entries do not hash to",
    "checkpoint-signature": "checkpoints not signed by the commission",
    "checkpoint-consistency": "checkpoints that do not extend earlier ones",
    "snapshot-history": "earlier snapshots changed or rewritten",
    "station-signature": "station signatures",
    "protocol-rules": "protocols breaking their control rules",
    "results-json": "numbers in data/results.json",
    "stations-json": "numbers in data/stations/",
    "api-row": "numbers in api/v1/results/ row files",
    "page-json": "numbers in the pages' JSON",
    "csv": "numbers in the CSV files",
    "nist": "numbers in the NIST files",
    "sqlite": "numbers in the SQLite download",
    "html": "numbers on the HTML pages",
    "seats": "seats",
    "receipt": "receipts that do not check out",
    "receipt-missing": "receipts whose entries are not in the ledger",
    "observer-copy": "differences from your protocol copies",
    "downloads": "file hashes on the downloads page",
    "changes": "numbers in changes.json",
    "snapshots-list": "the list of snapshots",
    "current": "the current.json pointer",
    "checkpoints-file": "bulletin/checkpoints.jsonl",
    "checkpoint-size": "checkpoint sizes",
    "checkpoint-entry": "checkpoint ledger entries",
    "checkpoint-origin": "checkpoint origin",
    "commission-key": "the commission key",
    "manifest": "manifest.json",
    "manifest-snapshot": "the manifest's snapshot block",
    "definition": "the election definition",
    "ledger-definition": "ledger entry 0",
    "ledger-files": "ledger entry files",
    "station-keys": "bulletin/stations.json",
    "key-change": "key_change entries",
    "protocol-body": "malformed protocol bodies",
    "protocol-envelope": "protocol envelopes",
    "protocol-election": "protocols of another election",
    "protocol-reference": "protocols for unknown stations or contests",
    "protocol-twice": "second protocols for the same count",
    "decision": "corrections and annulments",
    "snapshot-entry": "snapshot ledger entries",
    "audit": "audit entries",
    "invariant": "invariants of the recomputed tally",
    "json": "files that are not JSON",
}


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False, emoji=False)


def print_report(console: Console, report: Report, shown: int) -> None:
    head = f"[bold]{escape(report.source)}[/]"
    if report.snapshot is not None:
        head += f": snapshot {report.snapshot}, {report.ledger_size:,} ledger entries"
    console.print(head)
    t = report.tally
    if t.count:
        table = Table(title="Mismatches by check", show_edge=False)
        table.add_column("check")
        table.add_column("what", style="dim")
        table.add_column("count", justify="right")
        for check, n in sorted(t.per_check.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(check, CHECK_TITLES.get(check, ""), f"{n:,}")
        console.print(table)
        by_file = Counter(m.file for m in t.mismatches)
        for m in t.mismatches[:shown]:
            console.print(f"[red]✗[/] {escape(m.sentence())}")
        if t.count > shown:
            console.print(
                f"… and {t.count - shown:,} more (in {len(by_file):,}+ files); --report FILE writes them all"
            )
    else:
        console.print(
            f"[green]✓[/] every signature, hash, checkpoint and published number checks out "
            f"({report.signatures:,} device signatures, {report.protocols:,} protocol bodies)"
        )
    for note in report.notes:
        console.print(f"[cyan]note:[/] {escape(note)}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


@click.command("verify")
@click.argument("source")
@click.option(
    "--receipts",
    "receipts_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Receipts to prove included (JSON list or JSON lines, as intake returns them).",
)
@click.option(
    "--compare",
    "compare_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV of protocols you copied at stations (docs/verify.md).",
)
@click.option(
    "--watch", is_flag=True, help="Keep polling SOURCE; verify each new snapshot; stop at the first problem."
)
@click.option(
    "--interval", type=float, default=30.0, show_default=True, help="Seconds between polls (--watch)."
)
@click.option("--max-polls", type=int, default=None, help="Stop watching after this many polls.")
@click.option("--workers", type=int, default=None, help="Processes for file checks (default: up to 2).")
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the full report (every mismatch) as JSON.",
)
@click.option("--show", type=int, default=SHOWN, show_default=True, help="Mismatches printed in full.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary line.")
def verify(
    source: str,
    receipts_file: Path | None,
    compare_file: Path | None,
    watch: bool,
    interval: float,
    max_polls: int | None,
    workers: int | None,
    report_file: Path | None,
    show: int,
    quiet: bool,
) -> None:
    """Recompute and check everything a tallyroom site or snapshot publishes.

    SOURCE is a snapshot folder, a publish folder (its current snapshot and the history of the
    earlier ones are checked) or the URL of a site. Every station and commission signature,
    every hash, the Merkle tree and the consistency of every checkpoint, every total at every
    level and count kind, every number in the JSON, CSV, NIST, SQLite and HTML files, and the
    seats are recomputed from the published ledger and compared. Exit code 0: consistent;
    1: a mismatch (each one names the file, the number, what it should be and why); 2: SOURCE
    cannot be read, or a worker process was killed before the verification finished.
    """
    from tallyroom.verify.source import SourceError, open_source

    console = _console()
    if watch:
        _watch(console, source, interval, max_polls, workers, report_file, show, quiet)
        return
    from tallyroom.verify.run import verify_opened
    from tallyroom.verify.workers import WorkerDied

    try:
        opened = open_source(source)
        if not quiet:
            console.print(f"verifying {escape(source)} …", style="dim")
        v = verify_opened(
            opened, workers, None if quiet else lambda msg: console.print(f"  {escape(msg)}", style="dim")
        )
        if receipts_file is not None or compare_file is not None:
            _extras(console, v, receipts_file, compare_file, workers)
    except SourceError as exc:
        _unreadable(console, str(exc))
    except WorkerDied as exc:
        _error_exit(console, str(exc), "verification did not finish: nothing is vouched for")
    report = v.report
    if not quiet:
        print_report(console, report, show)
    if report_file is not None:
        report_file.write_text(
            json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)


def _unreadable(console: Console, message: str) -> None:
    _error_exit(
        console, message, "verified 0 numbers in 0 files against 0 signed protocols: SOURCE cannot be read"
    )


def _error_exit(console: Console, message: str, last_line: str) -> None:
    """Exit 2: the error, then the summary line that says why nothing was verified."""
    console.print(f"[bold red]error:[/] {escape(message)}")
    click.echo(last_line)
    sys.exit(2)


def _extras(
    console: Console, v: object, receipts_file: Path | None, compare_file: Path | None, workers: int | None
) -> None:
    from tallyroom.verify.observer import CompareFileError, compare_copies
    from tallyroom.verify.receipts import ReceiptsFileError, check_receipts, read_receipts
    from tallyroom.verify.run import Verified, default_workers

    assert isinstance(v, Verified)
    report = v.report
    try:
        if receipts_file is not None:
            receipts = read_receipts(receipts_file)
            if v.ledger is None or v.key is None:
                report.warnings.append(
                    "the receipts could not be checked: no usable ledger or commission key"
                )
            else:
                n = check_receipts(
                    receipts,
                    v.ledger,
                    v.key,
                    v.ledger.root(),
                    report,
                    receipts_file.name,
                    default_workers() if workers is None else max(1, workers),
                )
                report.notes.append(
                    f"{n:,} of {len(receipts):,} receipts proved included in the published ledger"
                )
        if compare_file is not None:
            if v.expected is None:
                report.warnings.append("the protocol copies could not be compared: nothing was recomputed")
            else:
                n = compare_copies(compare_file, v.expected, report)
                report.notes.append(
                    f"{n:,} of your protocol copies compared line by line with the published ones"
                )
    except (ReceiptsFileError, CompareFileError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        click.echo(report.summary().rsplit(":", 1)[0] + ": a given file cannot be read")
        sys.exit(2)


def _watch(
    console: Console,
    source: str,
    interval: float,
    max_polls: int | None,
    workers: int | None,
    report_file: Path | None,
    show: int,
    quiet: bool,
) -> None:
    from tallyroom.verify.watch import watch

    def on_report(report: Report) -> None:
        if not quiet:
            print_report(console, report, show)
            console.print(report.summary(), style="bold")
        if report_file is not None:
            report_file.write_text(
                json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )

    outcome = watch(
        source,
        interval,
        max_polls,
        workers,
        on_report,
        (lambda msg: None) if quiet else (lambda msg: console.print(escape(msg), style="dim")),
    )
    if outcome.code == 2:
        _unreadable(console, outcome.alert or source)
    if outcome.alert:
        console.print(f"[bold red]ALERT:[/] {escape(outcome.alert)}")
    done = ", ".join(map(str, outcome.verified)) or "none"
    last = (
        outcome.last.summary()
        if outcome.last is not None
        else "verified 0 numbers in 0 files against 0 signed protocols"
    )
    click.echo(f"watched {outcome.polls} poll(s), snapshots verified: {done}")
    click.echo(last if outcome.alert is None else f"{last.rsplit(':', 1)[0]}: ALERT — {outcome.alert}")
    sys.exit(outcome.code)

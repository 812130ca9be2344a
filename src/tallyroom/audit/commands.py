"""`tallyroom reconcile` and `tallyroom audit start|record|next-round|status` on the store.

Thin: read protocols from the store, call the audit mathematics, format. Every audit step is a
ledger entry of kind `audit` whose payload is the audit's whole state as canonical JSON, so the
published ledger lets anyone re-draw the sample from the seed and recompute every P-value.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from tallyroom.audit.assertions import AuditImpossibleError
from tallyroom.audit.from_election import (
    FIGURE_PREFIX,
    contest_assertions,
    reported_batches,
    station_counts,
    station_lines,
)
from tallyroom.audit.macro import AuditedBatch, MacroAudit, contest_margins
from tallyroom.audit.reconcile import (
    AbsoluteDifference,
    AnyDifference,
    OutcomeAtRisk,
    RecountRule,
    reconcile,
    summarize_by_region,
)
from tallyroom.definition.compiled import CompiledContest, CompiledElection, name_in
from tallyroom.ledger.entry import EntryKind
from tallyroom.store.sql import Store, StoreError, open_store

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _number(value: object) -> object:
    """JSON for exact fractions: small ones exactly ("3/7"), huge ones (a P-value's exact
    product over hundreds of draws) as a decimal with ten significant digits."""
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return value.numerator
        if max(value.numerator.bit_length(), value.denominator.bit_length()) < 64:
            return f"{value.numerator}/{value.denominator}"
        return f"{float(value):.10g}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(2)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (StoreError, ValueError) as exc:
        _fail(str(exc))


def _store(ctx: click.Context) -> Store:
    obj = ctx.find_root().obj
    store: Store = obj.store() if obj is not None else open_store("tallyroom.db")
    return store


def _contest(election: CompiledElection, contest_id: str | None) -> CompiledContest:
    if contest_id is None:
        return election.contests[0]
    if contest_id not in election.contest_index:
        _fail(f'unknown contest "{contest_id}" (contests: {", ".join(election.contest_index)})')
    return election.contest(contest_id)


def _region_of(election: CompiledElection) -> dict[str, str]:
    """Each station's top-level region (the area just under a root of its first hierarchy)."""
    out: dict[str, str] = {}
    for si, st in enumerate(election.stations):
        chain = election.area_chain[election.station_direct[si][0]]
        region = chain[-2] if len(chain) >= 2 else chain[-1]
        out[st.id] = election.areas[region].id
    return out


# -- reconcile ---------------------------------------------------------------------------------


@click.command("reconcile")
@click.option("--contest", "contest_id", help="Contest id (default: the first contest).")
@click.option(
    "--threshold", type=click.IntRange(min=1), help="Flag only differences of at least N on a line."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.pass_context
def reconcile_command(ctx: click.Context, contest_id: str | None, threshold: int | None, fmt: str) -> None:
    """Compare the machine (scanner) count with the hand count, station by station."""
    store = _store(ctx)
    with _errors():
        election = store.election()
        contest = _contest(election, contest_id)
        machine_protocols = store.protocols_for(contest.index, "machine")
        machine = station_counts(election, contest, machine_protocols)
        machine_batches = reported_batches(election, contest, machine_protocols)
        hand = station_counts(election, contest, store.protocols_for(contest.index, "hand"))
        totals: dict[str, int] = {}
        for m in machine:
            for line, v in m.lines.items():
                totals[line] = totals.get(line, 0) + v
        try:
            assertions = contest_assertions(contest, totals) if machine else ()
        except AuditImpossibleError:
            assertions = ()
        # "At least N" on any protocol line, or any difference at all.
        rules: list[RecountRule] = (
            [AbsoluteDifference(line, threshold - 1) for line in contest.line_ids]
            if threshold
            else [AnyDifference(contest.line_ids)]
        )
        if assertions:
            rules.append(OutcomeAtRisk(assertions, contest_margins(assertions, machine_batches)))
        result = reconcile(machine, hand, assertions=assertions, rules=rules)
        regions = summarize_by_region(result, _region_of(election))
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "contest": contest.id,
                    "stations_compared": len(result.stations),
                    "stations_differing": len(result.differing()),
                    "stations_flagged": len(result.flagged()),
                    "machine_only": list(result.machine_only),
                    "hand_only": list(result.hand_only),
                    "stations": [msgspec.to_builtins(s, enc_hook=_number) for s in result.differing()],
                    "regions": [msgspec.to_builtins(r, enc_hook=_number) for r in regions],
                },
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["station", "line", "machine", "hand", "difference", "flagged"])
        for s in result.differing():
            for d in s.differences:
                if d.difference and not d.line.startswith(FIGURE_PREFIX):
                    w.writerow([s.station_id, d.line, d.machine, d.hand, d.difference, s.flagged])
        click.echo(buf.getvalue(), nl=False)
        return
    console.print(
        f"[bold]{contest.id}[/]: {len(result.stations):,} stations with both counts; "
        f"{len(result.differing()):,} differ, {len(result.flagged()):,} flagged for recount; "
        f"{len(result.machine_only):,} machine only, {len(result.hand_only):,} hand only"
    )
    table = Table(title="stations whose counts differ", title_justify="left")
    for col in ("station", "lines that differ (hand − machine)", "recount"):
        table.add_column(col)
    for s in result.differing()[:200]:
        diffs = ", ".join(
            f"{d.line} {d.difference:+d}"
            for d in s.differences
            if d.difference and not d.line.startswith(FIGURE_PREFIX)
        )
        table.add_row(
            s.station_id,
            diffs,
            "; ".join(f.detail for f in s.flags if f.rule != "any_difference")
            or ("any difference" if s.flags else "")
            or "—",
        )
    console.print(table)


# -- risk-limiting audit ------------------------------------------------------------------------


def _load_audit(store: Store) -> tuple[dict[str, Any], MacroAudit]:
    latest = store.latest_entry(EntryKind.AUDIT)
    if latest is None:
        raise ValueError(
            "no audit has been started: run `tallyroom audit start --seed SEED --risk-limit PCT`"
        )
    envelope = json.loads(latest[1])
    return envelope, MacroAudit.from_json(json.dumps(envelope["state"]))


def _save(store: Store, contest: str, action: str, audit: MacroAudit) -> int:
    payload = {
        "audit": "macro",
        "contest": contest,
        "action": action,
        "state": json.loads(audit.to_json()),
    }
    idx, _ = store.append_entry(
        EntryKind.AUDIT, json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    )
    return idx


def _print_status(audit: MacroAudit, contest: str, fmt: str) -> None:
    status = audit.status()
    if fmt == "json":
        data = msgspec.to_builtins(status, enc_hook=_number)
        click.echo(json.dumps({"contest": contest, **data}, indent=2))
        return
    p = "—" if status.p_value is None else f"{float(status.p_value):.4f}"
    console.print(
        f"[bold]{contest}[/]: MACRO audit at risk limit {float(audit.risk_limit) * 100:g}% "
        f"(seed {audit.seed!r}): [bold]{status.status}[/]; {status.draws} draws, P-value {p}"
    )
    if status.pending:
        shown = ", ".join(status.pending[:30])
        more = (
            f" … and {len(status.pending) - 30} more (--format json lists all)"
            if len(status.pending) > 30
            else ""
        )
        console.print(f"{len(status.pending)} stations to count by hand: {shown}{more}")
    if status.next_round_size:
        console.print(f"next round: draw {status.next_round_size} more (`tallyroom audit next-round`)")


def _audit_group() -> click.Group:
    from tallyroom.audit.cli import audit

    return audit


audit_group = _audit_group()


@audit_group.command("start")
@click.option("--seed", required=True, help="The public random seed (e.g. dice rolled in public).")
@click.option(
    "--risk-limit",
    type=click.FloatRange(0, 100, min_open=True, max_open=True),
    required=True,
    help="Risk limit in percent.",
)
@click.option("--contest", "contest_id", help="Contest id (default: the first contest).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def audit_start(ctx: click.Context, seed: str, risk_limit: float, contest_id: str | None, fmt: str) -> None:
    """Start a batch-comparison (MACRO) audit of the machine count, stations as batches."""
    store = _store(ctx)
    with _errors():
        election = store.election()
        contest = _contest(election, contest_id)
        protocols = store.protocols_for(contest.index, "machine")
        if not protocols:
            raise ValueError(f"contest {contest.id} has no machine count to audit")
        batches = reported_batches(election, contest, protocols)
        totals: dict[str, int] = {}
        for b in batches:
            for line, v in b.lines.items():
                totals[line] = totals.get(line, 0) + v
        assertions = contest_assertions(contest, totals)
        limit = Fraction(str(risk_limit)) / 100
        audit = MacroAudit.start(limit, seed, assertions, batches)
        audit = audit.draw_round(audit.initial_sample_size())
        idx = _save(store, contest.id, "start", audit)
    if fmt == "table":
        console.print(
            f"audit started as ledger entry {idx}: {len(assertions)} assertions, "
            f"{len(batches):,} stations; initial sample {len(audit.draws())} draws"
        )
    _print_status(audit, contest.id, fmt)


@audit_group.command("record")
@click.option("--from-hand-count", is_flag=True, help="Take the drawn stations' hand counts from the store.")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def audit_record(ctx: click.Context, from_hand_count: bool, file: Path | None, fmt: str) -> None:
    """Record hand counts of drawn stations (CSV: station, then one column per line id)."""
    store = _store(ctx)
    with _errors():
        envelope, audit = _load_audit(store)
        election = store.election()
        contest = election.contest(envelope["contest"])
        pending = set(audit.status().pending)
        counts: list[AuditedBatch] = []
        if from_hand_count:
            # Once, not per line: it walks every line of every batch of the audit (2,494
            # batches at the Kyrgyz size; made per line of each drawn station, it took
            # about a minute per `record`).
            reported = _reported_lines(audit)
            for s, c in store.protocols_for(contest.index, "hand"):
                sid = election.stations[s].id
                if sid in pending:
                    lines = station_lines(contest, c)
                    counts.append(AuditedBatch(sid, {k: v for k, v in lines.items() if k in reported}))
        elif file is not None:
            counts = _read_counts(file, audit)
        else:
            raise ValueError("give a CSV FILE of hand counts or --from-hand-count")
        audit = audit.record(counts)
        idx = _save(store, contest.id, "record", audit)
    if fmt == "table":
        console.print(f"recorded {len(counts)} hand count(s) as ledger entry {idx}")
    _print_status(audit, contest.id, fmt)


@audit_group.command("next-round")
@click.pass_context
def audit_next_round(ctx: click.Context) -> None:
    """Draw the next round the status asks for (escalation)."""
    store = _store(ctx)
    with _errors():
        envelope, audit = _load_audit(store)
        more = audit.status().next_round_size
        if not more:
            raise ValueError(f"the audit does not ask for another round (status {audit.status().status})")
        audit = audit.draw_round(more)
        idx = _save(store, envelope["contest"], "next-round", audit)
    console.print(f"drew {more} more as ledger entry {idx}")
    _print_status(audit, envelope["contest"], "table")


@audit_group.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def audit_status(ctx: click.Context, fmt: str) -> None:
    """Where the audit stands: draws, hand counts, P-value, what to do next."""
    store = _store(ctx)
    with _errors():
        envelope, audit = _load_audit(store)
    _print_status(audit, envelope["contest"], fmt)


def _reported_lines(audit: MacroAudit) -> set[str]:
    return {line for b in audit.batches for line in b.lines}


def _read_counts(path: Path, audit: MacroAudit) -> list[AuditedBatch]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read as UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0] != "station":
        raise ValueError(f"{path}: row 1: the first column must be 'station'")
    known = _reported_lines(audit)
    unknown = [h for h in header[1:] if h not in known]
    if unknown:
        raise ValueError(f"{path}: row 1: unknown line(s) {', '.join(unknown)}")
    out = []
    for n, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}: row {n}: {len(row)} cells, the header has {len(header)}")
        try:
            lines = {h: int(v) for h, v in zip(header[1:], row[1:], strict=True)}
        except ValueError:
            raise ValueError(f"{path}: row {n}: every count must be a whole number") from None
        out.append(AuditedBatch(row[0], lines))
    return out


__all__ = ["audit_group", "name_in", "reconcile_command"]

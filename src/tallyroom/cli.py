"""`tallyroom …`: the command line. Thin: parse, call the logic, format.

Every error a user can cause ends in one clear message on stderr and exit code 2 (1 where a
check found a mismatch); no traceback reaches the user.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.errors import DefinitionError
from tallyroom.definition.model import CountKind
from tallyroom.importers.pipeline import ImportFileError, ImportInterrupted
from tallyroom.store.sql import Store, StoreError, open_store

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

_USER_ERRORS: tuple[type[Exception], ...] = (DefinitionError, StoreError, ImportFileError, ImportInterrupted)


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(
        f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True
    )
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except _USER_ERRORS as exc:
        fail(str(exc))


class Ctx:
    def __init__(self, db: str) -> None:
        self.db = db
        self._store: Store | None = None

    def store(self) -> Store:
        if self._store is None:
            with user_errors():
                self._store = open_store(self.db)
        return self._store

    def election(self) -> CompiledElection:
        with user_errors():
            return self.store().election()


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="TALLYROOM_DB",
    default="tallyroom.db",
    show_default=True,
    help="SQLite file or postgresql:// URL of the store (env TALLYROOM_DB).",
)
@click.version_option(package_name="tallyroom")
@click.pass_context
def main(ctx: click.Context, db: str) -> None:
    """tallyroom: election results that anyone can verify."""
    ctx.obj = Ctx(db)
    ctx.call_on_close(lambda: ctx.obj._store.close() if ctx.obj._store else None)


def run() -> None:
    """The ``tallyroom`` entry point: :func:`main`, then the end of the process without the
    interpreter's teardown (:mod:`tallyroom.fastexit`). An exception click does not handle still
    ends the process the usual way, with its traceback."""
    from tallyroom.fastexit import exit_now

    try:
        main()
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


def progress_bar(total: int | None, label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


# -- init ----------------------------------------------------------------------------------


@main.command()
@click.argument("definition", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def init(ctx: Ctx, definition: Path) -> None:
    """Create the store for the election in DEFINITION (YAML or JSON)."""
    from tallyroom.definition.load import load_definition_file

    with user_errors():
        loaded = load_definition_file(definition)
        _initialize(ctx, loaded)
    e = loaded.definition
    console.print(
        f"initialised [bold]{e.election.id}[/]: {len(e.stations):,} stations, "
        f"{len(e.areas):,} areas, {len(e.contests)} contest(s); definition sha256 {loaded.sha256}"
    )


def _initialize(ctx: Ctx, loaded: Any) -> None:
    from tallyroom.commission import create_key, key_path

    store = ctx.store()
    if store.is_initialized():
        raise StoreError(f"{ctx.db} already holds an election; use a new --db for another one")
    e = loaded.definition.election
    kp = key_path(ctx.db)
    if kp.exists():
        raise StoreError(f"{kp} already exists: remove it or set TALLYROOM_COMMISSION_KEY")
    key = create_key(kp, (e.origin or f"tallyroom/{e.id}").replace(" ", "_"))
    store.initialize(loaded, key.verify_key.encode())


# -- import --------------------------------------------------------------------------------

FORMATS = ("shpilkin", "openelections", "kloop", "csv")


@main.command(name="import")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True)
@click.option(
    "--count-kind",
    type=click.Choice([k.value for k in CountKind]),
    default=None,
    help="Which count the file holds (default: the contest's official count).",
)
@click.option(
    "--mapping",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Column mapping (YAML) for --format csv.",
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def import_(ctx: Ctx, fmt: str, count_kind: str | None, mapping: Path | None, file: Path) -> None:
    """Import polling-station protocols from FILE through the same checks as any device."""
    from tallyroom.importers import registry

    with user_errors():
        importer = registry.get(fmt)
        t0 = time.perf_counter()
        with progress_bar(None, f"importing {file.name}") as progress:
            task = progress.add_task("import", total=None)
            report = importer(ctx, file, count_kind, mapping, lambda n: progress.advance(task, n))
        elapsed = time.perf_counter() - t0
    for p in report.rejected[:50]:
        err_console.print(f"[yellow]rejected[/] {file.name}: {p}", highlight=False)
    if len(report.rejected) > 50:
        err_console.print(
            f"… and {len(report.rejected) - 50:,} more rejected rows (see `tallyroom imports`)"
        )
    rate = report.rows / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{file.name}: {report.rows:,} rows, {report.accepted:,} protocols accepted "
        f"({report.warnings:,} with warnings), {report.duplicates:,} duplicates, "
        f"{len(report.rejected):,} rejected in {elapsed:.1f} s ({rate:,.0f}/s); "
        f"file sha256 {report.file_sha256}"
    )
    for line in getattr(report, "notes", []):
        console.print(line)
    if report.accepted == 0 and report.rows > 0 and report.rejected:
        sys.exit(1)


# -- results -------------------------------------------------------------------------------


def _default_kind(store: Store, contest_official: str) -> str:
    kinds = store.count_kinds()
    if contest_official in kinds or not kinds:
        return contest_official
    return kinds[0]


@main.command()
@click.option("--contest", "contest_id", help="Contest id (default: the first contest).")
@click.option("--area", "area_id", help="Area id (default: the contest's whole area).")
@click.option("--count-kind", type=click.Choice([k.value for k in CountKind]))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("--lang", default="en", show_default=True)
@pass_ctx
def results(
    ctx: Ctx,
    contest_id: str | None,
    area_id: str | None,
    count_kind: str | None,
    fmt: str,
    lang: str,
) -> None:
    """Show the running tally of one contest in one area."""
    from tallyroom.tally.report import BASE_WORDS, tally_row

    election = ctx.election()
    store = ctx.store()
    contest = election.contests[0] if contest_id is None else None
    if contest is None:
        if contest_id not in election.contest_index:
            fail(f'unknown contest "{contest_id}" (contests: {", ".join(election.contest_index)})')
        contest = election.contest(str(contest_id))
    area_id = area_id or contest.contest.area
    if area_id not in election.area_index:
        fail(f'unknown area "{area_id}"')
    area = election.area_index[area_id]
    kind = count_kind or _default_kind(store, str(contest.official_count))
    with user_errors():
        row = tally_row(
            election, contest, area, kind, store.totals(contest.index, area, kind), lang
        )
    if fmt == "json":
        click.echo(json.dumps(row.to_dict(), ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            [
                "contest",
                "area",
                "count_kind",
                "stations_reporting",
                "stations_expected",
                "registered",
                "ballots_cast",
                "valid",
                "invalid",
                "choice_id",
                "choice_name",
                "votes",
                "percent",
                "percent_base",
            ]
        )
        for c in row.choices:
            w.writerow(
                [
                    row.contest,
                    row.area,
                    row.count_kind,
                    row.stations_reporting,
                    row.stations_expected,
                    row.registered,
                    row.ballots_cast,
                    row.valid,
                    row.invalid,
                    c.id,
                    c.name,
                    c.votes,
                    c.percent,
                    c.percent_base,
                ]
            )
        click.echo(buf.getvalue(), nl=False)
        return
    base_words = BASE_WORDS.get(row.percent_base, row.percent_base)
    official = "official" if kind == str(contest.official_count) else "preliminary"
    title = (
        f"{contest.id} — {row.area_name} — {kind} count ({official}); "
        f"{row.stations_reporting:,} of {row.stations_expected:,} stations reporting"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("choice")
    table.add_column("votes", justify="right")
    table.add_column(f"% of {base_words}", justify="right")
    for c in sorted(row.choices, key=lambda c: -c.votes):
        table.add_row(c.name, f"{c.votes:,}", c.percent or "—")
    console.print(table)
    figures = [
        ("registered", row.registered),
        ("took part", row.took_part),
        ("ballots cast", row.ballots_cast),
        ("valid", row.valid),
        ("invalid", row.invalid),
    ]
    console.print(
        "  ".join(f"{k}: {v:,}" for k, v in figures if v is not None)
        + (f"  turnout: {row.turnout_percent}%" if row.turnout_percent else "")
    )
    console.print(f"percentages are of {base_words}: {row.percent_base_value or 0:,}")


# -- ledger --------------------------------------------------------------------------------


@main.group()
def ledger() -> None:
    """Inspect and check the append-only ledger."""


@ledger.command("show")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_ctx
def ledger_show(ctx: Ctx, fmt: str) -> None:
    """Print the ledger's size, root and latest checkpoint."""
    store = ctx.store()
    with user_errors():
        store.election()
        head = store.head()
        cps = store.checkpoints()
    info = {
        "size": head.size,
        "root": head.root.hex(),
        "checkpoints": len(cps),
        "latest_checkpoint": cps[-1][3].decode() if cps else None,
        "definition_sha256": store.meta("definition_sha256"),
    }
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    console.print(f"ledger size {head.size:,}  root {head.root.hex()}")
    console.print(f"definition sha256 {info['definition_sha256']}")
    console.print(f"{len(cps)} checkpoint(s)")
    if cps:
        console.print(cps[-1][3].decode().rstrip(), highlight=False)


@ledger.command("verify")
@pass_ctx
def ledger_verify(ctx: Ctx) -> None:
    """Re-hash every entry, rebuild the Merkle tree, and check the head and checkpoints."""
    from tallyroom.store.ledger_check import check_store_ledger

    store = ctx.store()
    with user_errors():
        store.election()
        t0 = time.perf_counter()
        problems, size = check_store_ledger(store)
    for p in problems:
        err_console.print(f"[red]mismatch[/] {p}", highlight=False)
    dt = time.perf_counter() - t0
    if problems:
        console.print(f"ledger of {size:,} entries: {len(problems)} problem(s)")
        sys.exit(1)
    console.print(
        f"ledger of {size:,} entries verified in {dt:.1f} s: every entry re-hashed, "
        f"root and {len(store.checkpoints())} checkpoint(s) match"
    )


@ledger.command("checkpoint")
@pass_ctx
def ledger_checkpoint(ctx: Ctx) -> None:
    """Sign a checkpoint of the ledger as it is now with the commission key."""
    from tallyroom.commission import issue_checkpoint, key_path

    with user_errors():
        note = issue_checkpoint(ctx.store(), key_path(ctx.db))
    click.echo(note.decode(), nl=False)


# -- rebuild -------------------------------------------------------------------------------


@main.command()
@click.option("--check", is_flag=True, help="Only compare with the running tally; change nothing.")
@pass_ctx
def rebuild(ctx: Ctx, check: bool) -> None:
    """Recompute every tally from the ledger and replace the running totals with it."""
    from tallyroom.store.rebuild import rebuild_store
    from tallyroom.tally.rebuild import RebuildError

    store = ctx.store()
    election = ctx.election()
    t0 = time.perf_counter()
    try:
        rebuilt = rebuild_store(store)
    except RebuildError as exc:
        fail(str(exc), 1)
    dt = time.perf_counter() - t0
    running = store.tally().nonzero()
    fresh = rebuilt.tally.nonzero()
    diffs = sorted(set(running) ^ set(fresh)) + sorted(
        k for k in set(running) & set(fresh) if running[k] != fresh[k]
    )
    rate = rebuilt.protocols / dt if dt > 0 else 0.0
    console.print(
        f"rebuilt {rebuilt.protocols:,} protocols from the ledger in {dt:.2f} s ({rate:,.0f}/s)"
    )
    if not diffs:
        console.print(f"running tally equals the rebuilt tally ({len(fresh):,} totals)")
        return
    for k in diffs[:20]:
        where = f"{election.contests[k.contest].id} / {election.areas[k.area].id} / {k.count_kind}"
        console.print(f"[yellow]differs[/] {where}")
    if check:
        sys.exit(1)
    store.replace_tally(rebuilt.tally)
    console.print(f"replaced {len(diffs):,} differing totals with the rebuilt ones")


# -- seats ---------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.option("--contest", "contest_id", help="Contest id (default: every contest with seats).")
@click.option(
    "--count-kind",
    type=click.Choice([k.value for k in CountKind]),
    help="Count to allocate from (default: each contest's official count).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def seats(ctx: click.Context, contest_id: str | None, count_kind: str | None, fmt: str) -> None:
    """Seats for the election in the store (`seats calc` works on any votes file)."""
    if ctx.invoked_subcommand is not None:
        return
    from tallyroom.seats.contest import contest_seats
    from tallyroom.seats.errors import SeatsError

    c: Ctx = ctx.obj
    election = c.election()
    store = c.store()
    if contest_id is not None and contest_id not in election.contest_index:
        fail(f'unknown contest "{contest_id}" (contests: {", ".join(election.contest_index)})')
    contests = (
        [election.contest(contest_id)]
        if contest_id
        else [x for x in election.contests if x.contest.allocation is not None]
    )
    tally = store.tally()
    outcomes = []
    for contest in contests:
        kind = count_kind or _default_kind(store, str(contest.official_count))
        try:
            outcomes.append(contest_seats(election, contest, tally, kind))
        except SeatsError as exc:
            fail(f"{contest.id}: {exc}")
    if fmt == "json":
        data = [o.to_json_dict() for o in outcomes]
        click.echo(json.dumps(data[0] if contest_id else data, ensure_ascii=False, indent=2))
        return
    for o in outcomes:
        _print_seats(o)


def _print_seats(o: Any) -> None:
    from tallyroom.seats.model import Allocation

    status = (
        "official"
        if o.official
        else (
            f"provisional — {o.count_kind} count, {o.stations_reporting:,} of "
            f"{o.stations_expected:,} stations reporting"
        )
    )
    if o.result is None:
        console.print(f"[bold]{o.contest}[/] ({status}): {o.outcome_note}")
        return
    if isinstance(o.result, Allocation):
        table = Table(
            title=f"{o.contest}: {o.result.seats_total} seats by {o.result.method} ({status})",
            title_justify="left",
        )
        table.add_column("choice")
        table.add_column("votes", justify="right")
        table.add_column("seats", justify="right")
        table.add_column("status")
        for line in o.result.explanation.lines:
            table.add_row(line.name, f"{line.votes:,}", str(line.seats), str(line.status))
        console.print(table)
        for note in o.result.explanation.notes:
            console.print(f"  {note}")
        return
    d = o.result.to_json_dict()
    winner = d.get("winner")
    console.print(
        f"[bold]{o.contest}[/] ({status}): "
        + (f"elected {winner}" if winner else f"{d.get('outcome')}: {d.get('reason', '')}")
    )


def _mount(group: click.Group, name: str, loader: Callable[[], click.Command]) -> None:
    group.add_command(loader(), name)


def _seats_calc() -> click.Command:
    from tallyroom.seats.cli import calc

    return calc


def _audit_group() -> click.Command:
    from tallyroom.audit.commands import audit_group

    return audit_group


def _reconcile() -> click.Command:
    from tallyroom.audit.commands import reconcile_command

    return reconcile_command


_mount(seats, "calc", _seats_calc)
_mount(main, "audit", _audit_group)
_mount(main, "reconcile", _reconcile)
main.add_command(__import__("tallyroom.publish.cli", fromlist=["publish"]).publish)

# -- intake: serve, keys, submit, admin (tallyroom.web.cli) ----------------------------------


def _intake_commands() -> list[click.Command]:
    from tallyroom.web import cli as intake_cli

    return [intake_cli.serve, intake_cli.keys, intake_cli.submit, intake_cli.admin]


for _command in _intake_commands():
    main.add_command(_command)
main.add_command(__import__("tallyroom.simulate.cli", fromlist=["simulate"]).simulate)
main.add_command(__import__("tallyroom.verify.cli", fromlist=["verify"]).verify)

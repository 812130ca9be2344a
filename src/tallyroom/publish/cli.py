"""`tallyroom publish --out DIR`: build one snapshot of the store now, behind the gate.

Exit codes: 0 published (or nothing new), 1 refused by the gate (nothing published; the
previous snapshot stays current; the refusal is in DIR/status.json and DIR/refusals/),
2 a usage or store error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command("publish")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Publish folder: snapshots/N/, current, current.json, status.json.",
)
@click.option("--force", is_flag=True, help="Publish even when the ledger has nothing new.")
@click.option("--lang", "languages", multiple=True, help="Languages to build (default ky, ru, en).")
@click.option(
    "--boundaries",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="GeoJSON with the regions' P-codes for the map (default: maps shipped with tallyroom).",
)
@click.option("--no-compress", is_flag=True, help="Do not write .gz/.br copies.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Processes that render pages (default: one per CPU this process may use, at most 8).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def publish(
    obj: object,
    out: Path,
    force: bool,
    languages: tuple[str, ...],
    boundaries: tuple[str, ...],
    no_compress: bool,
    workers: int | None,
    fmt: str,
) -> None:
    """Build one snapshot of the store now: DIR/snapshots/N/ and DIR/current.

    Every number is recomputed from the ledger and checked by the publish gate first; when the
    gate refuses, nothing is published and the command exits with code 1.
    """
    from tallyroom.cli import Ctx, fail, user_errors
    from tallyroom.commission import key_path
    from tallyroom.publish.builder import Publisher, PublishError
    from tallyroom.publish.i18n import LANGUAGES

    assert isinstance(obj, Ctx)
    with user_errors():
        store = obj.store()
        store.election()
        publisher = Publisher(
            store,
            out,
            key_path(obj.db),
            languages=languages or LANGUAGES,
            compress=not no_compress,
            boundaries=boundaries,
            workers=workers,
        )
        try:
            outcome = publisher.publish(force=force)
        except PublishError as exc:
            fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps(outcome.to_dict(), indent=2))
    elif outcome.status == "published":
        click.echo(
            f"published snapshot {outcome.snapshot} of {outcome.ledger_size:,} ledger entries in "
            f"{outcome.seconds:.2f} s: {outcome.checked_numbers:,} numbers checked by the gate; "
            f"{outcome.pages_rendered:,} pages rendered, {outcome.pages_reused:,} reused; "
            f"{outcome.written:,} files written, {outcome.linked:,} linked; "
            f"{outcome.rows_changed:,} totals changed; {out}/current -> snapshots/{outcome.snapshot}"
        )
    elif outcome.status == "unchanged":
        click.echo(f"nothing new since snapshot {outcome.snapshot}: nothing published (use --force)")
    else:
        click.echo(
            f"REFUSED by the publish gate: {len(outcome.failures)} failure(s); nothing published", err=True
        )
        for f in outcome.failures[:20]:
            click.echo(f"  {f}", err=True)
        click.echo(f"details: {out}/status.json", err=True)
    if outcome.status == "refused":
        sys.exit(1)

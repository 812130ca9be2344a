"""``tallyroom seats calc`` — the parliament calculator, no store needed.

Example::

    $ tallyroom seats calc --method hare --seats 54 --threshold 5 --base 1281622 --cap 27 kg.csv

FILE is CSV ``name,votes`` (a header row is optional) or JSON ``{"name": votes}``. ``--base`` is
the number the threshold percentage is taken of (default: the sum of the votes in the file).
Output is a Rich table, or with ``--format json`` the allocation's JSON (``seats``, ``method``,
``explanation``, …). Bad input is reported with the file and row, exit code 2, no traceback.

``calc`` is a Click command; ``seats`` is the ``tallyroom seats`` group holding it (``group`` is
an alias).
"""

from __future__ import annotations

import csv
import io
import json
import re
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from tallyroom.seats.allocate import allocate
from tallyroom.seats.errors import NoEligibleChoicesError, SeatsError
from tallyroom.seats.exact import as_fraction, decimal_text
from tallyroom.seats.model import Allocation, Method, Status
from tallyroom.seats.thresholds import Base, PercentThreshold, ThresholdCheck
from tallyroom.seats.ties import ListedOrder, Lot, TieRule

__all__ = ["CalcError", "calc", "group", "read_votes", "seats"]

_WHOLE = re.compile(r"[0-9]+")


class CalcError(click.ClickException):
    """A user error: printed as ``Error: …`` with exit code 2 (like Click's usage errors)."""

    exit_code = 2


def _fail(message: str) -> NoReturn:
    raise CalcError(message)


def _whole(text: str, where: str) -> int:
    value = text.strip()
    if value.startswith("-") and _WHOLE.fullmatch(value[1:]):
        _fail(f"{where}: votes must not be negative, got {value}")
    if not _WHOLE.fullmatch(value):
        _fail(f"{where}: votes {value!r} is not a whole number")
    return int(value)


def read_votes(path: Path) -> dict[str, int]:
    """Read ``{name: votes}`` from a CSV or JSON file, with errors naming the file and row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"{path}: not UTF-8 text")
    except OSError as exc:
        _fail(f"{path}: cannot read ({exc.strerror})")
    if not text.strip():
        _fail(f"{path}: the file is empty")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _read_json(path, text)
    return _read_csv(path, text)


def _read_json(path: Path, text: str) -> dict[str, int]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in items:
            if name in out:
                _fail(f"{path}: the name {name!r} occurs more than once")
            out[name] = value
        return out

    def no_float(literal: str) -> NoReturn:
        _fail(f"{path}: {literal} is not a whole number of votes")

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_float=no_float)
    except json.JSONDecodeError as exc:
        _fail(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    if not isinstance(data, dict):
        _fail(f'{path}: expected a JSON object {{"name": votes, …}}')
    votes: dict[str, int] = {}
    for name, value in data.items():
        if not name.strip():
            _fail(f"{path}: a choice has an empty name")
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(f"{path}: votes for {name!r} must be a whole number, got {json.dumps(value)}")
        if value < 0:
            _fail(f"{path}: votes for {name!r} must not be negative, got {value}")
        votes[name.strip()] = value
    if not votes:
        _fail(f"{path}: no choices in the file")
    return votes


def _read_csv(path: Path, text: str) -> dict[str, int]:
    votes: dict[str, int] = {}
    rows_of: dict[str, int] = {}
    first = True
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        where = f"{path}, row {number}"
        if len(cells) != 2:
            _fail(f"{where}: expected 2 columns (name,votes), got {len(cells)}")
        name, count = cells
        header, first = first and not _WHOLE.fullmatch(count.lstrip("-")), False
        if header:  # an optional header row such as "name,votes"
            continue
        if not name:
            _fail(f"{where}: the name is empty")
        if name in votes:
            _fail(f"{where}: the name {name!r} occurs twice (first in row {rows_of[name]})")
        votes[name] = _whole(count, where)
        rows_of[name] = number
    if not votes:
        _fail(f"{path}: no choices in the file")
    return votes


def _table(result: Allocation, base: Base | None, threshold: Fraction | None) -> None:
    console = Console(highlight=False)
    explanation = result.explanation
    checks: dict[str, ThresholdCheck] = {c.choice: c for c in explanation.thresholds}
    title = f"{result.seats_total} seats by {explanation.method.name}"
    if result.provisional is not None:
        title += " (provisional)"
    table = Table(title=title, title_justify="left")
    table.add_column("choice")
    table.add_column("votes", justify="right")
    if base is not None:
        table.add_column(f"% of {base.label}", justify="right")
    if threshold is not None:
        table.add_column(f"≥ {threshold}%", justify="center")
    table.add_column("seats", justify="right")
    for line in explanation.lines:
        cells = [line.name, f"{line.votes:,}"]
        if base is not None:
            share = Fraction(line.votes * 100, base.value)
            cells.append(decimal_text(share, 2))
        if threshold is not None:
            check = checks.get(line.name)
            if line.status is Status.AGAINST_ALL:
                cells.append("against all")
            else:
                cells.append("yes" if check is None or check.passed else "no")
        seats = str(line.seats)
        if line.status is Status.CAPPED:
            seats += " (cap)"
        cells.append(seats)
        table.add_row(*cells)
    console.print(table)
    if explanation.quota is not None:
        quota = explanation.quota
        console.print(f"quota: {decimal_text(quota)} votes per seat (exactly {quota})")
    if explanation.divisors is not None:
        console.print(f"divisors: {explanation.divisors}")
    if explanation.electoral_key is not None:
        console.print(f"smallest winning quotient: {decimal_text(explanation.electoral_key)}")
    for step in explanation.caps:
        console.print(
            f"cap: {step.name} would have had {step.seats_before}, holds {step.cap}; "
            f"{step.excess} redistributed"
        )
    for tie in explanation.ties:
        console.print(
            f"tie ({tie.stage}) between {', '.join(tie.tied)}: {', '.join(tie.winners)} "
            f"by {tie.rule}"
        )


@click.command("calc")
@click.option(
    "--method",
    "method_name",
    required=True,
    type=click.Choice([m.value for m in Method]),
    help="Apportionment method.",
)
@click.option("--seats", type=int, required=True, help="Number of seats to allocate.")
@click.option("--threshold", default=None, help="Threshold in percent of the base, e.g. 5 or 0.7.")
@click.option(
    "--base",
    type=int,
    default=None,
    help="Threshold denominator (default: the sum of the votes in the file).",
)
@click.option(
    "--base-label", default=None, help="What the base counts, e.g. 'voters who took part'."
)
@click.option("--cap", type=int, default=None, help="Most seats one choice may hold.")
@click.option(
    "--against-all",
    "against_all",
    multiple=True,
    help="A line that never takes seats (repeatable).",
)
@click.option("--first-divisor", default=None, help="First divisor of modified-sainte-lague.")
@click.option(
    "--tie-seed",
    default=None,
    help="Break ties by a lot drawn from this public seed (default: file order).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
def calc(
    method_name: str,
    seats: int,
    threshold: str | None,
    base: int | None,
    base_label: str | None,
    cap: int | None,
    against_all: tuple[str, ...],
    first_divisor: str | None,
    tie_seed: str | None,
    output: str,
    file: Path,
) -> None:
    """Allocate seats for the votes in FILE (CSV name,votes or JSON {"name": votes})."""
    votes = read_votes(file)
    missing = [name for name in against_all if name not in votes]
    if missing:
        _fail(f"{file}: --against-all {', '.join(map(repr, missing))} not in the file")
    if base is not None and threshold is None:
        _fail("--base is the denominator of --threshold; give --threshold too")
    if base is not None and base < 1:
        _fail(f"--base must be a positive whole number, got {base}")
    if base_label is not None and base is None:
        _fail("--base-label describes --base; give --base too")
    rule: TieRule = Lot(tie_seed) if tie_seed is not None else ListedOrder()
    try:
        percent = None if threshold is None else as_fraction(threshold, "--threshold")
        stated_base = (
            Base(base_label or "stated base", base)
            if base is not None
            else Base("votes in the file", max(1, sum(votes.values())))
        )
        thresholds = [] if percent is None else [PercentThreshold(percent, stated_base)]
        result = allocate(
            votes,
            seats,
            method_name,
            thresholds=thresholds,
            cap=cap,
            against_all=against_all,
            tie_rule=rule,
            first_divisor=first_divisor,
        )
    except NoEligibleChoicesError as exc:
        best = max(exc.checks, key=lambda c: c.value, default=None)
        detail = ""
        if best is not None and best.share is not None:
            detail = f" (the largest, {best.choice}, has {decimal_text(best.share, 2)}%)"
        _fail(f"{file}: {exc}{detail}")
    except SeatsError as exc:
        _fail(f"{file}: {exc}")
    if output == "json":
        click.echo(json.dumps(result.to_json_dict(), ensure_ascii=False, indent=2))
    else:
        _table(result, stated_base, percent)


@click.group("seats")
def seats() -> None:
    """Seat allocation: `seats calc` is the parliament calculator for any votes file."""


seats.add_command(calc)
#: The same group under the name the module docstring first used.
group = seats

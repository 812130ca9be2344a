"""``tallyroom audit …``: audit planning from the command line (thin: parse, call, print).

Only the store-free commands live here; ``audit start/record/status`` (ledger-backed) are
added by the CLI that owns the store.
"""

from __future__ import annotations

import json
from fractions import Fraction

import click

from tallyroom.audit.assertions import AuditImpossibleError
from tallyroom.audit.bravo import BravoContest, bravo_sample_size, contest_asn


def parse_votes(text: str) -> dict[str, int]:
    """Parse ``"A=9000,B=1000"`` into ``{"A": 9000, "B": 1000}`` (``ValueError`` if malformed)."""
    votes: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.partition("=")
        name, count = name.strip(), count.strip()
        if not sep or not name or not count:
            raise ValueError(f"expected NAME=VOTES, got {part.strip()!r}")
        if not (count.isascii() and count.isdigit()):
            raise ValueError(f"votes for {name!r} must be a whole number ≥ 0, got {count!r}")
        if name in votes:
            raise ValueError(f"{name!r} appears twice")
        votes[name] = int(count)
    if len(votes) < 2:
        raise ValueError('give at least two choices, e.g. "A=9000,B=1000"')
    return votes


def parse_risk_limit(text: str) -> Fraction:
    """Parse a percentage such as ``10`` or ``2.5%`` into α (a fraction in (0, 1))."""
    raw = text.strip().removesuffix("%").strip()
    try:
        pct = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"risk limit must be a percentage, got {text!r}") from None
    if not 0 < pct < 100:
        raise ValueError(f"risk limit must be strictly between 0 and 100 percent, got {text}")
    return pct / 100


#: Above this ASN the exact quantiles (O(n) each) are skipped to keep the command fast.
MAX_QUANTILE_ASN = 1_000_000


@click.group(name="audit")
def audit() -> None:
    """Risk-limiting audits: sample sizes, and (with a store) audit rounds."""


@audit.command(name="sample-size")
@click.option(
    "--method",
    type=click.Choice(["bravo"]),
    default="bravo",
    show_default=True,
    help="Audit method.",
)
@click.option("--risk-limit", "risk_limit", required=True, help="Risk limit in percent, e.g. 10.")
@click.option(
    "--ballots",
    type=click.IntRange(min=1),
    required=True,
    help="Ballots cast in the contest (including blank and invalid).",
)
@click.option("--votes", required=True, help='Reported votes, e.g. "A=9000,B=1000".')
@click.option(
    "--winners",
    "num_winners",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of winners (the top N by votes).",
)
def sample_size(method: str, risk_limit: str, ballots: int, votes: str, num_winners: int) -> None:
    """Print the expected sample size (average sample number) of a ballot-polling audit as JSON."""
    try:
        alpha = parse_risk_limit(risk_limit)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--risk-limit") from None
    try:
        counts = parse_votes(votes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--votes") from None
    if num_winners >= len(counts):
        raise click.BadParameter(
            f"{num_winners} winner(s) among {len(counts)} choices leaves no loser",
            param_hint="--winners",
        )
    total = sum(counts.values())
    if total > ballots:
        raise click.BadParameter(
            f"the votes add up to {total:,}, more than the {ballots:,} ballots",
            param_hint="--ballots",
        )
    ranked = sorted(counts, key=lambda c: -counts[c])
    winners = tuple(ranked[:num_winners])
    weakest, strongest = ranked[num_winners - 1], ranked[num_winners]
    if counts[weakest] <= counts[strongest]:
        raise click.UsageError(
            f"no audit possible: {weakest} ({counts[weakest]:,}) does not have more votes than "
            f"{strongest} ({counts[strongest]:,}); a tie can only be settled by a full hand count"
        )
    contest = BravoContest("contest", counts, ballots, winners)
    try:
        pair = contest.hardest_pair()
        asn = contest_asn(contest, alpha)
    except (AuditImpossibleError, ValueError) as exc:  # pragma: no cover - checked above
        raise click.UsageError(f"no audit possible: {exc}") from None
    quantiles: dict[str, int | None] = {}
    if asn <= MAX_QUANTILE_ASN:
        for p in (0.7, 0.8, 0.9):
            quantiles[f"{p:.1f}"] = bravo_sample_size(
                pair.winner_votes, pair.loser_votes, ballots, alpha, p
            )
    margin = pair.winner_votes - pair.loser_votes
    result = {
        "asn": asn,
        "method": method,
        "risk_limit": float(alpha * 100),
        "winner": pair.winner if num_winners == 1 else list(winners),
        "runner_up": pair.loser,
        "margin": margin,
        "diluted_margin": margin / ballots,
        "ballots": ballots,
        "sample_size_for_probability": quantiles,
        "full_hand_count_recommended": asn >= ballots,
    }
    click.echo(json.dumps(result, ensure_ascii=False))

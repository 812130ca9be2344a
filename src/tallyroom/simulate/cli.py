"""`tallyroom simulate`: an election night against a real server, with faults and crashes.

Exit code 0 only when the final check passes (tally == truth, no receipt lost, nothing forged
counted, no snapshot broke an invariant, every refusal journaled, verify passes); 1 when it
fails; 2 when the night could not run. The last line is the verdict, e.g.::

    2,000 stations, 31,544 submissions, 4 kills: tally == truth, 0 lost, 0 forged accepted
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click


@click.command("simulate")
@click.option(
    "--stations",
    type=click.IntRange(100, 10_000_000),
    required=True,
    help="Polling stations (2,494 gives the official Kyrgyz 2021 country; other sizes scale it).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the election and of the night.")
@click.option(
    "--faults",
    "faults_spec",
    default="all",
    show_default=True,
    help="all | none | light | a list such as duplicate,forged=0.05,slow (rates per protocol).",
)
@click.option(
    "--kill-every",
    type=click.FloatRange(0.5, None),
    default=None,
    help="SIGKILL the server every SECONDS on average (at random moments) and restart it.",
)
@click.option(
    "--duration",
    type=click.FloatRange(1, None),
    default=60.0,
    show_default=True,
    help="Seconds over which the night's submissions are spread.",
)
@click.option(
    "--db",
    default=None,
    help="Store: SQLite path or postgresql:// URL (empty; default: a new SQLite file in --work).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Intake worker processes of the simulator's server.",
)
@click.option(
    "--url", default=None, help="Drive a server that is already running on --db instead of starting one."
)
@click.option(
    "--publish-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where snapshots are published (default: --work/publish; with --url: read them from URL).",
)
@click.option("--publish-every", type=click.FloatRange(0.1, None), default=2.0, show_default=True)
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the store, keys, snapshots and logs (default: a temporary one, removed "
    "after a passing run).",
)
@click.option("--keep", is_flag=True, help="Keep the work folder after a passing run.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port of the simulator's server.")
@click.option(
    "--connections",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    help="Concurrent client connections.",
)
@click.option(
    "--prepare-only", is_flag=True, help="With --db: store the election for a later --url run, then exit."
)
def simulate(
    stations: int,
    seed: int,
    faults_spec: str,
    kill_every: float | None,
    duration: float,
    db: str | None,
    workers: int,
    url: str | None,
    publish_dir: Path | None,
    publish_every: float,
    work: Path | None,
    keep: bool,
    port: int,
    connections: int,
    prepare_only: bool,
) -> None:
    """Play an election night against a real intake server and check every number after it.

    Generates an election shaped by the real Kyrgyz 2021 data with its ground truth, starts
    `tallyroom serve --publish-dir` on a loopback port (or drives --url), and plays the night:
    signed scanner counts, then hand counts, photos, corrections and annulments approved by two
    people, with the chosen faults; --kill-every kills the server at random moments.
    """
    from tallyroom.cli import fail
    from tallyroom.simulate.faults import FaultSpecError, parse_faults
    from tallyroom.simulate.run import (
        SimulationConfig,
        SimulationError,
        describe_result,
        generate,
        prepare_store,
        run_sync,
    )
    from tallyroom.store.sql import StoreError

    try:
        rates = parse_faults(faults_spec)
    except FaultSpecError as exc:
        fail(str(exc))
    if prepare_only:
        if db is None:
            fail("--prepare-only needs --db (the store the server will use)")
        from tallyroom.commission import key_path

        try:
            prepare_store(db, generate(stations, seed), key_path(db))
        except (SimulationError, StoreError, OSError) as exc:
            fail(str(exc))
        click.echo(
            f"{db} holds the simulated election ({stations:,} stations, seed {seed}); commission key "
            f"{key_path(db)}. Start `tallyroom --db {db} serve --publish-dir DIR`, then run "
            f"`tallyroom simulate --stations {stations} --seed {seed} --db {db} --url URL`."
        )
        return
    config = SimulationConfig(
        stations=stations,
        seed=seed,
        rates=rates,
        kill_every=kill_every,
        duration=duration,
        db=db,
        workers=workers,
        url=url,
        publish_dir=publish_dir,
        publish_every=publish_every,
        work=work,
        keep=keep,
        port=port or None,
        connections=connections,
    )

    def say(line: str) -> None:
        click.echo(line)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds the night: the server it started is stopped

    signal.signal(signal.SIGTERM, terminate)

    try:
        result = run_sync(config, say)
    except (SimulationError, StoreError, OSError, RuntimeError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", 130)
    for line in describe_result(result):
        click.echo(line)
    click.echo(result.summary)
    sys.exit(0 if result.ok else 1)

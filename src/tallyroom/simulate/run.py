"""One simulated election night from start to verdict (what `tallyroom simulate` runs).

1. **Generate** a Kyrgyz-shaped election of N stations and its ground truth
   (:mod:`.kyrgyzstan`: the official 2021 country for 2,494 stations, scaled otherwise).
2. **Prepare** the store: the definition, the commission key, one device key per station,
   API tokens for an operator and two supervisors.
3. **Serve**: start `tallyroom serve --publish-dir` on a loopback port (or use ``--url``).
4. **Play** the night (:mod:`.night`) from the plan (:mod:`.plan`), while a killer task
   SIGKILLs the server every ``--kill-every`` seconds on average and starts it again.
5. **Wait** for a snapshot that covers the whole night, then **check** (:mod:`.check`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.load import load_definition
from tallyroom.intake.signature import DeviceKey
from tallyroom.ledger.entry import EntryKind
from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.simulate.check import (
    CheckInput,
    CheckReport,
    Published,
    final_check,
    verify_options,
    write_copies,
    write_receipts,
)
from tallyroom.simulate.faults import DEFAULT_RATES, Fault, describe
from tallyroom.simulate.http import HttpClient
from tallyroom.simulate.night import STAFF, Night, Observations
from tallyroom.simulate.plan import NightOptions, NightPlan, plan_night
from tallyroom.simulate.server import ServerProcess, free_port, tallyroom_command
from tallyroom.store.sql import Store, open_store

Say = Callable[[str], None]
#: Entries the publisher writes itself; a ledger that grew only by these has nothing new.
OWN_KINDS = frozenset({str(EntryKind.CHECKPOINT), str(EntryKind.SNAPSHOT)})


class SimulationError(RuntimeError):
    """The simulation could not run (not a failed check: a setup or server problem)."""


@dataclass
class SimulationConfig:
    stations: int
    seed: int = 1
    rates: Mapping[Fault, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    kill_every: float | None = None
    duration: float = 60.0
    db: str | None = None
    workers: int = 1
    url: str | None = None
    publish_dir: Path | None = None
    publish_every: float = 2.0
    work: Path | None = None
    keep: bool = False
    host: str = "127.0.0.1"
    port: int | None = None
    server: str = "uvicorn"
    connections: int = 64
    corrections: int | None = None
    annulments: int | None = None
    annul_kinds: tuple[str, ...] = ("machine", "hand")
    photo_rate: float = 0.05
    #: Seconds to wait after the night for a snapshot that covers it (None: 180 s, or 6 ms per
    #: station when that is longer — a full snapshot of 100,000 Kyrgyz-shaped stations took
    #: about 5 minutes while the night's intake shared the machine).
    publish_wait: float | None = None
    #: Seconds a request is retried while the server does not answer.
    give_up: float = 600.0
    #: Test hook: called with the store URL at ``tamper_at`` × duration (a broken server).
    tamper: Callable[[str], None] | None = None
    tamper_at: float = 0.5
    #: Called once the server answers (the demo prints its URL here).
    on_serving: Callable[[str], None] | None = None
    #: Leave the simulator's server running after the check (``result.server``; stop it).
    keep_serving: bool = False
    #: Seconds between progress lines (None: about ten per night).
    progress_every: float | None = None
    #: Start the night only once the first (empty) snapshot is published (the demo: the site
    #: shows every station coming in).
    wait_first_snapshot: bool = False
    #: Run `tallyroom verify` in the final check (when this tallyroom has it).
    verify: bool = True
    #: Snapshots compared with a full rebuild of their ledger prefix, at most.
    max_prefix_checks: int = 40

    @property
    def publication_timeout(self) -> float:
        """Seconds to wait for the snapshot that covers the night (see ``publish_wait``)."""
        if self.publish_wait is not None:
            return self.publish_wait
        return max(180.0, 0.006 * self.stations)


@dataclass
class SimulationResult:
    ok: bool
    summary: str
    report: CheckReport | None
    stations: int
    submissions: int
    kills: int
    observations: Observations
    plan: NightPlan
    work: Path
    db: str
    publish_dir: Path | None
    url: str
    seconds: dict[str, float] = field(default_factory=dict)
    server_log: Path | None = None
    #: The server, still running (only with ``keep_serving``).
    server: ServerProcess | None = None
    metrics: Metrics | None = None


@dataclass
class Metrics:
    """How the server held up: throughput, latency, and how soon accepted protocols went public."""

    answered: int
    per_second: float
    peak_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    snapshots: int
    #: Seconds from a protocol's receipt to the first snapshot that includes it (None: no data).
    publication_p50: float | None
    publication_p99: float | None
    publication_max: float | None
    unpublished: int

    def lines(self) -> list[str]:
        out = [
            f"intake: {self.answered:,} answered submissions, {self.per_second:,.0f}/s on average over the "
            f"night, {self.peak_per_second:,.0f}/s at the busiest 5 s; latency p50 {self.p50_ms:.1f} ms, "
            f"p99 {self.p99_ms:.1f} ms, max {self.max_ms:.0f} ms"
        ]
        if self.publication_p50 is not None:
            out.append(
                f"publication: {self.snapshots} snapshots seen; receipt to public p50 "
                f"{self.publication_p50:.1f} s, p99 {self.publication_p99:.1f} s, "
                f"max {self.publication_max:.1f} s"
                + (f"; {self.unpublished:,} never seen published" if self.unpublished else "")
            )
        return out


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(obs: Observations, publications: list[tuple[float, int]]) -> Metrics:
    answered = sorted(obs.answered)
    lat = sorted(x[1] for x in answered)
    span = (answered[-1][0] - (answered[0][0] - answered[0][1])) if answered else 0.0
    peak = 0
    j = 0
    for i in range(len(answered)):
        while answered[i][0] - answered[j][0] > 5.0:
            j += 1
        peak = max(peak, i - j + 1)
    delays: list[float] = []
    unpublished = 0
    first_at: dict[int, float] = {}
    for r in obs.receipts:
        if r.ledger_index not in first_at or r.at < first_at[r.ledger_index]:
            first_at[r.ledger_index] = r.at
    pubs = sorted(publications)
    for idx, at in first_at.items():
        seen = next((t for t, size in pubs if size > idx and t >= at), None)
        if seen is None:
            unpublished += 1
        else:
            delays.append(seen - at)
    delays.sort()
    return Metrics(
        answered=len(answered),
        per_second=len(answered) / span if span > 0 else 0.0,
        peak_per_second=peak / 5.0,
        p50_ms=_quantile(lat, 0.50) * 1000,
        p99_ms=_quantile(lat, 0.99) * 1000,
        max_ms=(lat[-1] if lat else 0.0) * 1000,
        snapshots=len({size for _t, size in publications}),
        publication_p50=_quantile(delays, 0.50) if delays else None,
        publication_p99=_quantile(delays, 0.99) if delays else None,
        publication_max=delays[-1] if delays else None,
        unpublished=unpublished,
    )


async def _watch_publications(
    published: Published, out: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """Note when each new snapshot became current (for receipt-to-public times)."""
    last = -1
    while not stop.is_set():
        cur = await asyncio.to_thread(published.json, "current.json")
        if isinstance(cur, dict) and int(cur.get("ledger_size", -1)) != last:
            last = int(cur.get("ledger_size", -1))
            out.append((time.monotonic(), last))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


@dataclass
class Election:
    """The generated election: its definition bytes, the compiled form and the truth."""

    raw: bytes
    election: CompiledElection
    protocols: dict[str, list[tuple[str, str, dict[str, int]]]]


def generate(stations: int, seed: int) -> Election:
    definition = kg.generate_definition(seed, stations)
    hand = kg.generate_protocols(definition, seed)
    machine = kg.machine_counts(hand, seed)
    raw = msgspec.json.encode(definition)
    from tallyroom.definition.compiled import compile_election

    election = compile_election(load_definition(raw, "definition.json"))
    return Election(
        raw,
        election,
        {
            "machine": [(p.station, p.contest, p.lines) for p in machine],
            "hand": [(p.station, p.contest, p.lines) for p in hand],
        },
    )


def _commission_key_path(work: Path) -> Path:
    return work / "commission.key"


def prepare_store(db: str, gen: Election, key_file: Path) -> None:
    """Initialise an empty store with the generated election and a new commission key."""
    from tallyroom.commission import create_key

    store = open_store(db)
    try:
        if store.is_initialized():
            raise SimulationError(f"{db} already holds an election; give a new --db (or none)")
        loaded = load_definition(gen.raw, "definition.json")
        e = loaded.definition.election
        key = create_key(key_file, (e.origin or f"tallyroom/{e.id}").replace(" ", "_"))
        store.initialize(loaded, key.verify_key.encode())
    finally:
        store.close()


def provision(db: str, gen: Election, work: Path) -> tuple[dict[str, DeviceKey], dict[str, str]]:
    """Device keys for every station (files in ``work/keys``) and the staff's API tokens."""
    from tallyroom.intake.keys import generate_for
    from tallyroom.intake.tokens import new_token
    from tallyroom.store import intake as db_intake

    store = open_store(db)
    try:
        store.migrate()
        election = store.election()
        if election.sha256 != gen.election.sha256:
            raise SimulationError(
                f"{db} holds another election (definition {election.sha256[:12]}…, expected "
                f"{gen.election.sha256[:12]}…): prepare it with the same --stations and --seed"
            )
        if store.protocol_count() > 0:
            raise SimulationError(f"{db} already has protocols: a night needs a fresh store")
        if db_intake.list_keys(store, status="active"):
            raise SimulationError(f"{db} already has device keys: a night needs a fresh store")
        keys = generate_for(store, [s.id for s in election.stations], work / "keys", "tallyroom-simulate")
        tokens = {}
        for name, role in STAFF.items():
            plain, hashed = new_token()
            db_intake.create_token(store, hashed, f"{name}-{random.getrandbits(24):06x}", role)
            tokens[name] = plain
    finally:
        store.close()
    return {k.station: k for k in keys}, tokens


def _news_size(store: Store) -> int:
    """The ledger size up to its last entry that is not the publisher's own."""
    size = store.head().size
    start = max(0, size - 20_000)
    last = 0
    for idx, kind, _data, _leaf in store.entries(start, size):
        if kind not in OWN_KINDS:
            last = idx + 1
    return last if last else size


async def _wait_published(published: Published, size: int, timeout: float, say: Say) -> bool:
    t0 = time.monotonic()
    said = False
    while time.monotonic() - t0 < timeout:
        cur = await asyncio.to_thread(published.json, "current.json")
        if isinstance(cur, dict) and int(cur.get("ledger_size", 0)) >= size:
            return True
        if not said and time.monotonic() - t0 > 5:
            say(
                f"waiting for a snapshot that covers all {size:,} ledger entries …"
                if size
                else "waiting for the first snapshot …"
            )
            said = True
        await asyncio.sleep(0.25)
    return False


class _Progress:
    def __init__(self, night: Night, plan: NightPlan, server: ServerProcess | None, say: Say) -> None:
        self.night, self.plan, self.server, self.say = night, plan, server, say
        self.total = sum(len(d.protocols) for d in plan.devices)

    def line(self) -> str:
        obs = self.night.obs
        kills = f"; {self.server.kills} kills" if self.server is not None and self.server.kills else ""
        return (
            f"[{self.night.elapsed():5.0f} s] {len(obs.counted):,} of {self.total:,} protocols in; "
            f"{obs.submissions:,} submissions, {obs.retries:,} retries{kills}"
        )

    async def run(self, every: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                self.say(self.line())


async def _killer(
    server: ServerProcess, http: HttpClient, every: float, stop: asyncio.Event, rng: random.Random, say: Say
) -> None:
    while True:
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * every)
            return
        except TimeoutError:
            pass
        server.kill()
        http.drop_idle()
        t0 = time.monotonic()
        await server.start()
        say(
            f"killed the server with SIGKILL (kill {server.kills}); it was back in "
            f"{time.monotonic() - t0:.1f} s"
        )


async def simulate(config: SimulationConfig, say: Say = print) -> SimulationResult:
    """Run one night; see the module docstring. Never raises for a failed check."""
    if config.url is not None and config.kill_every:
        raise SimulationError("--kill-every needs the simulator's own server (not --url)")
    if config.url is not None and config.db is None:
        raise SimulationError("--url needs --db: the store of that server, to check it after the night")
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    work = config.work or Path(tempfile.mkdtemp(prefix="tallyroom-simulate-"))
    work.mkdir(parents=True, exist_ok=True)
    gen = await asyncio.to_thread(generate, config.stations, config.seed)
    (work / "definition.json").write_bytes(gen.raw)
    seconds["generate"] = time.monotonic() - t0
    db = config.db or str(work / "tallyroom.db")
    key_file = _commission_key_path(work)
    server: ServerProcess | None = None
    publish_dir = config.publish_dir
    if config.url is None:
        t = time.monotonic()
        await asyncio.to_thread(prepare_store, db, gen, key_file)
        seconds["init"] = time.monotonic() - t
        publish_dir = (publish_dir or work / "publish").resolve()
    t = time.monotonic()
    keys, tokens = await asyncio.to_thread(provision, db, gen, work)
    seconds["provision"] = time.monotonic() - t
    options = NightOptions(
        duration=config.duration,
        rates=config.rates,
        corrections=config.corrections,
        annulments=config.annulments,
        annul_kinds=config.annul_kinds,
        photo_rate=config.photo_rate,
    )
    plan = plan_night(gen.election, gen.protocols, config.seed, options)
    say(
        f"{config.stations:,} stations ({len(gen.election.contests)} contests), "
        f"{sum(len(d.protocols) for d in plan.devices):,} protocols over {config.duration:g} s; faults: "
        f"{describe(config.rates)}; {plan.roles()}"
        + (f"; SIGKILL every {config.kill_every:g} s on average" if config.kill_every else "")
    )
    if config.url is None:
        server = ServerProcess(
            db,
            config.port or free_port(),
            work / "server.log",
            workers=config.workers,
            host=config.host,
            publish_dir=publish_dir,
            publish_every=config.publish_every,
            server=config.server,
            env={"TALLYROOM_COMMISSION_KEY": str(key_file.resolve())},
        )
        t = time.monotonic()
        await server.start()
        seconds["server-start"] = time.monotonic() - t
        url = server.url
    else:
        url = config.url
    published = Published(folder=publish_dir) if publish_dir is not None else Published(url=url)
    if config.on_serving is not None:
        config.on_serving(url)
    if config.wait_first_snapshot:
        await _wait_published(published, 0, config.publication_timeout, say)
    http = HttpClient(url, max_connections=config.connections)
    night = Night(plan, gen.election, keys, tokens, http, seed=config.seed, give_up=config.give_up)
    report: CheckReport | None = None
    publications: list[tuple[float, int]] = []
    watch_stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_publications(published, publications, watch_stop))
    try:
        stop = asyncio.Event()
        helpers = []
        progress = _Progress(night, plan, server, say)
        helpers.append(
            asyncio.create_task(progress.run(config.progress_every or max(2.0, config.duration / 10), stop))
        )
        if server is not None and config.kill_every:
            rng = random.Random(f"tallyroom-kills:{config.seed}")
            helpers.append(asyncio.create_task(_killer(server, http, config.kill_every, stop, rng, say)))
        if config.tamper is not None:
            helpers.append(asyncio.create_task(_tamper(config, db, stop)))
        t = time.monotonic()
        try:
            await night.run()
        finally:
            stop.set()
            await asyncio.gather(*helpers)
        seconds["night"] = time.monotonic() - t
        say(progress.line() + ": the night is over")
        store = open_store(db)
        try:
            size = await asyncio.to_thread(_news_size, store)
            t = time.monotonic()
            if not await _wait_published(published, size, config.publication_timeout, say):
                say(f"no snapshot covered the night within {config.publication_timeout:g} s")
            seconds["last-publication"] = time.monotonic() - t
            await asyncio.sleep(0.3)  # let the watcher see the last snapshot
            watch_stop.set()
            await watcher
            if server is not None and publish_dir is not None and not config.keep_serving:
                # The check reads the store and the publish folder, not the server; at 100,000
                # stations the server's publisher holds 6–7 GB, which the verifier's reading of
                # a 13 GB snapshot needs as page cache (the check took 14–20 minutes beside it).
                await asyncio.to_thread(server.stop)
            t = time.monotonic()
            verify_opts = verify_options() if config.verify else None
            verify_args: list[str] = []
            if verify_opts is not None and "--receipts" in verify_opts:
                write_receipts(work / "receipts.jsonl", night.obs)
                verify_args += ["--receipts", str(work / "receipts.jsonl")]
            if verify_opts is not None and "--compare" in verify_opts:
                write_copies(work / "observer-copies.csv", gen.election, plan.final)
                verify_args += ["--compare", str(work / "observer-copies.csv")]
            check_input = CheckInput(
                store=store,
                election=gen.election,
                final=plan.final,
                observations=night.obs,
                keys=keys,
                published=published,
                night_size=size,
                verify_command=tallyroom_command() if verify_opts is not None else None,
                verify_source=str(publish_dir) if publish_dir is not None else url,
                verify_args=verify_args,
                verify_skipped="this tallyroom has no `verify` command yet"
                if config.verify
                else "not asked for",
                max_prefix_checks=config.max_prefix_checks,
            )
            report = await asyncio.to_thread(final_check, check_input)
            seconds["check"] = time.monotonic() - t
        finally:
            store.close()
    finally:
        watch_stop.set()
        await asyncio.gather(watcher, return_exceptions=True)
        await http.close()
        if server is not None and not (config.keep_serving and report is not None):
            server.stop()
    kills = server.kills if server is not None else 0
    result = SimulationResult(
        ok=report is not None and report.ok,
        summary="",
        report=report,
        stations=config.stations,
        submissions=night.obs.submissions,
        kills=kills,
        observations=night.obs,
        plan=plan,
        work=work,
        db=db,
        publish_dir=publish_dir,
        url=url,
        seconds=seconds,
        server_log=server.log if server is not None else None,
        server=server if config.keep_serving and server is not None and server.proc is not None else None,
        metrics=measure(night.obs, publications),
    )
    result.summary = summary_line(result)
    if result.ok and not config.keep and config.work is None and result.server is None:
        shutil.rmtree(work, ignore_errors=True)
    return result


async def _tamper(config: SimulationConfig, db: str, stop: asyncio.Event) -> None:
    assert config.tamper is not None
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), config.tamper_at * config.duration)
    await asyncio.to_thread(config.tamper, db)


def summary_line(result: SimulationResult) -> str:
    report = result.report
    head = (
        f"{result.stations:,} stations, {result.submissions:,} submissions, "
        f"{result.kills} kill{'s' if result.kills != 1 else ''}"
    )
    if report is None:
        return f"{head}: no check (the night did not finish)"
    verdict = (
        f"tally {'==' if report.tally_equal else '!='} truth, {report.lost:,} lost, "
        f"{report.forged_accepted:,} forged accepted"
    )
    if report.ok:
        return f"{head}: {verdict}"
    failed = ", ".join(f.name for f in report.failed())
    return f"{head}: {verdict}; FAILED: {failed}"


def describe_result(result: SimulationResult) -> list[str]:
    """The report's lines, then where things are."""
    out = []
    obs = result.observations
    out.append(
        f"night: {obs.submissions:,} protocol submissions ({obs.retries:,} retries, {obs.timeouts:,} client "
        f"timeouts), {len(obs.receipts):,} receipts, {obs.images:,} photos; staff: "
        + ", ".join(f"{v:,} {k}" for k, v in sorted(obs.staff.items()))
    )
    if result.metrics is not None:
        out.extend(result.metrics.lines())
    if obs.faults_sent:
        out.append("faults sent: " + ", ".join(f"{k} {v:,}" for k, v in sorted(obs.faults_sent.items())))
    if result.report is not None:
        out.append("final check:")
        out.extend(result.report.lines())
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    out.append(f"time: {timing}")
    if not result.ok:
        out.append(
            f"kept for inspection: {result.work} (store {result.db}"
            + (f", server log {result.server_log}" if result.server_log else "")
            + ")"
        )
    return out


def run_sync(config: SimulationConfig, say: Say = print) -> SimulationResult:
    return asyncio.run(simulate(config, say))

"""Build snapshot N from a ledger prefix, gate it, and make it current atomically.

Order of work for one snapshot (``Publisher.publish``):

1. read the ledger head and the running tally consistently (the head must not move between
   the two reads; otherwise read again);
2. read the ledger prefix of that size and recompute the tally from its bytes alone (a
   long-running publisher reads and folds in only the entries it has not seen, see
   :class:`~tallyroom.publish.ledger_view.LedgerCache` and :func:`.gate.recompute_from`);
3. run the display step (:mod:`.results`) and plan the pages;
4. run the gate (:mod:`.gate`) — once the page workers of a small election are started, so
   that they render into the staging folder while it checks; on any failure remove the
   staging folder with all it holds, record the refusal (``status.json``, ``refusals/``) and
   stop: ``current`` keeps pointing at the previous snapshot;
5. sign a checkpoint over exactly that prefix (size and root), so the snapshot carries the
   checkpoint that certifies its numbers;
6. write every file into ``snapshots/.staging-N``: pages and their JSON (only changed pages are
   rendered, by forked workers when there are many, while this process writes the exports;
   unchanged files are hard-linked from snapshot N-1, or were linked ahead of time by
   prestaging), exports, the bulletin;
7. read the written results back and compare them with the gate-checked rows;
8. rename the staging folder to ``snapshots/N`` (atomic), then swap ``current`` (a symlink
   replaced by ``rename(2)``, atomic) and rewrite ``current.json``; a reader sees the old or the
   new snapshot, never a mixture;
9. log the snapshot in the ledger (entry kind ``snapshot``: its number, size, root and the
   SHA-256 of its manifest), so the next checkpoint commits to what was published.

See docs/decisions/0005-publish-snapshots.md for the choices, docs/bulletin.md for the files.
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import gc
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec

from tallyroom.cpus import usable_cpus
from tallyroom.definition.compiled import CompiledElection
from tallyroom.ledger.checkpoint import Checkpoint, sign_checkpoint
from tallyroom.ledger.entry import EntryKind
from tallyroom.publish import bulletin, exports, memory, nist, sqlite_export
from tallyroom.publish import files as files_mod
from tallyroom.publish import gate as gate_mod
from tallyroom.publish import station_files as station_files_mod
from tallyroom.publish.audit_view import AuditView
from tallyroom.publish.files import FileInfo, SnapshotWriter, brotli_available, prestage
from tallyroom.publish.i18n import LANGUAGES
from tallyroom.publish.ledger_view import (
    LedgerCache,
    LedgerPrefix,
    definition_bytes,
    election_of,
    protocol_entries,
)
from tallyroom.publish.pages import Job, Site, static_dir
from tallyroom.publish.results import DisplayHook, Results, Row, RowCache, present
from tallyroom.publish.seats import all_projections, projection
from tallyroom.publish.station_facts import (
    IMAGE_EXTENSIONS,
    MEDIA_TYPES,
    JournalTally,
    LedgerFacts,
    StationExtras,
    candidate_stations,
    decisions_between,
)
from tallyroom.publish.status import StatusBook, utc_iso
from tallyroom.store import intake as intake_db
from tallyroom.store.sql import Store, StoreError
from tallyroom.tally.rebuild import Rebuilt
from tallyroom.tally.running import Tally

_enc = msgspec.json.Encoder(order="deterministic")
#: Entries of these kinds are the publisher's own: a ledger that grew only by them has nothing
#: new to publish.
OWN_KINDS = frozenset({str(EntryKind.CHECKPOINT), str(EntryKind.SNAPSHOT)})
#: At most this many new protocols are listed by name in "what changed".
CHANGES_LISTED = 500
#: At most this many declared but not yet uploaded protocol photos are looked up in the store
#: per snapshot (those looked up longest ago first), so that a night of missing photos does
#: not slow every snapshot down.
IMAGE_LOOKUPS = 2000
#: Intake journal ids read again each snapshot on PostgreSQL (see JournalTally).
JOURNAL_WINDOW = 20000


class _Refused(Exception):
    """The gate refused the snapshot being built (raised from inside the build)."""

    def __init__(self, report: gate_mod.GateReport) -> None:
        super().__init__("refused by the publish gate")
        self.report = report


class PublishError(RuntimeError):
    """The snapshot could not be built (not a gate refusal: an I/O or setup problem)."""


@dataclass
class Outcome:
    status: str  # "published", "unchanged", "refused"
    snapshot: int | None
    ledger_size: int
    seconds: float
    failures: list[gate_mod.GateFailure] = field(default_factory=list)
    written: int = 0
    linked: int = 0
    pages_rendered: int = 0
    pages_reused: int = 0
    rows_changed: int = 0
    protocols_new: int = 0
    checked_numbers: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "snapshot": self.snapshot,
            "ledger_size": self.ledger_size,
            "seconds": round(self.seconds, 3),
            "failures": [f.to_dict() for f in self.failures],
            "files_written": self.written,
            "files_linked": self.linked,
            "pages_rendered": self.pages_rendered,
            "pages_reused": self.pages_reused,
            "rows_changed": self.rows_changed,
            "protocols_new": self.protocols_new,
            "checked_numbers": self.checked_numbers,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


#: The folder of a publish folder with the pages both servers send with an error status.
ERRORS = "errors"


def write_error_pages(out: Path, site: Site) -> None:
    """``errors/404.<lang>.html``: the "page not found" page in each language, which the app
    and ``deploy/nginx.conf`` send with a 404 for any address that has no file (and
    ``errors/404.txt``, nginx's for the JSON API). Not part of a snapshot (it shows no
    number); a file is replaced only when its bytes change."""
    folder = out / ERRORS
    folder.mkdir(exist_ok=True)
    pages = {f"404.{lang}.html": site.not_found_page(lang) for lang in site.languages}
    pages["404.txt"] = b"not found\n"  # nginx's answer for the JSON API, as the app's
    for name, data in pages.items():
        path = folder / name
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            pass
        _atomic_write(path, data, durable=False)


def _atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` in one rename. ``durable=False`` skips the fsync, for
    files that are rewritten at every attempt or are only a cache (status.json, the state of
    the last snapshot: a lost or empty state file makes the next build a full one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def snapshot_numbers(out: Path) -> list[int]:
    folder = out / "snapshots"
    if not folder.exists():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def current_snapshot(out: Path) -> int | None:
    """The snapshot ``current`` points at (None before the first)."""
    link = out / "current"
    try:
        target = os.readlink(link)
    except OSError:
        return None
    name = Path(target).name
    return int(name) if name.isdigit() else None


def _remove_stale_staging(folder: Path) -> None:
    """Remove staging folders left by publisher processes that are gone (``.staging-N-PID``)."""
    for p in folder.glob(".staging-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def swap_current(out: Path, number: int, known: dict[str, Any] | None = None) -> None:
    """Point ``current`` at ``snapshots/<number>`` atomically, then rewrite current.json.

    ``known`` gives the snapshot's ledger size, root, publication time and manifest SHA-256
    (the publisher has them: reading the manifest back costs ~1 s for 400,000 files)."""
    tmp = out / f".current.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f"snapshots/{number}", tmp)
    os.replace(tmp, out / "current")
    if known is None:
        raw = (out / "snapshots" / str(number) / "manifest.json").read_bytes()
        snap = json.loads(raw)["snapshot"]
        known = {
            "ledger_size": snap["ledger_size"],
            "root": snap["root"],
            "published_at": snap["published_at"],
            "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        }
    pointer = {
        "format": "tallyroom-current/1",
        "snapshot": number,
        "path": f"snapshots/{number}/",
        "ledger_size": known["ledger_size"],
        "root": known["root"],
        "published_at": known["published_at"],
        "manifest_sha256": known["manifest_sha256"],
    }
    _atomic_write(out / "current.json", exports.json_bytes(pointer))


@contextmanager
def publish_lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".publish.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class State:
    """What the next snapshot needs to know about this one (``.state/N.json``; not published)."""

    number: int
    ledger_size: int
    jobs: dict[str, str]  # job key -> digest
    rows: dict[str, list[Any]]  # row key -> [digest, stations reporting, took part]
    stations: dict[str, str]  # station key -> digest
    chunks: list[str]
    groups: dict[str, str] = field(default_factory=dict)  # station file group -> digest
    root: str = ""  # Merkle root (hex) of the ledger prefix the snapshot was computed from
    leaves: dict[str, str] = field(default_factory=dict)  # station key -> leaf hash (hex)
    kinds: dict[str, list[str]] = field(default_factory=dict)  # published count kinds
    salt: str = ""  # the site's salt (templates, catalogs, renderers) the pages were made with
    extras: dict[str, str] = field(default_factory=dict)  # station -> digest of history/photos/intake
    images: dict[str, str] = field(default_factory=dict)  # photo SHA-256 -> its path in the snapshot

    def to_json(self) -> bytes:
        return _enc.encode(self.__dict__)

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = json.loads(path.read_bytes())
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None


def _split3(k: str) -> tuple[str, str, str]:
    a, b, c = k.split("|")
    return a, b, c


def _key(k: tuple[str, ...]) -> str:
    return "|".join(k)


def _digest(value: Any) -> str:
    return hashlib.sha256(_enc.encode(value)).hexdigest()[:32]


class _Manifest(msgspec.Struct):
    """The parts of a published manifest.json that the next snapshot reads back."""

    snapshot: dict[str, Any]
    files: dict[str, FileInfo]


class _Laps:
    """Time spent in each step of one snapshot (reported by `tallyroom publish -v`)."""

    def __init__(self, t0: float) -> None:
        self.t = t0
        self.timings: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now


@dataclass
class _Previous:
    """The snapshot published last, as this publisher left it (saves reading its manifest
    and state file back); trusted only for the same number in the same publish folder."""

    number: int
    state: State
    files: dict[str, FileInfo]
    #: Files that snapshot rewrote although it was built on the one before (the national
    #: page, the exports, "what changed"…): most are rewritten again in the next one.
    rewritten: frozenset[str] = frozenset()


class _Prestage:
    """A staging folder for snapshot N+1 filled with hard links to the files of snapshot N,
    made in a background thread while the publisher waits for its next interval.

    Files in ``skip`` (those snapshot N rewrote) are not linked: a prestaged link to a file
    that is written again must be unlinked first, in the snapshot's critical path (about 850
    unlinks per Kyrgyz-sized incremental snapshot, 25 ms), while a skipped file that turns out
    unchanged costs one link there (:meth:`SnapshotWriter.link`)."""

    def __init__(
        self,
        source: int,
        stage: Path,
        files: dict[str, FileInfo],
        spares: int = 0,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self.source = source
        self.spares = spares
        self.stage = stage
        self.files = dict(files)
        self.linked = {k: v for k, v in self.files.items() if k not in skip} if skip else dict(self.files)
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="tallyroom-prestage", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            if self.stage.exists():
                shutil.rmtree(self.stage)
            self.stage.mkdir()
            prestage(self.stage.parent / str(self.source), self.stage, self.linked, self.spares)
        except BaseException as exc:  # reported by take(); the publisher then links itself
            self.error = exc
        self.seconds = time.perf_counter() - t0

    def take(self, source: int | None) -> tuple[Path, dict[str, FileInfo], dict[str, FileInfo]] | None:
        """The prestaged folder if it was made from snapshot ``source`` (with the manifest it
        was made from and the files linked in it); else remove it."""
        self.thread.join()
        if self.error is None and source == self.source:
            return self.stage, self.files, self.linked
        shutil.rmtree(self.stage, ignore_errors=True)
        return None


#: Page workers made by default at most (``workers=`` and ``--workers`` may ask for more).
#: Each is forked from a publisher that may hold gigabytes, whose page tables fork copies,
#: and builds were measured on 2 cores only (BENCHMARKS.md).
WORKERS_MAX = 8


def default_workers() -> int:
    """One page worker per CPU this process may use (its affinity and CPU quota, see
    :func:`tallyroom.cpus.usable_cpus`), at most :data:`WORKERS_MAX`: a page worker on a
    CPU the process may not use only waits (docs/decisions/0019)."""
    return min(WORKERS_MAX, usable_cpus())


class Publisher:
    """Builds snapshots of one store into one publish folder.

    Keep one instance for continuous publishing: it keeps what every snapshot needs from the
    one before — the ledger entries it read and hashed, the tally it recomputed from them,
    the rows and records the gate checked, the previous manifest — so that a snapshot costs
    in proportion to what changed. Everything kept is either a pure function of ledger bytes
    or tied to the (size, root) or snapshot number it belongs to, and checked before use.

    ``prestage=True`` (continuous publishing) links the next snapshot's staging folder in the
    background after each snapshot (see :mod:`.files`), so that at the next interval only the
    files that changed are written.
    """

    def __init__(
        self,
        store: Store,
        out: Path,
        key_file: Path,
        *,
        languages: Sequence[str] = LANGUAGES,
        compress: bool = True,
        boundaries: Sequence[str] = (),
        display_hook: DisplayHook | None = None,
        clock: Callable[[], float] = time.time,
        workers: int | None = None,
        prestage: bool = False,
    ) -> None:
        self.store = store
        self.out = Path(out)
        self.key_file = Path(key_file)
        self.languages = tuple(languages)
        self.compress = compress
        self.boundaries = tuple(boundaries)
        self.display_hook = display_hook
        self.clock = clock
        #: Processes that render pages (fork); 1 renders in this process.
        self.workers = workers if workers is not None else default_workers()
        self.prestage = prestage
        self._site: Site | None = None
        #: The site whose error pages this publisher wrote (see write_error_pages).
        self._error_pages: Site | None = None
        #: Station records by leaf hash (display step) and the gate's own memory; both are
        #: pure functions of ledger bytes, kept only while this publisher lives.
        self._display_cache: dict[bytes, Any] = {}
        self._display_rows: RowCache = {}
        self._audit_view = AuditView()
        self._gate_memo = gate_mod.GateMemo()
        self._ledger = LedgerCache()
        #: The tally the gate recomputed from the ledger: (size, root, rebuilt).
        self._rebuilt: tuple[int, bytes, Rebuilt] | None = None
        self._previous: _Previous | None = None
        self._snapshots: list[dict[str, Any]] | None = None
        self._prestaged: _Prestage | None = None
        #: The CSV lines of each area row (see exports.csv_levels).
        self._csv_memo: exports.CsvMemo = {}
        self._book = StatusBook(self.out / "status.json")
        #: Files the last snapshot created here (sizes the spares of the next, see .files).
        self._created = 0
        #: Per leaf hash: the digest of its station record.
        self._station_digest: dict[str, str] = {}
        #: Per station key: the record object of the last snapshot, its key string and digest.
        self._station_seen: dict[tuple[str, str, str], tuple[Row, str, str]] = {}
        #: Where each record lies in the station files of snapshot N: (N, group -> layout).
        self._station_layouts: tuple[int, dict[str, station_files_mod.Layout]] | None = None
        #: Seat projections by (contest, kind), with the row digests they were made from.
        self._seats: dict[tuple[str, str], tuple[tuple[str, ...], dict[str, Any] | None]] = {}
        #: Per row key: (row object, digest) of the last digest computed.
        self._row_digest: dict[tuple[str, str, str], tuple[Row, str]] = {}
        #: Station histories, photos and key changes folded from the ledger; intake journal
        #: counts; the digest of each station's extras; when each missing photo was looked up.
        self._facts = LedgerFacts()
        self._journal: JournalTally | None = None
        self._extras: dict[str, str] | None = None
        self._image_lookups: dict[str, float] = {}

    # -- reading -----------------------------------------------------------------------------

    def _consistent_read(self) -> tuple[int, bytes, Tally]:
        """The ledger head and the running tally that belongs to it."""
        for _ in range(50):
            before = self.store.head()
            running = self.store.tally()
            after = self.store.head()
            if before.size == after.size:
                return after.size, after.root, running
            time.sleep(0.01)
        raise PublishError("the ledger kept moving while the running tally was read; try again")

    def _site_for(self, election: CompiledElection) -> Site:
        if self._site is None or self._site.election is not election:
            self._site = Site(election, self.languages, self.boundaries)
        return self._site

    def _write_error_pages(self, election: CompiledElection) -> None:
        """The error pages beside the snapshots (:func:`write_error_pages`), once per process
        and election."""
        site = self._site_for(election)
        if self._error_pages is not site:
            write_error_pages(self.out, site)
            self._error_pages = site

    def _election(self, prefix: LedgerPrefix) -> CompiledElection:
        """The election of ledger entry 0. The store's compiled election is the same object
        when it was compiled from the same bytes (same SHA-256): compiling is a pure function
        of them, so it is reused instead of parsing the definition again."""
        sha = hashlib.sha256(definition_bytes(prefix)).hexdigest()
        try:
            mine = self.store.election()
        except StoreError:
            mine = None
        if mine is not None and mine.sha256 == sha:
            return mine
        return election_of(prefix)

    def _read_previous(self, number: int | None) -> tuple[State | None, dict[str, FileInfo]]:
        if number is None:
            return None, {}
        mem = self._previous
        if mem is not None and mem.number == number:
            return mem.state, mem.files
        state = State.load(self.out / ".state" / f"{number}.json")
        files: dict[str, FileInfo] = {}
        path = self.out / "snapshots" / str(number) / "manifest.json"
        if path.exists():
            man = msgspec.json.decode(path.read_bytes(), type=_Manifest)
            files = man.files
            if state is not None and not state.root:
                state.root = str(man.snapshot["root"])
        return state, files

    # -- the one entry point -----------------------------------------------------------------

    def publish(self, force: bool = False) -> Outcome:
        t0 = time.perf_counter()
        # The cyclic garbage collector would otherwise walk everything this publisher keeps
        # (about a million objects for the Kyrgyz-sized election) in the middle of a snapshot:
        # 0.3–0.6 s measured. Snapshots make almost no reference cycles; the collector runs
        # again after the snapshot is out, when the caller next allocates.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with publish_lock(self.out):
                return self._publish(force, t0)
        finally:
            if gc_was_enabled:
                if gc.get_freeze_count() == 0:
                    # What the snapshot allocated and kept (caches, the state of the next
                    # snapshot: 220,000 objects at the Kyrgyz size) goes to the oldest
                    # generation without a collection: freeze moves every tracked object
                    # aside and resets the youngest generation's count, unfreeze puts them
                    # all in the oldest. Re-enabled as it was, the collector went through
                    # them all at the next allocation: 44 ms after every full build. A full
                    # collection still finds any cycle among them.
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()

    def _publish(self, force: bool, t0: float) -> Outcome:
        lap = _Laps(t0)
        timings = lap.timings
        (self.out / "snapshots").mkdir(parents=True, exist_ok=True)
        (self.out / ".state").mkdir(exist_ok=True)
        numbers = snapshot_numbers(self.out)
        prev_number = numbers[-1] if numbers else None
        _remove_stale_staging(self.out / "snapshots")
        prev_state, prev_files = self._read_previous(prev_number)
        size, root, running = self._consistent_read()
        if prev_state is not None and not force and not self._has_news(prev_state.ledger_size, size):
            if self._error_pages is None:  # a publisher started on a folder with no news
                self._write_error_pages(self.store.election())
            unchanged = Outcome("unchanged", prev_number, prev_state.ledger_size, time.perf_counter() - t0)
            self._status(unchanged)
            return unchanged
        self._status(None)
        lap("read-head")
        prefix = self._ledger.read(self.store, size)
        if prefix.root() != root:  # not an extension of what we hold: read it all again
            self._ledger.reset()
            self._rebuilt = None
            prefix = self._ledger.read(self.store, size)
        election = self._election(prefix)
        lap("read-ledger")
        base = self._rebuilt
        self._rebuilt = None
        if base is not None and (base[0] > size or prefix.root_at(base[0]) != base[1]):
            base = None
        rebuilt_report = gate_mod.recompute_from(
            election, prefix, base[2] if base else None, base[0] if base else 0
        )
        lap("rebuild")
        number = (prev_number or 0) + 1
        if rebuilt_report.rebuilt is None:
            return self._refuse(number, size, rebuilt_report, t0)
        rebuilt = rebuilt_report.rebuilt
        self._rebuilt = (size, prefix.root(), rebuilt)
        entries = protocol_entries(election, prefix, rebuilt.active, self._ledger.protocols)
        hooked = self.display_hook is not None
        results = present(
            election,
            running,
            entries,
            {k[2] for k in rebuilt.active},
            self.display_hook,
            None if hooked else self._display_cache,
            None if hooked else self._display_rows,
            None if hooked else self._audit_view,
        )
        lap("display")
        previous = None
        if prev_state is not None and prev_state.root:
            previous = (prev_state.ledger_size, bytes.fromhex(prev_state.root))
        passed: list[gate_mod.GateReport] = []

        def gate() -> bytes:
            report = gate_mod.check(
                election,
                prefix,
                root,
                results,
                running,
                rebuilt,
                self._gate_memo,
                entries=entries,
                previous=previous,
            )
            lap("gate")
            if not report.ok:
                raise _Refused(report)
            passed.append(report)
            note = self._sign(size, root)
            lap("checkpoint")
            return note

        try:
            outcome = self._build(
                number, prev_number, prev_state, prev_files, election, prefix, results, gate, timings, lap
            )
        except _Refused as refused:
            self._gate_memo.forget()
            self._forget_build_memos()
            return self._refuse(number, size, refused.report, t0, timings)
        report = passed[0]
        self._gate_memo.commit()
        outcome.checked_numbers = report.checked_numbers
        outcome.seconds = time.perf_counter() - t0
        self._status(outcome)
        if self.prestage:
            self._start_prestage(number)
        return outcome

    def _forget_build_memos(self) -> None:
        """Drop what the planning of a refused snapshot remembered (digests of its records,
        rows and station extras): they were computed from results the gate did not accept."""
        self._station_digest = {}
        self._station_seen = {}
        self._row_digest = {}
        self._seats = {}
        self._extras = None

    def _has_news(self, prev_size: int, size: int) -> bool:
        if size < prev_size:
            raise PublishError(f"the ledger shrank from {prev_size} to {size} entries")
        entries = self.store.entries(prev_size, size)
        return any(kind not in OWN_KINDS for _idx, kind, _data, _leaf in entries)

    def _sign(self, size: int, root: bytes) -> bytes:
        """A checkpoint over exactly the prefix the snapshot was computed from."""
        from tallyroom.commission import load_key, origin_of

        name, key = load_key(self.key_file)
        if key.verify_key.encode().hex() != self.store.meta("commission_public_key"):
            raise StoreError(f"{self.key_file} is not the key this election was initialised with")
        cp = Checkpoint(origin=origin_of(self.store), size=size, root=root, time=int(self.clock()))
        note = sign_checkpoint(cp, name, key)
        self.store.add_checkpoint(cp.size, cp.root, cp.time, note)
        self.store.append_entry(EntryKind.CHECKPOINT, note)
        return note

    # -- prestaging --------------------------------------------------------------------------

    def _start_prestage(self, number: int) -> None:
        mem = self._previous
        if mem is None or mem.number != number:
            return
        stage = self.out / "snapshots" / f".staging-{number + 1}-{os.getpid()}"
        spares = min(files_mod.SPARE_MAX, max(files_mod.SPARE_MIN, 2 * self._created))
        self._prestaged = _Prestage(number, stage, mem.files, spares, mem.rewritten)

    def wait_prestaged(self) -> float:
        """Wait for the background prestaging (if any); return the seconds it took."""
        p = self._prestaged
        if p is None:
            return 0.0
        p.thread.join()
        return p.seconds

    def close(self) -> None:
        """Stop background work and remove an unused prestaged folder."""
        p, self._prestaged = self._prestaged, None
        if p is not None:
            p.take(None)

    # -- refusals ----------------------------------------------------------------------------

    def _refuse(
        self,
        number: int,
        size: int,
        report: gate_mod.GateReport,
        t0: float,
        timings: dict[str, float] | None = None,
    ) -> Outcome:
        outcome = Outcome(
            "refused", None, size, time.perf_counter() - t0, list(report.failures), timings=timings or {}
        )
        record = {
            "format": "tallyroom-refusal/1",
            "refused_at": utc_iso(self.clock()),
            "would_have_been_snapshot": number,
            "ledger_size": size,
            "current_snapshot": current_snapshot(self.out),
            **report.to_dict(),
        }
        folder = self.out / "refusals"
        folder.mkdir(exist_ok=True)
        _atomic_write(folder / f"{int(self.clock() * 1000)}-{number}.json", exports.json_bytes(record))
        self._status(outcome)
        return outcome

    def _status(self, outcome: Outcome | None) -> None:
        """Write ``status.json`` (see :mod:`.status`): after an attempt that built something,
        after a look that found nothing new (``unchanged``: only the time changes), or, with
        ``None``, as a build starts."""
        book, now = self._book, self.clock()
        if outcome is None:
            book.building(now)
        elif outcome.status == "unchanged":
            book.checked()
        else:
            book.attempted(outcome.to_dict(), now)
        doc = book.document(now, current_snapshot(self.out))
        _atomic_write(book.path, exports.json_bytes(doc), durable=False)

    @property
    def every(self) -> float | None:
        """Seconds between snapshots when publishing continuously (said in the status)."""
        return self._book.every

    @every.setter
    def every(self, seconds: float | None) -> None:
        self._book.every = seconds

    # -- building ----------------------------------------------------------------------------

    def _build(
        self,
        number: int,
        prev_number: int | None,
        prev_state: State | None,
        prev_files: dict[str, FileInfo],
        election: CompiledElection,
        prefix: LedgerPrefix,
        results: Results,
        gate: Callable[[], bytes],
        timings: dict[str, float],
        lap: Callable[[str], None],
    ) -> Outcome:
        out = self.out
        prev_dir = out / "snapshots" / str(prev_number) if prev_number else None
        if prev_dir is not None and not prev_files:
            prev_dir = None
        present: dict[str, FileInfo] = {}
        staged = self._prestaged.take(prev_number) if self._prestaged is not None else None
        self._prestaged = None
        if staged is not None and staged[1] == prev_files:
            stage, _, present = staged
        else:
            if staged is not None:
                shutil.rmtree(staged[0], ignore_errors=True)
            stage = out / "snapshots" / f".staging-{number}-{os.getpid()}"
            if stage.exists():
                shutil.rmtree(stage)
            stage.mkdir()
        lap("stage")
        w = SnapshotWriter(stage, compress=self.compress, brotli=brotli_available(), present=present)
        w.previous, w.prev_files = prev_dir, prev_files
        beside = _Beside()
        try:
            outcome, state = self._write_all(
                w,
                beside,
                number,
                prev_number,
                prev_state,
                prev_dir,
                prev_files,
                election,
                prefix,
                results,
                gate,
                lap,
            )
            w.finish()
        except BaseException:
            beside.kill()
            w.close()
            shutil.rmtree(stage, ignore_errors=True)
            raise
        final = out / "snapshots" / str(number)
        os.rename(stage, final)
        manifest_sha = w.files["manifest.json"].sha256  # the SHA-256 of the bytes written
        listed = self._snapshots[-1] if self._snapshots else None
        known = None
        if listed is not None and listed["number"] == number:
            known = {k: listed[k] for k in ("ledger_size", "root", "published_at")}
            known["manifest_sha256"] = manifest_sha
        swap_current(out, number, known)
        self._write_error_pages(election)
        lap("swap")
        self.store.append_entry(
            EntryKind.SNAPSHOT,
            exports.json_bytes(
                {
                    "snapshot": number,
                    "ledger_size": prefix.size,
                    "root": prefix.root().hex(),
                    "manifest_sha256": manifest_sha,
                }
            ),
        )
        self._created = w.created
        files = dict(w.files)
        files.pop("manifest.json", None)
        rewritten = frozenset(w.rewritten) if prev_dir is not None else frozenset()
        self._previous = _Previous(number, state, files, rewritten)
        lap("log")
        outcome.timings = timings
        return outcome

    def _station_extras(
        self,
        w: SnapshotWriter,
        election: CompiledElection,
        prefix: LedgerPrefix,
        results: Results,
        prev_state: State | None,
        prev_dir: Path | None,
        prev_files: dict[str, FileInfo],
        station_state: dict[str, str],
    ) -> tuple[StationExtras, dict[str, str], dict[str, str]]:
        """History, photos and intake figures of the station pages (the photos are written
        here), a digest of them per station, and the photos' paths by SHA-256.

        A digest is computed again only for a station something happened to since the last
        snapshot: a new decision about it, new intake journal lines, a changed protocol in
        force, a photo found."""
        facts = self._facts
        decided = facts.sync(prefix, election)
        if self._journal is None:
            postgres = self.store.dialect.name == "postgresql"
            self._journal = JournalTally(JOURNAL_WINDOW if postgres else 0)
        journal = self._journal
        heard = journal.update(self.store, election)
        images, found = self._images(w, results, prev_state, prev_dir, prev_files)
        extras = StationExtras(facts, journal, images)
        memo = self._extras
        stations: Iterable[str]
        if memo is None or decided is None or self.display_hook is not None:
            memo = {}
            stations = candidate_stations(facts, journal)
        else:
            old = prev_state.stations if prev_state else {}
            moved = {_split3(k)[1] for k, v in station_state.items() if old.get(k) != v}
            moved.update(_split3(k)[1] for k in old.keys() - station_state.keys())
            stations = decided | heard | found | moved
        index = election.station_index
        for sid in stations:
            dg = extras.digest(election, index[sid], results)
            if dg is None:
                memo.pop(sid, None)
            else:
                memo[sid] = dg
        self._extras = memo
        return extras, dict(memo), {sha: rel for sha, (rel, _media) in images.items()}

    def _images(
        self,
        w: SnapshotWriter,
        results: Results,
        prev_state: State | None,
        prev_dir: Path | None,
        prev_files: dict[str, FileInfo],
    ) -> tuple[dict[str, tuple[str, str]], set[str]]:
        """Each photo a protocol in force declares, once per SHA-256, as
        ``images/<sha256>.<ext>``: linked from the previous snapshot when it is there, else
        copied from the store if it has been uploaded. Returns (SHA-256 -> (path, media
        type)) and the stations whose photo appeared in this snapshot."""
        facts = self._facts
        before = prev_state.images if prev_state else {}
        out: dict[str, tuple[str, str]] = {}
        wanted: dict[str, list[str]] = {}
        for idx, sha in facts.images.items():
            key = facts.image_keys[idx]
            row = results.stations.get(key)
            if row is not None and row["ledger_index"] == idx:
                wanted.setdefault(sha, []).append(key[1])
        missing = []
        for sha in wanted:
            rel = before.get(sha)
            if rel is not None and prev_dir is not None and rel in prev_files:
                w.link(prev_dir, rel, prev_files[rel])
                out[sha] = (rel, MEDIA_TYPES[rel.rsplit(".", 1)[1]])
            else:
                missing.append(sha)
        lookups = self._image_lookups
        missing.sort(key=lambda sha: lookups.get(sha, 0.0))
        found: set[str] = set()
        now = time.monotonic()
        for sha in missing[:IMAGE_LOOKUPS]:
            got = intake_db.get_image(self.store, sha)
            lookups[sha] = now
            # Stored under its SHA-256 by intake; checked again since the name vouches for it.
            if got is None or got[0] not in IMAGE_EXTENSIONS or hashlib.sha256(got[1]).hexdigest() != sha:
                continue
            rel = f"images/{sha}.{IMAGE_EXTENSIONS[got[0]]}"
            w.write(rel, got[1])
            out[sha] = (rel, got[0])
            lookups.pop(sha, None)
            found.update(wanted[sha])
        return out, found

    def _station_state(
        self, results: Results, prev_state: State | None
    ) -> tuple[dict[str, str], dict[str, str], dict[tuple[str, str, str], str]]:
        """Digest and leaf hash of every station record, each digest computed once per leaf
        hash (a record is a pure function of its ledger entry's bytes). A record that is the
        very object seen in the last snapshot (the display step keeps records by leaf hash)
        reuses its key string and digest without a lookup by leaf."""
        digests = self._station_digest
        seen = self._station_seen
        old_leaves = prev_state.leaves if prev_state else {}
        old_digests = prev_state.stations if prev_state else {}
        state: dict[str, str] = {}
        leaves: dict[str, str] = {}
        hooked = self.display_hook is not None
        by_key: dict[tuple[str, str, str], str] = {}
        now: dict[tuple[str, str, str], tuple[Row, str, str]] = {}
        for k, r in results.stations.items():
            got = seen.get(k)
            if got is not None and got[0] is r and not hooked:
                now[k] = got
                key, dg = got[1], got[2]
                state[key] = by_key[k] = dg
                leaves[key] = r["leaf_hash"]
                continue
            key = _key(k)
            leaf_hex = r["leaf_hash"]
            leaves[key] = leaf_hex
            known = None if hooked else digests.get(leaf_hex)
            if known is not None:
                dg = known
            else:
                if old_leaves.get(key) == leaf_hex and key in old_digests and not hooked:
                    dg = old_digests[key]
                else:
                    dg = _digest(r)
                if not hooked:
                    digests[leaf_hex] = dg
            state[key] = by_key[k] = dg
            now[k] = (r, key, dg)
        self._station_seen = {} if hooked else now
        return state, leaves, by_key

    def _row_state(self, results: Results) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        memo = self._row_digest
        hooked = self.display_hook is not None
        for k, r in results.rows.items():
            got = memo.get(k)
            if got is not None and got[0] is r and not hooked:
                dg = got[1]
            else:
                dg = _digest(r)
                memo[k] = (r, dg)
            out[_key(k)] = [
                dg,
                r["stations_reporting"],
                r["took_part"] if r["took_part"] is not None else r["ballots_cast"],
            ]
        return out

    def _write_all(
        self,
        w: SnapshotWriter,
        beside: _Beside,
        number: int,
        prev_number: int | None,
        prev_state: State | None,
        prev_dir: Path | None,
        prev_files: dict[str, FileInfo],
        election: CompiledElection,
        prefix: LedgerPrefix,
        results: Results,
        gate: Callable[[], bytes],
        lap: Callable[[str], None],
    ) -> tuple[Outcome, State]:
        root_hex = prefix.root().hex()
        published_at = utc_iso(self.clock())
        snapshot = {
            "number": number,
            "previous": prev_number,
            "ledger_size": prefix.size,
            "root": root_hex,
            "published_at": published_at,
            "definition_sha256": election.sha256,
        }
        # Whether processes forked from here may read the station records they inherit: the
        # page workers, and the one writing a new SQLite download (see may_share).
        shares = may_share(len(results.stations), self.workers + 1)
        # A new SQLite download is then written by a process forked now, so that the other
        # core works while this one plans the pages (see _Beside; the caller stops it if
        # anything below fails).
        whole_db = prev_dir is None or prev_state is None or not (prev_dir / DB_REL).exists()
        if whole_db and self.workers > 1 and len(results.stations) >= BESIDE_MIN and shares:
            beside.start(DB_REL, sqlite_export.build_file, election, results, snapshot, w.path_for(DB_REL))
        # -- what changed ----------------------------------------------------------------
        row_state = self._row_state(results)
        station_state, leaves, station_digests = self._station_state(results, prev_state)
        changes = self._changes(election, prefix, prev_state, results, row_state, station_state, snapshot)
        lap("changes")
        # The SQLite download of a snapshot with many new records is updated beside this
        # process too: at night (thousands of protocols a snapshot) that is this process's
        # largest step after the gate, while the page workers mostly have little to do. The
        # changes are found once, here, for the download made here or in _write_rest.
        db_changes = None
        if not whole_db and prev_state is not None:
            db_changes = _db_changes(prev_state, row_state, station_state)
        if (
            db_changes is not None
            and prev_dir is not None
            and self.workers > 1
            and shares
            and len(db_changes[0]) + len(db_changes[1]) >= BESIDE_UPDATE_MIN
        ):
            beside.start(
                DB_REL,
                sqlite_export.update_file,
                prev_dir / DB_REL,
                w.path_for(DB_REL),
                results,
                snapshot,
                *db_changes,
            )
        extras, extras_state, image_state = self._station_extras(
            w, election, prefix, results, prev_state, prev_dir, prev_files, station_state
        )
        lap("station-extras")
        # -- pages: planned now, rendered by worker processes while the exports are written --
        site = self._site_for(election)
        seats = self._projections(election, results, row_state)
        snapshots = self._snapshot_list(snapshot)
        jobs_state: dict[str, str] = {}
        prev_jobs = prev_state.jobs if prev_state else {}
        todo: list[Job] = []
        row_digests = {_split3(k): v[0] for k, v in row_state.items()}
        seat_digests = {k: _digest(v) for k, v in seats.items()}
        known = self._known_station_pages(prev_state, results, station_state, site.salt.hex(), extras_state)
        reused = 0
        # Station pages whose inputs did not change are taken over here, without a job each:
        # thousands per snapshot, where a job, its digest and its list of paths cost more than
        # the links (which a prestaged folder already has).
        taken: set[str] = set()
        if prev_dir is not None:
            start = len("page:station:")
            index = election.station_index
            for key, dg in known.items():
                sid = key[start:]
                rels = site.station_files(sid)
                if sid in index and all(r in prev_files for r in rels):
                    for r in rels:
                        w.link(prev_dir, r, prev_files[r])
                    jobs_state[key] = dg
                    taken.add(sid)
                    reused += 1
        for job in site.jobs(
            results,
            seats,
            snapshot,
            changes,
            snapshots,
            None,
            station_digests,
            row_digests,
            seat_digests,
            known,
            extras,
            extras_state,
            taken,
        ):
            dg = job.digest(site.salt)
            jobs_state[job.key] = dg
            rels = [f"{lang}/{job.page}" for lang in site.languages] + [job.api]
            if (
                not job.volatile
                and prev_dir is not None
                and prev_jobs.get(job.key) == dg
                and all(r in prev_files for r in rels)
            ):
                for r in rels:
                    w.link(prev_dir, r, prev_files[r])
                reused += 1
                continue
            todo.append(job)
        rendered = len(todo) + 1  # and the downloads page, made after the exports
        lap("plan-pages")
        render = Rendering(site, w, todo, snapshot, self.workers, results, shares)
        try:
            return self._write_rest(
                w,
                render,
                beside,
                number,
                snapshot,
                prev_state,
                prev_dir,
                prev_files,
                election,
                prefix,
                results,
                gate,
                lap,
                site,
                seats,
                row_state,
                station_state,
                leaves,
                changes,
                jobs_state,
                rendered,
                reused,
                (extras, extras_state, image_state),
                db_changes,
            )
        except BaseException:
            render.abort()
            raise

    def _write_rest(
        self,
        w: SnapshotWriter,
        render: Rendering,
        beside: _Beside,
        number: int,
        snapshot: dict[str, Any],
        prev_state: State | None,
        prev_dir: Path | None,
        prev_files: dict[str, FileInfo],
        election: CompiledElection,
        prefix: LedgerPrefix,
        results: Results,
        gate: Callable[[], bytes],
        lap: Callable[[str], None],
        site: Site,
        seats: dict[tuple[str, str], dict[str, Any]],
        row_state: dict[str, list[Any]],
        station_state: dict[str, str],
        leaves: dict[str, str],
        changes: dict[str, Any],
        jobs_state: dict[str, str],
        rendered: int,
        reused: int,
        station_extras: tuple[StationExtras, dict[str, str], dict[str, str]] | None = None,
        db_changes: tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]] | None = None,
    ) -> tuple[Outcome, State]:
        """Everything after the pages were planned: the bulletin, exports, per-row files, the
        downloads page, the read-back and the manifest."""
        root_hex = snapshot["root"]
        extras, extras_state, image_state = station_extras or (StationExtras(), {}, {})
        if render.inherits:
            # The workers read the records they inherit: they may start now and render while
            # the exports below are written (Rendering.start).
            render.start()
            lap("start-pages")
        # -- the gate: only now, so that the workers render while it checks (a refusal raises,
        # and the caller removes this staging folder with whatever was written into it) --------
        note = gate()
        # -- the bulletin ------------------------------------------------------------------
        w.write("checkpoint.txt", note)
        chunks = bulletin.write(
            w,
            self.store,
            election,
            prefix,
            note,
            prev_state.chunks if prev_state else [],
            prev_dir,
            prev_files,
            extras.facts,
        )
        if extras.journal is not None:
            w.put("bulletin/journal.json", extras.journal.document_bytes())
        lap("bulletin")
        # -- seats and data exports -----------------------------------------------------------
        seat_docs = [seats[k] for k in sorted(seats)]
        groups = exports.stations_by_group(election, results)
        old_groups = prev_state.groups if prev_state else {}
        old_stations = prev_state.stations if prev_state else {}
        # Station keys whose record changed, appeared or went away since the last snapshot.
        moved = [k for k, v in station_state.items() if old_stations.get(k) != v]
        moved.extend(old_stations.keys() - station_state.keys())
        # A group none of whose records moved has the same list of digests, so the same digest.
        group_of = exports.group_of(election)
        touched = {group_of[_split3(k)[1]] for k in moved}
        group_state = {
            g: (
                old_groups[g]
                if g not in touched and g in old_groups
                else _digest([station_state[_key((r["contest"], r["station"], r["count_kind"]))] for r in rs])
            )
            for g, rs in groups.items()
        }
        station_files = []
        written_groups: list[str] = []
        memo = self._station_layouts
        old_layouts: dict[str, station_files_mod.Layout] = {}
        hooked = self.display_hook is not None
        if memo is not None and prev_state is not None and memo[0] == prev_state.number and not hooked:
            old_layouts = memo[1]
        layouts: dict[str, station_files_mod.Layout] = {}
        for g, rows in sorted(groups.items()):
            pair = station_files_mod.paths(g)
            station_files.append(pair[0])
            if (
                prev_dir is not None
                and old_groups.get(g) == group_state[g]
                and all(r in prev_files for r in pair)
            ):
                for r in pair:
                    w.link(prev_dir, r, prev_files[r])
                if g in old_layouts:
                    layouts[g] = old_layouts[g]
                continue
            written_groups.append(pair[0])
            json_data, csv_data, layouts[g] = station_files_mod.make(
                election, g, rows, old_layouts.get(g), prev_dir, prev_files
            )
            w.write(pair[0], json_data)
            w.write(pair[1], csv_data)
            del json_data, csv_data
        self._station_layouts = None if hooked else (number, layouts)
        lap("export-stations")
        prev_db = prev_dir / DB_REL if prev_dir is not None else None
        if DB_REL in beside:  # a new or updated download, started in _write_all
            beside.wait(DB_REL)
        elif prev_db is not None and prev_db.exists() and prev_state is not None:
            if db_changes is None:
                db_changes = _db_changes(prev_state, row_state, station_state)
            changed_rows, changed_stations = db_changes
            sqlite_export.update_file(
                prev_db,
                w.path_for(DB_REL),
                results,
                snapshot,
                changed_rows,
                changed_stations,
            )
        else:
            sqlite_export.build_file(election, results, snapshot, w.path_for(DB_REL))
        if render.forks:
            w.adopt(DB_REL)
        else:  # nothing is forked while the writer's threads hash and compress it
            w.adopt_later(DB_REL)
        lap("export-sqlite")
        # -- pages: rendered by forked workers from here on. Everything above reads the station
        # records; nothing below does until the workers are done (see Rendering.start), unless
        # the workers read the records they inherit (then they started above).
        if not render.started:
            render.start()
            lap("start-pages")
        w.put(
            "data/results.json",
            exports.json_bytes(
                exports.results_document(election, results, snapshot, seat_docs, station_files)
            ),
        )
        lap("export-results")
        csv_memo = None if self.display_hook is not None else self._csv_memo
        for level, data in exports.csv_levels(election, results, csv_memo).items():
            w.put(f"data/csv/{level}.csv", data)
        lap("export-csv")
        recon = exports.reconciliation_document(results, snapshot)
        w.put("data/reconciliation.json", exports.json_bytes(recon))
        w.put("data/reconciliation.csv", exports.reconciliation_csv(results))
        lap("export-reconciliation")
        for (cid, kind), doc in sorted(seats.items()):
            w.put(f"api/v1/results/seats/{cid}/{kind}.json", exports.json_bytes(doc))
        w.write("changes.json", exports.json_bytes(changes))
        for kind in sorted({k for ks in results.kinds.values() for k in ks}):
            w.put(
                f"data/nist-err-{kind}.json",
                exports.json_bytes(nist.election_report(election, results, kind, snapshot)),
            )
        lap("export-nist")
        # -- rows, one file per (contest, count kind, area) -----------------------------------
        prev_jobs = prev_state.jobs if prev_state else {}
        written_rows: list[tuple[str, str, str]] = []
        for key, row in results.rows.items():
            rel = f"api/v1/results/{key[0]}/{key[2]}/{key[1]}.json"
            dg = row_state[_key(key)][0]
            jobs_state[f"row:{_key(key)}"] = dg
            if prev_dir is not None and prev_jobs.get(f"row:{_key(key)}") == dg and rel in prev_files:
                w.link(prev_dir, rel, prev_files[rel])
            else:
                w.write(rel, exports.json_bytes(row))
                written_rows.append(key)
        lap("rows")
        # -- read back what the gate checked ----------------------------------------------------
        def read_back() -> None:
            full = prev_dir is None
            problems = gate_mod.check_files(
                w.root,
                results,
                None if full else written_groups,
                None if full else written_rows,
                {g: len(rows) for g, rows in groups.items()},
            )
            if problems:
                raise PublishError("written files differ from the checked rows: " + "; ".join(problems[:5]))
            lap("read-back")

        # The files it reads are all written by now. While forked workers render, this process
        # would only wait for them: it reads back meanwhile, unless it must not read the station
        # records until they are done (see Rendering).
        early = render.inherits or not render.forks
        if early:
            read_back()
        # -- pages ------------------------------------------------------------------------------
        def last_pages() -> None:
            w.put("static/site.css", (static_dir() / "site.css").read_bytes())
            w.put("static/refresh.js", (static_dir() / "refresh.js").read_bytes())
            downloads = [
                {"path": rel, "what": what, "size": w.files[rel].size, "sha256": w.files[rel].sha256}
                for rel, what in self._download_list(w)
            ]
            render_jobs(site, w, [site.downloads_job(snapshot, downloads)], snapshot, 1)

        # The downloads are all written (and, with forked workers, recorded): their page is
        # made while the workers render, not after them with the other core idle.
        if render.forks:
            last_pages()
            self._write_error_pages(election)  # once per process; they show no number
        render.finish()
        if not render.forks:
            last_pages()
        lap("pages")
        if not early:
            read_back()
        # -- manifest --------------------------------------------------------------------------
        manifest = {
            "format": "tallyroom-snapshot/1",
            "snapshot": snapshot,
            "languages": list(self.languages),
            # Encoded as [sha256, size, [encodings]] per file, keys sorted by the encoder.
            "files": w.files,
        }
        w.write("manifest.json", exports.json_bytes(manifest))
        state = State(
            number,
            prefix.size,
            jobs_state,
            row_state,
            station_state,
            chunks,
            group_state,
            root_hex,
            leaves,
            results.kinds,
            site.salt.hex(),
            extras=extras_state,
            images=image_state,
        )
        _atomic_write(self.out / ".state" / f"{number}.json", state.to_json(), durable=False)
        self._append_snapshot_list(self._snapshot_list(snapshot))
        lap("manifest")
        outcome = Outcome(
            "published",
            number,
            prefix.size,
            0.0,
            written=w.written,
            linked=w.linked,
            pages_rendered=rendered,
            pages_reused=reused,
            rows_changed=changes["rows_changed_total"],
            protocols_new=changes["new_protocols_total"],
        )
        return outcome, state

    def _known_station_pages(
        self,
        prev: State | None,
        results: Results,
        station_state: dict[str, str],
        salt: str,
        extras_state: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Digests of the station pages whose inputs did not change since ``prev``: same
        templates, same count kinds, and none of the station's records, history, photos or
        intake figures changed."""
        if prev is None or prev.salt != salt or prev.kinds != results.kinds:
            return {}
        old = prev.stations
        changed = {_split3(k)[1] for k, v in station_state.items() if old.get(k) != v}
        changed.update(_split3(k)[1] for k in old.keys() - station_state.keys())
        if extras_state is not None:
            was = prev.extras
            changed.update(s for s, v in extras_state.items() if was.get(s) != v)
            changed.update(was.keys() - extras_state.keys())
        prefix = "page:station:"
        return {
            key: dg
            for key, dg in prev.jobs.items()
            if key.startswith(prefix) and key[len(prefix) :] not in changed
        }

    def _projections(
        self, election: CompiledElection, results: Results, row_state: dict[str, list[Any]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Seat projections; one whose rows (the contest's own area and the areas of its
        regional threshold) did not change is the projection made before."""
        if self.display_hook is not None:
            return all_projections(election, results)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        cache = self._seats
        for contest in election.contests:
            rules = contest.contest.allocation
            areas = [contest.contest.area]
            if rules is not None and rules.regional_threshold is not None:
                areas.extend(rules.regional_threshold.areas)
            for kind in results.kinds.get(contest.id, ()):
                sig = tuple(row_state.get(_key((contest.id, a, kind)), ["-"])[0] for a in areas)
                got = cache.get((contest.id, kind))
                if got is None or got[0] != sig:
                    got = (sig, projection(election, contest, kind, results))
                    cache[(contest.id, kind)] = got
                if got[1] is not None:
                    out[(contest.id, kind)] = got[1]
        return out

    def _download_list(self, w: SnapshotWriter) -> list[tuple[str, str]]:
        out = []
        for rel in sorted(r for r in w.files if r.startswith(("data/", "bulletin/"))):
            if rel == "data/results.json":
                out.append((rel, "results"))
            elif rel.startswith("data/stations/"):
                out.append((rel, "stations"))
            elif rel.startswith("data/csv/stations/"):
                out.append((rel, "stations-csv"))
            elif rel.startswith("data/csv/"):
                out.append((rel, "csv"))
            elif rel.startswith("data/nist-err-"):
                out.append((rel, "nist"))
            elif rel == "data/tallyroom.sqlite":
                out.append((rel, "sqlite"))
            elif rel == "data/reconciliation.json":
                out.append((rel, "reconciliation"))
            elif rel == "data/reconciliation.csv":
                out.append((rel, "reconciliation-csv"))
            elif rel.startswith("bulletin/entries/"):
                out.append((rel, "ledger"))
            elif rel.startswith("bulletin/definition"):
                out.append((rel, "definition"))
            elif rel == "bulletin/checkpoints.jsonl":
                out.append((rel, "checkpoints"))
            elif rel == "bulletin/commission.vkey":
                out.append((rel, "key"))
            elif rel == "bulletin/stations.json":
                out.append((rel, "station-keys"))
            elif rel == "bulletin/journal.json":
                out.append((rel, "journal"))
        return out

    def _changes(
        self,
        election: CompiledElection,
        prefix: LedgerPrefix,
        prev: State | None,
        results: Results,
        row_state: dict[str, list[Any]],
        station_state: dict[str, str],
        snapshot: dict[str, Any],
    ) -> dict[str, Any]:
        old_rows = prev.rows if prev else {}
        old_stations = prev.stations if prev else {}
        # Rows in the definition's order: per contest, the country first, then its regions
        # and districts as the definition lists them, each area's counts side by side.
        contests = {c.id: c.index for c in election.contests}
        areas = election.area_index
        changed_rows: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
        for key, new in row_state.items():
            old = old_rows.get(key)
            if old is None or old[0] != new[0]:
                cid, aid, kind = key.split("|")
                kinds = results.kinds.get(cid, [])
                order = (
                    contests.get(cid, len(contests)),
                    areas.get(aid, len(areas)),
                    kinds.index(kind) if kind in kinds else len(kinds),
                )
                row = {
                    "contest": cid,
                    "area": aid,
                    "count_kind": kind,
                    "stations_reporting": [None if old is None else old[1], new[1]],
                    "took_part": [None if old is None else old[2], new[2]],
                }
                changed_rows.append((order, row))
        changed_rows.sort(key=itemgetter(0))
        # Every new protocol is counted; the first CHANGES_LISTED in ledger order are listed
        # (a full build has them all: only those listed are made into dicts).
        stations = results.stations
        changed = sorted(
            [
                (stations[k3]["ledger_index"], k3)
                for k3 in map(_split3, (k for k, v in station_state.items() if old_stations.get(k) != v))
            ],
            key=itemgetter(0),
        )
        new_protocols = [
            {"contest": cid, "station": sid, "count_kind": kind, "ledger_index": index}
            for index, (cid, sid, kind) in changed[:CHANGES_LISTED]
        ]
        main = _main_contests(results)
        start = prev.ledger_size if prev else 0
        decisions_total, decisions = decisions_between(prefix, start, snapshot["ledger_size"], CHANGES_LISTED)
        return {
            "format": "tallyroom-changes/1",
            "snapshot": snapshot["number"],
            "previous": prev.number if prev else None,
            "ledger_from": start,
            "ledger_to": snapshot["ledger_size"],
            "rows_changed_total": len(changed_rows),
            "rows_changed": [r for _, r in changed_rows if r["contest"] in main][:200],
            "new_protocols_total": len(changed),
            "new_protocols": new_protocols,
            "decisions_total": decisions_total,
            "decisions": decisions,
        }

    def _snapshot_list(self, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        """Every snapshot up to this one (kept in memory between snapshots of this publisher)."""
        mem = self._snapshots
        if mem is not None and mem and mem[-1]["number"] == snapshot["number"] - 1:
            items = list(mem)
        else:
            path = self.out / ".state" / "snapshots.json"
            try:
                items = json.loads(path.read_bytes())
            except (OSError, ValueError):
                items = []
            items = [s for s in items if s["number"] < snapshot["number"]]
        items.append({k: snapshot[k] for k in ("number", "ledger_size", "root", "published_at")})
        return items

    def _append_snapshot_list(self, items: list[dict[str, Any]]) -> None:
        _atomic_write(self.out / ".state" / "snapshots.json", json.dumps(items).encode())
        self._snapshots = items


_WORKER: tuple[Site, Path, bool, bool, dict[str, Any], list[Job], Results | None, Any] | None = None
#: Below this many pages a process pool costs more than it saves.
PARALLEL_MIN = 48
#: At most this many pages per task sent to a page worker, and at most about this many
#: station records with them (an area page lists all its stations: at 100,000 stations the
#: area pages read every record, and one task with all of them held 4 GB in one worker).
CHUNK_MAX = 200
#: At least this many pages per task (but the last), however few are left: a task costs a
#: round trip to the worker and a pass over the folders it writes into.
TASK_MIN = 16
CHUNK_RECORDS = 2000
#: From this many station records on, page workers get the records they read from a file
#: written before the fork instead of reading the ones they inherit (see :class:`Rendering`).
#: Below it, the memory fork's copy-on-write costs is small (about 50 MB per worker for the
#: Kyrgyz-sized election's 10,000 records), and pickling and unpickling every record cost
#: about 0.6 s of the full build's CPU.
PAYLOAD_MIN_RECORDS = 40_000
#: The SQLite download of a snapshot.
DB_REL = "data/tallyroom.sqlite"
#: From this many station records on (when forked processes may read them, see
#: :func:`may_share`), a new SQLite download is written by a forked process
#: (:class:`_Beside`); a smaller one is not worth the fork.
BESIDE_MIN = 1_000
#: From this many changed rows and station records on, the SQLite download of an incremental
#: snapshot is updated by a forked process (about 5 ms and the memory pages it touches).
BESIDE_UPDATE_MIN = 200


def _db_changes(
    prev: State, row_state: dict[str, list[Any]], station_state: dict[str, str]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """The rows and station records whose digest changed since ``prev`` (or that appeared
    or went away): what :func:`.sqlite_export.update_file` rewrites."""
    old_rows, old_stations = prev.rows, prev.stations
    rows = [
        _split3(k)
        for k in set(row_state) | set(old_rows)
        if k not in row_state or k not in old_rows or row_state[k][0] != old_rows[k][0]
    ]
    stations = [_split3(k) for k, v in station_state.items() if old_stations.get(k) != v]
    stations.extend(_split3(k) for k in old_stations.keys() - station_state.keys())
    return rows, stations


def may_share(records: int, processes: int) -> bool:
    """Whether ``processes`` processes forked from this one may read the station records they
    inherit instead of being sent copies (see :class:`Rendering`).

    Reading a Python object writes its reference count, so each forked process that reads
    the records copies the memory pages holding them, and so does this process when it reads
    them after the fork. Below :data:`PAYLOAD_MIN_RECORDS` records that is tens of MB and
    always allowed; from there on, while the copies fit (:func:`.memory.room_for_copies`):
    100,000 stations of one contest hold about 1.5 GB, and sharing saves pickling every
    record (4.3 s) and lets the exports that read them run beside the workers; the
    100,000-station Kyrgyz-shaped night (6.7 GB, three processes) does not fit in 24 GB and
    keeps sending (docs/decisions/0005)."""
    return records < PAYLOAD_MIN_RECORDS or memory.room_for_copies(processes)


#: A task for a page worker: job indices, and where the station records those jobs read are
#: in the payload file (offset, length; 0, 0 for none).
_Task = tuple[list[int], int, int]


def _with_records(job: Job, results: Results, records: dict[tuple[str, str, str], Row]) -> Job:
    """``job`` with its data made from ``records`` — the station records it reads, sent by the
    publisher — instead of from the results the worker inherited by fork. Reading those would
    copy into the worker every memory page that holds a record it touches (reading a Python
    object writes its reference count): most of the publisher's memory, once per worker."""
    make = job.make
    if job.data is not None or not isinstance(make, functools.partial):
        return job
    own = Results(
        kinds=results.kinds,
        rows=results.rows,
        stations=records,
        reconciliation=results.reconciliation,
        sensitivity=results.sensitivity,
    )
    args = tuple(own if a is results else a for a in make.args)
    return dataclasses.replace(job, make=functools.partial(make.func, *args, **make.keywords))


def _render_chunk(task: _Task) -> dict[str, FileInfo]:
    assert _WORKER is not None
    import pickle

    site, root, compress, br, snapshot, jobs, results, payload = _WORKER
    indices, offset, length = task
    records: dict[int, dict[tuple[str, str, str], Row]] = {}
    if length:
        records = pickle.loads(os.pread(payload.fileno(), length, offset))
    w = SnapshotWriter(root, compress=compress, brotli=br)

    def pages() -> Iterator[tuple[str, bytes]]:
        for i in indices:
            job = jobs[i]
            mine = records.get(i)
            if mine is not None and results is not None:
                job = _with_records(job, results, mine)
            yield from site.produce(job, None if job.volatile else snapshot).items()

    try:
        # The other workers write into the same folders: see SnapshotWriter.write_many.
        w.write_many(pages())
    finally:
        w.close()
    return w.files


class _Beside:
    """Files written by processes forked beside this one (at most one per file), while this
    process goes on with the snapshot: only when forked processes may read the station
    records (:func:`may_share`; each copies the memory pages it touches: tens of MB at the
    Kyrgyz size, see :class:`Rendering`)."""

    def __init__(self) -> None:
        self._procs: dict[str, Any] = {}

    def start(self, rel: str, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)``, which writes ``rel``, in a process forked now."""
        import multiprocessing

        proc = multiprocessing.get_context("fork").Process(target=fn, args=args, daemon=True)
        proc.start()
        self._procs[rel] = proc

    def __contains__(self, rel: str) -> bool:
        return rel in self._procs

    def wait(self, rel: str) -> None:
        """Wait for the process that writes ``rel``; raise if it failed."""
        proc = self._procs.pop(rel)
        proc.join()
        if proc.exitcode != 0:
            raise PublishError(f"{rel}: the process that wrote it failed (exit code {proc.exitcode})")

    def kill(self) -> None:
        """Stop them all (the snapshot is being abandoned)."""
        for proc in self._procs.values():
            proc.kill()
            proc.join()
        self._procs.clear()


class Rendering:
    """Pages to render: by ``workers`` forked processes from :meth:`start` on (when there are
    enough pages), or here in :meth:`finish`.

    The workers are forked from this process and share its memory until either side writes
    to it — and reading a Python object writes its reference count. So that the memory of the
    station records is not copied, the workers of a large election (from
    :data:`PAYLOAD_MIN_RECORDS` records, unless the machine has room for the copies: see
    :func:`may_share`) are sent the records their pages read (written to a temporary file
    before they are forked, see :func:`_payloads`) instead of reading the inherited ones, and
    this process reads no station record between :meth:`start` and :meth:`finish`: with both,
    a full build of 20,000 Kyrgyz-shaped stations held 0.9 GB more per worker
    (docs/decisions/0005).
    """

    def __init__(
        self,
        site: Site,
        w: SnapshotWriter,
        jobs: list[Job],
        snapshot: dict[str, Any],
        workers: int = 1,
        results: Results | None = None,
        shares: bool | None = None,
    ) -> None:
        self.site, self.w, self.jobs, self.snapshot = site, w, jobs, snapshot
        self.workers, self.records_from = workers, results
        #: Whether the workers read the records they inherit (see :func:`may_share`).
        self.shares = (
            shares if shares is not None else results is None or may_share(len(results.stations), workers)
        )
        self.pool: Any = None
        self.results: Any = None
        self._payload: Any = None
        self.started = False

    @property
    def inherits(self) -> bool:
        """Whether :meth:`start` forks workers that read the station records they inherit
        (:func:`may_share`): this process may then read records while they run, at the cost of
        copying the memory pages it touches (tens of MB at the Kyrgyz size), and start them
        before the exports that read records, so that both cores work on the snapshot."""
        return self.forks and self.shares

    @property
    def forks(self) -> bool:
        """Whether :meth:`start` forks worker processes (else :meth:`finish` renders here)."""
        return self.workers > 1 and len(self.jobs) >= PARALLEL_MIN

    def start(self) -> None:
        """Fork the workers and hand them the pages (if worth it; else :meth:`finish` renders)."""
        global _WORKER
        if self.started:
            return
        self.started = True
        site, w, jobs = self.site, self.w, self.jobs
        if not self.forks:
            return
        import multiprocessing

        if w.present:  # prestaged links of pages about to be written again: remove them first
            for job in jobs:
                for rel in [f"{lang}/{job.page}" for lang in site.languages] + [job.api]:
                    w.discard(rel)
        for job in jobs:  # make sure every folder exists before the workers write into them
            for lang in site.languages:
                w.dirs.fd(f"{lang}/{job.page}".rpartition("/")[0])
            w.dirs.fd(job.api.rpartition("/")[0])
        site.prepare()
        # The pages that take longest (national, area, reconciliation: brotli, many rows)
        # first, the station pages after them: tasks shrink toward the end (_payloads), so
        # that the workers finish together instead of one waiting for the other's last task.
        jobs = self.jobs = sorted(jobs, key=_is_station_job)
        size = max(TASK_MIN, min(CHUNK_MAX, len(jobs) // (self.workers * 8)))
        sent = self.records_from
        if self.shares:
            sent = None  # the workers read the records they inherit
        self._payload, tasks = _payloads(site, jobs, size, sent, w.root.parent, self.workers)
        _WORKER = (site, w.root, w.compress, w.brotli, self.snapshot, jobs, sent, self._payload)
        # An executor, not multiprocessing.Pool: a worker killed mid-task (out of memory) makes
        # the snapshot fail at once, where Pool would wait for its result for ever and the
        # publisher would stop publishing without a word. The workers are forked at the first
        # submit, after _WORKER is set.
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
        self.results = [self.pool.submit(_render_chunk, t) for t in tasks]

    def abort(self) -> None:
        """Stop the workers (the snapshot is being abandoned)."""
        global _WORKER
        if self.pool is not None:
            # Pages not yet started are dropped; those being rendered finish (a task is at most
            # CHUNK_MAX pages) before the caller removes the staging folder they write into.
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
            self.jobs = []
            _WORKER = None
        self._close_payload()

    def _close_payload(self) -> None:
        if self._payload is not None:
            self._payload.close()
            self._payload = None

    def finish(self) -> None:
        """Wait for the workers (or render here) and record every file written."""
        global _WORKER
        w = self.w
        self.start()
        if self.pool is None:
            for job in self.jobs:
                for rel, data in self.site.produce(job, None if job.volatile else self.snapshot).items():
                    w.write_later(rel, data)
            w.drain()
            return
        pool, self.pool = self.pool, None
        try:
            for done in as_completed(self.results):
                try:
                    files = done.result()
                except BrokenProcessPool as exc:
                    raise PublishError(
                        "a page worker process was killed before it finished (by the system: most "
                        "often for lack of memory); this snapshot is abandoned"
                    ) from exc
                w.files.update(files)
                w.written += len(files)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _WORKER = None
            self._close_payload()


def _is_station_job(job: Job) -> bool:
    return job.reads is not None and job.reads[0] == "station"


def _payloads(
    site: Site, jobs: list[Job], size: int, results: Results | None, folder: Path, workers: int = 1
) -> tuple[Any, list[_Task]]:
    """The jobs in chunks of at most ``size`` jobs and about :data:`CHUNK_RECORDS` station
    records, the records each chunk's jobs read pickled into a temporary file (unlinked; the
    workers inherit its descriptor), and one task per chunk: its job indices and where its
    records are in the file. Made before the workers are forked, so that neither they nor
    this process read the records while they share its memory.

    Chunks shrink toward the end, to a ``2 * workers``-th of the jobs left but not below
    :data:`TASK_MIN` (guided self-scheduling, Polychronopoulos and Kuck, IEEE Trans. Comput.
    36(12), 1987): a worker that takes the last large chunk no longer keeps the other waiting."""
    import pickle
    import tempfile

    fh = tempfile.TemporaryFile(dir=folder, prefix=".tallyroom-pages-")  # noqa: SIM115 (closed by Rendering)
    tasks: list[_Task] = []
    offset = 0
    chunk: list[int] = []
    records: dict[int, dict[tuple[str, str, str], Row]] = {}
    count = 0

    def close() -> None:
        nonlocal offset, chunk, records, count
        if records:
            data = pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)
            fh.write(data)
            tasks.append((chunk, offset, len(data)))
            offset += len(data)
        elif chunk:
            tasks.append((chunk, 0, 0))
        chunk, records, count = [], {}, 0

    try:
        get = results.stations.get if results is not None else None
        for i, job in enumerate(jobs):
            mine: dict[tuple[str, str, str], Row] = {}
            if get is not None and results is not None and job.reads is not None and job.data is None:
                for key in site.records_read(job, results):
                    r = get(key)
                    if r is not None:
                        mine[key] = r
            limit = max(TASK_MIN, min(size, (len(jobs) - i) // (2 * workers)))
            if chunk and (len(chunk) >= limit or count + len(mine) > CHUNK_RECORDS):
                close()
            chunk.append(i)
            if job.reads is not None and job.data is None:
                records[i] = mine
                count += len(mine)
        close()
        fh.flush()
    except BaseException:
        fh.close()
        raise
    return fh, tasks


def start_render(
    site: Site,
    w: SnapshotWriter,
    jobs: list[Job],
    snapshot: dict[str, Any],
    workers: int,
    results: Results | None = None,
) -> Rendering:
    """Start rendering every job's files, in ``workers`` forked processes when worth it.

    Workers build the page data themselves and send back only each file's hash, size and
    encodings; meanwhile this process may go on with other files, as long as it reads no
    station record (see :class:`Rendering`). Nothing a worker writes is visible before the
    snapshot is.
    """
    render = Rendering(site, w, jobs, snapshot, workers, results)
    render.start()
    return render


def render_jobs(
    site: Site, w: SnapshotWriter, jobs: list[Job], snapshot: dict[str, Any], workers: int
) -> None:
    """Render and write every job's files (see :func:`start_render`)."""
    start_render(site, w, jobs, snapshot, workers).finish()


def _main_contests(results: Results) -> set[str]:
    """Contests listed by name in "what changed" (all of them; kept as a hook for huge ones)."""
    return set(results.kinds)


def publish_loop(
    publisher: Publisher,
    every: float,
    stop: Callable[[], bool],
    on_outcome: Callable[[Outcome], None] | None = None,
) -> None:
    """Publish every ``every`` seconds until ``stop()``; errors are recorded, never raised.

    Continuous publishing prestages: after each snapshot the next staging folder is linked in
    the background while the loop waits (see :mod:`.files`)."""
    publisher.prestage = True
    publisher.every = every
    try:
        _loop(publisher, every, stop, on_outcome)
    finally:
        publisher.close()


def _loop(
    publisher: Publisher,
    every: float,
    stop: Callable[[], bool],
    on_outcome: Callable[[Outcome], None] | None,
) -> None:
    while not stop():
        started = time.monotonic()
        try:
            outcome = publisher.publish()
        except Exception as exc:  # keep publishing; the status file says what went wrong
            outcome = Outcome("refused", None, 0, 0.0, [gate_mod.GateFailure("publisher", "", str(exc))])
            publisher._status(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
        remaining = every - (time.monotonic() - started)
        deadline = time.monotonic() + max(0.0, remaining)
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

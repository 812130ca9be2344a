"""Build snapshot N from a ledger prefix, gate it, and make it current atomically.

Order of work for one snapshot (``Publisher.publish``):

1. read the ledger head and the running tally consistently (the head must not move between
   the two reads; otherwise read again);
2. read the ledger prefix of that size and recompute the tally from its bytes alone;
3. run the display step (:mod:`.results`) and the gate (:mod:`.gate`); on any failure record
   the refusal (``status.json``, ``refusals/``) and stop: ``current`` keeps pointing at the
   previous snapshot;
4. sign a checkpoint over exactly that prefix (size and root), so the snapshot carries the
   checkpoint that certifies its numbers;
5. write every file into ``snapshots/.staging-N``: pages and their JSON (only changed pages are
   rendered; unchanged files are hard-linked from snapshot N-1), exports, the bulletin;
6. read the written results back and compare them with the gate-checked rows;
7. rename the staging folder to ``snapshots/N`` (atomic), then swap ``current`` (a symlink
   replaced by ``rename(2)``, atomic) and rewrite ``current.json``; a reader sees the old or the
   new snapshot, never a mixture;
8. log the snapshot in the ledger (entry kind ``snapshot``: its number, size, root and the
   SHA-256 of its manifest), so the next checkpoint commits to what was published.

See docs/decisions/0005-publish-snapshots.md for the choices, docs/bulletin.md for the files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.ledger.checkpoint import Checkpoint, sign_checkpoint
from tallyroom.ledger.entry import EntryKind
from tallyroom.publish import bulletin, exports, nist, sqlite_export
from tallyroom.publish import gate as gate_mod
from tallyroom.publish.files import FileInfo, SnapshotWriter, brotli_available
from tallyroom.publish.i18n import LANGUAGES
from tallyroom.publish.ledger_view import LedgerPrefix, election_of, protocol_entries, read_prefix
from tallyroom.publish.pages import Job, Site, static_dir
from tallyroom.publish.results import DisplayHook, Results, present
from tallyroom.publish.seats import all_projections
from tallyroom.store.sql import Store, StoreError
from tallyroom.tally.running import Tally

_enc = msgspec.json.Encoder(order="deterministic")
#: Entries of these kinds are the publisher's own: a ledger that grew only by them has nothing
#: new to publish.
OWN_KINDS = frozenset({str(EntryKind.CHECKPOINT), str(EntryKind.SNAPSHOT)})
#: At most this many new protocols are listed by name in "what changed".
CHANGES_LISTED = 500


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


def utc_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
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


def swap_current(out: Path, number: int) -> None:
    """Point ``current`` at ``snapshots/<number>`` atomically, then rewrite current.json."""
    tmp = out / f".current.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f"snapshots/{number}", tmp)
    os.replace(tmp, out / "current")
    manifest = json.loads((out / "snapshots" / str(number) / "manifest.json").read_bytes())
    pointer = {
        "format": "tallyroom-current/1",
        "snapshot": number,
        "path": f"snapshots/{number}/",
        "ledger_size": manifest["snapshot"]["ledger_size"],
        "root": manifest["snapshot"]["root"],
        "published_at": manifest["snapshot"]["published_at"],
        "manifest_sha256": hashlib.sha256(
            (out / "snapshots" / str(number) / "manifest.json").read_bytes()
        ).hexdigest(),
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


class _Laps:
    """Time spent in each step of one snapshot (reported by `tallyroom publish -v`)."""

    def __init__(self, t0: float) -> None:
        self.t = t0
        self.timings: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now


class Publisher:
    """Builds snapshots of one store into one publish folder.

    Keep one instance for continuous publishing: it caches the compiled election and the
    site's templates between snapshots.
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
        self.workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self._site: Site | None = None
        #: Station records by leaf hash (display step) and the gate's own memory; both are
        #: pure functions of ledger bytes, kept only while this publisher lives.
        self._display_cache: dict[bytes, Any] = {}
        self._gate_memo = gate_mod.GateMemo()

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

    # -- the one entry point -----------------------------------------------------------------

    def publish(self, force: bool = False) -> Outcome:
        t0 = time.perf_counter()
        with publish_lock(self.out):
            return self._publish(force, t0)

    def _publish(self, force: bool, t0: float) -> Outcome:
        lap = _Laps(t0)
        timings = lap.timings
        (self.out / "snapshots").mkdir(parents=True, exist_ok=True)
        (self.out / ".state").mkdir(exist_ok=True)
        numbers = snapshot_numbers(self.out)
        prev_number = numbers[-1] if numbers else None
        prev_state = State.load(self.out / ".state" / f"{prev_number}.json") if prev_number else None
        size, root, running = self._consistent_read()
        if prev_state is not None and not force and not self._has_news(prev_state.ledger_size, size):
            return Outcome("unchanged", prev_number, prev_state.ledger_size, time.perf_counter() - t0)
        lap("read-head")
        prefix = read_prefix(self.store, size)
        election = election_of(prefix)
        lap("read-ledger")
        rebuilt_report = gate_mod.recompute(election, prefix)
        lap("rebuild")
        number = (prev_number or 0) + 1
        if rebuilt_report.rebuilt is None:
            return self._refuse(number, size, rebuilt_report, t0)
        rebuilt = rebuilt_report.rebuilt
        entries = protocol_entries(election, prefix, rebuilt.active)
        results = present(
            election,
            running,
            entries,
            {k[2] for k in rebuilt.active},
            self.display_hook,
            None if self.display_hook is not None else self._display_cache,
        )
        lap("display")
        report = gate_mod.check(election, prefix, root, results, running, rebuilt, self._gate_memo)
        lap("gate")
        if not report.ok:
            self._gate_memo.pending = set()
            return self._refuse(number, size, report, t0)
        note = self._sign(size, root)
        lap("checkpoint")
        outcome = self._build(number, prev_number, prev_state, election, prefix, results, note, timings, lap)
        self._gate_memo.commit()
        outcome.checked_numbers = report.checked_numbers
        outcome.seconds = time.perf_counter() - t0
        self._status(outcome)
        return outcome

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

    # -- refusals ----------------------------------------------------------------------------

    def _refuse(self, number: int, size: int, report: gate_mod.GateReport, t0: float) -> Outcome:
        outcome = Outcome("refused", None, size, time.perf_counter() - t0, list(report.failures))
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

    def _status(self, outcome: Outcome) -> None:
        status = {
            "format": "tallyroom-status/1",
            "checked_at": utc_iso(self.clock()),
            "current_snapshot": current_snapshot(self.out),
            "last_attempt": outcome.to_dict(),
            "healthy": outcome.status != "refused",
        }
        _atomic_write(self.out / "status.json", exports.json_bytes(status))

    # -- building ----------------------------------------------------------------------------

    def _build(
        self,
        number: int,
        prev_number: int | None,
        prev_state: State | None,
        election: CompiledElection,
        prefix: LedgerPrefix,
        results: Results,
        note: bytes,
        timings: dict[str, float],
        lap: Callable[[str], None],
    ) -> Outcome:
        out = self.out
        stage = out / "snapshots" / f".staging-{number}-{os.getpid()}"
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir()
        prev_dir = out / "snapshots" / str(prev_number) if prev_number else None
        prev_files: dict[str, FileInfo] = {}
        if prev_dir is not None and (prev_dir / "manifest.json").exists():
            man = json.loads((prev_dir / "manifest.json").read_bytes())
            prev_files = {k: FileInfo.from_list(v) for k, v in man["files"].items()}
        w = SnapshotWriter(stage, compress=self.compress, brotli=brotli_available())
        try:
            outcome = self._write_all(
                w,
                number,
                prev_number,
                prev_state,
                prev_dir,
                prev_files,
                election,
                prefix,
                results,
                note,
                lap,
            )
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        final = out / "snapshots" / str(number)
        os.rename(stage, final)
        swap_current(out, number)
        lap("swap")
        manifest_sha = hashlib.sha256((final / "manifest.json").read_bytes()).hexdigest()
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
        lap("log")
        outcome.timings = timings
        return outcome

    def _write_all(
        self,
        w: SnapshotWriter,
        number: int,
        prev_number: int | None,
        prev_state: State | None,
        prev_dir: Path | None,
        prev_files: dict[str, FileInfo],
        election: CompiledElection,
        prefix: LedgerPrefix,
        results: Results,
        note: bytes,
        lap: Callable[[str], None],
    ) -> Outcome:
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
        # -- what changed ----------------------------------------------------------------
        row_state = {
            _key(k): [
                _digest(r),
                r["stations_reporting"],
                r["took_part"] if r["took_part"] is not None else r["ballots_cast"],
            ]
            for k, r in results.rows.items()
        }
        station_state = {_key(k): _digest(r) for k, r in results.stations.items()}
        changes = self._changes(prev_state, results, row_state, station_state, snapshot)
        lap("changes")
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
        )
        lap("bulletin")
        # -- seats and data exports -----------------------------------------------------------
        seats = all_projections(election, results)
        seat_docs = [seats[k] for k in sorted(seats)]
        groups = exports.stations_by_group(election, results)
        group_state = {
            g: _digest([station_state[_key((r["contest"], r["station"], r["count_kind"]))] for r in rows])
            for g, rows in groups.items()
        }
        old_groups = prev_state.groups if prev_state else {}
        station_files = []
        for g, rows in sorted(groups.items()):
            pair = (f"data/stations/{g}.json", f"data/csv/stations/{g}.csv")
            station_files.append(pair[0])
            if (
                prev_dir is not None
                and old_groups.get(g) == group_state[g]
                and all(r in prev_files for r in pair)
            ):
                for r in pair:
                    w.link(prev_dir, r, prev_files[r])
                continue
            w.write(pair[0], exports.stations_json(g, rows))
            w.write(pair[1], exports.stations_csv(election, rows))
        w.write(
            "data/results.json",
            exports.json_bytes(
                exports.results_document(election, results, snapshot, seat_docs, station_files)
            ),
        )
        for level, data in exports.csv_levels(election, results).items():
            w.write(f"data/csv/{level}.csv", data)
        for (cid, kind), doc in sorted(seats.items()):
            w.write(f"api/v1/results/seats/{cid}/{kind}.json", exports.json_bytes(doc))
        w.write("changes.json", exports.json_bytes(changes))
        for kind in sorted({k for ks in results.kinds.values() for k in ks}):
            w.write(
                f"data/nist-err-{kind}.json",
                exports.json_bytes(nist.election_report(election, results, kind, snapshot)),
            )
        old_rows = prev_state.rows if prev_state else {}
        old_stations = prev_state.stations if prev_state else {}
        prev_db = prev_dir / "data/tallyroom.sqlite" if prev_dir is not None else None
        if prev_db is not None and prev_db.exists() and prev_state is not None:
            changed_rows = [
                _split3(k)
                for k in set(row_state) | set(old_rows)
                if k not in row_state or k not in old_rows or row_state[k][0] != old_rows[k][0]
            ]
            changed_stations = [
                _split3(k)
                for k in set(station_state) | set(old_stations)
                if station_state.get(k) != old_stations.get(k)
            ]
            db = sqlite_export.update(
                prev_db.read_bytes(),
                results,
                snapshot,
                changed_rows,
                changed_stations,
            )
        else:
            db = sqlite_export.build(election, results, snapshot)
        w.write("data/tallyroom.sqlite", db)
        lap("exports")
        # -- rows, one file per (contest, count kind, area) -----------------------------------
        jobs_state: dict[str, str] = {}
        prev_jobs = prev_state.jobs if prev_state else {}
        rendered = reused = 0
        for key, row in results.rows.items():
            rel = f"api/v1/results/{key[0]}/{key[2]}/{key[1]}.json"
            dg = row_state[_key(key)][0]
            jobs_state[f"row:{_key(key)}"] = dg
            if prev_dir is not None and prev_jobs.get(f"row:{_key(key)}") == dg and rel in prev_files:
                w.link(prev_dir, rel, prev_files[rel])
            else:
                w.write(rel, exports.json_bytes(row))
        lap("rows")
        # -- pages ------------------------------------------------------------------------------
        site = self._site_for(election)
        snapshots = self._snapshot_list(snapshot)
        downloads = [
            {"path": rel, "what": what, "size": w.files[rel].size, "sha256": w.files[rel].sha256}
            for rel, what in self._download_list(w)
        ]
        for rel in ("site.css",):
            w.write(f"static/{rel}", (static_dir() / rel).read_bytes())
        todo: list[Job] = []
        station_digests = {_split3(k): v for k, v in station_state.items()}
        for job in site.jobs(results, seats, snapshot, changes, snapshots, downloads, station_digests):
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
        rendered = len(todo)
        render_jobs(site, w, todo, snapshot, self.workers)
        lap("pages")
        # -- read back what the gate checked -----------------------------------------------------
        problems = gate_mod.check_files(w.root, results)
        if problems:
            raise PublishError("written files differ from the checked rows: " + "; ".join(problems[:5]))
        lap("read-back")
        # -- manifest --------------------------------------------------------------------------
        manifest = {
            "format": "tallyroom-snapshot/1",
            "snapshot": snapshot,
            "languages": list(self.languages),
            "files": {rel: info.to_list() for rel, info in sorted(w.files.items())},
        }
        w.write("manifest.json", exports.json_bytes(manifest))
        state = State(number, prefix.size, jobs_state, row_state, station_state, chunks, group_state)
        _atomic_write(self.out / ".state" / f"{number}.json", state.to_json())
        self._append_snapshot_list(snapshot)
        lap("manifest")
        return Outcome(
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

    def _download_list(self, w: SnapshotWriter) -> list[tuple[str, str]]:
        out = []
        for rel in sorted(w.files):
            if rel == "data/results.json":
                out.append((rel, "results"))
            elif rel.startswith("data/stations/"):
                out.append((rel, "stations"))
            elif rel.startswith("data/csv/"):
                out.append((rel, "csv"))
            elif rel.startswith("data/nist-err-"):
                out.append((rel, "nist"))
            elif rel == "data/tallyroom.sqlite":
                out.append((rel, "sqlite"))
            elif rel.startswith("bulletin/entries/"):
                out.append((rel, "ledger"))
            elif rel.startswith("bulletin/definition"):
                out.append((rel, "definition"))
            elif rel == "bulletin/checkpoints.jsonl":
                out.append((rel, "checkpoints"))
            elif rel == "bulletin/commission.vkey":
                out.append((rel, "key"))
        return out

    def _changes(
        self,
        prev: State | None,
        results: Results,
        row_state: dict[str, list[Any]],
        station_state: dict[str, str],
        snapshot: dict[str, Any],
    ) -> dict[str, Any]:
        old_rows = prev.rows if prev else {}
        old_stations = prev.stations if prev else {}
        changed_rows = []
        for key in sorted(row_state):
            old = old_rows.get(key)
            new = row_state[key]
            if old is None or old[0] != new[0]:
                cid, aid, kind = key.split("|")
                changed_rows.append(
                    {
                        "contest": cid,
                        "area": aid,
                        "count_kind": kind,
                        "stations_reporting": [None if old is None else old[1], new[1]],
                        "took_part": [None if old is None else old[2], new[2]],
                    }
                )
        new_protocols = []
        for key in sorted(station_state, key=lambda k: results.stations[_split3(k)]["ledger_index"]):
            if old_stations.get(key) != station_state[key]:
                cid, sid, kind = key.split("|")
                new_protocols.append(
                    {
                        "contest": cid,
                        "station": sid,
                        "count_kind": kind,
                        "ledger_index": results.stations[(cid, sid, kind)]["ledger_index"],
                    }
                )
        return {
            "format": "tallyroom-changes/1",
            "snapshot": snapshot["number"],
            "previous": prev.number if prev else None,
            "ledger_from": prev.ledger_size if prev else 0,
            "ledger_to": snapshot["ledger_size"],
            "rows_changed_total": len(changed_rows),
            "rows_changed": [r for r in changed_rows if r["contest"] in _main_contests(results)][:200],
            "new_protocols_total": len(new_protocols),
            "new_protocols": new_protocols[:CHANGES_LISTED],
        }

    def _snapshot_list(self, snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        path = self.out / ".state" / "snapshots.json"
        try:
            items: list[dict[str, Any]] = json.loads(path.read_bytes())
        except (OSError, ValueError):
            items = []
        items = [s for s in items if s["number"] < snapshot["number"]]
        items.append({k: snapshot[k] for k in ("number", "ledger_size", "root", "published_at")})
        return items

    def _append_snapshot_list(self, snapshot: dict[str, Any]) -> None:
        _atomic_write(
            self.out / ".state" / "snapshots.json", json.dumps(self._snapshot_list(snapshot)).encode()
        )


_WORKER: tuple[Site, Path, bool, bool, dict[str, Any]] | None = None
#: Below this many pages a process pool costs more than it saves.
PARALLEL_MIN = 48


def _render_chunk(jobs: list[Job]) -> dict[str, list[Any]]:
    assert _WORKER is not None
    site, root, compress, br, snapshot = _WORKER
    w = SnapshotWriter(root, compress=compress, brotli=br)
    for job in jobs:
        for rel, data in site.produce(job, None if job.volatile else snapshot).items():
            w.write(rel, data)
    return {rel: info.to_list() for rel, info in w.files.items()}


def render_jobs(
    site: Site, w: SnapshotWriter, jobs: list[Job], snapshot: dict[str, Any], workers: int
) -> None:
    """Render and write every job's files, in ``workers`` forked processes when worth it."""
    global _WORKER
    if workers <= 1 or len(jobs) < PARALLEL_MIN:
        for job in jobs:
            for rel, data in site.produce(job, None if job.volatile else snapshot).items():
                w.write(rel, data)
        return
    import multiprocessing

    for lang in site.languages:  # compile templates once, before the fork
        for name in ("national.html", "area.html", "station.html"):
            site.env(lang).get_template(name)
    for job in jobs:  # page data is built here; workers only render and write
        job.materialize()
        job.make = None
    _WORKER = (site, w.root, w.compress, w.brotli, snapshot)
    size = max(16, len(jobs) // (workers * 8))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for files in pool.imap_unordered(_render_chunk, chunks):
                for rel, info in files.items():
                    w.files[rel] = FileInfo.from_list(info)
                    w.written += 1
    finally:
        _WORKER = None


def _main_contests(results: Results) -> set[str]:
    """Contests listed by name in "what changed" (all of them; kept as a hook for huge ones)."""
    return set(results.kinds)


def publish_loop(
    publisher: Publisher,
    every: float,
    stop: Callable[[], bool],
    on_outcome: Callable[[Outcome], None] | None = None,
) -> None:
    """Publish every ``every`` seconds until ``stop()``; errors are recorded, never raised."""
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

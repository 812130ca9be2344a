"""Group commit: concurrent submissions share one durable ledger transaction.

Request handlers put checked submissions (and journal lines of refused ones) on an asyncio
queue and wait. One pump task takes everything queued, hands the batch to the single writer
thread, and resolves each waiting request with its answer only after the batch's
transactions have committed (DESIGN invariant 4). While the writer commits one batch the
next one gathers, so the number of fsyncs per second stays flat as load grows.

Per batch the writer:

1. re-checks revocation of the keys used (a key revoked by another worker counts at once);
2. refuses replays of superseded or annulled protocols and new protocols for a station whose
   result was annulled (409);
3. calls :meth:`Store.append_protocols` once — new, duplicate and conflict per item;
4. in a second transaction signs one checkpoint over the new head, stores a receipt for each
   new entry (and for older entries that lack one), holds conflicts, and writes one journal
   line per attempt. A resend gets the receipt stored the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tallyroom.intake.errors import Rejection
from tallyroom.intake.journal import JournalLine, Outcome
from tallyroom.intake.receipts import ReceiptSigner
from tallyroom.intake.submission import Checked
from tallyroom.ledger.checkpoint import Checkpoint, sign_checkpoint
from tallyroom.ledger.entry import EntryKind, encode_entry
from tallyroom.store import intake as db
from tallyroom.store.sql import Store, open_store, utcnow

log = logging.getLogger("tallyroom.intake")
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes


@dataclass(slots=True)
class Job:
    received_at: str
    checked: Checked | None = None
    line: JournalLine | None = None
    future: asyncio.Future[Answer] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def _rejected(job: Job, rej: Rejection) -> tuple[Answer, tuple[Any, ...]]:
    assert job.checked is not None
    body = job.checked.body
    line = JournalLine(
        job.received_at, body.station, job.checked.key_id, Outcome.REJECTED, rej.reason,
        rej.status, rej.message, None, job.checked.pending.body_sha256,
    )
    return Answer(rej.status, _encoder.encode(rej.body())), line.row()


class GroupCommitter:
    def __init__(self, url: str, signer: ReceiptSigner, max_batch: int = 1000) -> None:
        self._url = url
        self._signer = signer
        self.max_batch = max_batch
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tallyroom-writer")
        self._store: Store | None = None
        self._task: asyncio.Task[None] | None = None
        #: Called with key ids found revoked, so the worker's key cache learns of it.
        self.on_revoked: Any = None
        self.batches = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="tallyroom-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)
        if self._store is not None:
            self._store.close()

    async def submit(self, job: Job) -> Answer:
        self._queue.put_nowait(job)
        return await asyncio.shield(job.future)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                answers = await loop.run_in_executor(self._executor, self._commit_batch, batch)
            except Exception:
                log.exception("intake batch of %d failed; answering 503", len(batch))
                self._reset_store()
                busy = Rejection(
                    503, "store-unavailable",
                    "the store could not commit this submission; nothing was recorded, retry",
                    None,
                )
                answers = [Answer(503, _encoder.encode(busy.body()))] * len(batch)
            for job, answer in zip(batch, answers, strict=True):
                if not job.future.done():
                    job.future.set_result(answer)

    def _reset_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store._rollback()
                store.close()
            except Exception:
                log.warning("closing the writer connection failed", exc_info=True)

    def _writer_store(self) -> Store:
        if self._store is None:
            self._store = open_store(self._url)
        return self._store

    # -- the writer thread ---------------------------------------------------------------

    def _commit_batch(self, jobs: list[Job]) -> list[Answer]:
        store = self._writer_store()
        self.batches += 1
        answers: list[Answer | None] = [None] * len(jobs)
        journal: list[tuple[Any, ...]] = []
        todo: list[int] = []
        for i, job in enumerate(jobs):
            if job.checked is None:
                assert job.line is not None
                journal.append(job.line.row())
            else:
                todo.append(i)
        if todo:
            todo = self._screen(store, jobs, todo, answers, journal)
        results = store.append_protocols([jobs[i].checked.pending for i in todo]) if todo else []  # type: ignore[union-attr]
        # Which entries need a receipt, and which of those lack a stored one.
        wanted = sorted({r.ledger_index for r in results if r.status in ("new", "duplicate")})
        stored = db.receipts_for(store, [r.ledger_index for r in results if r.status == "duplicate"])
        new_entries: dict[int, tuple[bytes, str]] = {}
        for i, r in zip(todo, results, strict=True):
            if r.status == "new":
                pending = jobs[i].checked.pending  # type: ignore[union-attr]
                new_entries[r.ledger_index] = (
                    encode_entry(EntryKind.PROTOCOL, pending.payload), pending.body_sha256
                )
        missing = [idx for idx in wanted if idx not in stored]
        conflicts: list[db.HeldConflict] = []
        for i, r in zip(todo, results, strict=True):
            if r.status == "conflict":
                c = jobs[i].checked
                assert c is not None
                conflicts.append(
                    db.HeldConflict(
                        c.body.station, c.body.contest, str(c.body.count_kind), c.key_id,
                        r.ledger_index, c.pending.body_sha256, c.pending.payload,
                        jobs[i].received_at,
                    )
                )
        note = b""
        cp: Checkpoint | None = None
        if missing:
            head = store.head()
            cp = Checkpoint(self._signer.origin, head.size, head.root, int(time.time()))
            note = sign_checkpoint(cp, self._signer.key_name, self._signer.signing_key)
        with db.transaction(store):
            receipts: dict[int, str] = dict(stored)
            if missing and cp is not None:
                note = db.put_checkpoint_in_tx(store, cp.size, cp.root, cp.time, note)
                made = []
                for idx in missing:
                    entry, sha = new_entries.get(idx) or self._old_entry(store, idx)
                    made.append(
                        (idx, _encoder.encode(self._signer.make(idx, entry, sha, cp, note)).decode())
                    )
                db.put_receipts_in_tx(store, made)
                receipts.update(db.receipts_in_tx(store, missing))
            held = db.hold_conflicts_in_tx(store, conflicts)
            for i, r in zip(todo, results, strict=True):
                answers[i], line = self._answer(jobs[i], r, receipts, held)
                journal.append(line)
            db.journal_in_tx(store, journal)
        return [a if a is not None else Answer(204, b"") for a in answers]

    def _old_entry(self, store: Store, idx: int) -> tuple[bytes, str]:
        """An entry committed earlier (another batch, worker or an import) without receipt."""
        data = db.entry_data(store, idx)
        if data is None:
            raise RuntimeError(f"ledger entry {idx} vanished")
        body = data.split(b"\n", 2)[-1]
        return data, hashlib.sha256(body).hexdigest()

    def _screen(
        self,
        store: Store,
        jobs: list[Job],
        todo: list[int],
        answers: list[Answer | None],
        journal: list[tuple[Any, ...]],
    ) -> list[int]:
        """Revoked keys, replays of replaced protocols, submissions to annulled results."""
        checked = [jobs[i].checked for i in todo]
        revoked = db.revoked_among(store, sorted({c.key_id for c in checked if c is not None}))
        if revoked and self.on_revoked is not None:
            for kid in revoked:
                self.on_revoked(kid)
        keys = [(c.body.station, c.body.contest, str(c.body.count_kind)) for c in checked if c]
        prior = db.non_active_for(store, keys)
        keep: list[int] = []
        for i in todo:
            c = jobs[i].checked
            assert c is not None
            rej: Rejection | None = None
            if c.key_id in revoked:
                rej = Rejection(403, "revoked-key", f'key "{c.key_id}" has been revoked',
                                "X-Tallyroom-Key-Id")
            else:
                rows = prior.get((c.body.station, c.body.contest, str(c.body.count_kind)), [])
                same = [r for r in rows if r[2] == c.pending.body_sha256]
                if same:
                    idx, status, _sha = same[0]
                    rej = Rejection(
                        409, "replay",
                        f"this exact protocol was counted at ledger index {idx} and is now "
                        f"{status}; it will not count again",
                        "body", extra={"existing_index": idx},
                    )
                elif any(r[1] == "annulled" for r in rows):
                    idx = max(r[0] for r in rows if r[1] == "annulled")
                    rej = Rejection(
                        409, "annulled",
                        f"the result of station {c.body.station} in {c.body.contest} "
                        f"({c.body.count_kind}) was annulled; submissions are closed",
                        "station", extra={"existing_index": idx},
                    )
            if rej is None:
                keep.append(i)
            else:
                answers[i], line = _rejected(jobs[i], rej)
                journal.append(line)
        return keep

    def _answer(
        self,
        job: Job,
        r: Any,
        receipts: dict[int, str],
        held: dict[tuple[str, str, str, str], int],
    ) -> tuple[Answer, tuple[Any, ...]]:
        c = job.checked
        assert c is not None
        station, contest, kind = c.body.station, c.body.contest, str(c.body.count_kind)
        sha = c.pending.body_sha256
        if r.status == "conflict":
            cid = held[(station, contest, kind, sha)]
            rej = Rejection(
                409, "conflict",
                f"a different {kind} protocol for station {station} in {contest} is already "
                f"counted at ledger index {r.ledger_index}; this one is held as conflict {cid} "
                "for review by two people and does not count",
                "body",
                extra={"existing_index": r.ledger_index, "conflict_id": cid},
            )
            line = JournalLine(job.received_at, station, c.key_id, Outcome.CONFLICT, "conflict",
                               409, rej.message, r.ledger_index, sha)
            return Answer(409, _encoder.encode(rej.body())), line.row()
        new = r.status == "new"
        receipt = receipts[r.ledger_index]
        body = (
            b'{"status":"' + (b"accepted" if new else b"duplicate") + b'","receipt":'
            + receipt.encode() + b',"warnings":' + _encoder.encode(list(c.pending.warnings)) + b"}"
        )
        outcome = Outcome.ACCEPTED if new else Outcome.DUPLICATE
        status = 201 if new else 200
        line = JournalLine(job.received_at, station, c.key_id, outcome, None, status,
                           f"ledger index {r.ledger_index}", r.ledger_index, sha)
        return Answer(status, body), line.row()


def journal_job(line: JournalLine) -> Job:
    return Job(received_at=line.at, line=line)


def now() -> str:
    return utcnow()

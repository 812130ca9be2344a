"""Group commit: concurrent submissions share one durable ledger transaction.

Request handlers check a submission completely (signature, strict JSON, form and rules,
entry bytes and leaf hash) and hand the result — a :class:`Submission`, or an
:class:`Attempt` (the journal line of a refused one) — to a committer, then wait. The
committer gathers everything queued into one batch and answers each request only after the
batch's transaction has committed (DESIGN invariant 4). While one batch commits the next
one gathers, so the number of fsyncs per second stays flat as load grows.

Two committers share :class:`BatchWriter`, which does the database work of one batch:

- under ``tallyroom serve`` every web worker sends its batches to one **writer process**
  (:mod:`tallyroom.web.writer`), which merges the batches of all workers into one
  transaction; the web workers do all the CPU work of checking in parallel;
- :class:`GroupCommitter` runs a BatchWriter in a thread of the worker itself (an app made
  with ``create_app`` without a writer process, or ``serve --writer thread``).

Per batch the BatchWriter:

1. re-checks revocation of the keys used (a key revoked by another worker counts at once);
2. refuses replays of superseded or annulled protocols and new protocols for a station whose
   result was annulled (409);
3. appends them with :meth:`Store.append_protocols_locked` — new, duplicate and conflict per
   item;
4. signs one checkpoint over the new head, stores a receipt for each new entry (and for
   older entries that lack one), holds conflicts, and writes one journal line per attempt.
   A resend gets the receipt stored the first time.

All four steps are one transaction under the ledger head lock (one commit per batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
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
from tallyroom.protocol.pending import PendingProtocol
from tallyroom.store import intake as db
from tallyroom.store.sql import Appended, Store, open_store, utcnow

log = logging.getLogger("tallyroom.intake")
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes


class Submission(msgspec.Struct, array_like=True, tag="s"):
    """What the writer needs of one checked submission (it crosses a socket as msgpack)."""

    received_at: str
    key_id: str
    station: str
    contest: str
    count_kind: str
    contest_idx: int
    station_idx: int
    counts: list[int]
    warnings: list[dict[str, Any]]
    payload: bytes
    body_sha256: str
    entry: bytes
    leaf: bytes

    @classmethod
    def of(cls, received_at: str, checked: Checked) -> Submission:
        p, body = checked.pending, checked.body
        return cls(
            received_at, checked.key_id, body.station, body.contest, str(body.count_kind),
            p.contest, p.station, list(p.counts), list(p.warnings), p.payload, p.body_sha256,
            p.entry, p.leaf,
        )

    def pending(self) -> PendingProtocol:
        return PendingProtocol(
            self.contest_idx, self.station_idx, self.count_kind, self.counts, self.warnings,
            self.payload, self.body_sha256,
            self.entry or encode_entry(EntryKind.PROTOCOL, self.payload), self.leaf,
        )


class Attempt(msgspec.Struct, array_like=True, tag="j"):
    """The journal line of an attempt refused before it reached the writer."""

    row: tuple[Any, ...]


Item = Submission | Attempt


@dataclass(slots=True)
class Job:
    item: Item
    future: asyncio.Future[Answer] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


def submission_job(received_at: str, checked: Checked) -> Job:
    return Job(Submission.of(received_at, checked))


def journal_job(line: JournalLine) -> Job:
    return Job(Attempt(line.row()))


def now() -> str:
    return utcnow()


ACK = Answer(204, b"")


def unavailable() -> Answer:
    busy = Rejection(
        503, "store-unavailable",
        "the store could not commit this submission; nothing was recorded, retry", None,
    )
    return Answer(503, _encoder.encode(busy.body()))


def _rejected(s: Submission, rej: Rejection) -> tuple[Answer, tuple[Any, ...]]:
    line = JournalLine(
        s.received_at, s.station, s.key_id, Outcome.REJECTED, rej.reason,
        rej.status, rej.message, None, s.body_sha256,
    )
    return Answer(rej.status, _encoder.encode(rej.body())), line.row()


class BatchWriter:
    """The database work of one batch, on one store connection (not thread-safe)."""

    def __init__(self, url: str, signer: ReceiptSigner, store: Store | None = None) -> None:
        self._url = url
        self._signer = signer
        self._store: Store | None = store
        self.batches = 0
        self.items = 0

    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self._url)
        return self._store

    def reset(self) -> None:
        """Drop the connection after a failure; the next batch opens a new one."""
        store, self._store = self._store, None
        if store is not None:
            try:
                store._rollback()
                store.close()
            except Exception:
                log.warning("closing the writer connection failed", exc_info=True)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def commit(self, items: Sequence[Item]) -> tuple[list[Answer], set[str]]:
        """Commit one batch; the answers in the items' order and the key ids found revoked.

        Everything — screen, append, checkpoint, receipts, held conflicts, journal lines — is
        one transaction under the ledger head lock: one commit (one fsync) per batch, and a
        batch is recorded whole or not at all. Raises if the store fails; then nothing of
        the batch is recorded and every item may be sent again.
        """
        store = self.store()
        self.batches += 1
        self.items += len(items)
        answers: list[Answer | None] = [None] * len(items)
        journal: list[tuple[Any, ...]] = []
        todo: list[int] = []
        for i, item in enumerate(items):
            if isinstance(item, Attempt):
                journal.append(item.row)
            else:
                todo.append(i)
        revoked: set[str] = set()
        try:
            with store.pipeline():
                store.begin_write()
                if todo:
                    revoked = self._commit_locked(store, items, todo, answers, journal)
                db.journal_in_tx(store, journal)
                store.commit()
        except BaseException:
            store.rollback()
            raise
        return [a if a is not None else ACK for a in answers], revoked

    def _commit_locked(
        self,
        store: Store,
        items: Sequence[Item],
        todo: list[int],
        answers: list[Answer | None],
        journal: list[tuple[Any, ...]],
    ) -> set[str]:
        # The screen runs under the head lock, so an annulment or a revocation approved
        # elsewhere (it takes the same lock) is either fully seen or not yet committed.
        head = store.lock_head()
        todo, revoked = self._screen(store, items, todo, answers, journal)
        subs: list[Submission] = [items[i] for i in todo]  # type: ignore[misc]
        results = store.append_protocols_locked(head, [s.pending() for s in subs]) if subs else []
        # Which entries need a receipt, and which of those lack a stored one.
        wanted = sorted({r.ledger_index for r in results if r.status in ("new", "duplicate")})
        receipts = db.receipts_for(store, [r.ledger_index for r in results if r.status == "duplicate"])
        new_entries: dict[int, Submission] = {}
        conflicts: list[db.HeldConflict] = []
        for s, r in zip(subs, results, strict=True):
            if r.status == "new":
                new_entries[r.ledger_index] = s
            elif r.status == "conflict":
                conflicts.append(
                    db.HeldConflict(
                        s.station, s.contest, s.count_kind, s.key_id, r.ledger_index,
                        s.body_sha256, s.payload, s.received_at,
                    )
                )
        missing = [idx for idx in wanted if idx not in receipts]
        if missing:
            cp = Checkpoint(self._signer.origin, head.size, head.root, int(time.time()))
            note = sign_checkpoint(cp, self._signer.key_name, self._signer.signing_key)
            note = db.put_checkpoint_in_tx(store, cp.size, cp.root, cp.time, note)
            made = []
            for idx in missing:
                sub = new_entries.get(idx)
                if sub is not None:
                    entry = sub.entry or encode_entry(EntryKind.PROTOCOL, sub.payload)
                    receipt = self._signer.make(idx, entry, sub.body_sha256, cp, note, sub.leaf)
                else:
                    entry, sha = self._old_entry(store, idx)
                    receipt = self._signer.make(idx, entry, sha, cp, note)
                made.append((idx, _encoder.encode(receipt).decode()))
            receipts.update(db.put_receipts_in_tx(store, made))
        held = db.hold_conflicts_in_tx(store, conflicts)
        for i, s, r in zip(todo, subs, results, strict=True):
            answers[i], line = self._answer(s, r, receipts, held)
            journal.append(line)
        return revoked

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
        items: Sequence[Item],
        todo: list[int],
        answers: list[Answer | None],
        journal: list[tuple[Any, ...]],
    ) -> tuple[list[int], set[str]]:
        """Revoked keys, replays of replaced protocols, submissions to annulled results."""
        subs: list[Submission] = [items[i] for i in todo]  # type: ignore[misc]
        revoked = db.revoked_among(store, sorted({s.key_id for s in subs}))
        prior = db.non_active_for(store, [(s.station, s.contest, s.count_kind) for s in subs])
        keep: list[int] = []
        for i, s in zip(todo, subs, strict=True):
            rej: Rejection | None = None
            if s.key_id in revoked:
                rej = Rejection(403, "revoked-key", f'key "{s.key_id}" has been revoked',
                                "X-Tallyroom-Key-Id")
            else:
                rows = prior.get((s.station, s.contest, s.count_kind), [])
                same = [r for r in rows if r[2] == s.body_sha256]
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
                        f"the result of station {s.station} in {s.contest} "
                        f"({s.count_kind}) was annulled; submissions are closed",
                        "station", extra={"existing_index": idx},
                    )
            if rej is None:
                keep.append(i)
            else:
                answers[i], line = _rejected(s, rej)
                journal.append(line)
        return keep, revoked

    def _answer(
        self,
        s: Submission,
        r: Appended,
        receipts: dict[int, str],
        held: dict[tuple[str, str, str, str], int],
    ) -> tuple[Answer, tuple[Any, ...]]:
        station, contest, kind, sha = s.station, s.contest, s.count_kind, s.body_sha256
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
            line = JournalLine(s.received_at, station, s.key_id, Outcome.CONFLICT, "conflict",
                               409, rej.message, r.ledger_index, sha)
            return Answer(409, _encoder.encode(rej.body())), line.row()
        new = r.status == "new"
        receipt = receipts[r.ledger_index]
        body = (
            b'{"status":"' + (b"accepted" if new else b"duplicate") + b'","receipt":'
            + receipt.encode() + b',"warnings":' + _encoder.encode(s.warnings) + b"}"
        )
        outcome = Outcome.ACCEPTED if new else Outcome.DUPLICATE
        status = 201 if new else 200
        line = JournalLine(s.received_at, station, s.key_id, outcome, None, status,
                           f"ledger index {r.ledger_index}", r.ledger_index, sha)
        return Answer(status, body), line.row()


class GroupCommitter:
    """Group commit inside one worker: an asyncio queue and one writer thread.

    The writer thread shares the worker's interpreter lock with the event loop; under
    ``tallyroom serve`` the writer process (:mod:`tallyroom.web.writer`) is used instead.
    """

    def __init__(self, url: str, signer: ReceiptSigner, max_batch: int = 1000) -> None:
        self.max_batch = max_batch
        self._writer = BatchWriter(url, signer)
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tallyroom-writer")
        self._task: asyncio.Task[None] | None = None
        #: Called with key ids found revoked, so the worker's key cache learns of it.
        self.on_revoked: Any = None

    @property
    def batches(self) -> int:
        return self._writer.batches

    async def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="tallyroom-group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)
        self._writer.close()

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
            items = [job.item for job in batch]
            try:
                answers, revoked = await loop.run_in_executor(self._executor, self._writer.commit, items)
            except Exception:
                log.exception("intake batch of %d failed; answering 503", len(batch))
                self._writer.reset()
                answers, revoked = [unavailable()] * len(batch), set()
            if revoked and self.on_revoked is not None:
                for kid in revoked:
                    self.on_revoked(kid)
            for job, answer in zip(batch, answers, strict=True):
                if not job.future.done():
                    job.future.set_result(answer)

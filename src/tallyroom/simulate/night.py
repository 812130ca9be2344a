"""Play an election night against a running intake server: devices, attackers and staff.

:class:`Night` runs the :class:`~tallyroom.simulate.plan.NightPlan` with one asyncio task per
station device and count kind, all in one process over :class:`~.http.HttpClient`:

* a device waits for its moment, then sends its protocols (one per contest) signed with its
  key, with the faults the plan gave it, and retries whatever got no answer (a timeout, a
  reset connection, a server that was killed) until it gets one;
* attackers send forged and misaddressed protocols and replay old bytes;
* commission staff (an operator and two supervisors, by API token) correct, annul and settle
  conflicts under the two-person rule, and check that nobody can approve their own proposal.

Every answer is checked against what the fault must get (:mod:`.faults`) as it arrives, and
recorded in :class:`Observations` for the final check (:mod:`.check`): receipts, the answers
the intake journal must show, the bodies that must never count.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nacl.signing

from tallyroom.definition.compiled import CompiledElection
from tallyroom.intake.signature import KEY_ID_HEADER, SIGNATURE_HEADER, DeviceKey
from tallyroom.simulate.faults import MALFORMED, Fault, malformed_body, misread, unbalanced
from tallyroom.simulate.http import HttpClient, HttpError, HttpTimeout, Reply
from tallyroom.simulate.plan import DevicePlan, NightPlan, ProtocolPlan, ProtoKey, Role

PROTOCOLS = "/api/v1/protocols"
PROPOSALS = "/api/v1/admin/proposals"
ACCEPTED: frozenset[tuple[int, str | None]] = frozenset({(201, None), (200, None)})
DUPLICATE: frozenset[tuple[int, str | None]] = frozenset({(200, None)})
CONFLICT: tuple[int, str] = (409, "conflict")
#: A device that gives up waiting this fast is the "timeout" fault.
IMPATIENT = 0.005
#: Staff names by role (their API tokens are made before the night).
OPERATOR, SUPERVISOR_A, SUPERVISOR_B = "olga-operator", "sam-supervisor", "sue-supervisor"
STAFF = {OPERATOR: "operator", SUPERVISOR_A: "supervisor", SUPERVISOR_B: "supervisor"}
#: Mistakes kept word for word (the rest are counted).
KEEP_MISTAKES = 200


class NightError(RuntimeError):
    """The night could not go on (the server stayed unreachable)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """A receipt a device (or staff) received, with what it was for."""

    ledger_index: int
    data: dict[str, Any]
    body_sha256: str
    key: ProtoKey
    #: When it arrived (time.monotonic()).
    at: float = 0.0


@dataclass
class Observations:
    """What the clients saw; the final check holds the server to it."""

    submissions: int = 0
    retries: int = 0
    timeouts: int = 0
    images: int = 0
    receipts: list[Receipt] = field(default_factory=list)
    #: (journal key, HTTP status, reason or "") -> how many such answers were received. The
    #: journal key is "sha:<body sha256>", or "key:<key id>" for a body refused unread (413).
    answers: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    mistakes: list[str] = field(default_factory=list)
    mistakes_total: int = 0
    #: SHA-256 of bodies that must never count (forged, misaddressed, broken, unbalanced).
    bad_bodies: set[str] = field(default_factory=set)
    staff: Counter[str] = field(default_factory=Counter)
    faults_sent: Counter[str] = field(default_factory=Counter)
    #: Protocol keys with an accepted protocol (for progress).
    counted: set[ProtoKey] = field(default_factory=set)
    #: (when answered, seconds from sending) of each answered protocol submission (slow
    #: clients excepted): throughput and latency.
    answered: list[tuple[float, float]] = field(default_factory=list)

    def mistake(self, text: str) -> None:
        self.mistakes_total += 1
        if len(self.mistakes) < KEEP_MISTAKES:
            self.mistakes.append(text)


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _reason(reply: Reply) -> str | None:
    if reply.status < 400:
        return None
    r = reply.field("reason")
    return str(r) if r is not None else None


def _label(key: ProtoKey) -> str:
    return f"station {key[0]} {key[1]} {key[2]}"


def fake_photo(key: ProtoKey) -> bytes:
    """A small JPEG-looking file (right magic bytes) standing for the paper protocol's photo."""
    seed = hashlib.sha256("|".join(key).encode()).digest()
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + seed * 40 + b"\xff\xd9"


class Night:
    """One night against the server at ``http``; see the module docstring."""

    def __init__(
        self,
        plan: NightPlan,
        election: CompiledElection,
        keys: Mapping[str, DeviceKey],
        tokens: Mapping[str, str],
        http: HttpClient,
        *,
        seed: int = 1,
        give_up: float = 600.0,
        timeout: float = 30.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.election = election
        self.keys = keys
        self.tokens = tokens
        self.http = http
        self.rng = random.Random(f"tallyroom-night-client:{seed}")
        #: Seconds a request keeps being retried while the server does not answer.
        self.give_up = give_up
        self.timeout = timeout
        self.obs = Observations()
        self.started = 0.0
        self._staff_tasks: set[asyncio.Task[None]] = set()
        self._receipt_of: dict[tuple[ProtoKey, tuple[int, ...]], dict[str, Any]] = {}
        self._stations = sorted(keys)
        self._on_restart = on_restart
        self.failed: BaseException | None = None

    # -- the night ---------------------------------------------------------------------------

    async def run(self) -> Observations:
        self.started = time.monotonic()
        devices = [asyncio.create_task(self._device(d)) for d in self.plan.devices]
        try:
            await asyncio.gather(*devices)
            while self._staff_tasks:
                await asyncio.gather(*list(self._staff_tasks))
        except BaseException:
            for t in [*devices, *self._staff_tasks]:
                t.cancel()
            raise
        return self.obs

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def _at(self, t: float) -> None:
        delay = self.started + t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _later(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._staff_tasks.add(task)
        task.add_done_callback(self._staff_tasks.discard)

    def _staff_delay(self) -> float:
        return self.rng.uniform(0.01, 0.08) * self.plan.duration

    # -- building bodies ---------------------------------------------------------------------

    def _obj(
        self, p: ProtocolPlan, lines: Mapping[str, int], seq: int, image: str | None = None
    ) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "election": self.plan.election_sha256,
            "station": p.station,
            "contest": p.contest,
            "count_kind": p.kind,
            "lines": dict(lines),
            "sequence": seq,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if image is not None:
            obj["image_sha256"] = image
        return obj

    def _body(self, p: ProtocolPlan, lines: Mapping[str, int], seq: int, image: str | None = None) -> bytes:
        return json.dumps(self._obj(p, lines, seq, image), separators=(",", ":")).encode()

    def _choices(self, p: ProtocolPlan) -> list[str]:
        return list(self.election.contest(p.contest).choice_ids)

    def _other_reading(self, p: ProtocolPlan, choices: list[str]) -> dict[str, int]:
        try:
            return misread(p.truth, choices, self.rng)
        except ValueError:  # no votes to move: the same counts (the bytes still differ)
            return dict(p.truth)

    # -- talking to the server ---------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        first_timeout: float | None = None,
        pieces: tuple[tuple[int, float], ...] = (),
        protocol: bool = False,
    ) -> Reply:
        """Send until there is an answer (not 503); HttpError/timeouts are retried."""
        deadline = time.monotonic() + self.give_up
        delay = 0.1
        attempt = 0
        while True:
            if protocol:
                self.obs.submissions += 1
            timeout = first_timeout if attempt == 0 and first_timeout is not None else self.timeout
            try:
                reply = await self.http.request(method, path, body, headers, timeout, pieces)
                if protocol and not pieces:
                    self.obs.answered.append((time.monotonic(), reply.elapsed))
            except HttpError as exc:
                if isinstance(exc, HttpTimeout):
                    self.obs.timeouts += 1
                if time.monotonic() > deadline:
                    raise NightError(f"{method} {path}: no answer for {self.give_up:.0f} s: {exc}") from None
                if self._on_restart is not None and not isinstance(exc, HttpTimeout):
                    self._on_restart()
            else:
                if reply.status != 503:
                    return reply
                if time.monotonic() > deadline:
                    raise NightError(f"{method} {path}: 503 for {self.give_up:.0f} s") from None
            attempt += 1
            self.obs.retries += 1
            await asyncio.sleep(delay * self.rng.uniform(0.5, 1.5))
            delay = min(2.0, delay * 2)

    async def _post(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        first_timeout: float | None = None,
        pieces: tuple[tuple[int, float], ...] = (),
    ) -> Reply:
        h = {**headers, "Content-Type": "application/json"}
        return await self._request(
            "POST", PROTOCOLS, body, h, first_timeout=first_timeout, pieces=pieces, protocol=True
        )

    def _journal_key(self, body: bytes, headers: Mapping[str, str], reply: Reply) -> str:
        if reply.status == 413:
            return f"key:{headers.get(KEY_ID_HEADER, '')}"
        return f"sha:{_sha(body)}"

    def _expect(
        self,
        what: str,
        body: bytes,
        headers: Mapping[str, str],
        reply: Reply,
        allowed: frozenset[tuple[int, str | None]] | set[tuple[int, str | None]],
    ) -> bool:
        reason = _reason(reply)
        self.obs.answers[(self._journal_key(body, headers, reply), reply.status, reason or "")] += 1
        if (reply.status, reason) in allowed:
            return True
        want = " or ".join(f"{s} {r or ''}".strip() for s, r in sorted(allowed, key=str))
        error = reply.field("error") or reply.body[:200].decode("utf-8", "replace")
        self.obs.mistake(f"{what}: got {reply.status} {reason or ''} ({error}), expected {want}")
        return False

    def _receipt(
        self, key: ProtoKey, lines: Mapping[str, int], body: bytes, reply: Reply, what: str
    ) -> dict[str, Any] | None:
        data = reply.json()
        receipt = data.get("receipt") if isinstance(data, dict) else None
        if not isinstance(receipt, dict) or not isinstance(receipt.get("ledger_index"), int):
            self.obs.mistake(f"{what}: {reply.status} without a receipt")
            return None
        self.obs.receipts.append(Receipt(receipt["ledger_index"], receipt, _sha(body), key, time.monotonic()))
        self.obs.counted.add(key)
        version = (key, tuple(lines.values()))
        first = self._receipt_of.setdefault(version, receipt)
        if first != receipt:
            self.obs.mistake(
                f"{what}: the same protocol got two different receipts (ledger index "
                f"{first.get('ledger_index')} and {receipt.get('ledger_index')})"
            )
        return receipt

    # -- one station's device ----------------------------------------------------------------

    async def _device(self, d: DevicePlan) -> None:
        await self._at(d.at)
        for p in d.protocols:
            await self._protocol(p)

    async def _bad(
        self,
        p: ProtocolPlan,
        what: str,
        body: bytes,
        headers: Mapping[str, str],
        expect: tuple[int, str],
        fault: Fault,
    ) -> None:
        self.obs.bad_bodies.add(_sha(body))
        self.obs.faults_sent[fault.value] += 1
        reply = await self._post(body, headers)
        self._expect(f"{_label(p.key)}: {what}", body, headers, reply, {expect})

    async def _protocol(self, p: ProtocolPlan) -> None:
        key = self.keys[p.station]
        rng = self.rng
        choices = self._choices(p)
        if Fault.ARITHMETIC in p.faults:
            body = self._body(p, unbalanced(p.truth, choices, rng), 1)
            await self._bad(
                p, "lines that do not add up", body, key.headers(body), (422, "rules"), Fault.ARITHMETIC
            )
        if Fault.MALFORMED in p.faults and p.malformed is not None:
            body = malformed_body(p.malformed, self._obj(p, p.truth, 1), rng)
            await self._bad(
                p,
                f"malformed body ({p.malformed})",
                body,
                key.headers(body),
                MALFORMED[p.malformed],
                Fault.MALFORMED,
            )
        if Fault.FORGED in p.faults:
            forger = DeviceKey(p.station, nacl.signing.SigningKey(rng.randbytes(32)))
            body = self._body(p, self._other_reading(p, choices), 7)
            headers = {KEY_ID_HEADER: key.key_id, SIGNATURE_HEADER: forger.sign(body)}
            await self._bad(p, "forged signature", body, headers, (401, "forged-signature"), Fault.FORGED)
        if Fault.WRONG_KEY in p.faults and len(self._stations) > 1:
            other = rng.choice(self._stations)
            while other == p.station:
                other = rng.choice(self._stations)
            body = self._body(p, p.truth, 8)
            await self._bad(
                p,
                f"signed with station {other}'s key",
                body,
                self.keys[other].headers(body),
                (403, "wrong-station"),
                Fault.WRONG_KEY,
            )
        if p.role == Role.OUT_OF_ORDER:
            await self._race(p)
            return
        photo = fake_photo(p.key) if p.photo else None
        lines = p.other if p.role == Role.CORRECTION and p.other is not None else p.truth
        body = self._body(p, lines, 1, _sha(photo) if photo is not None else None)
        receipt = await self._send_counted(p, lines, body)
        if receipt is None:
            return
        if Fault.DUPLICATE in p.faults:
            self.obs.faults_sent[Fault.DUPLICATE.value] += 1
            again = body if rng.random() < 0.5 else self._body(p, lines, 2, _sha(photo) if photo else None)
            reply = await self._post(again, key.headers(again))
            if self._expect(f"{_label(p.key)}: duplicate", again, key.headers(again), reply, DUPLICATE):
                self._receipt(p.key, lines, again, reply, f"{_label(p.key)}: duplicate")
        if photo is not None:
            await self._photo(p, photo)
        if p.role == Role.CORRECTION:
            self._later(self._correct(p, body))
        elif p.role == Role.ANNULMENT:
            self._later(self._annul(p, body))
        elif p.role == Role.CONFLICT:
            self._later(self._conflict(p))
        elif Fault.REPLAY in p.faults:
            self._later(self._replay_in_force(p, lines, body))

    async def _send_counted(
        self, p: ProtocolPlan, lines: Mapping[str, int], body: bytes
    ) -> dict[str, Any] | None:
        key = self.keys[p.station]
        headers = key.headers(body)
        first_timeout = None
        pieces: tuple[tuple[int, float], ...] = ()
        if Fault.TIMEOUT in p.faults:
            self.obs.faults_sent[Fault.TIMEOUT.value] += 1
            first_timeout = IMPATIENT
        if Fault.SLOW in p.faults:
            self.obs.faults_sent[Fault.SLOW.value] += 1
            step = max(1, len(body) // 4)
            pieces = tuple((step, self.rng.uniform(0.2, 0.6)) for _ in range(3))
        reply = await self._post(body, headers, first_timeout=first_timeout, pieces=pieces)
        if not self._expect(_label(p.key), body, headers, reply, ACCEPTED):
            return None
        return self._receipt(p.key, lines, body, reply, _label(p.key))

    async def _photo(self, p: ProtocolPlan, photo: bytes) -> None:
        key = self.keys[p.station]
        path = f"{PROTOCOLS}/{p.station}/{p.contest}/{p.kind}/image"
        headers = {**key.headers(photo), "Content-Type": "image/jpeg"}
        reply = await self._request("PUT", path, photo, headers)
        if reply.status in (200, 201):
            self.obs.images += 1
        else:
            self.obs.mistake(f"{_label(p.key)}: photo upload got {reply.status} {_reason(reply)}")

    async def _race(self, p: ProtocolPlan) -> None:
        """Two versions of one protocol in flight at once; the newer must end up counting."""
        assert p.other is not None
        key = self.keys[p.station]
        older = self._body(p, p.other, 1)
        newer = self._body(p, p.truth, 2)
        self.obs.faults_sent[Fault.OUT_OF_ORDER.value] += 1

        async def send(body: bytes, pause: float) -> Reply:
            await asyncio.sleep(pause)
            return await self._post(body, key.headers(body))

        gap = self.rng.uniform(0.0, 0.02)
        r_new, r_old = await asyncio.gather(send(newer, 0.0), send(older, gap))
        allowed = set(ACCEPTED) | {CONFLICT}
        what = f"{_label(p.key)}: out-of-order versions"
        ok_new = self._expect(what, newer, key.headers(newer), r_new, allowed)
        ok_old = self._expect(what, older, key.headers(older), r_old, allowed)
        if not (ok_new and ok_old):
            return
        new_counts, old_counts = r_new.status in (200, 201), r_old.status in (200, 201)
        if new_counts == old_counts:
            self.obs.mistake(
                f"{what}: {'both' if new_counts else 'neither'} counted ({r_new.status} and {r_old.status})"
            )
            return
        if new_counts:
            self._receipt(p.key, p.truth, newer, r_new, what)
            conflict = r_old.field("conflict_id")
            self._later(self._resolve(p, conflict, accept=False, superseded=None))
        else:
            self._receipt(p.key, p.other, older, r_old, what)
            conflict = r_new.field("conflict_id")
            self._later(self._resolve(p, conflict, accept=True, superseded=older))

    async def _conflict(self, p: ProtocolPlan) -> None:
        """A different protocol arrives for a station whose protocol already counts."""
        assert p.other is not None
        await asyncio.sleep(self.rng.uniform(0.0, 0.5))
        key = self.keys[p.station]
        body = self._body(p, p.other, 3)
        reply = await self._post(body, key.headers(body))
        if self._expect(f"{_label(p.key)}: conflicting protocol", body, key.headers(body), reply, {CONFLICT}):
            self._later(self._resolve(p, reply.field("conflict_id"), accept=False, superseded=None))

    async def _replay_in_force(self, p: ProtocolPlan, lines: Mapping[str, int], body: bytes) -> None:
        await asyncio.sleep(self._staff_delay())
        self.obs.faults_sent[Fault.REPLAY.value] += 1
        headers = self.keys[p.station].headers(body)
        reply = await self._post(body, headers)
        what = f"{_label(p.key)}: replay of the protocol in force"
        if self._expect(what, body, headers, reply, DUPLICATE):
            self._receipt(p.key, lines, body, reply, what)

    async def _replay_dead(self, p: ProtocolPlan, body: bytes, what: str) -> None:
        """Old bytes that no longer count (superseded or annulled) must be refused."""
        if Fault.REPLAY not in p.faults:
            return
        self.obs.faults_sent[Fault.REPLAY.value] += 1
        headers = self.keys[p.station].headers(body)
        reply = await self._post(body, headers)
        self._expect(
            f"{_label(p.key)}: replay of the {what} protocol", body, headers, reply, {(409, "replay")}
        )

    # -- commission staff --------------------------------------------------------------------

    def _auth(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[person]}", "Content-Type": "application/json"}

    def _staff_deadline(self) -> float:
        return time.monotonic() + self.give_up

    async def _pause(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise NightError(f"{what}: no answer for {self.give_up:.0f} s")
        self.obs.retries += 1
        await asyncio.sleep(self.rng.uniform(0.2, 0.8))

    async def _propose(self, person: str, proposal: dict[str, Any], what: str) -> int | None:
        """Propose; after a lost answer, find the proposal by its tag before proposing again."""
        tag = f"[sim {self.rng.getrandbits(48):012x}]"
        proposal = {**proposal, "reason": f"{proposal['reason']} {tag}"}
        data = json.dumps(proposal).encode()
        deadline = self._staff_deadline()
        while True:
            try:
                reply = await self.http.request("POST", PROPOSALS, data, self._auth(person), self.timeout)
            except HttpError:
                found = await self._find_proposal(person, tag)
                if found is not None:
                    self.obs.staff["proposed"] += 1
                    return found
                await self._pause(deadline, what)
                continue
            if reply.status == 503:
                await self._pause(deadline, what)
                continue
            if reply.status == 201 and isinstance(reply.field("id"), int):
                self.obs.staff["proposed"] += 1
                return int(reply.field("id"))
            self.obs.mistake(f"{what}: proposal got {reply.status} {_reason(reply)}: {reply.field('error')}")
            return None

    async def _find_proposal(self, person: str, tag: str) -> int | None:
        reply = await self._request("GET", f"{PROPOSALS}?status=proposed", headers=self._auth(person))
        for row in reply.field("proposals") or []:
            if isinstance(row, dict) and tag in str(row.get("reason", "")):
                return int(row["id"])
        return None

    async def _approve(self, person: str, pid: int, what: str) -> bool:
        """Approve; an answer lost to a crash is settled by reading the proposal back."""
        path = f"{PROPOSALS}/{pid}/approve"
        deadline = self._staff_deadline()
        while True:
            try:
                reply: Reply | None = await self.http.request(
                    "POST", path, b"{}", self._auth(person), self.timeout
                )
            except HttpError:
                reply = None
            if reply is not None and reply.status == 200:
                self.obs.staff["approved"] += 1
                return True
            if reply is None or reply.status == 503 or (reply.status, _reason(reply)) == (409, "decided"):
                state = await self._request("GET", f"{PROPOSALS}/{pid}", headers=self._auth(person))
                status = state.field("status")
                if status == "approved":
                    self.obs.staff["approved"] += 1
                    return True
                if status == "proposed" and (reply is None or reply.status == 503):
                    await self._pause(deadline, what)
                    continue
                self.obs.mistake(f"{what}: proposal {pid} is {status} after an approval by {person}")
                return False
            self.obs.mistake(
                f"{what}: approval of proposal {pid} by {person} got {reply.status} "
                f"{_reason(reply)}: {reply.field('error')}"
            )
            return False

    async def _own_approval_refused(self, person: str, pid: int, what: str) -> None:
        """The proposer tries to approve their own proposal: it must be refused (403)."""
        reply = await self._request("POST", f"{PROPOSALS}/{pid}/approve", b"{}", self._auth(person))
        if (reply.status, _reason(reply)) == (403, "two-person-rule"):
            self.obs.staff["self-approval refused"] += 1
        else:
            self.obs.mistake(
                f"{what}: {person} approving their own proposal got {reply.status} "
                f"{_reason(reply)}, expected 403 two-person-rule"
            )

    async def _correct(self, p: ProtocolPlan, sent: bytes) -> None:
        await asyncio.sleep(self._staff_delay())
        what = f"{_label(p.key)}: correction"
        proposal = {
            "action": "correction",
            "station": p.station,
            "contest": p.contest,
            "count_kind": p.kind,
            "reason": "the protocol was copied wrongly from the paper form",
            "body": self._obj(p, p.truth, 9),
        }
        pid = await self._propose(OPERATOR, proposal, what)
        if pid is not None and await self._approve(SUPERVISOR_A, pid, what):
            self.obs.staff["corrections"] += 1
            await self._replay_dead(p, sent, "corrected")

    async def _annul(self, p: ProtocolPlan, sent: bytes) -> None:
        await asyncio.sleep(self._staff_delay())
        what = f"{_label(p.key)}: annulment"
        proposal = {
            "action": "annulment",
            "station": p.station,
            "contest": p.contest,
            "count_kind": p.kind,
            "reason": "violations at the station (court decision)",
        }
        pid = await self._propose(SUPERVISOR_B, proposal, what)
        if pid is None:
            return
        await self._own_approval_refused(SUPERVISOR_B, pid, what)
        if await self._approve(SUPERVISOR_A, pid, what):
            self.obs.staff["annulments"] += 1
            await self._replay_dead(p, sent, "annulled")

    async def _resolve(
        self, p: ProtocolPlan, conflict: Any, *, accept: bool, superseded: bytes | None
    ) -> None:
        await asyncio.sleep(self._staff_delay())
        what = f"{_label(p.key)}: {'accepting' if accept else 'dismissing'} conflict {conflict}"
        if not isinstance(conflict, int):
            self.obs.mistake(f"{what}: the 409 answer named no conflict_id")
            return
        proposal = {
            "action": "accept-conflict" if accept else "dismiss-conflict",
            "conflict_id": conflict,
            "reason": "the newer protocol is the right one"
            if accept
            else "not the protocol signed at the station",
        }
        pid = await self._propose(OPERATOR, proposal, what)
        if pid is not None and await self._approve(SUPERVISOR_B, pid, what):
            self.obs.staff["conflicts settled"] += 1
            if superseded is not None:
                await self._replay_dead(p, superseded, "superseded")

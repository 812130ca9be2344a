"""What station pages and the bulletin show besides the protocols in force: every version of
a station's protocols, the photos of paper protocols, the intake journal in aggregate, and
the history of station device keys (docs/bulletin.md §2, §12).

Everything is folded *incrementally*. A long-running publisher reads each new ledger entry
once (:meth:`LedgerFacts.sync`) and each new intake journal line once
(:meth:`JournalTally.update`); a station page gathers its own history only when it is
rendered (:func:`station_history`).

Only decisions are kept per station because of tallyroom's ledger rules (docs/bulletin.md
§6.1): a protocol entry counts from the moment it is appended until a two-person decision
supersedes or annuls it, and a second protocol while one counts makes the gate refuse the
ledger. So every version of a station's protocol is either the one in force or the target of
a decision, and a station without decisions has no history beyond its protocols in force —
which the display step already has. The history of a station with decisions is read from the
few entries its decisions name, never by scanning the ledger.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.intake.signature import key_id_for
from tallyroom.ledger.entry import EntryError, decode_entry
from tallyroom.publish.ledger_view import LedgerPrefix
from tallyroom.publish.results import Results, Row
from tallyroom.store import intake as db
from tallyroom.store.sql import Store

#: Count kinds in the order a station page lists their history.
COUNT_KINDS = ("machine", "hand", "recount")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: File name extension of a protocol image in the snapshot, by its media type.
IMAGE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
MEDIA_TYPES = {ext: media for media, ext in IMAGE_EXTENSIONS.items()}
#: (contest id, station id, count kind)
StationKey = tuple[str, str, str]
OUTCOMES = ("accepted", "duplicate", "conflict", "rejected")


class _Decision(msgspec.Struct):
    """The decision line of a correction or annulment (tallyroom.intake.corrections)."""

    action: str
    target: int
    station: str
    contest: str
    count_kind: str
    reason: str | None = None
    proposed_by: str | None = None
    approved_by: str | None = None
    device: Any = None


_decision = msgspec.json.Decoder(_Decision)


def decisions_between(
    prefix: LedgerPrefix, start: int, end: int, listed: int
) -> tuple[int, list[dict[str, Any]]]:
    """The corrections and annulments among ledger entries ``start`` to ``end`` (``end`` not
    included): how many, and the first ``listed`` in ledger order as ``changes.json`` lists
    them (docs/bulletin.md §9). Each is a decision two people took (one proposed, another
    approved: tallyroom.intake.corrections), so a reader of "what changed" learns why a
    total went down or a station's protocol was replaced, not only that it did."""
    total = 0
    out: list[dict[str, Any]] = []
    for e in prefix.entries[start:end]:
        if e.kind not in ("correction", "annulment"):
            continue
        try:
            _, payload = decode_entry(e.data)
            d = _decision.decode(payload.partition(b"\n")[0])
        except (EntryError, msgspec.DecodeError, msgspec.ValidationError):
            continue  # the gate refuses a ledger whose decisions do not decode
        total += 1
        if len(out) < listed:
            out.append(
                {
                    "ledger_index": e.index,
                    "entry": e.kind,
                    "action": d.action,
                    "contest": d.contest,
                    "station": d.station,
                    "count_kind": d.count_kind,
                    "target": d.target,
                    "reason": d.reason,
                    "proposed_by": d.proposed_by,
                    "approved_by": d.approved_by,
                }
            )
    return total, out


class _ImageRef(msgspec.Struct):
    image_sha256: Any = None
    station: Any = None
    contest: Any = None
    count_kind: Any = None


_image_ref = msgspec.json.Decoder(_ImageRef)


class _KeyChange(msgspec.Struct):
    """A `key_change` payload (tallyroom.intake.keys)."""

    action: str
    keys: list[Any] = msgspec.field(default_factory=list)
    revoked: list[Any] = msgspec.field(default_factory=list)
    reason: Any = None
    by: Any = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _declared_image(body: bytes) -> tuple[str, StationKey] | None:
    """The body's ``image_sha256`` when it is a SHA-256 in hex (it becomes a file name), and
    the (contest, station, count kind) of the body."""
    try:
        ref = _image_ref.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    sha = ref.image_sha256
    if not (isinstance(sha, str) and SHA256_HEX.match(sha)):
        return None
    key = (ref.contest, ref.station, ref.count_kind)
    return (sha, key) if all(isinstance(x, str) for x in key) else None


def _source(envelope: Any) -> tuple[str | None, str | None]:
    """(source, device key id) of a protocol entry's envelope."""
    if not isinstance(envelope, dict):
        return None, None
    if envelope.get("via") == "import":
        return "import", None
    kid = envelope.get("key_id")
    return ("device", kid) if isinstance(kid, str) else (None, None)


def history_event(
    index: int, leaf_hash: str, kind: str, head: Any, body: bytes | None, body_sha256: str | None = None
) -> dict[str, Any]:
    """One item of a station page's history (docs/bulletin.md §12), status not yet set.

    ``head`` is the protocol's envelope (``kind`` "protocol") or the decision line of a
    correction or annulment; ``body`` the bytes after it (``body_sha256`` when only the hash
    is at hand)."""
    sha = body_sha256 if body is None else (hashlib.sha256(body).hexdigest() if body else None)
    event: dict[str, Any] = {
        "ledger_index": index,
        "leaf_hash": leaf_hash,
        "entry": kind,
        "action": "submit",
        "status": "counts",
        "ended_by": None,
        "target": None,
        "source": None,
        "key_id": None,
        "body_sha256": sha,
        "reason": None,
        "proposed_by": None,
        "approved_by": None,
    }
    if kind == "protocol":
        event["source"], event["key_id"] = _source(head)
        return event
    h = head if isinstance(head, dict) else {}
    device = h.get("device")
    kid = device.get("key_id") if isinstance(device, dict) else None
    event.update(
        action=str(h.get("action")),
        target=h.get("target") if isinstance(h.get("target"), int) else None,
        source="device" if isinstance(kid, str) else "commission",
        key_id=kid if isinstance(kid, str) else None,
        reason=_text(h.get("reason")),
        proposed_by=_text(h.get("proposed_by")),
        approved_by=_text(h.get("approved_by")),
    )
    if event["action"] == "annul":
        event.update(body_sha256=None, source="commission", key_id=None)
    return event


def set_statuses(events: list[dict[str, Any]]) -> int | None:
    """Statuses of one (contest, station, count kind)'s events in ledger order, as §12
    defines them; returns the ledger index in force at the end (None when annulled)."""
    current: dict[str, Any] | None = None
    for ev in events:
        action = ev["action"]
        if action in ("submit", "supersede"):
            if current is not None:
                current["status"], current["ended_by"] = "superseded", ev["ledger_index"]
            ev["status"], ev["ended_by"] = "counts", None
            current = ev
        elif action == "annul":
            if current is not None:
                current["status"], current["ended_by"] = "annulled", ev["ledger_index"]
            ev["status"] = "decision"
            current = None
        else:  # dismiss: the other reading was turned down and never counted
            ev["status"] = "dismissed"
    return None if current is None else int(current["ledger_index"])


@dataclass
class LedgerFacts:
    """Facts folded from ledger entries, one entry at a time, in ledger order."""

    #: Entries folded so far, and the leaf hash of the last (to notice a different ledger).
    size: int = 0
    last_leaf: bytes = b""
    #: (contest, station, kind) -> [(decision's ledger index, the index it acts on)]
    decisions: dict[StationKey, list[tuple[int, int]]] = field(default_factory=dict)
    #: station -> ledger indices of the decisions about it
    station_decisions: dict[str, list[int]] = field(default_factory=dict)
    #: ledger index -> the ``image_sha256`` its protocol body declares, and the body's key
    images: dict[int, str] = field(default_factory=dict)
    image_keys: dict[int, StationKey] = field(default_factory=dict)
    #: key id -> station, for keys of the definition and every registered key
    key_station: dict[str, str] = field(default_factory=dict)
    #: station -> its key changes in ledger order (bulletin/stations.json ``key_changes``)
    key_changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Bumped whenever ``key_changes`` grows (stations.json is rebuilt only then).
    key_change_count: int = 0
    prefix: LedgerPrefix | None = None

    def reset(self) -> None:
        fresh = LedgerFacts()
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def sync(self, prefix: LedgerPrefix, election: CompiledElection) -> set[str] | None:
        """Fold the entries of ``prefix`` not folded yet. Returns the stations with new
        decisions, or None when everything was folded again (another ledger, or the first
        time): then every station may have changed."""
        fresh = self.size == 0
        if self.size > prefix.size or (
            self.size and prefix.entries[self.size - 1].leaf_hash != self.last_leaf
        ):
            self.reset()
            fresh = True
        if not self.key_station:
            for st in election.stations:
                kid = _definition_key_id(st.key)
                if kid is not None:
                    self.key_station[kid] = st.id
        touched: set[str] = set()
        for e in prefix.entries[self.size :]:
            if e.kind == "protocol":
                # Most protocols declare no photo: a byte search spares decoding them.
                if b'"image_sha256"' in e.data:
                    self._image(e.index, e.data.split(b"\n", 2)[-1])
            elif e.kind in ("correction", "annulment"):
                self._decision(e.index, e.data, touched)
            elif e.kind == "key_change":
                self._key_change(e.index, e.data)
        if prefix.size:
            self.size = prefix.size
            self.last_leaf = prefix.entries[-1].leaf_hash
        self.prefix = prefix
        return None if fresh else touched

    def _decision(self, index: int, data: bytes, touched: set[str]) -> None:
        try:
            _, payload = decode_entry(data)
            head, _, body = payload.partition(b"\n")
            d = _decision.decode(head)
        except (EntryError, msgspec.DecodeError, msgspec.ValidationError):
            return  # the gate refuses a ledger whose decisions do not decode
        self.decisions.setdefault((d.contest, d.station, d.count_kind), []).append((index, d.target))
        self.station_decisions.setdefault(d.station, []).append(index)
        touched.add(d.station)
        if d.action == "supersede" and body:
            self._image(index, body)

    def _image(self, index: int, body: bytes) -> None:
        got = _declared_image(body)
        if got is not None:
            self.images[index], self.image_keys[index] = got

    def _key_change(self, index: int, data: bytes) -> None:
        try:
            _, payload = decode_entry(data)
            doc = msgspec.json.decode(payload, type=_KeyChange)
        except (EntryError, msgspec.DecodeError, msgspec.ValidationError):
            return
        base = {"ledger_index": index, "action": doc.action, "reason": _text(doc.reason), "by": _text(doc.by)}
        # Revocations first: a rotation revokes the old key and registers the new one.
        for kid in doc.revoked:
            station = self.key_station.get(kid) if isinstance(kid, str) else None
            if station is None:
                continue
            self._add_key_change(station, {**base, "change": "revoked", "key_id": kid, "public_key": None})
        for item in doc.keys:
            if not isinstance(item, dict):
                continue
            kid, station, public = item.get("key_id"), item.get("station"), item.get("public_key")
            if not (isinstance(kid, str) and isinstance(station, str) and isinstance(public, str)):
                continue
            self.key_station.setdefault(kid, station)
            self._add_key_change(
                station, {**base, "change": "registered", "key_id": kid, "public_key": public}
            )

    def _add_key_change(self, station: str, item: dict[str, Any]) -> None:
        self.key_changes.setdefault(station, []).append(item)
        self.key_change_count += 1

    def events(self, key: StationKey, in_force: int | None) -> list[dict[str, Any]]:
        """Every entry acting on ``key``: the targets of its decisions, the decisions and
        the protocol in force, each decoded from its own bytes."""
        assert self.prefix is not None
        indices = {i for pair in self.decisions.get(key, ()) for i in pair}
        if in_force is not None:
            indices.add(in_force)
        out = []
        for i in sorted(indices):
            e = self.prefix.entries[i]
            kind, payload = decode_entry(e.data)
            head, _, body = payload.partition(b"\n")
            out.append(history_event(i, e.leaf_hash.hex(), str(kind), msgspec.json.decode(head), body))
        return out


def _definition_key_id(key: str | None) -> str | None:
    if not key:
        return None
    try:
        public = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key_id_for(public) if len(public) == 32 else None


def _row_event(row: Row) -> dict[str, Any]:
    """The history item of a protocol in force, from its station record alone."""
    env = row["envelope"]
    kind = "correction" if isinstance(env, dict) and "action" in env else "protocol"
    return history_event(row["ledger_index"], row["leaf_hash"], kind, env, None, row["body_sha256"])


def station_history(
    election: CompiledElection, si: int, results: Results, facts: LedgerFacts | None
) -> list[dict[str, Any]]:
    """A station's history (docs/bulletin.md §12): per contest (definition order) and count
    kind (machine, hand, recount), every entry acting on it in ledger order. Without
    ``facts`` only the protocols in force are known."""
    st = election.stations[si]
    out = []
    for c in election.contests:
        if si not in c.station_set:
            continue
        for kind in COUNT_KINDS:
            key = (c.id, st.id, kind)
            row = results.stations.get(key)
            decided = facts is not None and key in facts.decisions
            if row is None and not decided:
                continue
            in_force = None if row is None else int(row["ledger_index"])
            if decided:
                assert facts is not None
                events = facts.events(key, in_force)
            else:
                assert row is not None
                events = [_row_event(row)]
            out.append(
                {
                    "contest": c.id,
                    "count_kind": kind,
                    "in_force": set_statuses(events),
                    "entries": events,
                }
            )
    return out


# -- the intake journal ---------------------------------------------------------------------


def _zero() -> dict[str, Any]:
    return {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0, "reasons": {}}


def _add(counts: dict[str, Any], outcome: str, reason: str | None) -> None:
    if outcome not in OUTCOMES:
        return
    counts[outcome] += 1
    if outcome in ("rejected", "conflict"):
        r = reason or "unspecified"
        counts["reasons"][r] = counts["reasons"].get(r, 0) + 1


class JournalTally:
    """The intake journal summed per station, one new line at a time.

    Lines are read by id. SQLite commits journal lines in id order, but PostgreSQL may make
    a line visible after a higher id (concurrent intake workers draw ids from one sequence
    and commit in any order), so there the last ``window`` ids are read again each time and
    lines already counted are skipped by id.
    """

    PAGE = 5000

    def __init__(self, window: int = 0) -> None:
        self.window = window
        self.last_id = 0
        self.recent: set[int] = set()
        self.lines = 0
        self.stations: dict[str, dict[str, Any]] = {}
        self.unattributed = _zero()
        self._document: dict[str, Any] | None = None
        self._bytes: bytes | None = None

    def update(self, store: Store, election: CompiledElection) -> set[str]:
        """Count the lines written since the last call; return the stations whose counts
        changed."""
        touched: set[str] = set()
        after = max(0, self.last_id - self.window)
        known = election.station_index
        while True:
            page = db.journal_lines(store, None, self.PAGE, after)
            for line in page:
                lid = int(line["id"])
                after = max(after, lid)
                if lid in self.recent or (lid <= self.last_id and not self.window):
                    continue
                if self.window:
                    self.recent.add(lid)
                self.last_id = max(self.last_id, lid)
                station = line["station"]
                if isinstance(station, str) and station in known:
                    counts = self.stations.get(station)
                    if counts is None:
                        counts = self.stations[station] = _zero()
                    touched.add(station)
                else:
                    counts = self.unattributed
                _add(counts, str(line["outcome"]), line["reason"])
                self.lines += 1
                self._document = None
            if len(page) < self.PAGE:
                break
        if self.window:
            floor = self.last_id - self.window
            self.recent = {i for i in self.recent if i > floor}
        return touched

    def station(self, station: str) -> dict[str, Any] | None:
        got = self.stations.get(station)
        return None if got is None else _sorted_counts(got)

    def document(self) -> dict[str, Any]:
        """``bulletin/journal.json`` (docs/bulletin.md §2)."""
        if self._document is None:
            totals = _zero()
            for counts in (*self.stations.values(), self.unattributed):
                for o in OUTCOMES:
                    totals[o] += counts[o]
                for r, n in counts["reasons"].items():
                    totals["reasons"][r] = totals["reasons"].get(r, 0) + n
            self._document = {
                "format": "tallyroom-journal/1",
                "lines": self.lines,
                "stations": {s: _sorted_counts(c) for s, c in sorted(self.stations.items())},
                "unattributed": _sorted_counts(self.unattributed),
                "totals": _sorted_counts(totals),
            }
            self._bytes = None
        return self._document

    def document_bytes(self) -> bytes:
        """``bulletin/journal.json`` as canonical JSON (encoded again only when it changed)."""
        doc = self.document()
        if self._bytes is None:
            self._bytes = msgspec.json.encode(doc, order="deterministic") + b"\n"
        return self._bytes


def _sorted_counts(counts: Mapping[str, Any]) -> dict[str, Any]:
    return {**{o: counts[o] for o in OUTCOMES}, "reasons": dict(sorted(counts["reasons"].items()))}


# -- what a station page adds to its protocols ------------------------------------------------


@dataclass
class StationExtras:
    """History, photos and intake figures for station pages (see :meth:`Site.station_data`)."""

    facts: LedgerFacts | None = None
    #: station -> its intake counts (as in bulletin/journal.json)
    journal: JournalTally | None = None
    #: image SHA-256 -> (path in the snapshot, media type), for every image published
    images: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def image(self, ledger_index: int) -> dict[str, Any] | None:
        """The photo the protocol at ``ledger_index`` declares, and where it is (if uploaded)."""
        if self.facts is None:
            return None
        sha = self.facts.images.get(ledger_index)
        if sha is None:
            return None
        got = self.images.get(sha)
        return {
            "sha256": sha,
            "path": None if got is None else got[0],
            "media_type": None if got is None else got[1],
        }

    def intake(self, station: str) -> dict[str, Any] | None:
        return None if self.journal is None else self.journal.station(station)

    def digest(self, election: CompiledElection, si: int, results: Results) -> str | None:
        """A digest of everything this adds to station ``si``'s page (None: nothing)."""
        st = election.stations[si]
        parts: list[Any] = []
        if self.facts is not None:
            decided = self.facts.station_decisions.get(st.id)
            if decided:
                parts.append(["d", decided])
        intake = self.intake(st.id)
        if intake is not None:
            parts.append(["j", intake])
        for c in election.contests:
            if si not in c.station_set:
                continue
            for kind in COUNT_KINDS:
                row = results.stations.get((c.id, st.id, kind))
                if row is None:
                    continue
                img = self.image(int(row["ledger_index"]))
                if img is not None:
                    parts.append(["i", row["ledger_index"], img["sha256"], img["path"]])
        if not parts:
            return None
        return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()[:32]


def candidate_stations(facts: LedgerFacts, journal: JournalTally) -> Iterable[str]:
    """Stations that may have something in :meth:`StationExtras.digest`."""
    return set(facts.station_decisions) | set(journal.stations) | {k[1] for k in facts.image_keys.values()}

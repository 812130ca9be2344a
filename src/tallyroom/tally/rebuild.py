"""Recompute the tally from ledger entries alone (DESIGN invariant 1).

This is what `tallyroom rebuild`, the publish gate and the verifier share: a pure function of
a ledger prefix. It never reads the running totals it is meant to check.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import attrgetter
from typing import Any, Literal

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.ledger.entry import EntryKind, decode_entry, encode_entry
from tallyroom.tally.running import Tally


class _Counted(msgspec.Struct):
    """The fields of a protocol body the tally needs; msgspec skips the rest unread."""

    station: str
    contest: str
    count_kind: str
    lines: dict[str, int]


_body = msgspec.json.Decoder(_Counted)


class _Head(msgspec.Struct, gc=False):
    """`_Counted` with the lines left undecoded, to decode them with the contest's own type."""

    station: str
    contest: str
    count_kind: str
    lines: msgspec.Raw


_head = msgspec.json.Decoder(_Head)


def _lines_type(line_ids: tuple[str, ...]) -> type[msgspec.Struct]:
    """A struct with one field per line id, in form order: decoded lines come out in form order
    whatever order the body lists them in; a missing or unknown line, or a value that is not an
    int, raises `msgspec.ValidationError` (and the caller takes the general path)."""
    return msgspec.defstruct(
        "Lines",
        [(f"f{i}", int) for i in range(len(line_ids))],
        rename={f"f{i}": lid for i, lid in enumerate(line_ids)},
        forbid_unknown_fields=True,
        gc=False,
    )


def _body_decoder(line_ids: tuple[str, ...]) -> msgspec.json.Decoder[Any]:
    """`_Counted` with the lines of one contest decoded straight into `_lines_type`."""
    body = msgspec.defstruct(
        "Counted",
        [("station", str), ("contest", str), ("count_kind", str), ("lines", _lines_type(line_ids))],
        gc=False,
    )
    return msgspec.json.Decoder(body)


class _Decision(msgspec.Struct):
    """The first line of a correction or annulment entry (see tallyroom.intake.corrections)."""

    action: str
    target: int
    station: str
    contest: str
    count_kind: str


_decision = msgspec.json.Decoder(_Decision)


class RebuildError(ValueError):
    """A ledger entry that cannot be part of this election's ledger."""


@dataclass
class Rebuilt:
    tally: Tally
    #: (contest, station, count kind) -> (ledger index, counts) of every counted protocol.
    active: dict[tuple[int, int, str], tuple[int, list[int]]] = field(default_factory=dict)
    protocols: int = 0


def rebuild(election: CompiledElection, entries: Iterable[tuple[int, bytes]]) -> Rebuilt:
    """Fold every protocol entry of the ledger into a fresh tally.

    A second protocol for a key that already counts would be a conflict, which the store
    never appends as a protocol entry; finding one means the ledger was not written by
    tallyroom's rules, so it is an error rather than silently replacing the first.
    Correction entries (two-person decisions) replace the protocol in force with their body
    or, for a dismissed conflict, keep it; annulment entries stop it counting.
    """
    folder = Folder(election)
    it = iter(entries)
    with paused_gc():
        while chunk := list(islice(it, CHUNK)):
            folder.add(chunk)
    return folder.finish()


#: Entries a rebuild decodes at a time.
CHUNK = 20_000


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while folding (or importing) a whole ledger or file.

    Every protocol leaves a few small containers behind, none in a cycle: reference counting
    frees them all, while the collector would keep walking them (and, without the freeze,
    the million objects of a large election) — a fifth of a rebuild's time, measured. The
    collector is back on, as it was, when the block ends; objects a caller froze before
    stay frozen.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    own = gc.get_freeze_count() == 0
    if own:
        gc.freeze()
    try:
        yield
    finally:
        if own:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


class _Slow(Exception):
    """A run of protocol entries that must be folded one by one (to fail or decide in order)."""


_contest_of = attrgetter("contest")
_station_of = attrgetter("station")
_kind_of = attrgetter("count_kind")
_lines_of = attrgetter("lines")


#: Protocol entries decoded ahead (`Folder.decode`), one contest: their ledger indices, the
#: contest, their stations and count kinds, and their counts.
Decoded = tuple[list[int], int, list[int], list[str], list[list[int]]]
#: What `Folder.decode` makes of a chunk of entries, in ledger order: runs of protocols it
#: decoded, and entries left as they are (decisions, other kinds, anything unusual).
Segment = tuple[Literal["decoded"], Decoded] | tuple[Literal["entries"], list[tuple[int, bytes]]]


class Folder:
    """Folds ledger entries in order: runs of protocol entries a list at a time, in C where
    possible, and entry by entry (`_one`) whenever anything is unusual.

    `add` decodes a chunk (`decode`: runs of protocol entries, each run decoded whole or left
    as entries) and folds it (`add_segments`). A run that decodes whole can only still fail by
    counting a key twice, and that is reported at the entry where it happens, as entry by entry.
    """

    def __init__(self, election: CompiledElection) -> None:
        self.election = election
        self.out = Rebuilt(Tally(election))
        self.header = encode_entry(EntryKind.PROTOCOL, b"")
        self.bodies = {c.id: _body_decoder(c.line_ids) for c in election.contests}
        self.lines = {c.id: msgspec.json.Decoder(_lines_type(c.line_ids)) for c in election.contests}
        #: The contest the last run of protocols was for: most ledgers have one.
        self.guess = election.contests[0].id if election.contests else ""

    def add(self, chunk: list[tuple[int, bytes]]) -> None:
        self.add_segments(self.decode(chunk))

    def finish(self) -> Rebuilt:
        with paused_gc():
            self.out.tally.apply_batch((c, s, k, v[1]) for (c, s, k), v in self.out.active.items())
        return self.out

    def decode(self, chunk: list[tuple[int, bytes]]) -> list[Segment]:
        """Split a chunk into runs of protocol entries, decoded where possible, and the rest."""
        out: list[Segment] = []
        header = self.header
        start = 0
        for k, (_idx, data) in enumerate(chunk):
            if not data.startswith(header):
                self._decode_run(chunk[start:k], out)
                out.append(("entries", [chunk[k]]))
                start = k + 1
        self._decode_run(chunk[start:] if start else chunk, out)
        return out

    def _decode_run(self, run: list[tuple[int, bytes]], out: list[Segment]) -> None:
        """Protocol entries in ledger order, with no other entry between them."""
        if not run:
            return
        after = len(self.header)
        # Skip the header and the envelope line: the body is the rest, byte for byte.
        bodies = [d[d.index(b"\n", after) + 1 :] for _i, d in run]
        try:
            try:  # one contest, the one of the run before: decoded whole in one pass
                decoded = list(map(self.bodies[self.guess].decode, bodies))
                if set(map(_contest_of, decoded)) != {self.guess}:
                    raise _Slow
            except (msgspec.ValidationError, KeyError, _Slow):
                # Several contests, or another one: the lines once the contest is known.
                decoded = list(map(_head.decode, bodies))
                named = set(map(_contest_of, decoded))
                if len(named) != 1:
                    raise _Slow from None
                self.guess = named.pop()
                lines = list(map(self.lines[self.guess].decode, map(_lines_of, decoded)))
            else:
                lines = list(map(_lines_of, decoded))
            counts = list(map(list, map(msgspec.structs.astuple, lines)))
            ci = self.election.contest_index[self.guess]
            stations = list(map(self.election.station_index.__getitem__, map(_station_of, decoded)))
            kinds = list(map(_kind_of, decoded))
        except (msgspec.ValidationError, msgspec.DecodeError, KeyError, _Slow):
            out.append(("entries", run))
            return
        out.append(("decoded", ([i for i, _d in run], ci, stations, kinds, counts)))

    def add_segments(self, segments: list[Segment]) -> None:
        """Fold decoded runs and plain entries, in ledger order."""
        for segment in segments:
            if segment[0] == "decoded":
                self._fold(*segment[1])
                continue
            for idx, data in segment[1]:
                if data.startswith(self.header):
                    self._one(idx, data)
                    continue
                kind, payload = decode_entry(data)  # raises on a malformed entry
                if kind in (EntryKind.CORRECTION, EntryKind.ANNULMENT):
                    _apply_decision(self.election, self.out, idx, kind, payload)
                # other kinds add no votes

    def _fold(
        self, idxs: list[int], ci: int, stations: list[int], kinds: list[str], counts: list[list[int]]
    ) -> None:
        active = self.out.active
        keys = list(zip(repeat(ci, len(stations)), stations, kinds, strict=True))
        if len(set(keys)) != len(keys) or not active.keys().isdisjoint(keys):
            seen = set(active)
            for idx, key in zip(idxs, keys, strict=True):
                if key in seen:
                    ci, si, kind = key
                    raise RebuildError(
                        f"ledger entry {idx}: a second {kind} protocol for station "
                        f"{self.election.stations[si].id} in {self.election.contests[ci].id} "
                        "without a correction"
                    )
                seen.add(key)
        active.update(zip(keys, zip(idxs, counts, strict=True), strict=True))
        self.out.protocols += len(idxs)

    def _one(self, idx: int, data: bytes) -> None:
        """One protocol entry, checked and decoded the general way."""
        election, active = self.election, self.out.active
        body = _body.decode(data[data.index(b"\n", len(self.header)) + 1 :])
        ci = election.contest_index[body.contest]
        si = election.station_index[body.station]
        counts = _counts(election, ci, body)
        key = (ci, si, body.count_kind)
        if key in active:
            raise RebuildError(
                f"ledger entry {idx}: a second {body.count_kind} protocol for station "
                f"{body.station} in {body.contest} without a correction"
            )
        active[key] = (idx, counts)
        self.out.protocols += 1


def _counts(election: CompiledElection, ci: int, body: _Counted) -> list[int]:
    contest = election.contests[ci]
    if tuple(body.lines) == contest.line_ids:
        return list(body.lines.values())
    counts = [0] * len(contest.line_index)
    for name, value in body.lines.items():
        counts[contest.line_index[name]] = value
    return counts


def _apply_decision(
    election: CompiledElection, out: Rebuilt, idx: int, kind: EntryKind, payload: bytes
) -> None:
    """A two-person decision: supersede, annul, or dismiss (keep) the protocol in force.

    The decision names the ledger index it acts on; if that is not what counts for the key
    at this point of the ledger, the ledger was not written by tallyroom's rules.
    """
    head, _, body_bytes = payload.partition(b"\n")
    d = _decision.decode(head)
    ci = election.contest_index[d.contest]
    key = (ci, election.station_index[d.station], d.count_kind)
    current = out.active.get(key)
    if current is None or current[0] != d.target:
        raise RebuildError(
            f"ledger entry {idx}: {kind.value} of entry {d.target} for station {d.station} in "
            f"{d.contest}, but {'nothing' if current is None else f'entry {current[0]}'} counts there"
        )
    if kind == EntryKind.ANNULMENT:
        if d.action != "annul":
            raise RebuildError(f"ledger entry {idx}: annulment with action {d.action!r}")
        del out.active[key]
    elif d.action == "supersede":
        body = _body.decode(body_bytes)
        if (body.station, body.contest, body.count_kind) != (d.station, d.contest, d.count_kind):
            raise RebuildError(f"ledger entry {idx}: the new protocol is for another station or contest")
        out.active[key] = (idx, _counts(election, ci, body))
    elif d.action != "dismiss":
        raise RebuildError(f"ledger entry {idx}: correction with unknown action {d.action!r}")

"""Recompute the tally from ledger entries alone (DESIGN invariant 1).

This is what `tallyroom rebuild`, the publish gate and the verifier share: a pure function of
a ledger prefix. It never reads the running totals it is meant to check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

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
    tally = Tally(election)
    out = Rebuilt(tally)
    stations = election.station_index
    contests = election.contest_index
    protocol_header = encode_entry(EntryKind.PROTOCOL, b"")
    for idx, data in entries:
        if not data.startswith(protocol_header):
            kind, payload = decode_entry(data)  # raises on a malformed entry
            if kind in (EntryKind.CORRECTION, EntryKind.ANNULMENT):
                _apply_decision(election, out, idx, kind, payload)
            continue  # other kinds add no votes
        # Skip the header and the envelope line: the body is the rest, byte for byte.
        body = _body.decode(data[data.index(b"\n", len(protocol_header)) + 1 :])
        ci = contests[body.contest]
        si = stations[body.station]
        contest = election.contests[ci]
        if tuple(body.lines) == contest.line_ids:
            counts = list(body.lines.values())
        else:
            index = contest.line_index
            counts = [0] * len(index)
            for name, value in body.lines.items():
                counts[index[name]] = value
        key = (ci, si, body.count_kind)
        if key in out.active:
            raise RebuildError(
                f"ledger entry {idx}: a second {body.count_kind} protocol for station "
                f"{body.station} in {body.contest} without a correction"
            )
        out.active[key] = (idx, counts)
        out.protocols += 1
    tally.apply_batch((c, s, k, v[1]) for (c, s, k), v in out.active.items())
    return out


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

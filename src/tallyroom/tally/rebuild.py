"""Recompute the tally from ledger entries alone (DESIGN invariant 1).

This is what `tallyroom rebuild`, the publish gate and the verifier share: a pure function of
a ledger prefix. It never reads the running totals it is meant to check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.protocol.model import ProtocolBody
from tallyroom.tally.running import Tally

_body = msgspec.json.Decoder(ProtocolBody)


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
    """
    tally = Tally(election)
    out = Rebuilt(tally)
    stations = election.station_index
    contests = election.contest_index
    for idx, data in entries:
        kind, payload = decode_entry(data)
        if kind != EntryKind.PROTOCOL:
            continue
        nl = payload.find(b"\n")
        body = _body.decode(payload[nl + 1 :])
        ci = contests[body.contest]
        si = stations[body.station]
        contest = election.contests[ci]
        index = contest.line_index
        counts = [0] * len(index)
        for name, value in body.lines.items():
            counts[index[name]] = value
        key = (ci, si, str(body.count_kind))
        if key in out.active:
            raise RebuildError(
                f"ledger entry {idx}: a second {body.count_kind} protocol for station "
                f"{body.station} in {body.contest} without a correction"
            )
        out.active[key] = (idx, counts)
        tally.apply(ci, si, key[2], counts)
        out.protocols += 1
    return out

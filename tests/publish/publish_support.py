"""A small Kyrgyzstan-2021-shaped election for the publisher's tests (fast to publish).

The generated Kyrgyz election (tallyroom.simulate.kyrgyzstan) cut down to the first
``PER_REGION`` stations of each region and the constituencies those stations vote in: the
real structure (country, 9 regions with P-codes for the map, abroad, single-member
constituencies, ky/ru/en names, the 2021 seat rules) at a size that publishes in seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import msgspec

from tallyroom.commission import create_key
from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.load import load_definition
from tallyroom.definition.model import Definition
from tallyroom.publish import gate
from tallyroom.publish.ledger_view import LedgerPrefix, election_of, protocol_entries, read_prefix
from tallyroom.publish.results import ProtocolEntry, Results, present
from tallyroom.simulate import kyrgyzstan as kg
from tallyroom.store.sql import Store, open_store
from tallyroom.tally.rebuild import Rebuilt

PER_REGION = 8
SEED = 2021


@dataclass(frozen=True)
class Mini:
    definition: Definition
    raw: bytes
    hand: list[kg.GeneratedProtocol]
    machine: list[kg.GeneratedProtocol]


@cache
def mini() -> Mini:
    full = kg.generate_definition(SEED)
    hand_all = kg.generate_protocols(full, SEED)
    machine_all = kg.machine_counts(hand_all, SEED)
    seen: dict[str, int] = {}
    keep: list[str] = []
    for st in full.stations:
        region = st.areas[0]
        if seen.get(region, 0) < PER_REGION:
            seen[region] = seen.get(region, 0) + 1
            keep.append(st.id)
    kept = set(keep)
    stations = [s for s in full.stations if s.id in kept]
    smds = {a for s in stations for a in s.areas[1:]}
    areas = [a for a in full.areas if a.hierarchy != kg.SMD or a.id in smds]
    contests = [c for c in full.contests if c.id == kg.PARTY_LIST or c.area in smds]
    definition = msgspec.structs.replace(full, stations=stations, areas=areas, contests=contests)
    raw = kg.definition_yaml(definition)
    names = {c.id for c in contests}

    def cut(ps: list[kg.GeneratedProtocol]) -> list[kg.GeneratedProtocol]:
        return [p for p in ps if p.station in kept and p.contest in names]

    return Mini(definition, raw, cut(hand_all), cut(machine_all))


def make_store(folder: Path, *, machine: int | None = None, hand: int | None = 0) -> tuple[Store, Path]:
    """A store in ``folder`` with the first ``machine`` / ``hand`` protocols (None: all)."""
    m = mini()
    db = folder / "kg.db"
    key = Path(str(db) + ".commission-key")
    signing = create_key(key, "tallyroom/kg-2021-parliament")
    store = open_store(str(db))
    store.initialize(load_definition(m.raw, "definition.yaml"), signing.verify_key.encode())
    load(store, "machine", m.machine[:machine] if machine is not None else m.machine)
    if hand != 0:
        load(store, "hand", m.hand[:hand] if hand is not None else m.hand)
    return store, key


def load(store: Store, kind: str, protocols: list[kg.GeneratedProtocol]) -> None:
    if protocols:
        kg.load_protocols(store, protocols, kind, file_hash=hashlib.sha256(kind.encode()).hexdigest())


@dataclass(frozen=True)
class Displayed:
    """A store's whole ledger read back, recomputed by the gate and shown by the display step."""

    election: CompiledElection
    prefix: LedgerPrefix
    rebuilt: Rebuilt
    entries: list[ProtocolEntry]
    results: Results


def displayed(store: Store) -> Displayed:
    prefix = read_prefix(store, store.head().size)
    election = election_of(prefix)
    rebuilt = gate.recompute(election, prefix).rebuilt
    assert rebuilt is not None
    entries = list(protocol_entries(election, prefix, rebuilt.active))
    results = present(election, store.tally(), entries, {k[2] for k in rebuilt.active})
    return Displayed(election, prefix, rebuilt, entries, results)

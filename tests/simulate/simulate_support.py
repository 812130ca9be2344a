"""The generated Kyrgyzstan 2021 election, shared by the simulator tests."""

from __future__ import annotations

from dataclasses import dataclass

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.model import Definition
from tallyroom.simulate import kyrgyzstan as kg

SEED = 2021


@dataclass(frozen=True)
class Generated:
    definition: Definition
    raw: bytes
    election: CompiledElection
    hand: list[kg.GeneratedProtocol]
    machine: list[kg.GeneratedProtocol]

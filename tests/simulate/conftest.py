"""One generated Kyrgyzstan 2021 election per test session (generating and loading it takes
a few seconds, mostly the pure-Python YAML parse of its 2,494 stations)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from simulate_support import SEED, Generated

from tallyroom.definition.compiled import compile_election
from tallyroom.definition.load import load_definition
from tallyroom.simulate import kyrgyzstan as kg


@pytest.fixture(scope="session")
def gen() -> Generated:
    definition = kg.generate_definition(SEED)
    raw = kg.definition_yaml(definition)
    election = compile_election(load_definition(raw, "definition.yaml"))
    hand = kg.generate_protocols(definition, SEED)
    machine = kg.machine_counts(hand, SEED)
    return Generated(definition, raw, election, hand, machine)

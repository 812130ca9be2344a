"""Election definitions: loading, every error reported with its path, the generated schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from support import DATA, REPO
from tallyroom.definition.compiled import compile_election
from tallyroom.definition.errors import DefinitionError
from tallyroom.definition.load import load_definition
from tallyroom.definition.schema import definition_schema


def _mutated(change) -> bytes:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load((DATA / "small.yaml").read_text())
    change(doc)
    return yaml.safe_dump(doc, allow_unicode=True).encode()


def _errors(raw: bytes) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_definition(raw, "test.yaml")
    return info.value.errors


def test_small_definition_loads_and_compiles(small_definition: bytes) -> None:
    loaded = load_definition(small_definition)
    e = compile_election(loaded)
    assert len(e.stations) == 6
    pl = e.contest("party-list")
    assert pl.line_ids[-4:] == ("ata-jurt", "ishenim", "yntymak", "against-all")
    # Station 1001 counts towards chui and kg (admin) and smd-1 and smd-all (smd).
    got = {e.areas[a].id for a in e.station_areas[e.station_index["1001"]]}
    assert got == {"chui", "kg", "smd-1", "smd-all"}
    # The constituency contest only has the three stations of smd-2.
    smd = e.contest("smd-2-seat")
    assert sorted(e.stations[s].id for s in smd.stations) == ["1003", "2001", "2002"]
    assert smd.stations_expected[e.area_index["naryn"]] == 2
    assert pl.stations_expected[e.area_index["kg"]] == 6


def test_hash_is_of_the_exact_bytes(small_definition: bytes) -> None:
    a = load_definition(small_definition)
    b = load_definition(small_definition + b"\n# a comment changes the hash\n")
    assert a.sha256 != b.sha256
    assert a.definition == b.definition


def test_unknown_area_is_reported_with_its_path() -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["stations"][3]["areas"][1] = "smd-37"

    assert _errors(_mutated(change)) == ['stations[3].areas[1]: unknown area "smd-37"']


def test_all_errors_are_reported_at_once() -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["stations"][0]["areas"] = ["chui", "naryn"]  # two areas in one hierarchy
        d["stations"][1]["id"] = "1001"  # duplicate
        d["stations"][2]["registered"] = -5
        d["areas"][1]["parent"] = "nowhere"
        d["contests"][0]["rules"] = [{"id": "bad", "expr": "valid == unknown_line"}]
        d["contests"][0]["allocation"]["method"] = "coin-toss"
        d["contests"][1]["form"] = "no-such-form"

    errors = _errors(_mutated(change))
    joined = "\n".join(errors)
    assert 'stations[0].areas[1]: a second area in hierarchy "admin"' in joined
    assert 'stations[1].id: duplicate id "1001" (first at stations[0])' in joined
    assert "stations[2].registered: must be ≥ 0, got -5" in joined
    assert 'areas[1].parent: unknown area "nowhere"' in joined
    assert "contests[0].rules[" in joined and 'unknown line "unknown_line"' in joined
    assert 'contests[0].allocation.method: unknown method "coin-toss"' in joined
    assert 'contests[1].form: unknown form "no-such-form"' in joined
    assert len(errors) == 7


def test_structural_errors_are_all_listed_with_paths() -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        del d["stations"][4]["registered"]
        d["stations"][5]["registered"] = "many"
        d["areas"][0]["colour"] = "red"

    errors = _errors(_mutated(change))
    joined = "\n".join(errors)
    assert "stations[4]: 'registered' is a required property" in joined
    assert "stations[5].registered: 'many' is not of type 'integer'" in joined
    assert "areas[0]: Additional properties are not allowed ('colour' was unexpected)" in joined


def test_parent_cycle_is_found() -> None:
    def change(d: dict) -> None:  # type: ignore[type-arg]
        d["areas"][0]["parent"] = "chui"

    errors = _errors(_mutated(change))
    assert any("loops back" in e for e in errors)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"election: [unclosed", "not valid YAML or JSON"),
        (b'{"election": ', "not valid YAML or JSON"),
    ],
)
def test_unreadable_files_get_one_clear_message(raw: bytes, expected: str) -> None:
    errors = _errors(raw)
    assert len(errors) == 1 and expected in errors[0]


def test_json_and_yaml_give_the_same_model(small_definition: bytes) -> None:
    doc = yaml.safe_load(small_definition)
    as_json = json.dumps(doc).encode()
    assert load_definition(as_json).definition == load_definition(small_definition).definition


def test_published_schema_is_the_generated_one() -> None:
    """docs/definition.schema.json must be what the model generates (regenerate with
    `python -m tallyroom.definition.schema > docs/definition.schema.json`)."""
    published = json.loads((REPO / "docs" / "definition.schema.json").read_text())
    assert published == json.loads(json.dumps(definition_schema()))


def test_example_definitions_in_docs_load() -> None:
    for path in sorted((REPO / "docs" / "examples").glob("*.yaml")):
        load_definition(path.read_bytes(), str(path))


def test_profiles_load() -> None:
    from tallyroom.definition.profiles import available_profiles, load_profile

    assert {"kyrgyzstan", "russia-duma"} <= set(available_profiles())
    ru = load_profile("russia-duma").forms["federal-list"]
    assert [ln.id for ln in ru.lines] == [f"L{i}" for i in range(1, 13)]
    assert [r.expr for r in ru.rules] == [
        "L1 >= L3 + L4 + L5",
        "L2 == L3 + L4 + L5 + L6 + L11 - L12",
        "L7 + L8 == L9 + L10",
        "L10 == sum(choices)",
    ]


def test_schema_module_prints_schema(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "tallyroom.definition.schema"], capture_output=True, check=True
    ).stdout
    assert json.loads(out)["title"] == "tallyroom election definition"

"""Load and check an election definition, reporting every error with its path at once."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from tallyroom.definition.errors import DefinitionError
from tallyroom.definition.model import Definition, Form
from tallyroom.definition.profiles import ProfileError, load_profile
from tallyroom.definition.schema import definition_schema

#: Seat methods a definition may name; `tallyroom.seats` implements each of them.
SEAT_METHODS = frozenset(
    {
        "hare",
        "droop",
        "hagenbach-bischoff",
        "imperiali-quota",
        "dhondt",
        "sainte-lague",
        "modified-sainte-lague",
        "danish",
        "imperiali",
        "huntington-hill",
        "plurality",
        "two-round",
    }
)


# libyaml's loader parses a 2,500-station definition about six times faster than the
# pure-Python one (0.45 s against 2.6 s); both are safe loaders.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """YAML loader that keeps dates as the strings the commission wrote."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class LoadedDefinition:
    definition: Definition
    #: The exact bytes loaded; their SHA-256 is the election hash devices sign against.
    raw: bytes
    sha256: str


def definition_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def parse_document(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            source, [f"byte {exc.start}: the file is not UTF-8 ({exc.reason})"]
        ) from None
    try:
        if text.lstrip().startswith("{"):
            return msgspec.json.decode(raw)
        return yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, msgspec.DecodeError) as exc:
        raise DefinitionError(source, [f"not valid YAML or JSON: {exc}"]) from None


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _structural_errors(doc: Any) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(definition_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_path(e.absolute_path)}: {e.message}" for e in errors]


_json_definition = msgspec.json.Decoder(Definition)


def load_definition(raw: bytes, source: str = "definition", *, check: bool = True) -> LoadedDefinition:
    """Decode and check a definition; raise `DefinitionError` listing every problem.

    `check=False` skips the semantic checks, for a definition read back from a ledger that
    checked it when it was appended.
    """
    if raw.lstrip()[:1] == b"{":
        # JSON decodes straight into the model, several times faster than via dicts; on any
        # problem fall through to the path that reports every error with its location.
        try:
            definition = _json_definition.decode(raw)
        except msgspec.DecodeError:
            pass
        else:
            errors = list(check_definition(definition)) if check else []
            if errors:
                raise DefinitionError(source, errors)
            return LoadedDefinition(definition, raw, definition_hash(raw))
    doc = parse_document(raw, source)
    try:
        definition = msgspec.convert(doc, Definition)
    except msgspec.ValidationError as exc:
        # msgspec stops at the first problem; the JSON Schema pass finds them all.
        errors = _structural_errors(doc) or [str(exc)]
        raise DefinitionError(source, errors) from None
    errors = list(check_definition(definition)) if check else []
    if errors:
        raise DefinitionError(source, errors)
    return LoadedDefinition(definition, raw, definition_hash(raw))


def load_definition_file(path: Path) -> LoadedDefinition:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(str(path), [f"cannot read the file: {exc.strerror}"]) from None
    return load_definition(raw, str(path))


def resolve_form(definition: Definition, form: str | Form) -> Form | None:
    if isinstance(form, Form):
        return form
    if form in definition.forms:
        return definition.forms[form]
    if definition.profile:
        try:
            return load_profile(definition.profile).forms.get(form)
        except ProfileError:
            return None
    return None


def _duplicates(ids: Iterable[str], where: str) -> Iterator[str]:
    seen: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in seen:
            yield f'{where}[{i}].id: duplicate id "{ident}" (first at {where}[{seen[ident]}])'
        else:
            seen[ident] = i


def check_definition(d: Definition) -> Iterator[str]:
    """Yield every semantic problem of a structurally valid definition, each with its path."""
    from tallyroom.protocol.expr import ExpressionError, parse_linear, parse_rule

    if d.profile:
        try:
            load_profile(d.profile)
        except ProfileError as exc:
            yield f"profile: {exc}"
    yield from _duplicates((h.id for h in d.hierarchies), "hierarchies")
    yield from _duplicates((a.id for a in d.areas), "areas")
    yield from _duplicates((s.id for s in d.stations), "stations")
    yield from _duplicates((c.id for c in d.contests), "contests")

    hierarchies = {h.id for h in d.hierarchies}
    areas = {a.id: a for a in d.areas}
    for i, a in enumerate(d.areas):
        if a.hierarchy not in hierarchies:
            yield f'areas[{i}].hierarchy: unknown hierarchy "{a.hierarchy}"'
        if a.parent is not None:
            parent = areas.get(a.parent)
            if parent is None:
                yield f'areas[{i}].parent: unknown area "{a.parent}"'
            elif parent.hierarchy != a.hierarchy:
                yield (
                    f'areas[{i}].parent: area "{a.parent}" is in hierarchy "{parent.hierarchy}",'
                    f' not "{a.hierarchy}"'
                )
    yield from _cycles(d)

    for i, s in enumerate(d.stations):
        used: dict[str, int] = {}
        for j, area_id in enumerate(s.areas):
            area = areas.get(area_id)
            if area is None:
                yield f'stations[{i}].areas[{j}]: unknown area "{area_id}"'
                continue
            if area.hierarchy in used:
                yield (
                    f'stations[{i}].areas[{j}]: a second area in hierarchy "{area.hierarchy}"'
                    f" (already stations[{i}].areas[{used[area.hierarchy]}])"
                )
            used[area.hierarchy] = j
        if not s.areas:
            yield f"stations[{i}].areas: a station must belong to at least one area"
        if s.registered < 0:
            yield f"stations[{i}].registered: must be ≥ 0, got {s.registered}"
        if s.key is not None:
            try:
                if len(base64.b64decode(s.key, validate=True)) != 32:
                    yield f"stations[{i}].key: an Ed25519 public key is 32 bytes"
            except binascii.Error:
                yield f"stations[{i}].key: not valid base64"

    for i, c in enumerate(d.contests):
        where = f"contests[{i}]"
        if c.area not in areas:
            yield f'{where}.area: unknown area "{c.area}"'
        yield from _duplicates((ch.id for ch in c.choices), f"{where}.choices")
        if not c.choices:
            yield f"{where}.choices: a contest needs at least one choice"
        form = resolve_form(d, c.form)
        if form is None:
            yield f'{where}.form: unknown form "{c.form}"' + (
                f' (not in forms or profile "{d.profile}")' if d.profile else " (no profile set)"
            )
            continue
        line_ids = [ln.id for ln in form.lines]
        yield from _duplicates(line_ids, f"{where}.form.lines")
        choice_ids = [ch.id for ch in c.choices]
        for j, cid in enumerate(choice_ids):
            if cid in line_ids:
                yield f'{where}.choices[{j}].id: "{cid}" is also a line of the form'
            if cid == "choices":
                yield f'{where}.choices[{j}].id: "choices" is reserved for sum(choices)'
        known = set(line_ids) | set(choice_ids)
        for j, rule in enumerate([*form.rules, *c.rules]):
            try:
                parse_rule(rule.expr, known, choice_ids)
            except ExpressionError as exc:
                yield f'{where}.rules[{j}] "{rule.id}": {exc} in `{rule.expr}`'
        for fig, expr in form.figures.items():
            try:
                parse_linear(expr, known, choice_ids)
            except ExpressionError as exc:
                yield f"{where}.form.figures.{fig}: {exc} in `{expr}`"
        if "valid" not in {str(f) for f in form.figures}:
            yield f"{where}.form.figures: needs valid (the votes that count for the choices)"
        if str(c.percent_base) not in {str(f) for f in form.figures}:
            yield f'{where}.percent_base: the form has no figure "{c.percent_base}"'
        if c.allocation is not None:
            al = c.allocation
            if al.method not in SEAT_METHODS:
                yield (
                    f'{where}.allocation.method: unknown method "{al.method}"'
                    f" (one of {', '.join(sorted(SEAT_METHODS))})"
                )
            if al.seats < 1:
                yield f"{where}.allocation.seats: must be ≥ 1, got {al.seats}"
            if al.regional_threshold is not None:
                for j, area_id in enumerate(al.regional_threshold.areas):
                    if area_id not in areas:
                        yield f'{where}.allocation.regional_threshold.areas[{j}]: unknown area "{area_id}"'


def _cycles(d: Definition) -> Iterator[str]:
    parent = {a.id: a.parent for a in d.areas}
    index = {a.id: i for i, a in enumerate(d.areas)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = known acyclic
    for start in parent:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent and state.get(node) != 2:
            if state.get(node) == 1:
                yield f'areas[{index[node]}].parent: the parent chain loops back to "{node}"'
                break
            state[node] = 1
            path.append(node)
            node = parent[node]
        for p in path:
            state[p] = 2

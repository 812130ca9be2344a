"""Strict JSON for protocol bodies: every way a body can be malformed gets a 400 naming it.

The standard JSON decoders are lenient where an election must not be: a duplicate key
silently keeps the last value (so a signature could cover two readings of one body), NaN
and Infinity are accepted, `1.0` may pass as an integer. This parser refuses all of these
and reports the field at fault. Range checks of the counts (negative, larger than any
station) are left to :func:`tallyroom.protocol.check.counts_vector`, which answers 422 with
the line's name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tallyroom.definition.model import CountKind
from tallyroom.intake.errors import Rejection, clip
from tallyroom.protocol.model import ProtocolBody

#: A count or sequence number with more digits than this is not a number we take apart.
MAX_DIGITS = 30
#: Longest id, time stamp or hash string accepted in a body.
MAX_STRING = 200
#: Most lines a protocol may carry (forms have tens; this bounds the work per request).
MAX_LINES = 1000
MAX_SEQUENCE = 2**53 - 1

_HEX64 = re.compile(r"[0-9a-f]{64}")
_KINDS = {k.value for k in CountKind}
_REQUIRED = ("election", "station", "contest", "count_kind", "lines")
_OPTIONAL = ("sequence", "time", "image_sha256")


class _Float:
    """A JSON number with a fraction or exponent, kept as text for the error message."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _BigInt:
    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


class _Constant(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Duplicate(k)
            seen.add(k)
    return out


def _constant(name: str) -> Any:
    raise _Constant(name)


def _int(text: str) -> Any:
    if len(text) > MAX_DIGITS:
        return _BigInt(text)
    return int(text)


_decoder = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_Float, parse_int=_int
)


def _bad(reason: str, message: str, field: str | None) -> Rejection:
    return Rejection(400, reason, message, field)


def parse_json(raw: bytes) -> Any:
    """Decode strict JSON: valid UTF-8, no BOM, no duplicate keys, no NaN or Infinity."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(
            "invalid-utf8", f"body is not valid UTF-8 (bad byte at offset {exc.start})", "body"
        ) from None
    try:
        return _decoder.decode(text)
    except _Duplicate as exc:
        raise _bad(
            "duplicate-key",
            f'duplicate key "{clip(exc.key)}" in a JSON object: a body must have one reading',
            exc.key if len(exc.key) <= MAX_STRING else None,
        ) from None
    except _Constant as exc:
        raise _bad(
            "not-a-number", f"{exc} is not a JSON number and is never a valid count", "body"
        ) from None
    except json.JSONDecodeError as exc:
        raise _bad(
            "malformed-json",
            f"body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            "body",
        ) from None
    except (ValueError, RecursionError):
        raise _bad("malformed-json", "body is not JSON that can be decoded", "body") from None


def _describe(value: Any) -> str:
    if isinstance(value, _Float):
        return f"the decimal number {clip(value.text)}"
    if isinstance(value, _BigInt):
        return f"a {value.digits}-digit number"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'the string "{clip(value)}"'
    if isinstance(value, int):
        return f"the number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _string(obj: dict[str, Any], name: str, required: bool) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise _bad("missing-field", f'field "{name}" is required', name)
        return None
    if not isinstance(value, str):
        raise _bad("wrong-type", f'"{name}" must be a string, got {_describe(value)}', name)
    if len(value) > MAX_STRING:
        raise _bad("too-long", f'"{name}" is longer than {MAX_STRING} characters', name)
    _check_text(value, name)
    return value


def _check_text(value: str, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(
            "invalid-unicode", f'"{field}" holds an unpaired surrogate escape (\\ud8xx)', field
        ) from None


def parse_body(raw: bytes) -> ProtocolBody:
    """Decode and type-check a device's protocol body; raise a 400 `Rejection` naming the field."""
    obj = parse_json(raw)
    if not isinstance(obj, dict):
        raise _bad("wrong-type", f"body must be a JSON object, got {_describe(obj)}", "body")
    for name in obj:
        if name not in _REQUIRED and name not in _OPTIONAL:
            _check_text(name, "body")
            hint = " (set by importers only)" if name == "source" else ""
            raise _bad("unknown-field", f'unknown field "{clip(name)}"{hint}', clip(name, 200))
    election = _string(obj, "election", True)
    station = _string(obj, "station", True)
    contest = _string(obj, "contest", True)
    kind = _string(obj, "count_kind", True)
    if kind not in _KINDS:
        raise _bad(
            "wrong-value",
            f'"count_kind" must be one of {", ".join(sorted(_KINDS))}, got "{clip(kind)}"',
            "count_kind",
        )
    time = _string(obj, "time", False)
    image = _string(obj, "image_sha256", False)
    if image is not None and not _HEX64.fullmatch(image):
        raise _bad(
            "wrong-value", '"image_sha256" must be 64 lowercase hex digits (SHA-256)', "image_sha256"
        )
    sequence = obj.get("sequence", 0)
    if type(sequence) is not int:
        raise _bad(
            "wrong-type",
            f'"sequence" must be a whole number, got {_describe(sequence)}',
            "sequence",
        )
    if not 0 <= sequence <= MAX_SEQUENCE:
        raise _bad("wrong-value", f'"sequence" must be between 0 and {MAX_SEQUENCE}', "sequence")
    lines = obj.get("lines")
    if lines is None:
        raise _bad("missing-field", 'field "lines" is required', "lines")
    if not isinstance(lines, dict):
        raise _bad("wrong-type", f'"lines" must be an object, got {_describe(lines)}', "lines")
    if len(lines) > MAX_LINES:
        raise _bad("too-long", f'"lines" has more than {MAX_LINES} entries', "lines")
    for name, value in lines.items():
        if not name.isascii():
            _check_text(name, "lines")
        if len(name) > MAX_STRING:
            raise _bad("too-long", f"a line name is longer than {MAX_STRING} characters", "lines")
        if type(value) is not int:
            raise _bad(
                "wrong-type",
                f'lines.{clip(name)} must be a whole number, got {_describe(value)}',
                f"lines.{clip(name, 200)}",
            )
    return ProtocolBody(
        election=str(election),
        station=str(station),
        contest=str(contest),
        count_kind=CountKind(kind),
        lines=lines,
        sequence=sequence,
        time=time,
        image_sha256=image,
    )

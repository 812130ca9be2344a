"""Canonical JSON for audit state: exact fractions as strings, sorted keys.

Audit state goes into ledger entries, so its bytes must not depend on dict order or float
formatting. Fractions are written as ``"num/den"`` (or ``"n"``), keys are sorted.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Fraction):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _dec_hook(typ: type, obj: Any) -> Any:
    if typ is Fraction:
        if isinstance(obj, str | int):
            return Fraction(obj)
        raise msgspec.ValidationError(f"expected a fraction string, got {obj!r}")
    raise NotImplementedError(f"cannot decode {typ!r}")


def encode(obj: object) -> bytes:
    """Encode a msgspec Struct (or plain data) as canonical JSON bytes (sorted keys)."""
    return msgspec.json.encode(obj, enc_hook=_enc_hook, order="sorted")


def decode(data: bytes | str, typ: type[T]) -> T:
    """Decode canonical JSON bytes produced by :func:`encode` into ``typ``."""
    return msgspec.json.decode(data, type=typ, dec_hook=_dec_hook)


def to_builtins(obj: object) -> Any:
    """Convert a Struct to plain JSON-compatible Python data (fractions as strings)."""
    return msgspec.to_builtins(obj, enc_hook=_enc_hook, order="sorted")

"""Exact numbers: validation of counts and percentages, and their JSON form.

Seat allocation uses Python integers and :class:`fractions.Fraction` only (DESIGN: "Exact
integers for every count"). Floats are refused at the boundary, because 0.7 as a float is not
seven tenths and a threshold decided on such a number could be decided wrongly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from tallyroom.seats.errors import SeatsError

__all__ = [
    "DECIMAL_PLACES",
    "as_count",
    "as_fraction",
    "check_unique",
    "check_votes",
    "decimal_text",
    "optional_rational_json",
    "rational_json",
]

#: Places of the rounded decimal shown beside every exact fraction in JSON (half-even rounding).
DECIMAL_PLACES = 6


def as_count(value: object, what: str, *, minimum: int = 0) -> int:
    """Return ``value`` as an ``int`` if it is a whole number ``>= minimum``, else raise.

    ``bool`` is refused (``True`` is not a vote count), and so are floats, even integral ones,
    because a float in a count means a conversion happened somewhere it should not have.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeatsError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise SeatsError(f"{what} must be at least {minimum}, got {value}")
    return value


def as_fraction(value: object, what: str) -> Fraction:
    """Parse an exact rational from an ``int``, ``Fraction``, ``Decimal`` or decimal string.

    Strings may be ``"5"``, ``"0.7"``, ``"7/10"`` or ``"5%"``. Floats are refused with a message
    that says how to pass the number exactly.
    """
    if isinstance(value, bool):
        raise SeatsError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float):
        raise SeatsError(
            f"{what} must be exact: pass {str(value)!r} (a string) or a Fraction, not the float "
            f"{value!r}"
        )
    if isinstance(value, int | Fraction):
        return Fraction(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SeatsError(f"{what} must be a finite number, got {value}")
        return Fraction(value)
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            if "/" in text:
                return Fraction(text)
            return Fraction(Decimal(text))
        except (ValueError, ZeroDivisionError, InvalidOperation):
            raise SeatsError(f"{what} must be a number such as 5 or 0.7, got {value!r}") from None
    raise SeatsError(f"{what} must be a number, got {value!r}")


def check_votes(votes: Mapping[str, object], what: str = "votes") -> dict[str, int]:
    """Validate a ``{name: votes}`` mapping: non-empty names, whole non-negative counts."""
    checked: dict[str, int] = {}
    for name, count in votes.items():
        if not isinstance(name, str) or not name.strip():
            raise SeatsError(f"{what}: every choice needs a non-empty name, got {name!r}")
        checked[name] = as_count(count, f"{what} for {name!r}")
    return checked


def check_unique(names: Iterable[str], what: str) -> None:
    """Raise if a name occurs twice (two lines with one name cannot both be on a result)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SeatsError(f"{what}: the name {name!r} occurs more than once")
        seen.add(name)


def decimal_text(value: Fraction | int, places: int = DECIMAL_PLACES) -> str:
    """``value`` rounded half-even to ``places`` decimals, as text (``"15068.277778"``)."""
    scaled = round(Fraction(value) * 10**places)  # Fraction.__round__ rounds half to even
    sign = "-" if scaled < 0 else ""
    whole, frac = divmod(abs(scaled), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}" if places else f"{sign}{whole}"


def rational_json(value: Fraction | int) -> dict[str, str]:
    """JSON form of an exact number: the fraction and a rounded decimal for display.

    ``{"fraction": "813687/54", "decimal": "15068.277778"}``. The decimal is rounded half-even
    to :data:`DECIMAL_PLACES` places and is for reading only; the fraction is the value.
    """
    exact = Fraction(value)
    if exact.denominator == 1:
        return {"fraction": str(exact.numerator), "decimal": str(exact.numerator)}
    shown = decimal_text(exact)
    return {"fraction": f"{exact.numerator}/{exact.denominator}", "decimal": shown}


def optional_rational_json(value: Fraction | int | None) -> dict[str, str] | None:
    """:func:`rational_json`, passing ``None`` through."""
    return None if value is None else rational_json(value)

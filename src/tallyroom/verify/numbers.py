"""Percentages as docs/bulletin.md §6 defines them, and numbers as the pages show them (§13).

Written from the specification, not shared with the publisher: a share is
``q = (part × 100 × 100 × 2 + whole) // (whole × 2)`` shown as ``q // 100 "." q % 100``, and
``null`` when the whole is not positive. Integers on pages use the locale's digit grouping,
shares its decimal sign, both from CLDR (Babel).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from babel import Locale


def percent(part: int, whole: int | None) -> str | None:
    """``part / whole × 100`` with two decimals, rounded half up, in integers (§6.5)."""
    if whole is None or whole <= 0:
        return None
    q = (part * 100 * 100 * 2 + whole) // (whole * 2)
    if 0 <= q <= 10_000:  # one string object per value, shared by every record that shows it
        return _PERCENT_TEXT[q]
    return f"{q // 100}.{q % 100:02d}"


_PERCENT_TEXT = [f"{q // 100}.{q % 100:02d}" for q in range(10_001)]


@dataclass(frozen=True)
class Symbols:
    """A locale's group and decimal signs, and a pattern for the numbers it writes."""

    lang: str
    group: str
    decimal: str
    token: re.Pattern[str]

    def integer(self, value: int | None) -> str:
        if value is None:
            return "—"
        if -1000 < value < 1000:
            return str(value)
        text = f"{value:,}"
        return text if self.group == "," else text.replace(",", self.group)

    def share(self, value: str | None) -> str:
        """An exact decimal string (``"17.32"``) as the page writes it, without the ``%``."""
        if value is None:
            return "—"
        if len(value) <= 6 and value[0] != "-":  # under 1,000: no grouping
            return value if self.decimal == "." else value.replace(".", self.decimal)
        whole, dot, frac = value.partition(".")
        if len(whole) <= 3 and not whole.startswith("-"):
            return whole + self.decimal + frac if dot else whole
        sign = "-" if whole.startswith("-") else ""
        out = sign + self.integer(int(whole.lstrip("-")))
        return out + self.decimal + frac if dot else out

    def tokens(self, text: str) -> list[str]:
        """Every number written in ``text`` in this locale's way, in order."""
        return self.token.findall(text)


@cache
def symbols(lang: str) -> Symbols:
    loc = Locale.parse(lang)
    signs = loc.number_symbols["latn"]
    group, decimal = str(signs["group"]), str(signs["decimal"])
    g, d = re.escape(group), re.escape(decimal)
    # A number: not glued to a word, a dot or a comma before it; digits grouped in threes
    # with an optional decimal part, not glued to a word after it; or else a run of digits:
    #   (?<![\w.,])\d{1,3}(?:G\d{3})*(?:D\d+)?(?![\w])|(?<![\w.,])\d+
    # written to start with its first digit (the condition before it looked back at from
    # there), so that the engine skips to the next digit instead of trying every position:
    # twice as fast on the captions and sentences of 300,000 station pages.
    token = re.compile(rf"\d(?<![\w.,]\d)(?:\d{{0,2}}(?:{g}\d{{3}})*(?:{d}\d+)?(?![\w])|\d*)")
    return Symbols(lang, group, decimal, token)


def figure_words(figure: str) -> str:
    from tallyroom.tally.report import BASE_WORDS

    return BASE_WORDS.get(figure, figure)

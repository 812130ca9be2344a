"""Languages of the public site: gettext catalogs (Babel) and locale number formatting.

Catalogs live in ``tallyroom/web/locale/<lang>/LC_MESSAGES/messages.po`` and are compiled in
memory when first used, so no binary ``.mo`` file has to be kept in the repository. Numbers are
formatted with the locale's own group and decimal symbols from CLDR (via Babel), once per
locale; formatting a number is then one ``str.format`` and a ``replace``. Percentages arrive as
exact strings (``"17.32"``) and are never turned into floats.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

#: Languages the site is built in, in the order the language switch shows them.
LANGUAGES: tuple[str, ...] = ("ky", "ru", "en")
DEFAULT_LANGUAGE = "en"


def locale_dir() -> Path:
    return Path(str(files("tallyroom.web"))) / "locale"


def po_path(lang: str) -> Path:
    return locale_dir() / lang / "LC_MESSAGES" / "messages.po"


@cache
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of ``lang`` (English is the source language: identity)."""
    path = po_path(lang)
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


@dataclass(frozen=True)
class NumberFormat:
    """A locale's digit grouping and decimal symbols."""

    lang: str
    group: str
    decimal: str
    language_name: str

    def integer(self, value: int | None) -> str:
        if value is None:
            return "—"
        text = f"{value:,}"
        return text if self.group == "," else text.replace(",", self.group)

    def decimal_text(self, value: str | None) -> str:
        """An exact decimal string (``"1281622.5"``, ``"17.32"``) in the locale's symbols."""
        if value is None:
            return "—"
        whole, dot, frac = value.partition(".")
        sign = ""
        if whole.startswith("-"):
            sign, whole = "-", whole[1:]
        out = sign + self.integer(int(whole))
        return out + self.decimal + frac if dot else out


@cache
def number_format(lang: str) -> NumberFormat:
    loc = Locale.parse(lang)
    symbols = loc.number_symbols["latn"]
    return NumberFormat(lang, symbols["group"], symbols["decimal"], str(loc.display_name))


def negotiate(
    accept_language: str | None, available: Sequence[str] = LANGUAGES, default: str = DEFAULT_LANGUAGE
) -> str:
    """The best of ``available`` for an Accept-Language header (RFC 9110 §12.5.4)."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for pos, part in enumerate(accept_language.split(",")):
        item = part.strip()
        if not item:
            continue
        tag, _, params = item.partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        ranked.append((-q, pos, tag.strip().lower()))
    ranked.sort()
    for negq, _, tag in ranked:
        if negq >= 0:
            continue
        if tag == "*":
            return default
        primary = tag.split("-")[0]
        if primary in available:
            return primary
    return default

"""Every UI string is translated into Kyrgyz and Russian; numbers are formatted per locale;
Accept-Language chooses the language."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from conftest import Published
from tallyroom.publish.i18n import negotiate, number_format, po_path
from tallyroom.publish.pages import template_dir


def _template_messages() -> set[str]:
    out = set()
    method_map = [("**.html", "jinja2")]
    options = {"**.html": {"extensions": "jinja2.ext.i18n"}}
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(template_dir()), method_map, options):
        out.add(message if isinstance(message, str) else message[0])
    return out


def test_every_template_string_is_translated_in_ky_and_ru() -> None:
    messages = _template_messages()
    assert len(messages) > 80
    for lang in ("ky", "ru"):
        with po_path(lang).open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        translated = {m.id: m.string for m in catalog if m.id}
        missing = sorted(m for m in messages if not translated.get(m))
        assert not missing, f"{lang}: untranslated {missing[:5]}"
        for m in messages:  # placeholders survive translation
            assert set(re.findall(r"%\((\w+)\)s", m)) == set(re.findall(r"%\((\w+)\)s", translated[m])), m


def test_locale_number_formatting() -> None:
    assert number_format("en").integer(1281622) == "1,281,622"
    assert number_format("ru").integer(1281622) == "1\xa0281\xa0622"
    assert number_format("ky").integer(1281622) == "1\xa0281\xa0622"
    assert number_format("ru").decimal_text("17.32") == "17,32"
    assert number_format("en").decimal_text("17.32") == "17.32"
    assert number_format("en").integer(None) == "—"


def test_accept_language() -> None:
    assert negotiate("ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert negotiate("ky") == "ky"
    assert negotiate("de-DE,de;q=0.9,ru;q=0.5") == "ru"
    assert negotiate("fr") == "en"
    assert negotiate("") == "en"
    assert negotiate("ru;q=0, en;q=0.1") == "en"


def test_pages_are_in_their_language(published: Published) -> None:
    cur: Path = published.current
    ru = (cur / "ru/index.html").read_text(encoding="utf-8")
    ky = (cur / "ky/index.html").read_text(encoding="utf-8")
    en = (cur / "en/index.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in ru and "Результаты" in ru and "избирателей, принявших участие" in ru
    assert '<html lang="ky">' in ky and "Жыйынтыктар" in ky and "Баткен" in ky
    assert "voters who took part" in en
    assert "Results" not in ru.split("<main", 1)[1]

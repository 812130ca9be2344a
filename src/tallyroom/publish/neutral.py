"""A page rendered once for all the site's languages.

A page (above all, each of the thousands of station pages) is the same markup in every
language around different words and number formats. :class:`NeutralPhrases` stands in for a
language's :class:`~.fastpages.Phrases`: where a language would put a translated string, a
name or a formatted number, it puts a *slot*, ``NUL key NUL``, and keeps what each language
puts there in that language's table. A renderer of :mod:`.fastpages` runs once with it;
:meth:`NeutralPhrases.resolve` then splits the page at the slots and joins each language's
version from its table, as UTF-8 bytes (docs/decisions/0018).

What goes in the same in every language (markup, data, a number below 1,000, a name that is
not translated) stays as it is. A slot's value is exactly what that language's ``Phrases``
returns for the same call, so each page is byte for byte the page rendered in that language
(``tests/publish/test_publish_fastpages.py`` checks it against the Jinja2 templates).

A page whose data or names contain NUL could be taken for slots: the caller renders such a
page one language at a time (:attr:`NeutralPhrases.usable`, the page's JSON checked by
:meth:`~.pages.Site.render_languages`, and :meth:`~NeutralPhrases.resolve` answers ``None``
for a page it cannot split).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from tallyroom.publish.fastpages import KIND_WORDS, PageContext, Phrases, esc

_NUL = "\x00"
#: Numbers and percentages formatted on demand are remembered up to this many per language.
_REMEMBER = 100_000


class _Table(dict[bytes, bytes]):
    """One language's slot values: fixed ones (words, names) and numbers formatted when first
    asked for (keys ``n<int>`` and ``p<exact decimal>``)."""

    def __init__(self, phrases: Phrases) -> None:
        super().__init__()
        self.phrases = phrases
        self.remembered = 0

    def __missing__(self, key: bytes) -> bytes:
        kind = key[:1]
        if kind == b"n":
            text = self.phrases.num(int(key[1:]))
        elif kind == b"p":
            text = self.phrases.pct(key[1:].decode())
        else:
            raise KeyError(key)
        got = text.encode()
        if self.remembered < _REMEMBER:
            self.remembered += 1
            self[key] = got
        return got


class NeutralPhrases(Phrases):
    """The phrases of several languages at once, as slots (see the module docstring)."""

    def __init__(self, each: Sequence[Phrases]) -> None:
        # Phrases.__init__ is not called: every attribute it sets is set here, as slots.
        self.each = tuple(each)
        self.tables = [_Table(p) for p in self.each]
        self._words: dict[str, str] = {}
        self.fragments = {}
        self._fixed = 0
        self._dynamic: list[bytes] = []
        first = self.each[0]
        #: False when a name of the definition contains NUL (then nothing is rendered here).
        self.usable = True
        self.lang = self._fix([p.lang for p in self.each])
        self.languages = first.languages
        self.area_kinds = first.area_kinds
        self.election_name = self._fix([p.election_name for p in self.each])
        self.area_names = self._fix_each([p.area_names for p in self.each])
        # A station's name is a slot of the page that shows it (:meth:`station`): there may be
        # 100,000 of them, each on a page or two, and a table of them all would be slower to
        # read (and to make, before the page workers are forked).
        self.station_names = {}
        if any(_NUL in name for p in self.each for name in p.station_names.values()):
            self.usable = False
        self.contest_names = self._fix_each([p.contest_names for p in self.each])
        each = self.each
        self.choice_names = {c: self._fix_each([p.choice_names[c] for p in each]) for c in first.choice_names}
        self.line_names = {c: self._fix_each([p.line_names[c] for p in each]) for c in first.line_names}
        self.kind_labels = {kind: self.t(words) for kind, words in KIND_WORDS.items()}
        self.status_labels = {True: self.t("official count"), False: self.t("preliminary count")}
        self.num = self._num
        self.pct = self._pct

    # -- slots ---------------------------------------------------------------------------

    def _fix(self, values: Sequence[str]) -> str:
        """A slot that keeps its values for the life of this object (or the value itself when
        every language has the same)."""
        if any(_NUL in v for v in values):
            self.usable = False
        if all(v == values[0] for v in values):
            return values[0]
        key = str(self._fixed)
        self._fixed += 1
        raw = key.encode()
        for table, value in zip(self.tables, values, strict=True):
            table[raw] = value.encode()
        return _NUL + key + _NUL

    def _fix_each(self, maps: Sequence[dict[str, str]]) -> dict[str, str]:
        """Per key of ``maps`` (one per language), a slot of its values."""
        return {k: self._fix([m[k] for m in maps]) for k in maps[0]}

    def _page_slot(self, values: Sequence[str]) -> str:
        """A slot for the page being rendered: forgotten by the next :meth:`resolve`."""
        if all(v == values[0] for v in values):
            return values[0]
        key = f"d{len(self._dynamic)}"
        raw = key.encode()
        self._dynamic.append(raw)
        for table, value in zip(self.tables, values, strict=True):
            table[raw] = value.encode()
        return _NUL + key + _NUL

    def _in(self, value: Any, i: int) -> Any:
        """``value`` as language ``i`` has it (a value made of slots is filled in)."""
        if not isinstance(value, str) or _NUL not in value:
            return value
        parts = value.encode().split(b"\x00")
        parts[1::2] = map(self.tables[i].__getitem__, parts[1::2])
        filled = b"".join(parts).decode()
        return Markup(filled) if isinstance(value, Markup) else filled

    # -- what the page renderers call ------------------------------------------------------

    def t(self, msgid: str) -> str:
        got = self._words.get(msgid)
        if got is None:
            got = self._words[msgid] = self._fix([p.t(msgid) for p in self.each])
        return got

    def format(self, msgid: str) -> str:
        raise NotImplementedError("a message format differs by language: use f()")

    def f(self, msgid: str, **values: object) -> str:
        if not any(isinstance(v, str) and _NUL in v for v in values.values()):
            # No value holds a slot: each is escaped once for all the languages (esc does not
            # depend on the language), and only the message differs (``Phrases.f``).
            escaped = {k: esc(v) for k, v in values.items()}
            return self._page_slot([p.format(msgid) % escaped for p in self.each])
        return self._page_slot(
            [
                p.f(msgid, **{k: self._in(v, i) for k, v in values.items()})
                for i, p in enumerate(self.each)
            ]
        )

    def station(self, sid: str) -> str:
        return self._page_slot([p.station(sid) for p in self.each])

    def base_words(self, figure: str, value: int | None) -> str:
        return self._page_slot([p.base_words(figure, value) for p in self.each])

    def language_switch(self, ctx: PageContext) -> str:
        return self._page_slot([p.language_switch(ctx) for p in self.each])

    def _num(self, value: int | None) -> str:
        if value is None:
            return "—"
        if value.__class__ is int:
            # No digit groups below 1,000: the same in every language.
            return str(value) if -1000 < value < 1000 else f"\x00n{value}\x00"
        return self._page_slot([p.num(value) for p in self.each])

    def _pct(self, value: str | None) -> str:
        if value is None:
            return "—"
        if value.__class__ is str and len(value) < 4 and value.isascii() and value.isdigit():
            return value  # a whole number below 1,000: the same in every language
        if value.__class__ is str and _NUL not in value:
            return f"\x00p{value}\x00"
        return self._page_slot([p.pct(value) for p in self.each])

    # -- the pages -------------------------------------------------------------------------

    def resolve(self, page: str) -> list[bytes] | None:
        """The page in each language, as UTF-8; ``None`` when ``page`` cannot be split at its
        slots (it held a NUL of its own) or a value held a slot of its own."""
        parts = page.encode().split(b"\x00")
        dynamic, self._dynamic = self._dynamic, []
        try:
            if len(parts) % 2 == 0:
                return None
            keys = parts[1::2]
            out = []
            for table in self.tables:
                each = parts.copy()
                try:
                    each[1::2] = map(table.__getitem__, keys)
                except (KeyError, ValueError):
                    return None
                page_bytes = b"".join(each)
                if b"\x00" in page_bytes:  # a slot inside a value that was not filled in
                    return None
                out.append(page_bytes)
            return out
        finally:
            for table in self.tables:
                for key in dynamic:
                    del table[key]


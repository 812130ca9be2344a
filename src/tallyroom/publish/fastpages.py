"""Specialised renderers for the pages there are thousands of (station pages) and the pages
every snapshot rewrites (national and area pages).

The Jinja2 templates in ``tallyroom/web/templates`` stay the definition of every page; these
functions write the *same bytes* as those templates, only faster (Jinja2 costs about 2 ms per
station page here, mostly in macro calls, ``gettext`` and escaping; this costs about a tenth).
``tests/publish/test_publish_fastpages.py`` renders every page both ways and compares them
byte for byte, in every language and in every state of a count (nothing reported, one count,
two counts, failed rules, corrections). Like the templates, nothing here computes a number:
every number is a field of the page's data, formatted for the locale.

How the templates' Jinja2 semantics are reproduced:

* ``{{ x }}`` with autoescape is :func:`esc` (markupsafe's rules: ``& < > ' "``);
* ``_("…")`` and ``{% trans %}`` are gettext with the new-style, autoescaping rules: the
  translated text is markup, the variables are escaped, and ``%`` formatting always applies
  (:meth:`Phrases.t`, :meth:`Phrases.f`);
* the environment's ``trim_blocks``/``lstrip_blocks`` whitespace is written out literally.

Every page is rendered once for all languages by passing its renderer the phrases of every
language at once (:mod:`.neutral`, docs/decisions/0018); so everything a renderer writes that
differs by language goes through its ``Phrases`` argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from tallyroom.definition.compiled import CompiledElection, name_in
from tallyroom.definition.model import Name
from tallyroom.publish.i18n import NumberFormat, number_format, translations

_ESCAPED: dict[str, str] = {}


def esc(value: object) -> str:
    """``{{ value }}`` under autoescape (markupsafe's rules; short strings are remembered)."""
    if value.__class__ is str:
        got = _ESCAPED.get(value)
        if got is None:
            got = str(escape(value))
            if len(got) <= 64 and len(_ESCAPED) < 200_000:
                _ESCAPED[value] = got
        return got
    if value.__class__ is int:
        return str(value)
    return str(escape(value))


def _remembered(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    """``fn`` with a memory: the same few thousand numbers and shares recur on every page."""
    memory: dict[Any, str] = {}

    def wrapper(value: Any) -> str:
        got = memory.get(value)
        if got is None:
            got = fn(value)
            if len(memory) < 100_000:
                memory[value] = got
        return got

    return wrapper


#: Count kinds in words (the ``kind_label`` macro of the templates).
KIND_WORDS = {
    "machine": "machine count (scanners)",
    "hand": "hand count",
    "recount": "recount",
}


class Phrases:
    """One language's translated UI strings and names, escaped once."""

    def __init__(self, election: CompiledElection, lang: str, languages: tuple[str, ...]) -> None:
        self.lang = lang
        self._gettext = translations(lang).gettext
        #: Markup that is the same on many pages (a choice's row head, a rule's row head), made
        #: once: keyed by what it is made from.
        self.fragments: dict[tuple[str, ...], str] = {}
        self._plain: dict[str, str] = {}
        self._formats: dict[str, str] = {}
        fmt: NumberFormat = number_format(lang)
        self.num: Callable[[int | None], str] = _remembered(fmt.integer)
        self.pct: Callable[[str | None], str] = _remembered(fmt.decimal_text)
        e = election
        self.area_names = {a.id: esc(name_in(a.name, lang)) for a in e.areas}
        self.station_names = {s.id: esc(name_in(s.name, lang)) for s in e.stations}
        self.contest_names = {c.id: esc(name_in(c.contest.name, lang)) for c in e.contests}
        self.election_name = esc(name_in(e.definition.election.name, lang))
        self.choice_names = {
            c.id: {ch.id: esc(_tr(ch.name, lang)) for ch in c.contest.choices} for c in e.contests
        }
        self.line_names = {
            c.id: {
                **{ln.id: esc(_tr(ln.name, lang)) for ln in c.form.lines},
                **{ch.id: esc(_tr(ch.name, lang)) for ch in c.contest.choices},
            }
            for c in e.contests
        }
        self.languages = [(code, esc(number_format(code).language_name)) for code in languages]
        self.area_kinds = {a.id: a.kind for a in e.areas}
        self.kind_labels = {kind: self.t(words) for kind, words in KIND_WORDS.items()}
        self.status_labels = {True: self.t("official count"), False: self.t("preliminary count")}
        self.base_formats = {
            "took_part": self.format("of %(n)s voters who took part"),
            "valid": self.format("of %(n)s valid votes"),
            "ballots_cast": self.format("of %(n)s ballots cast"),
            "registered": self.format("of %(n)s registered voters"),
        }

    def t(self, msgid: str) -> str:
        """``_("msgid")``: the translation, ``%%`` made ``%`` (new-style gettext)."""
        got = self._plain.get(msgid)
        if got is None:
            got = self._plain[msgid] = self._gettext(msgid) % {}
        return got

    def format(self, msgid: str) -> str:
        """The translation of a message with ``%(name)s`` variables, to fill with :meth:`f`."""
        got = self._formats.get(msgid)
        if got is None:
            got = self._formats[msgid] = self._gettext(msgid)
        return got

    def f(self, msgid: str, **values: object) -> str:
        """``{% trans name=value %}…{% endtrans %}``: variables escaped, then ``%`` applied."""
        return self.format(msgid) % {k: esc(v) for k, v in values.items()}

    def fragment(self, key: tuple[str, ...], make: Callable[..., str], *args: Any) -> str:
        """``make(self, *args)``, markup that is the same on many pages, made once per ``key``
        (which names everything it is made from)."""
        got = self.fragments.get(key)
        if got is None:
            got = self.fragments[key] = make(self, *args)
        return got

    def kind(self, kind: str) -> str:
        """The ``kind_label`` macro."""
        got = self.kind_labels.get(kind)
        return esc(kind) if got is None else got

    def base_words(self, figure: str, value: int | None) -> str:
        """The ``base_words`` macro."""
        tpl = self.base_formats.get(figure)
        if tpl is None:
            return self.f("of %(n)s (%(f)s)", n=self.num(value), f=figure)
        return tpl % {"n": self.num(value)}

    def language_switch(self, ctx: PageContext) -> str:
        """The links of base.html's language switch: this page in each language."""
        out = []
        for code, label in self.languages:
            if code == self.lang:
                out.append(f'<strong lang="{code}" aria-current="true">{label}</strong>')
            else:
                href = esc(ctx.lang_href[code])
                out.append(f'<a lang="{code}" hreflang="{code}" href="{href}">{label}</a>')
        return "".join(out)

    def area(self, aid: str) -> str:
        got = self.area_names.get(aid)
        return esc(aid) if got is None else got

    def station(self, sid: str) -> str:
        got = self.station_names.get(sid)
        return esc(sid) if got is None else got


_SEPARATE = "Each count is a separate column; counts are never added together."
_RULE_LEGEND = "✓: the rule holds for this protocol; ✗: it does not (left side / right side)."


def _tr(name: Name | None, lang: str) -> str:
    return "" if name is None else name_in(name, lang)


class PageContext:
    """What ``Site.render`` passes to every template besides the page data."""

    __slots__ = ("api", "lang_href", "lang_root", "root")

    def __init__(self, page: str, api: str, languages: tuple[str, ...]) -> None:
        self.root = "../" * (page.count("/") + 1)
        self.api = self.root + api
        self.lang_root = "../" * page.count("/")
        self.lang_href = {code: f"{self.root}{code}/{page}" for code in languages}


def base_page(
    p: Phrases, ctx: PageContext, d: Mapping[str, Any], title: str, main: str, scripts: str = ""
) -> str:
    """``base.html`` around a page's ``title``, ``main`` and ``scripts`` blocks (already HTML)."""
    root = ctx.root
    lang = p.lang
    api = esc(ctx.api)
    out = [
        '<!doctype html>\n<html lang="',
        lang,
        '">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>',
        title,
        " — ",
        p.election_name,
        '</title>\n<link rel="stylesheet" href="',
        root,
        'static/site.css">\n<link rel="alternate" type="application/json" href="',
        api,
        '">\n',
    ]
    for code, _label in p.languages:
        out.append(f'<link rel="alternate" hreflang="{code}" href="{esc(ctx.lang_href[code])}">\n')
    out.append(scripts)
    out.append(
        f'</head>\n<body>\n<a class="skip" href="#main">{p.t("Skip to the results")}</a>\n'
        f'<header class="top">\n<p class="site"><a href="{root}{lang}/index.html">{p.election_name}</a></p>\n'
        f'<nav class="langs" aria-label="{p.t("Language")}">\n'
    )
    out.append(p.language_switch(ctx))
    out.append(
        f'</nav>\n<nav class="main-nav" aria-label="{p.t("Site")}">\n'
        f'<a href="{root}{lang}/index.html">{p.t("Results")}</a>\n'
        f'<a href="{root}{lang}/changes.html">{p.t("What changed")}</a>\n'
        f'<a href="{root}{lang}/snapshots.html">{p.t("Snapshots")}</a>\n'
        f'<a href="{root}{lang}/downloads.html">{p.t("Downloads")}</a>\n'
        f'<a href="{api}">{p.t("JSON")}</a>\n'
        '</nav>\n</header>\n<main id="main">\n'
    )
    out.append(main)
    out.append("</main>\n<footer>\n")
    links = (
        f' <a href="{root}checkpoint.txt">{p.t("Signed checkpoint")}</a> · '
        f'<a href="{root}manifest.json">{p.t("File list with SHA-256")}</a></p>\n'
    )
    changed = d.get("changed_in")
    if changed:
        out.append("<p>")
        out.append(
            p.f(
                "The data on this page last changed in snapshot %(n)s (%(time)s).",
                n=changed["number"],
                time=changed["published_at"],
            )
        )
        out.append(links)
    snap = d.get("snapshot")
    if snap:
        out.append("<p>")
        out.append(
            p.f(
                "Snapshot %(n)s, published %(time)s, covers the first %(size)s ledger entries.",
                n=snap["number"],
                size=p.num(snap["ledger_size"]),
                time=snap["published_at"],
            )
        )
        out.append(links)
    out.append("<p>")
    out.append(
        p.t(
            "Every number on this site is recomputed from the public ledger before it is "
            "published. Anyone can check it again with the command “tallyroom verify”."
        )
    )
    out.append("</p>\n</footer>\n</body>\n</html>")
    return "".join(out)


def map_key(p: Phrases, key: Sequence[Mapping[str, Any]], none_label: str) -> str:
    """The ``map_key`` macro: a shaded map's classes, each with its colour and its range."""
    out = ['<ul class="key">']
    for k in key:
        low, high = k["from"], k["to"]
        if low is None and high is None:
            label = none_label
        elif low is None:
            label = p.f("below %(n)s%%", n=p.num(high))
        elif high is None:
            label = p.f("%(n)s%% and above", n=p.num(low))
        elif low == high:
            label = f"{p.num(low)}%"
        else:
            label = f"{p.num(low)}–{p.num(high)}%"
        out.append(f'<li><span class="sw" style="background:{esc(k["fill"])}"></span>{label}</li>')
    out.append("</ul>")
    return "".join(out)


def _refresh(p: Phrases, ctx: PageContext) -> str:
    """The ``scripts`` block of live pages: the optional auto-refresh (static/refresh.js),
    with the words of its switch and its notice in the page's language."""
    return (
        f'<script src="{ctx.root}static/refresh.js" defer data-auto="{p.t(_AUTO)}" '
        f'data-news="{p.t(_NEWS)}" data-show="{p.t("Show them")}"></script>\n'
    )


_AUTO = "Update this page when new results are published"
_NEWS = "Newer results have been published."


def _crumbs(p: Phrases, ctx: PageContext, chain: list[str]) -> list[str]:
    lr = ctx.lang_root
    out = [
        f'<nav class="crumbs" aria-label="{p.t("You are here")}">'
        f'<a href="{lr}index.html">{p.t("Results")}</a>'
    ]
    for a in chain:
        out.append(f' › <a href="{lr}area/{esc(a)}.html">{p.area(a)}</a>')
    return out


def station_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``station.html``."""
    num, pct, kind = p.num, p.pct, p.kind
    out: list[str] = []
    add = out.append
    for chain in d["areas"]:
        out.extend(_crumbs(p, ctx, chain))
        add("</nav>\n")
    station = p.station(d["station"])
    add(f"<h1>{station}</h1>\n<p>")
    add(p.f("Registered voters in the station list: %(n)s.", n=num(d["registered"])))
    if d["abroad"]:
        add(" " + p.t("Station abroad."))
    add("</p>\n")
    for c in d["contests"]:
        cid = c["contest"]
        ecid = esc(cid)
        columns = c["columns"]
        add(
            f'<section class="protocol" id="p-{ecid}" data-contest="{ecid}">\n'
            f'<h2>{p.contest_names[cid]}</h2>\n<ul class="counts-list">'
        )
        for col in columns:
            add(f"<li>{kind(col['count_kind'])}: ")
            if col["reported"]:
                add(f'<span class="badge">{p.status_labels[bool(col["official"])]}</span> ')
                if col["rules_failed"]:
                    add('<span class="no">')
                    add(p.f("Control rules: %(n)s warning(s)", n=col["rules_failed"]))
                    add("</span>")
                else:
                    add(f'<span class="ok">{p.t("Control rules: all hold")}</span>')
            else:
                add(f'<span class="muted">{p.t("No protocol of this count yet.")}</span>')
            add("</li>")
        add("</ul>\n")
        if c["any_reported"]:
            labels = [kind(col["count_kind"]) for col in columns]
            add(
                f'<p class="note">{p.t(_SEPARATE)}</p>\n'
                '<div class="scroll">\n<table class="lines">\n'
                f"<caption>{p.t('Protocol lines')}</caption>\n"
                f'<thead><tr><th scope="col">{p.t("Line")}</th>'
            )
            for label in labels:
                add(f'<th scope="col" class="n">{label}</th>')
            add("</tr></thead>\n<tbody>")
            names = p.line_names[cid]
            for lid, vals in c["lines"]:
                add(f'<tr><th scope="row">{names[lid]}</th>')
                for v in vals:
                    add(f'<td class="n">{num(v)}</td>')
                add("</tr>")
            add(
                '</tbody>\n</table>\n</div>\n<div class="scroll">\n'
                f'<table class="results station-votes" data-contest="{ecid}">\n<caption>'
            )
            add(p.t("Votes"))
            for col, label in zip(columns, labels, strict=True):
                if col["reported"]:
                    add(f" — {label}: {p.base_words(col['percent_base'], col['percent_base_value'])}")
            add(f'</caption>\n<thead><tr><th scope="col">{p.t("Party or candidate")}</th>')
            kinds = [esc(col["count_kind"]) for col in columns]
            for k, label in zip(kinds, labels, strict=True):
                add(f'<th scope="col" class="n" data-kind="{k}">{label}</th><th scope="col" class="n">%</th>')
            add("</tr></thead>\n<tbody>")
            for choice, colour, cells in c["choices"]:
                # A choice's row head is the same on every station page of its contest.
                add(p.fragment(("choice-row", cid, choice, colour), _choice_row_head, cid, choice, colour))
                for i, cell in enumerate(cells):
                    if cell:
                        add(
                            f'<td class="n votes" data-kind="{kinds[i]}">{num(cell[0])}</td>'
                            f'<td class="n pct">{pct(cell[1])}%</td>'
                        )
                    else:
                        add('<td class="n">—</td><td class="n">—</td>')
                add("</tr>")
            add("</tbody>\n</table>\n</div>\n")
            for col, label, k in zip(columns, labels, kinds, strict=True):
                if not col["reported"]:
                    continue
                add(
                    f'<dl class="receipt" data-kind="{k}">\n'
                    f"<div><dt>{label}: {p.t('Ledger entry')}</dt><dd>{esc(col['ledger_index'])}</dd></div>\n"
                    f"<div><dt>{p.t('Leaf hash')}</dt><dd><code>{esc(col['leaf_hash'])}</code></dd></div>\n"
                    f"<div><dt>{p.t('SHA-256 of the signed protocol')}</dt><dd><code>"
                    f"{esc(col['body_sha256'])}</code></dd></div>\n"
                    f"<div><dt>{p.t('Received')}</dt><dd>{_received(p, col['envelope'])}</dd></div>\n"
                    "</dl>\n"
                )
                image = col.get("image")
                if image:
                    add(_image(p, ctx, station, label, k, image))
        add("</section>\n")
    rules = d["rules"]
    if rules:
        first = d["contests"][0]["contest"]
        add(
            f'<section aria-labelledby="rules">\n<h2 id="rules">{p.t("Control rules")}</h2>\n'
            '<div class="scroll">\n<table class="rules" aria-labelledby="rules">\n'
            f'<thead><tr><th scope="col">{p.t("Rule")}</th>'
        )
        cols = d["rule_columns"]
        for col in cols:
            cc = col.split("/")
            add(f'<th scope="col">{kind(cc[1])}')
            if cc[0] != first:
                add(f" ({p.contest_names[cc[0]]})")
            add("</th>")
        add("</tr></thead>\n<tbody>")
        for r in rules:
            add(p.fragment(("rule-row", r["expr"]), _rule_row_head, r["expr"]))
            checks = r["checks"]
            for col in cols:
                x = checks.get(col, 0)
                if x is None:
                    add("<td>✓</td>")
                elif x == 0:
                    add("<td></td>")
                else:
                    add(
                        f'<td><span class="no">✗ {num(x["left"])} / {num(x["right"])} '
                        f"({esc(r['severity'])})</span></td>"
                    )
            add("</tr>")
        add(f'</tbody>\n</table>\n</div>\n<p class="small">{p.t(_RULE_LEGEND)}</p>\n</section>\n')
    add(_intake(p, d.get("intake")))
    add(f'<section aria-labelledby="hist-h">\n<h2 id="hist-h">{p.t("History")}</h2>\n')
    history = d["history"]
    if history:
        add(f'<p class="small">{p.t(_HISTORY_NOTE)}</p>\n')
        for g in history:
            add(_history_table(p, g))
    else:
        add(f"<p>{p.t('Nothing recorded yet.')}</p>")
    add("</section>\n")
    return base_page(p, ctx, d, station, "".join(out), _refresh(p, ctx))


_HISTORY_NOTE = (
    "Every protocol and every decision the ledger holds for this station, in ledger order. "
    "Corrections and annulments need two people: one proposes, another approves."
)
_INTAKE_NOTE = (
    "From the intake journal (bulletin/journal.json): every attempt, also those that did not "
    "count. The journal is not part of the ledger, so these figures cannot be recomputed from it."
)
_PHOTO = "Photo or scan of the paper protocol"
_NO_INTAKE = "No attempt to submit a protocol from a device is recorded for this station."
#: The ``reason_label`` macro of station.html: intake refusal reasons in words.
_REASONS = {
    "conflict": "a different protocol, held for two-person review",
    "replay": "a replaced protocol sent again",
    "annulled": "the result was annulled",
    "forged-signature": "forged signature",
    "missing-signature": "no signature",
    "malformed-signature": "malformed signature",
    "unknown-key": "unknown device key",
    "revoked-key": "revoked device key",
    "wrong-station": "another station's device key",
    "election-mismatch": "made for another election",
    "too-large": "too large",
    "unknown-station": "unknown station",
    "unknown-contest": "unknown contest",
    "station-not-in-contest": "the station does not vote in this contest",
    "lines": "protocol lines missing or out of range",
    "rules": "control rules fail",
    "store-unavailable": "the server could not record it",
    "unspecified": "reason not recorded",
}
_MALFORMED = frozenset(
    {
        "invalid-utf8",
        "malformed-json",
        "duplicate-key",
        "not-a-number",
        "wrong-type",
        "unknown-field",
        "missing-field",
        "wrong-value",
        "too-long",
    }
)


def _reason_label(p: Phrases, reason: str) -> str:
    words = _REASONS.get(reason)
    if words is not None:
        return p.t(words)
    if reason in _MALFORMED:
        return f"{p.t('malformed protocol')} ({esc(reason)})"
    return esc(reason)


def _image(
    p: Phrases, ctx: PageContext, station: str, label: str, kind: str, image: Mapping[str, Any]
) -> str:
    """The photo of a paper protocol under its receipt (``kind`` already escaped)."""
    path = image["path"]
    href = esc(ctx.root) + esc(path) if path else ""
    out = [f'<figure class="protocol-image" data-kind="{kind}">\n']
    if path and image["media_type"] != "application/pdf":
        alt = f"{p.t(_PHOTO)}: {station}, {label}"
        out.append(f'<a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>\n')
    out.append(f"<figcaption>{label}: ")
    if path:
        out.append(f'<a href="{href}">{p.t(_PHOTO)}</a>')
    else:
        out.append(
            p.t("the protocol declares a photo or scan of the paper protocol, but it has not been uploaded")
        )
    out.append(f" · {p.t('declared SHA-256')} <code>{esc(image['sha256'])}</code></figcaption>\n</figure>\n")
    return "".join(out)


def _intake(p: Phrases, intake: Mapping[str, Any] | None) -> str:
    """The intake attempts section of station.html."""
    out = [f'<section aria-labelledby="intake-h">\n<h2 id="intake-h">{p.t("Intake attempts")}</h2>\n']
    if intake:
        num = p.num
        out.append('<p class="intake">')
        out.append(
            p.f(
                "Accepted: %(a)s; sent again: %(u)s; conflicting: %(c)s; rejected: %(r)s.",
                a=num(intake["accepted"]),
                u=num(intake["duplicate"]),
                c=num(intake["conflict"]),
                r=num(intake["rejected"]),
            )
        )
        out.append("</p>\n")
        reasons = intake["reasons"]
        if reasons:
            out.append('<ul class="intake-reasons">')
            # Jinja's dictsort: by key, ignoring case.
            for reason, n in sorted(reasons.items(), key=lambda kv: kv[0].lower()):
                out.append(f'<li data-reason="{esc(reason)}">{_reason_label(p, reason)}: {num(n)}</li>')
            out.append("</ul>\n")
    else:
        out.append(f"<p>{p.t(_NO_INTAKE)}</p>\n")
    out.append(f'<p class="small">{p.t(_INTAKE_NOTE)}</p>\n</section>\n')
    return "".join(out)


def _history_received(p: Phrases, h: Mapping[str, Any]) -> str:
    """The ``received`` macro of station.html."""
    if h["source"] == "import":
        return p.t("imported from a file")
    if h["key_id"]:
        return p.f("signed by the station's device key %(k)s", k=h["key_id"])
    if h["source"] == "commission":
        return p.t("entered by the commission")
    return "—"


def _choice_row_head(p: Phrases, cid: str, choice: str, colour: str) -> str:
    return (
        f'<tr data-choice="{esc(choice)}"><th scope="row"><span class="sw" '
        f'style="background:{esc(colour)}"></span>{p.choice_names[cid][choice]}</th>'
    )


def _rule_row_head(p: Phrases, expr: str) -> str:
    return f'<tr><th scope="row"><code>{esc(expr)}</code></th>'


def _history_head(p: Phrases, cid: str, kind: str) -> str:
    return (
        '<div class="scroll">\n'
        f'<table class="history" data-contest="{esc(cid)}" data-kind="{esc(kind)}">\n'
        f"<caption>{p.contest_names[cid]}, {p.kind(kind)}: "
    )


def _history_columns(p: Phrases) -> str:
    return (
        f'</caption>\n<thead><tr><th scope="col">{p.t("Ledger entry")}</th><th scope="col">'
        f'{p.t("What")}</th><th scope="col">{p.t("Status")}</th><th scope="col">{p.t("Leaf hash")}'
        "</th></tr></thead>\n<tbody>"
    )


def _history_table(p: Phrases, g: Mapping[str, Any]) -> str:
    """One (contest, count kind) of a station's history."""
    cid, kind = g["contest"], g["count_kind"]
    out = [p.fragment(("history-head", cid, kind), _history_head, cid, kind)]
    if g["in_force"] is not None:
        out.append(p.f("ledger entry %(i)s counts now", i=g["in_force"]))
    else:
        out.append(p.t("nothing counts now"))
    out.append(p.fragment(("history-columns",), _history_columns))
    for h in g["entries"]:
        idx = esc(h["ledger_index"])
        action = h["action"]
        out.append(f'<tr data-index="{idx}" data-status="{esc(h["status"])}"><th scope="row">{idx}</th><td>')
        if action == "submit":
            out.append(f"{p.t('Protocol')}: {_history_received(p, h)}")
        elif action in ("supersede", "dismiss"):
            out.append(f"{_decision_words(p, action, h['target'])}: {_history_received(p, h)}")
        else:
            out.append(_decision_words(p, action, h["target"]))
        if action != "submit":
            out.append('<br><span class="small">')
            out.append(_decided(p, h))
            out.append("</span>")
        out.append("</td><td>")
        status = h["status"]
        if status == "counts":
            out.append(p.t("counts now"))
        elif status == "superseded":
            out.append(p.f("superseded by entry %(i)s", i=h["ended_by"]))
        elif status == "annulled":
            out.append(p.f("annulled by entry %(i)s", i=h["ended_by"]))
        elif status == "dismissed":
            out.append(p.t("never counted"))
        else:
            out.append("—")
        out.append(f"</td><td><code>{esc(h['leaf_hash'])}</code></td></tr>")
    out.append("</tbody>\n</table>\n</div>\n")
    return "".join(out)


def _received(p: Phrases, envelope: Mapping[str, Any]) -> str:
    if envelope.get("via") == "import":
        return p.t("imported from a file")
    if envelope.get("key_id"):
        return p.f("signed by the station's device key %(k)s", k=envelope["key_id"])
    if envelope.get("action"):
        return p.f(
            "a two-person decision (%(a)s) on ledger entry %(t)s",
            a=envelope["action"],
            t=envelope.get("target", ""),
        )
    return "—"


# -- _macros.html ------------------------------------------------------------------------------


def _base_header(p: Phrases, figure: str) -> str:
    if figure == "took_part":
        return p.t("Share of voters who took part, %%")
    if figure == "valid":
        return p.t("Share of valid votes, %%")
    if figure == "ballots_cast":
        return p.t("Share of ballots cast, %%")
    return p.t("Share of registered voters, %%")


def _reporting(p: Phrases, s: Mapping[str, Any]) -> str:
    share = p.pct(s["stations_reporting_percent"])
    text = p.f(
        "%(x)s of %(y)s polling stations reporting (%(p)s%%)",
        x=p.num(s["stations_reporting"]),
        y=p.num(s["stations_expected"]),
        p=share,
    )
    return (
        f'<div class="reporting">\n<p>{text}</p>\n<progress max="{esc(s["stations_expected"])}" '
        f'value="{esc(s["stations_reporting"])}" aria-hidden="true">{share}%</progress>\n</div>'
    )


def _figures(p: Phrases, s: Mapping[str, Any]) -> str:
    num = p.num
    out = ['<dl class="figures">\n']
    if s["registered"] is not None:
        out.append(f"<div><dt>{p.t('Registered voters')}</dt><dd>{num(s['registered'])}</dd></div>")
    if s["took_part"] is not None:
        out.append(f"<div><dt>{p.t('Voters who took part')}</dt><dd>{num(s['took_part'])}</dd></div>")
    if s["turnout_percent"] is not None:
        out.append(f"<div><dt>{p.t('Turnout')}</dt><dd>{p.pct(s['turnout_percent'])}%</dd></div>")
    if s["ballots_cast"] is not None:
        out.append(f"<div><dt>{p.t('Ballots cast')}</dt><dd>{num(s['ballots_cast'])}</dd></div>")
    if s["valid"] is not None:
        out.append(f"<div><dt>{p.t('Valid votes')}</dt><dd>{num(s['valid'])}</dd></div>")
    if s["invalid"] is not None:
        out.append(f"<div><dt>{p.t('Invalid ballots')}</dt><dd>{num(s['invalid'])}</dd></div>")
    out.append("</dl>")
    return "".join(out)


def _choices_table(p: Phrases, s: Mapping[str, Any], caption: str) -> str:
    cid = s["contest"]
    ecid = esc(cid)
    names = p.choice_names[cid]
    out = [
        '<div class="scroll">\n'
        f'<table class="results" data-contest="{ecid}" data-kind="{esc(s["count_kind"])}">\n'
        f"<caption>{caption} — {p.base_words(s['percent_base'], s['percent_base_value'])}</caption>\n"
        f'<thead><tr><th scope="col">{p.t("Party or candidate")}</th><th scope="col" class="n">'
        f'{p.t("Votes")}</th><th scope="col" class="n">{_base_header(p, s["percent_base"])}</th>'
        f'<th scope="col" class="barcol"><span class="vh">{p.t("Share as a bar")}</span></th></tr></thead>\n'
        "<tbody>\n"
    ]
    num, pct = p.num, p.pct
    for c in s["choices"]:
        colour = esc(c["colour"])
        percent = c["percent"]
        if percent is not None:
            share = f"{pct(percent)}%"
            bar = f'<span class="bar" style="width:{esc(percent)}%;background:{colour}"></span>'
        else:
            share, bar = "—", ""
        out.append(
            f'<tr data-choice="{esc(c["id"])}"><th scope="row"><span class="sw" style="background:'
            f'{colour}"></span>{names[c["id"]]}</th><td class="n votes">{num(c["votes"])}</td>'
            f'<td class="n pct">{share}</td><td class="barcol" aria-hidden="true">{bar}</td></tr>\n'
        )
    out.append("</tbody>\n</table>\n</div>")
    return "".join(out)


def _seats_block(p: Phrases, s: Mapping[str, Any]) -> str:
    sp = s["seats"]
    cid = s["contest"]
    names = p.choice_names[cid]
    num, pct = p.num, p.pct
    tag = f"{esc(cid)}-{esc(s['count_kind'])}"
    out = [f'<section class="seats" aria-labelledby="seats-{tag}">\n<h3 id="seats-{tag}">']
    out.append(p.t("Provisional seat projection") if sp["provisional"] else p.t("Seats"))
    out.append("</h3>\n")
    if sp["provisional"]:
        out.append('<p class="note">')
        out.append(
            p.f(
                "Projection on %(x)s of %(y)s stations of this count; not a result.",
                x=num(sp["stations_reporting"]),
                y=num(sp["stations_expected"]),
            )
        )
        out.append("</p>")
    status = sp["status"]
    if status != "ok":
        out.append("<p>")
        if status == "no-data":
            out.append(p.t("No station has reported yet."))
        elif status == "no-eligible":
            out.append(p.t("No party passes the thresholds yet."))
        else:
            out.append(p.t("Seats cannot be computed yet."))
        out.append("</p>\n")
    elif sp.get("hemicycle"):
        h = sp["hemicycle"]
        out.append(
            f'<svg class="hemicycle" viewBox="0 0 {esc(h["width"])} {esc(h["height"])}" role="img" '
            f'aria-labelledby="hc-{tag}"><title id="hc-{tag}">'
        )
        out.append(
            p.f("Seat diagram of %(n)s seats; the table below gives the numbers.", n=sp["seats_total"])
        )
        out.append("</title>\n")
        r = esc(h["r"])
        for seat in h["seats"]:
            out.append(
                f'<circle cx="{esc(seat["x"])}" cy="{esc(seat["y"])}" r="{r}" fill="{esc(seat["colour"])}"/>'
            )
        out.append('</svg>\n<table class="legend"><caption>')
        out.append(p.f("Seats of %(n)s", n=num(sp["seats_total"])))
        out.append(
            f'</caption>\n<thead><tr><th scope="col">{p.t("Party")}</th><th scope="col" class="n">'
            f"{p.t('Seats')}</th></tr></thead>\n<tbody>"
        )
        for q in sp["legend"]:
            out.append(
                f'<tr data-choice="{esc(q["id"])}"><th scope="row"><span class="sw" style="background:'
                f'{esc(q["colour"])}"></span>{names[q["id"]]}</th><td class="n">{num(q["seats"])}</td></tr>'
            )
        out.append("</tbody>\n</table>\n")
    elif sp.get("outcome"):
        out.append('<p class="outcome">')
        if sp["outcome"] == "elected" and sp["provisional"]:
            out.append(p.f("Leading: %(who)s", who=_choice_name(p, cid, sp["winner"])))
        elif sp["outcome"] == "elected":
            out.append(p.f("Elected: %(who)s", who=_choice_name(p, cid, sp["winner"])))
        else:
            out.append(
                p.t(
                    "“Against all” has more votes than any candidate: the election in this "
                    "constituency fails and is held again."
                )
            )
        out.append("</p>\n")
    if status == "ok" and sp["has_thresholds"]:
        parties = sp["parties"]
        regional = parties[0].get("regions_total")
        out.append(
            '<div class="scroll">\n<table class="thresholds">\n'
            f"<caption>{p.t('Thresholds')}</caption>\n"
            f'<thead><tr><th scope="col">{p.t("Party")}</th><th scope="col" class="n">{p.t("Nationally")}'
            f'</th><th scope="col">{p.t("Passed")}</th>'
        )
        if regional:
            out.append(
                f'<th scope="col" class="n">{p.t("Regions passed")}</th><th scope="col">'
                f"{p.t('Lowest region')}</th>"
            )
        out.append("</tr></thead>\n<tbody>\n")
        for q in parties:
            if q.get("against_all"):
                continue
            out.append(
                f'<tr data-choice="{esc(q["id"])}"><th scope="row">{names[q["id"]]}</th>\n'
                f'<td class="n">{pct(q.get("national_percent"))}% <span class="req">(≥ '
                f"{pct(q.get('national_required_percent'))}%)</span></td>\n<td>"
            )
            if q.get("national_passed") and not q.get("regions_failed"):
                out.append(f'<span class="ok">{p.t("yes")}</span>')
            else:
                out.append(f'<span class="no">{p.t("no")}</span>')
            out.append("</td>\n")
            if q.get("regions_total"):
                out.append(f'<td class="n">{esc(q["regions_passed"])} / {esc(q["regions_total"])}</td><td>')
                low = q.get("lowest_region")
                if low:
                    out.append(
                        f'{p.area(low["area"])}: {pct(low["percent"])}% <span class="req">(≥ '
                        f"{pct(low['required_percent'])}%)</span>"
                    )
                out.append("</td>")
            out.append("</tr>\n")
        out.append("</tbody>\n</table>\n</div>\n")
    if s.get("sensitivity"):
        out.append(_sensitivity_block(p, s))
    out.append("</section>")
    return "".join(out)


def _sensitivity_block(p: Phrases, s: Mapping[str, Any]) -> str:
    """The ``sensitivity_block`` macro: what the thresholds and the last seat rest on."""
    v = s["sensitivity"]
    cid = s["contest"]
    names = p.choice_names[cid]
    num, dec = p.num, p.pct
    out = [
        f'<div class="sensitivity" id="sens-{esc(cid)}-{esc(s["count_kind"])}">\n'
        f"<h4>{p.t('What the outcome rests on')}</h4>\n"
    ]
    move = v.get("seat_move")
    if move:
        out.append('<p class="seat-move">')
        out.append(
            p.f(
                "The last seat would move if %(n)s votes moved from %(a)s to %(b)s",
                n=num(move["votes"]),
                a=Markup(names[move["source"]]),
                b=Markup(names[move["target"]]),
            )
        )
        changes = ", ".join(
            f"{names[c['id']]} {num(c['before'])} → {num(c['after'])}" for c in move["changes"]
        )
        out.append(f": {changes}.</p>\n")
    t = v.get("threshold")
    if t:
        out.append(
            f'<div class="scroll">\n<table class="margins" data-contest="{esc(cid)}" '
            f'data-kind="{esc(s["count_kind"])}">\n<caption>'
            f"{p.t('How many votes each threshold decision rests on')} — {dec(t['percent'])}% "
            f"{p.base_words(t['figure'], t['base'])} = {dec(t['required'])}</caption>\n"
            f'<thead><tr><th scope="col">{p.t("Party")}</th><th scope="col" class="n">{p.t("Votes")}</th>'
            f'<th scope="col" class="n">{p.t("Distance from the threshold, votes")}</th>'
            f'<th scope="col" class="n">{p.t("The decision changes with")}</th></tr></thead>\n<tbody>\n'
        )
        for q in v["parties"]:
            if q["passes"]:
                margin = p.f("%(n)s above", n=dec(q["margin"]))
                change = p.f("%(n)s fewer votes", n=num(q["votes_to_change"]))
            else:
                margin = p.f("%(n)s below", n=dec(q["margin"]))
                change = p.f("%(n)s more votes", n=num(q["votes_to_change"]))
            out.append(
                f'<tr data-choice="{esc(q["id"])}"><th scope="row">{names[q["id"]]}</th>'
                f'<td class="n">{num(q["votes"])}</td><td class="n margin">{margin}</td>'
                f'<td class="n change">{change}</td></tr>\n'
            )
        out.append("</tbody>\n</table>\n</div>\n")
    if v.get("regional_held"):
        out.append(
            '<p class="small">'
            + p.t(
                "Votes moved between parties nationally; whether a party passed the regional "
                "thresholds is held as it is."
            )
            + "</p>"
        )
    out.append("</div>")
    return "".join(out)


def _recon_links(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """The ``recon_links`` macro (with the line it stands on): links to the reconciliation
    pages of the contests shown."""
    links = d.get("reconciliation")
    if not links:
        return ""
    lr = ctx.lang_root
    label = p.t("Machine count vs hand count, station by station")
    parts = []
    for r in links:
        c = esc(r["contest"])
        item = f'<a href="{lr}reconcile/{c}/difference.html">{label}: {p.contest_names[r["contest"]]}</a>'
        if r["region"]:
            item += (
                f' · <a href="{lr}reconcile/{c}/region.html#region-{esc(r["region"])}">'
                f"{p.t('stations of this region')}</a>"
            )
        parts.append(item)
    return (
        f'<nav class="recon-links" aria-label="{p.t("Machine vs hand count")}"><p>'
        + "<br>".join(parts)
        + "</p></nav>\n"
    )


def _choice_name(p: Phrases, contest: str, choice: str) -> str:
    return p.choice_names[contest][choice]


def section(p: Phrases, s: Mapping[str, Any]) -> str:
    """The ``section`` macro (with its heading)."""
    cid, kind = s["contest"], s["count_kind"]
    label = p.kind(kind)
    official = s["official"]
    out = [
        f'<section class="count {"official" if official else "preliminary"}" '
        f'id="count-{esc(cid)}-{esc(kind)}" data-contest="{esc(cid)}" data-kind="{esc(kind)}">\n'
        f"<h2>{p.contest_names[cid]}: {label} "
        f'<span class="badge">{p.status_labels[bool(official)]}</span></h2>'
    ]
    if not official:
        out.append(
            '<p class="note">'
            + p.t("Preliminary: this count is shown apart from the official count and never added to it.")
            + "</p>"
        )
    out.append(_reporting(p, s))
    out.append("\n")
    out.append(_figures(p, s))
    out.append("\n")
    out.append(_choices_table(p, s, label))
    out.append("\n")
    if s["seats"]:
        out.append(_seats_block(p, s))
    out.append("</section>")
    return "".join(out)


def _leader_cell(p: Phrases, contest: str | None, leader: Mapping[str, Any] | None) -> str:
    if not leader:
        return "—"
    name = p.choice_names[contest][leader["id"]] if contest is not None else ""
    return (
        f'<span class="sw" style="background:{esc(leader["colour"])}"></span>{name} '
        f"({p.pct(leader['percent'])}%)"
    )


# -- _children.html, area.html, national.html -------------------------------------------------


def _children(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    children = d["children"]
    if not children:
        return ""
    lr = ctx.lang_root
    num = p.num
    out = [
        f'<section aria-labelledby="children-h">\n<h2 id="children-h">{p.t("Areas")} — '
        f'{p.kind(d["primary_kind"])}</h2>\n<div class="scroll">\n'
        '<table class="areas" aria-labelledby="children-h">\n'
        f'<thead><tr><th scope="col">{p.t("Area")}</th><th scope="col" class="n">'
        f'{p.t("Stations reporting")}</th><th scope="col" class="n">{p.t("Turnout")}</th>'
        f'<th scope="col">{p.t("Leading")}</th></tr></thead>\n<tbody>\n'
    ]
    main = d["main_contest"]
    for c in children:
        turnout = c["turnout_percent"]
        out.append(
            f'<tr data-area="{esc(c["area"])}"><th scope="row"><a href="{lr}area/{esc(c["area"])}.html">'
            f'{p.area(c["area"])}</a></th><td class="n">{num(c["stations_reporting"])} / '
            f'{num(c["stations_expected"])}</td><td class="n">'
            f"{'—' if turnout is None else p.pct(turnout) + '%'}</td><td>"
            f"{_leader_cell(p, main, c['leader'])}</td></tr>\n"
        )
    out.append("</tbody>\n</table>\n</div>\n</section>\n")
    return "".join(out)


def area_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``area.html``."""
    lr = ctx.lang_root
    name = p.area(d["area"])
    out = _crumbs(p, ctx, d["chain"])
    out.append(f' › <span aria-current="page">{name}</span></nav>\n<h1>{name}</h1>\n')
    for s in d["sections"]:
        out.append(section(p, s))
        out.append("\n")
    out.append(_recon_links(p, ctx, d))
    out.append(_children(p, ctx, d))
    related = d["related"]
    if related:
        if p.area_kinds.get(d["area"]) == "constituency":
            heading = p.t("Regions of this constituency")
        else:
            heading = p.t("Constituencies in this area")
        out.append(f'<section aria-labelledby="rel-h">\n<h2 id="rel-h">{heading}</h2>\n<ul class="cols">')
        for a in related:
            out.append(f'<li><a href="{lr}area/{esc(a)}.html">{p.area(a)}</a></li>')
        out.append("</ul>\n</section>\n")
    stations = d["stations"]
    if stations:
        num, pct = p.num, p.pct
        out.append(
            f'<section aria-labelledby="st-h">\n<h2 id="st-h">{p.t("Polling stations")}</h2>\n'
            '<div class="scroll">\n<table class="stations" aria-labelledby="st-h">\n'
            f'<thead><tr><th scope="col">{p.t("Station")}</th><th scope="col" class="n">'
            f"{p.t('Registered voters')}</th>"
        )
        for k in stations[0]["kinds"]:
            out.append(f'<th scope="col">{p.kind(k)}</th>')
        out.append("</tr></thead>\n<tbody>\n")
        main = d["main_contest"]
        turnout_word = p.t("turnout")
        not_reported = f'<td><span class="muted">{p.t("not reported")}</span></td>'
        for st in stations:
            sid = esc(st["id"])
            out.append(
                f'<tr data-station="{sid}"><th scope="row"><a href="{lr}station/{sid}.html">'
                f'{p.station(st["id"])}</a></th><td class="n">{num(st["registered"])}</td>'
            )
            for v in st["kinds"].values():
                if v:
                    out.append(
                        f"<td>{turnout_word} {pct(v['turnout_percent'])}% · "
                        f"{_leader_cell(p, main, v['leader'])}</td>"
                    )
                else:
                    out.append(not_reported)
            out.append("</tr>\n")
        out.append("</tbody>\n</table>\n</div>\n</section>\n")
    return base_page(p, ctx, d, name, "".join(out), _refresh(p, ctx))


def national_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``national.html``."""
    lr = ctx.lang_root
    out = [f'<h1>{p.election_name}</h1>\n<p class="lead">']
    out.append(p.f("Results as of snapshot %(n)s.", n=d["snapshot"]["number"]))
    out.append(
        " "
        + p.t(
            "Machine (scanner) counts are preliminary; the hand count is the official result. "
            "The two are never added together."
        )
        + "</p>\n"
    )
    sections = d["sections"]
    if sections:
        out.append(f'<nav class="counts" aria-label="{p.t("Counts")}">')
        for s in sections:
            out.append(
                f'<a href="#count-{esc(s["contest"])}-{esc(s["count_kind"])}">{p.kind(s["count_kind"])}</a>'
            )
        out.append("</nav>\n")
    for s in sections:
        out.append(section(p, s))
        out.append("\n")
    out.append(_recon_links(p, ctx, d))
    m = d.get("map")
    if m:
        main = d["main_contest"]
        out.append(
            f'<section class="maps" aria-labelledby="map-h">\n<h2 id="map-h">{p.t("Regions")} — '
            f'{p.kind(d["primary_kind"])}</h2>\n<div class="mapgrid">\n<figure>\n'
            f'<svg viewBox="0 0 {esc(m["width"])} {esc(m["height"])}" role="img" '
            f'aria-labelledby="map-lead"><title id="map-lead">'
            f"{p.t('Map: the leading party in each region. The table below lists the same.')}</title>\n"
        )
        for r in m["regions"]:
            leader = r["leader"]
            if leader:
                what = f"{p.choice_names[main][leader['id']]} {p.pct(leader['percent'])}%"
            else:
                what = p.t("no results yet")
            out.append(
                f'<a href="{lr}area/{esc(r["area"])}.html"><path d="{esc(r["d"])}" '
                f'fill="{esc(r["leader_fill"])}" stroke="#fff" stroke-width="1"><title>'
                f"{p.area(r['area'])}: {what}</title></path></a>"
            )
        out.append(
            f"</svg>\n<figcaption>{p.t('Leading party')}</figcaption>\n</figure>\n<figure>\n"
            f'<svg viewBox="0 0 {esc(m["width"])} {esc(m["height"])}" role="img" '
            f'aria-labelledby="map-turnout"><title id="map-turnout">'
            f"{p.t('Map: turnout in each region (darker is higher). The table below lists the same.')}"
            "</title>\n"
        )
        for r in m["regions"]:
            turnout = r["turnout_percent"]
            out.append(
                f'<a href="{lr}area/{esc(r["area"])}.html"><path d="{esc(r["d"])}" '
                f'fill="{esc(r["turnout_fill"])}" stroke="#333" stroke-width="0.6"><title>'
                f"{p.area(r['area'])}: {'—' if turnout is None else p.pct(turnout) + '%'}</title></path></a>"
            )
        out.append(
            f"</svg>\n{map_key(p, m['turnout_key'], p.t('no results yet'))}\n"
            f"<figcaption>{p.t('Turnout')}</figcaption>\n</figure>\n</div>\n"
        )
        if m.get("attribution"):
            out.append(f'<p class="small">{p.t("Boundaries:")} {esc(m["attribution"])}</p>')
        out.append("</section>\n")
    out.append(_children(p, ctx, d))
    smds = d["constituencies"]
    if smds:
        out.append(
            f'<section aria-labelledby="smd-h">\n<h2 id="smd-h">{p.t("Single-member constituencies")}</h2>\n'
            '<ul class="cols">'
        )
        for a in smds:
            out.append(f'<li><a href="{lr}area/{esc(a)}.html">{p.area(a)}</a></li>')
        out.append("</ul>\n</section>\n")
    return base_page(p, ctx, d, p.t("Results"), "".join(out), _refresh(p, ctx))


# -- changes.html, snapshots.html, downloads.html --------------------------------------------


def _short(value: object, n: int) -> object:
    """The ``short`` filter."""
    return value[:n] + "…" if isinstance(value, str) and len(value) > n else value


def changes_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``changes.html``."""
    lr = ctx.lang_root
    num = p.num
    c = d["changes"]
    title = p.t("What changed")
    out = [f"<h1>{title}</h1>\n"]
    if c["previous"] is None:
        out.append(f"<p>{p.t('This is the first snapshot.')}</p>\n")
    else:
        out.append("<p>")
        out.append(
            p.f(
                "Snapshot %(n)s against snapshot %(p)s: ledger entries %(a)s to %(b)s.",
                n=d["snapshot"]["number"],
                p=c["previous"],
                a=num(c["ledger_from"]),
                b=num(c["ledger_to"]),
            )
        )
        out.append("</p>\n")
    out.append("<p>")
    out.append(p.f("New protocols: %(n)s.", n=num(c["new_protocols_total"])))
    out.append(" ")
    out.append(p.f("Totals changed: %(n)s.", n=num(c["rows_changed_total"])))
    out.append(" ")
    out.append(p.f("Corrections and annulments: %(n)s.", n=num(c["decisions_total"])))
    out.append("</p>\n")
    if c["rows_changed"]:
        out.append(
            f'<div class="scroll">\n<table>\n<caption>{p.t("Totals that changed")}</caption>\n'
            f'<thead><tr><th scope="col">{p.t("Area")}</th><th scope="col">{p.t("Contest")}</th>'
            f'<th scope="col">{p.t("Count")}</th><th scope="col" class="n">{p.t("Stations reporting")}'
            f'</th><th scope="col" class="n">{p.t("Voters who took part")}</th></tr></thead>\n<tbody>'
        )
        for r in c["rows_changed"]:
            sr, tp = r["stations_reporting"], r["took_part"]
            out.append(
                f'<tr><th scope="row"><a href="{lr}area/{esc(r["area"])}.html">{p.area(r["area"])}</a></th>'
                f"<td>{p.contest_names[r['contest']]}</td><td>{p.kind(r['count_kind'])}</td>"
                f'<td class="n">{num(sr[0])} → {num(sr[1])}</td>'
                f'<td class="n">{num(tp[0])} → {num(tp[1])}</td></tr>'
            )
        out.append("</tbody>\n</table>\n</div>\n")
    news = c["new_protocols"]
    if news:
        entry = p.t("ledger entry")
        out.append(f'<h2>{p.t("New protocols")}</h2>\n<ul class="cols">')
        for q in news:
            sid = q["station"]
            out.append(
                f'<li><a href="{lr}station/{esc(sid)}.html">{p.station(sid)}</a> — '
                f"{p.kind(q['count_kind'])} ({entry} {esc(q['ledger_index'])})</li>"
            )
        out.append("</ul>\n")
        out.append(_first_listed(p, c["new_protocols_total"], len(news)))
    decisions = c["decisions"]
    if decisions:
        entry = p.t("ledger entry")
        out.append(f'<h2>{p.t("Corrections and annulments")}</h2>\n<ul class="decisions">')
        for q in decisions:
            sid = q["station"]
            out.append(
                f'<li data-index="{esc(q["ledger_index"])}"><a href="{lr}station/{esc(sid)}.html">'
                f"{p.station(sid)}</a> — {p.contest_names[q['contest']]}, {p.kind(q['count_kind'])}: "
                f"{_decision_words(p, q['action'], q['target'])} ({entry} {esc(q['ledger_index'])})"
                '<br><span class="small">'
            )
            out.append(_decided(p, q))
            out.append("</span></li>")
        out.append("</ul>\n")
        out.append(_first_listed(p, c["decisions_total"], len(decisions)))
    return base_page(p, ctx, d, title, "".join(out))


def _first_listed(p: Phrases, total: int, listed: int) -> str:
    """The note under a list cut short (empty when it is not)."""
    if total <= listed:
        return ""
    return f'<p class="small">{p.f("The first %(n)s are listed; changes.json has the counts.", n=listed)}</p>'


def _decided(p: Phrases, d: Mapping[str, Any]) -> str:
    """Why a decision was taken and by whom (two people: docs/intake-api.md)."""
    return p.f(
        "Reason: %(r)s. Proposed by %(p)s, approved by %(a)s.",
        r=d["reason"] or "—",
        p=d["proposed_by"] or "—",
        a=d["approved_by"] or "—",
    )


def _decision_words(p: Phrases, action: str, target: object) -> str:
    """What a correction or annulment did, as a station's history says it."""
    if action == "supersede":
        return p.f("Correction of entry %(t)s", t=target)
    if action == "dismiss":
        return p.f("A different reading turned down; entry %(t)s stays", t=target)
    if action == "annul":
        return p.f("Annulment of entry %(t)s", t=target)
    return esc(action)


def snapshots_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``snapshots.html``."""
    title = p.t("Snapshots")
    lang = p.lang
    out = [
        f'<h1 id="page-h">{title}</h1>\n<p>'
        + p.t(
            "Each snapshot is an unchangeable set of files. Its checkpoint is signed by the "
            "commission; a later checkpoint must extend every earlier one."
        )
        + "</p>\n"
        '<div class="scroll">\n<table aria-labelledby="page-h">\n'
        f'<thead><tr><th scope="col">{p.t("Snapshot")}</th>'
        f'<th scope="col">{p.t("Published")}</th><th scope="col" class="n">{p.t("Ledger entries")}</th>'
        f'<th scope="col">{p.t("Merkle root")}</th><th scope="col">{p.t("Checkpoint")}</th></tr></thead>\n'
        "<tbody>"
    ]
    num = p.num
    for s in reversed(d["snapshots"]):
        n = esc(s["number"])
        out.append(
            f'<tr><th scope="row"><a href="/snapshots/{n}/{lang}/index.html">{n}</a></th>'
            f'<td>{esc(s["published_at"])}</td><td class="n">{num(s["ledger_size"])}</td>'
            f"<td><code>{esc(_short(s['root'], 16))}</code></td>"
            f'<td><a href="/snapshots/{n}/checkpoint.txt">checkpoint.txt</a></td></tr>'
        )
    out.append("</tbody>\n</table>\n</div>\n")
    return base_page(p, ctx, d, title, "".join(out))


_WHAT = {
    "results": "all results, every area and station (JSON)",
    "stations": "station protocols of one region (JSON)",
    "stations-csv": "station protocols of one region (CSV)",
    "csv": "results of one level (CSV)",
    "nist": "NIST SP 1500-100 v2 election results (JSON)",
    "sqlite": "everything in one SQLite database",
    "reconciliation": "machine vs hand count, station by station, every contest (JSON)",
    "reconciliation-csv": "lines where the machine and hand counts differ (CSV)",
    "ledger": "ledger entries with their exact bytes",
    "definition": "the election definition",
    "checkpoints": "all signed checkpoints",
    "key": "the commission's public key",
    "station-keys": "station device keys and every change of them (JSON)",
    "journal": "intake attempts per station, from the intake journal (JSON)",
}


def downloads_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``downloads.html``."""
    title = p.t("Downloads")
    out = [
        f'<h1 id="page-h">{title}</h1>\n<p>'
        + p.t(
            "Everything needed to recompute every number on this site. The formats are "
            "described in docs/bulletin.md of tallyroom."
        )
        + "</p>\n"
        '<div class="scroll">\n<table aria-labelledby="page-h">\n'
        f'<thead><tr><th scope="col">{p.t("File")}</th>'
        f'<th scope="col">{p.t("What it holds")}</th><th scope="col" class="n">{p.t("Bytes")}</th>'
        '<th scope="col">SHA-256</th></tr></thead>\n<tbody>'
    ]
    for f in d["downloads"]:
        path = esc(f["path"])
        what = _WHAT.get(f["what"])
        out.append(
            f'<tr><th scope="row"><a href="../{path}">{path}</a></th>'
            f"<td>{esc(f['what']) if what is None else p.t(what)}</td>"
            f'<td class="n">{p.num(f["size"])}</td><td><code>{esc(_short(f["sha256"], 16))}</code></td></tr>'
        )
    out.append("</tbody>\n</table>\n</div>\n")
    return base_page(p, ctx, d, title, "".join(out))


# -- reconcile.html ------------------------------------------------------------------------------

_RECON_LEAD = (
    "Each polling station's scanner count compared with the hand count of the same station, line "
    "by line. The two counts are never added together."
)
_RECON_RULE = (
    "A station is marked for recount when a line of its hand count differs from the machine count "
    "by more than %(p)s%% of the machine count (any change where the machine counted 0)"
)
_RECON_NOTE = (
    "Differences are the hand count minus the machine count. An overstatement is how many votes "
    "larger the machine count made a margin the outcome rests on than the hand count does."
)
_NO_DIFFERENCE = "No station's counts differ here."
_HIST_CAPTION = "Largest difference on any line, votes (horizontal); stations (vertical)"
_RECON_MAP = (
    "Map: the share of compared stations whose counts differ, in each region (darker is higher). "
    "The table below lists the same."
)
_ORDER_LABELS = {
    "difference": "largest difference",
    "overstatement": "largest overstatement",
    "region": "region",
}


def _bin_label(p: Phrases, b: Mapping[str, Any], width: int) -> str:
    """The ``bin_label`` macro."""
    if width == 1:
        return p.num(b["low"])
    return f"{p.num(b['low'])}–{p.num(b['last'])}"


def _assertion_text(p: Phrases, contest: str, a: Mapping[str, Any], pct: str | None) -> str:
    """The ``assertion_text`` macro."""
    names = p.choice_names[contest]
    kind = a["kind"]
    if kind == "pairwise":
        text = p.f("%(w)s ahead of %(l)s", w=Markup(names[a["choice"]]), l=Markup(names[a["other"]]))
    elif kind == "threshold_passed":
        text = p.f("%(x)s passed %(p)s%%", x=Markup(names[a["choice"]]), p=p.pct(pct))
    elif kind == "threshold_failed":
        text = p.f("%(x)s below %(p)s%%", x=Markup(names[a["choice"]]), p=p.pct(pct))
    else:
        text = esc(a["name"])
    return f"{text} ({p.f('margin %(n)s', n=p.pct(a['margin']))})"


def reconcile_page(p: Phrases, ctx: PageContext, d: Mapping[str, Any]) -> str:
    """``reconcile.html``."""
    num, pct, t = p.num, p.pct, p.t
    lr, root = ctx.lang_root, ctx.root
    cid = d["contest"]
    contest = p.contest_names[cid]
    label = t("Machine vs hand count")
    out = [
        f'<nav class="crumbs" aria-label="{t("You are here")}"><a href="{lr}index.html">{t("Results")}</a>'
        f' › <span aria-current="page">{label}</span></nav>\n'
        f"<h1>{contest}: {t('machine count vs hand count')}</h1>\n"
        f'<p class="lead">{t(_RECON_LEAD)}</p>\n<dl class="figures recon-counts">\n'
        f"<div><dt>{t('Stations of this contest')}</dt><dd>{num(d['stations_expected'])}</dd></div>\n"
        f"<div><dt>{t('With a machine count')}</dt><dd>{num(d['stations_machine'])}</dd></div>\n"
        f"<div><dt>{t('With a hand count')}</dt><dd>{num(d['stations_hand'])}</dd></div>\n"
        f'<div><dt>{t("Compared (both counts)")}</dt><dd data-count="compared">'
        f"{num(d['stations_compared'])}</dd></div>\n"
        f'<div><dt>{t("Counts differ")}</dt><dd data-count="differing">'
        f"{num(d['stations_differing'])}</dd></div>\n"
        f'<div><dt>{t("Marked for recount")}</dt><dd data-count="flagged">'
        f"{num(d['stations_flagged'])}</dd></div>\n"
        "</dl>\n<p>"
    ]
    add = out.append
    compared = num(d["stations_compared"])
    add(p.f("Only stations with both counts can be compared: %(n)s have both.", n=compared))
    rule = d["recount_rule"]
    if rule["outcome_at_risk"]:
        msg = _RECON_RULE + ", or when its difference alone could overturn a decision the outcome rests on."
    else:
        msg = _RECON_RULE + "."
    add(" " + p.f(msg, p=pct(rule["relative_percent"])) + "</p>\n")
    add(
        f'<p class="small">{t("Downloads:")} <a href="{root}data/reconciliation.json">reconciliation.json</a>'
        f' · <a href="{root}data/reconciliation.csv">reconciliation.csv</a></p>\n'
    )
    h = d.get("histogram")
    if h:
        width = h["bin_width"]
        add(
            f'<section class="histogram" aria-labelledby="hist-h">\n<h2 id="hist-h">'
            f"{t('Largest difference per station')}</h2>\n<figure>\n"
            f'<svg class="hist" viewBox="0 0 {esc(h["width"])} {esc(h["view_height"])}" role="img" '
            f'aria-labelledby="hist-t"><title id="hist-t">'
        )
        add(
            p.f(
                "Histogram: the %(n)s compared stations by the largest difference between their "
                "machine and hand counts on any line. The table beside it gives the numbers.",
                n=num(d["stations_compared"]),
            )
        )
        add("</title>\n")
        label_y = esc(h["label_y"])
        rows = []
        for b in h["bars"]:
            bl = _bin_label(p, b, width)
            add(
                f'<rect x="{esc(b["x"])}" y="{esc(b["y"])}" width="{esc(b["w"])}" height="{esc(b["h"])}" '
                f'fill="#e6550d"><title>{bl}: {num(b["count"])}</title></rect><text x="{esc(b["cx"])}" '
                f'y="{label_y}" text-anchor="middle">{bl}</text>'
            )
            rows.append(
                f'<tr data-low="{esc(b["low"])}"><th scope="row">{bl}</th>'
                f'<td class="n">{num(b["count"])}</td></tr>'
            )
        add(
            f"</svg>\n<figcaption>{t(_HIST_CAPTION)}"
            '</figcaption>\n</figure>\n<div class="scroll">\n<table class="recon-histogram">\n'
            f"<caption>{t('Stations by largest difference')}</caption>\n"
            f'<thead><tr><th scope="col">{t("Largest difference, votes")}</th><th scope="col" class="n">'
            f"{t('Stations')}</th></tr></thead>\n<tbody>"
        )
        add("".join(rows))
        add("</tbody>\n</table>\n</div>\n</section>\n")
    m = d.get("map")
    if m:
        add(
            f'<section class="maps" aria-labelledby="rmap-h">\n<h2 id="rmap-h">{t("Where the counts differ")}'
            f'</h2>\n<figure>\n<svg viewBox="0 0 {esc(m["width"])} {esc(m["height"])}" role="img" '
            f'aria-labelledby="rmap-t"><title id="rmap-t">'
            f"{t(_RECON_MAP)}"
            "</title>\n"
        )
        for r in m["regions"]:
            if r["differing_percent"] is not None:
                what = p.f(
                    "%(k)s of %(n)s stations differ (%(p)s%%)",
                    k=num(r["stations_differing"]),
                    n=num(r["stations_compared"]),
                    p=pct(r["differing_percent"]),
                )
            else:
                what = t("no station compared yet")
            area = esc(r["area"])
            add(
                f'<a href="region.html#region-{area}"><path d="{esc(r["d"])}" fill="{esc(r["fill"])}" '
                f'stroke="#333" stroke-width="0.6"><title>{p.area(r["area"])}: {what}</title></path></a>'
            )
        add(
            f"</svg>\n{map_key(p, m['key'], t('no station compared yet'))}\n"
            f"<figcaption>{t('Share of compared stations whose counts differ')}</figcaption>\n"
            "</figure>\n"
        )
        if m.get("attribution"):
            add(f'<p class="small">{t("Boundaries:")} {esc(m["attribution"])}</p>')
        add("</section>\n")
    regions = d.get("regions")
    if regions:
        add(
            f'<section aria-labelledby="reg-h">\n<h2 id="reg-h">{t("Regions")}</h2>\n<div class="scroll">\n'
            '<table class="recon-regions" aria-labelledby="reg-h">\n'
            f'<thead><tr><th scope="col">{t("Region")}</th><th scope="col" class="n">{t("Compared")}</th>'
            f'<th scope="col" class="n">{t("Counts differ")}</th><th scope="col" class="n">'
            f'{t("Share that differs")}</th><th scope="col" class="n">{t("Marked for recount")}</th>'
            f'<th scope="col" class="n">{t("Sum of differences, votes")}</th></tr></thead>\n<tbody>\n'
        )
        stations_word = t("stations")
        for r in regions:
            area = esc(r["area"])
            share = "—" if r["differing_percent"] is None else pct(r["differing_percent"]) + "%"
            add(
                f'<tr data-region="{area}"><th scope="row"><a href="{lr}area/{area}.html">{p.area(r["area"])}'
                f'</a> <a class="small" href="region.html#region-{area}">{stations_word}</a></th>'
                f'<td class="n">{num(r["stations_compared"])}</td>'
                f'<td class="n">{num(r["stations_differing"])}</td><td class="n">{share}</td>'
                f'<td class="n">{num(r["stations_flagged"])}</td>'
                f'<td class="n">{num(r["absolute_difference"])}</td></tr>\n'
            )
        add("</tbody>\n</table>\n</div>\n</section>\n")
    add('<section aria-labelledby="st-h">\n<h2 id="st-h">')
    add(p.f("Stations whose counts differ: %(n)s", n=num(d["stations_differing"])))
    add(f'</h2>\n<nav class="orders" aria-label="{t("Order of the stations")}">{t("Order by:")} ')
    orders = d["orders"]
    for i, o in enumerate(orders):
        name = t(_ORDER_LABELS.get(o, "station"))
        if o == d["order"]:
            add(f'<strong aria-current="page">{name}</strong>')
        else:
            add(f'<a href="{esc(o)}.html">{name}</a>')
        if i < len(orders) - 1:
            add(" · ")
    add(f'</nav>\n<p class="small">{t(_RECON_NOTE)}</p>\n')
    assertions = d["assertions"]
    threshold = d["threshold_percent"]
    lines = p.line_names[cid]
    opening = f'<div class="scroll">\n<table class="recon-stations" data-contest="{esc(cid)}"'
    opening += ' aria-labelledby="'
    head = (
        f'">\n<thead><tr><th scope="col">{t("Station")}</th><th scope="col">{t("Region")}</th>'
        f'<th scope="col" class="n">{t("Largest difference")}</th><th scope="col">'
        f"{t('Lines that differ: machine → hand (difference; relative to the machine count)')}</th>"
        f'<th scope="col">{t("Largest overstatement")}</th><th scope="col">{t("Recount")}</th></tr></thead>\n'
        "<tbody>\n"
    )
    from_zero, yes, no, at_risk = t("from 0"), t("yes"), t("no"), t("outcome at risk")
    for g in d["groups"]:
        named = "st-h"
        if g["area"]:
            area = esc(g["area"])
            named = f"region-{area}"
            add(f'<h3 id="region-{area}"><a href="{lr}area/{area}.html">{p.area(g["area"])}</a></h3>\n')
        if not g["stations"]:
            add(f"<p>{t(_NO_DIFFERENCE)}</p>\n")
            continue
        add(opening + named + head)
        for s in g["stations"]:
            sid = esc(s["station"])
            add(
                f'<tr data-station="{sid}"><th scope="row"><a href="{lr}station/{sid}.html">'
                f'{p.station(s["station"])}</a></th><td>{p.area(s["region"])}</td>'
                f'<td class="n largest">{num(s["largest_difference"])}</td><td><ul class="diffs">'
            )
            for x in s["lines"]:
                diff = x["difference"]
                plus = "+" if diff > 0 else ""
                rel = x["relative_percent"]
                shown = from_zero if rel is None else f"{plus}{pct(rel)}%"
                add(
                    f'<li data-line="{esc(x["line"])}">{lines[x["line"]]}: '
                    f'<span class="m">{num(x["machine"])}</span> → <span class="h">{num(x["hand"])}</span> '
                    f'(<span class="d">{plus}{num(diff)}</span>; <span class="r">{shown}</span>)</li>'
                )
            add('</ul></td><td class="over">')
            over = s["overstatement"]
            if over:
                add(
                    f'<span class="v">{pct(over["votes"])}</span> · '
                    f"{_assertion_text(p, cid, assertions[over['assertion']], threshold)}"
                )
            else:
                add("—")
            add('</td><td class="flag">')
            if s["flagged"]:
                reasons = [
                    f"{at_risk} ({_assertion_text(p, cid, assertions[f['assertion']], threshold)})"
                    if f["rule"] == "outcome_at_risk"
                    else lines[f["line"]]
                    for f in s["flags"]
                ]
                add(f'<span class="no">{yes}</span>: ' + ", ".join(reasons))
            else:
                add(no)
            add("</td></tr>\n")
        add("</tbody>\n</table>\n</div>\n")
    add("</section>\n")
    return base_page(p, ctx, d, f"{label}: {contest}", "".join(out))

"""Every HTML page of a snapshot, in every language, has the structure assistive technology
needs (WCAG 2.2): a language, one main heading, a skip link to the main content, data tables
with a name (a caption, or the heading of their section) and header cells whose scope is
stated, charts with a role and a name, progress bars named or hidden beside the words they
repeat, images with text alternatives, and links with text.
Colour contrast is checked in the browser (test_publish_browser.py)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from conftest import Published
from support import published_text


class _Page(HTMLParser):
    """What the checks need of one page, and the faults found while reading it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.faults: list[str] = []
        self.lang: str | None = None
        self.h1 = 0
        self.main_id: str | None = None
        self.skip: str | None = None
        self.ids: set[str] = set()
        self.labelledby: list[str] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._table: dict[str, int] | None = None
        self._svg: dict[str, bool] | None = None
        self._link: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "main":
            self.main_id = a.get("id")
        elif tag == "a":
            if self.skip is None and "skip" in a.get("class", "").split():
                self.skip = a.get("href")
            self._link = [a.get("aria-label", "")]
        elif tag == "table":
            self._table = {"caption": int(bool(a.get("aria-label") or a.get("aria-labelledby"))), "th": 0}
            self.labelledby.extend(a.get("aria-labelledby", "").split())
        elif tag == "caption" and self._table is not None:
            self._table["caption"] = 1
        elif tag == "th" and self._table is not None:
            self._table["th"] += 1
            if a.get("scope") not in ("col", "row", "colgroup", "rowgroup"):
                self.faults.append(f"<th> without a scope: {a}")
        elif tag == "svg" and self._svg is None:
            named = bool(a.get("aria-label") or a.get("aria-labelledby"))
            if a.get("aria-labelledby"):
                self.labelledby.extend(a["aria-labelledby"].split())
            hidden = a.get("aria-hidden") == "true"
            if not hidden and a.get("role") != "img":
                self.faults.append(f"<svg> without role=img: {a}")
            self._svg = {"named": named or hidden, "title": False}
        elif tag == "title" and self._svg is not None:
            self._svg["named"] = True
        elif tag == "progress" and a.get("aria-hidden") != "true":
            if not (a.get("aria-label") or a.get("aria-labelledby")):
                self.faults.append("<progress> without an accessible name (or aria-hidden beside its words)")
        elif tag == "img":
            if "alt" not in a:
                self.faults.append(f"<img> without alt: {a}")
            if self._link is not None:
                self._link.append(a.get("alt", ""))
        if tag not in ("meta", "link", "br", "img", "input", "hr", "rect", "path", "circle", "line"):
            self._stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, _ = self._stack.pop()
            if open_tag == tag:
                break
        if tag == "table" and self._table is not None:
            if not self._table["caption"]:
                self.faults.append("<table> without a caption")
            if not self._table["th"]:
                self.faults.append("<table> without header cells")
            self._table = None
        elif tag == "svg" and self._svg is not None:
            if not self._svg["named"]:
                self.faults.append("<svg> without an accessible name")
            self._svg = None
        elif tag == "a" and self._link is not None:
            if not "".join(self._link).strip():
                self.faults.append("a link without text")
            self._link = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link.append(data)


def check_page(html: str, lang: str) -> list[str]:
    """The accessibility faults of one page (empty when it passes)."""
    p = _Page()
    p.feed(html)
    p.close()
    faults = list(p.faults)
    if p.lang != lang:
        faults.append(f"<html lang={p.lang!r}>, expected {lang!r}")
    if p.h1 != 1:
        faults.append(f"{p.h1} <h1> headings")
    if not p.main_id or p.skip != f"#{p.main_id}":
        faults.append(f"skip link {p.skip!r} does not lead to <main id={p.main_id!r}>")
    faults.extend(f"aria-labelledby={ref!r} names no element" for ref in p.labelledby if ref not in p.ids)
    return faults


def test_every_page_in_every_language_is_structured_for_assistive_technology(
    published: Published,
) -> None:
    files = json.loads((published.current / "manifest.json").read_bytes())["files"]
    pages = sorted(rel for rel in files if rel.endswith(".html"))
    langs = {rel.split("/", 1)[0] for rel in pages}
    assert langs == {"en", "ru", "ky"}
    kinds = {rel.split("/")[1] for rel in pages}
    assert {"index.html", "area", "station", "reconcile", "downloads.html"} <= kinds
    faults: list[str] = []
    for rel in pages:
        for fault in check_page(published_text(published.current / rel), rel.split("/", 1)[0]):
            faults.append(f"{rel}: {fault}")
    for lang in sorted(langs):  # the "page not found" pages, beside the snapshots
        page = f"errors/404.{lang}.html"
        faults.extend(f"{page}: {f}" for f in check_page((published.out / page).read_text(), lang))
    assert len(pages) > 300
    assert not faults, f"{len(faults)} faults:\n" + "\n".join(faults[:20])


def test_footer_sentences_and_links_are_apart(published: Published) -> None:
    """The footer's sentence and the link after it are separate words on every page (they ran
    together as "entries.Signed checkpoint", which a screen reader reads as one word)."""
    files = json.loads((published.current / "manifest.json").read_bytes())["files"]
    pages = sorted(rel for rel in files if rel.endswith(".html"))
    joined = re.compile(r'\S<a href="[^"]*checkpoint\.txt"')
    apart = re.compile(r'[.)] <a href="[^"]*checkpoint\.txt"')
    faults = []
    for rel in pages:
        html = published_text(published.current / rel)
        html = html[html.index("<footer>") :]
        if joined.search(html) or not apart.search(html):
            faults.append(rel)
    assert len(pages) > 300
    assert not faults, f"{len(faults)} pages, such as {faults[:5]}"


def test_the_checks_find_what_a_page_lacks() -> None:
    """Each check fails on a page that lacks what it asks for."""
    good = (
        '<!doctype html><html lang="en"><body><a class="skip" href="#main">Skip</a><main id="main">'
        "<h1>Results</h1><table><caption>Votes</caption><thead><tr>"
        '<th scope="col">Party</th></tr></thead></table>'
        '<svg role="img" aria-labelledby="t1"><title id="t1">Seats</title></svg>'
        '<a href="x.html"><img src="p.png" alt="Photo"></a></main></body></html>'
    )
    assert check_page(good, "en") == []
    broken = {
        "lang": good.replace('lang="en"', 'lang="ru"'),
        "h1": good.replace("<h1>Results</h1>", ""),
        "skip link": good.replace('href="#main"', 'href="#top"'),
        "caption": good.replace("<caption>Votes</caption>", ""),
        "scope": good.replace(' scope="col"', ""),
        "header cells": good.replace('<th scope="col">Party</th>', "<td>Party</td>"),
        "role=img": good.replace(' role="img"', ""),
        "names no element": good.replace('<title id="t1">', "<title>"),
        "accessible name": good.replace(' aria-labelledby="t1"', "").replace(
            '<title id="t1">Seats</title>', ""
        ),
        "alt": good.replace(' alt="Photo"', ""),
        "<progress>": good.replace("</main>", '<progress max="2" value="1">50%</progress></main>'),
        "link without text": good.replace(' alt="Photo"', ' alt=""'),
    }
    for what, html in broken.items():
        faults = check_page(html, "en")
        assert any(what in f for f in faults), (what, faults)

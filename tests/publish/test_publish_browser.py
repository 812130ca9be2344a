"""A reader in a real browser (Playwright driving Debian's /usr/bin/chromium): the national
page, down to a region and a station and back, the language switch, and the numbers shown equal
`tallyroom results --format json`. Screenshots go to test-artifacts/publish/; with
TALLYROOM_UPDATE_SCREENSHOTS=1 one of each page type is also written to docs/screenshots/."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import Published
from support import REPO, published_bytes

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "publish"
DOCS = REPO / "docs" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def site_url(published: Published) -> Iterator[str]:
    uvicorn = pytest.importorskip("uvicorn")
    from nginx_support import free_port

    from tallyroom.web.site import site_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            site_app(published.out), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--no-first-run",
                "--disable-sync",
                "--metrics-recording-only",
                "--mute-audio",
            ],
        )
        yield b
        b.close()


def _int(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def _table(page: object, contest: str, kind: str) -> dict[str, tuple[int, str]]:
    rows = page.locator(f'table.results[data-contest="{contest}"][data-kind="{kind}"] tbody tr')  # type: ignore[attr-defined]
    out = {}
    for i in range(rows.count()):
        r = rows.nth(i)
        out[r.get_attribute("data-choice")] = (
            _int(r.locator("td.votes").inner_text()),
            r.locator("td.pct").inner_text().strip(),
        )
    return out


def _shot(page: object, name: str, docs: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
    if docs and os.environ.get("TALLYROOM_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]


def results_json(published: Published, kind: str, area: str | None = None) -> dict:
    from tallyroom.cli import main

    args = [
        "--db",
        str(published.db),
        "results",
        "--contest",
        "party-list",
        "--count-kind",
        kind,
        "--format",
        "json",
    ]
    if area:
        args += ["--area", area]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_national_to_station_and_back(browser: object, site_url: str, published: Published) -> None:
    ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 1400})  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto(site_url + "/")
    assert page.url.endswith("/en/")
    assert page.locator("html").get_attribute("lang") == "en"
    for kind in ("hand", "machine"):
        cli = results_json(published, kind)
        shown = _table(page, "party-list", kind)
        assert {k: v[0] for k, v in shown.items()} == {c["id"]: c["votes"] for c in cli["choices"]}
        assert {k: v[1] for k, v in shown.items()} == {
            c["id"]: (f"{c['percent']}%" if c["percent"] else "—") for c in cli["choices"]
        }
        section = page.locator(f"#count-party-list-{kind}")
        assert f"of {cli['took_part']:,} voters who took part" in section.inner_text()
        assert (
            f"{cli['stations_reporting']:,} of {cli['stations_expected']:,} polling stations reporting"
            in section.inner_text()
        )
    _shot(page, "national", docs=True)
    # Down to a region, by the map or the table.
    page.locator('table.areas tr[data-area="chui"] a').click()
    assert page.url.endswith("/en/area/chui.html")
    cli = results_json(published, "machine", "chui")
    shown = _table(page, "party-list", "machine")
    assert {k: v[0] for k, v in shown.items()} == {c["id"]: c["votes"] for c in cli["choices"]}
    _shot(page, "region", docs=True)
    # Down to a station.
    link = page.locator("table.stations tbody tr a").first
    station = link.get_attribute("href").rsplit("/", 1)[-1].removesuffix(".html")
    link.click()
    assert page.url.endswith(f"/en/station/{station}.html")
    doc = json.loads(published_bytes(published.current / f"api/v1/results/station/{station}.json"))
    contest = next(c for c in doc["contests"] if c["contest"] == "party-list")
    k = [col["count_kind"] for col in contest["columns"]].index("machine")
    want = {cid: cells[k][0] for cid, _colour, cells in contest["choices"] if cells[k] is not None}
    rows = page.locator('table.station-votes[data-contest="party-list"] tbody tr')
    shown = {
        rows.nth(i).get_attribute("data-choice"): _int(
            rows.nth(i).locator('td.votes[data-kind="machine"]').inner_text()
        )
        for i in range(rows.count())
    }
    assert shown == want
    # ... and those are the ledger's numbers for this station.
    region = next(a for a in doc["areas"][0] if a != "kg")
    records = json.loads((published.current / f"data/stations/{region}.json").read_bytes())["stations"]
    record = next(
        r
        for r in records
        if (r["station"], r["contest"], r["count_kind"]) == (station, "party-list", "machine")
    )
    assert all(record["lines"][cid] == v for cid, v in shown.items())
    receipt = page.locator('#p-party-list dl.receipt[data-kind="machine"]').inner_text()
    assert str(contest["columns"][k]["ledger_index"]) in receipt
    _shot(page, "station", docs=True)
    page.go_back()
    assert page.url.endswith("/en/area/chui.html")
    page.go_back()
    assert page.url.endswith("/en/")
    # A constituency page (single-member contest, against all rule).
    page.goto(site_url + "/en/area/smd-01.html")
    assert page.locator("h1").inner_text().startswith("Constituency No. 1")
    _shot(page, "constituency", docs=True)
    for name in ("changes", "snapshots", "downloads"):
        page.goto(f"{site_url}/en/{name}.html")
        assert page.locator("h1").count() == 1
        _shot(page, name, docs=True)
    ctx.close()


def test_language_switch(browser: object, site_url: str, published: Published) -> None:
    ctx = browser.new_context(locale="ru-RU", viewport={"width": 1100, "height": 1400})  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto(site_url + "/")
    assert page.url.endswith("/ru/") and page.locator("html").get_attribute("lang") == "ru"
    cli = results_json(published, "hand")
    section = page.locator("#count-party-list-hand").inner_text()
    assert f"{cli['took_part']:,}".replace(",", "\xa0") in section
    shown = _table(page, "party-list", "hand")
    assert {k: v[0] for k, v in shown.items()} == {c["id"]: c["votes"] for c in cli["choices"]}
    first = next(c for c in cli["choices"] if c["percent"])
    assert shown[first["id"]][1] == first["percent"].replace(".", ",") + "%"
    page.locator('nav.langs a[lang="ky"]').click()
    assert page.url.endswith("/ky/index.html") and page.locator("html").get_attribute("lang") == "ky"
    assert "Жыйынтыктар" in page.locator("nav.main-nav").inner_text()
    _shot(page, "national-ky", docs=True)
    page.locator('nav.langs a[lang="en"]').click()
    assert page.locator("html").get_attribute("lang") == "en"
    ctx.close()


def test_phone(browser: object, site_url: str) -> None:
    ctx = browser.new_context(
        locale="en-US",
        viewport={"width": 390, "height": 844},  # type: ignore[attr-defined]
        device_scale_factor=2,
        is_mobile=True,
    )
    page = ctx.new_page()
    page.goto(site_url + "/en/")
    # Nothing wider than the screen except inside the scrolling table wrappers.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    _shot(page, "national-phone", docs=True)
    # Every other kind of page too, in the language with the longest words.
    page.goto(site_url + "/ky/area/chui.html")
    station = page.locator("table.stations tbody tr a").first.get_attribute("href")
    for path in (
        "/ky/area/chui.html",
        "/ky/area/smd-01.html",
        f"/ky/area/{station}",
        "/ky/reconcile/party-list/difference.html",
        "/ky/changes.html",
        "/ky/snapshots.html",
        "/ky/downloads.html",
    ):
        page.goto(site_url + path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, (path, wide)
    ctx.close()


#: Tables whose width overflows its scrolling wrapper, as [class, wrapper width, table width].
_OVERFLOWING = """(sel) => [...document.querySelectorAll(sel)]
    .map(t => [t.className, t.parentElement.clientWidth, t.scrollWidth])
    .filter(x => x[2] > x[1] + 1)"""


def test_phone_results_fit(browser: object, site_url: str) -> None:
    """On a 360-pixel phone (the narrowest common one) a results table shows the party, its
    votes and its share without sideways scrolling, in every language: the share is the
    number a reader came for. So do a station's protocol lines. Wider tables (thresholds,
    history) may scroll inside their wrapper."""
    ctx = browser.new_context(
        viewport={"width": 360, "height": 800},  # type: ignore[attr-defined]
        device_scale_factor=2,
        is_mobile=True,
    )
    page = ctx.new_page()
    page.goto(site_url + "/en/area/chui.html")
    station = page.locator("table.stations tbody tr a").first.get_attribute("href")
    assert station is not None and station.startswith("../station/")
    for lang in ("en", "ru", "ky"):
        for path, sel in (
            ("", "table.results"),
            ("area/chui.html", "table.results"),
            ("area/smd-01.html", "table.results"),
            (station.replace("../", ""), "table.lines"),
        ):
            page.goto(f"{site_url}/{lang}/{path}")
            assert page.locator(sel).count() > 0, (lang, path, sel)
            assert page.evaluate(_OVERFLOWING, sel) == [], (lang, path)
            # The share column is on the screen, not only in the document.
            if sel == "table.results":
                right = page.locator(f"{sel} tbody td.pct").first.bounding_box()
                assert right is not None and right["x"] + right["width"] <= 360, (lang, path, right)
    ctx.close()


#: The height of the text in each cell that ``sel`` finds (one line is about 23 px).
_CELL_HEIGHTS = """(sel) => [...document.querySelectorAll(sel)].map(td => {
    const r = document.createRange(); r.selectNodeContents(td);
    return [td.textContent.trim(), r.getBoundingClientRect().height]; })"""


def test_phone_wide_tables_keep_to_one_line(browser: object, site_url: str) -> None:
    """The threshold table and an area's station list are wider than a phone and scroll
    inside their wrappers; each of their cells stays on one line ("Batken: 9.34% (≥ 0.5%)",
    "turnout 38.80% · Ata-Jurt (44.47%)"), instead of the narrow columns stacking one word
    per line and making every row four to ten lines tall."""
    ctx = browser.new_context(
        viewport={"width": 360, "height": 800},  # type: ignore[attr-defined]
        device_scale_factor=2,
        is_mobile=True,
    )
    page = ctx.new_page()
    for lang in ("en", "ru", "ky"):
        for path, sel in (("", "table.thresholds tbody td"), ("area/chui.html", "table.stations tbody td")):
            page.goto(f"{site_url}/{lang}/{path}")
            cells = page.evaluate(_CELL_HEIGHTS, sel)
            assert cells, (lang, path)
            tall = [(text, h) for text, h in cells if h > 30]
            assert tall == [], (lang, path, tall[:3])
    ctx.close()


def test_national_to_reconciliation(browser: object, site_url: str, published: Published) -> None:
    """From the national page to the machine-vs-hand page, its orderings without JavaScript,
    and on to a station."""
    ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 1400})  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto(site_url + "/en/")
    page.locator('nav.recon-links a[href="reconcile/party-list/difference.html"]').click()
    assert page.url.endswith("/en/reconcile/party-list/difference.html")
    doc = json.loads((published.current / "api/v1/reconcile/party-list/difference.json").read_bytes())
    rows = page.locator("table.recon-stations tbody tr")
    listed = [rows.nth(i).get_attribute("data-station") for i in range(rows.count())]
    assert listed == [s["station"] for g in doc["groups"] for s in g["stations"]]
    assert listed, "the fixture's counts differ at some station"
    assert _int(page.locator('dd[data-count="compared"]').inner_text()) == doc["stations_compared"]
    bins = page.locator("table.recon-histogram tbody td")
    assert sum(_int(bins.nth(i).inner_text()) for i in range(bins.count())) == doc["stations_compared"]
    assert page.locator("svg.hist rect").count() == len(doc["histogram"]["bins"])
    _shot(page, "reconciliation", docs=True)
    # Another ordering is another page: no script needed.
    page.locator("nav.orders a", has_text="region").click()
    assert page.url.endswith("/en/reconcile/party-list/region.html")
    assert page.locator("nav.orders strong").inner_text() == "region"
    page.locator("table.recon-stations tbody tr th a").first.click()
    assert re.search(r"/en/station/[^/]+\.html$", page.url)
    ctx.close()


#: For every element with text of its own: its text colour, the colour behind it (the first
#: opaque background of it or an ancestor, the page's white if none), its font size and weight.
_TEXT_COLOURS = """() => {
  const out = [];
  const rgba = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] >= 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || seen.has(el) || !n.textContent.trim() || el.closest("svg")) continue;
    seen.add(el);
    const st = getComputedStyle(el);
    if (st.display === "none" || st.visibility === "hidden" || !el.getClientRects().length) continue;
    out.push({text: n.textContent.trim().slice(0, 40), tag: el.tagName, cls: el.className,
              fg: rgba(st.color), bg: behind(el), size: parseFloat(st.fontSize),
              weight: parseInt(st.fontWeight, 10)});
  }
  return out;
}"""


def _luminance(rgb: list[float]) -> float:
    """Relative luminance of an sRGB colour (WCAG 2.2, "relative luminance")."""

    def channel(v: float) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(fg: list[float], bg: list[float]) -> float:
    """WCAG 2.2 contrast ratio; a translucent text colour is first blended onto its background."""
    if len(fg) == 4 and fg[3] < 1:
        a = fg[3]
        fg = [fg[i] * a + bg[i] * (1 - a) for i in range(3)]
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_every_text_meets_the_wcag_aa_contrast(browser: object, site_url: str) -> None:
    """Every piece of text on every kind of page, as the browser draws it, has a contrast
    ratio of at least 4.5:1 against what is behind it, or 3:1 for large text (WCAG 2.2,
    success criterion 1.4.3): 24 px, or 18.66 px bold. Charts are SVG with text alternatives
    beside them and are left out. And nothing on them breaks the site's
    Content-Security-Policy (the browser would refuse it and say so on the console)."""
    ctx = browser.new_context(locale="en-US", viewport={"width": 1100, "height": 1400})  # type: ignore[attr-defined]
    page = ctx.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: refused.append(str(e)))
    page.goto(site_url + "/en/area/chui.html")
    station = page.locator("table.stations tbody tr a").first.get_attribute("href")
    pages = [
        "/en/",
        "/en/area/chui.html",
        "/en/area/smd-01.html",
        f"/en/area/{station}",
        "/en/reconcile/party-list/difference.html",
        "/en/changes.html",
        "/en/snapshots.html",
        "/en/downloads.html",
        "/ky/",
        "/ru/no-such-page.html",
    ]
    checked = 0
    low: list[str] = []
    for path in pages:
        page.goto(site_url + path)
        for t in page.evaluate(_TEXT_COLOURS):
            large = t["size"] >= 24 or (t["size"] >= 18.66 and t["weight"] >= 700)
            ratio = _contrast(t["fg"], t["bg"])
            checked += 1
            if ratio < (3.0 if large else 4.5):
                low.append(f"{path} <{t['tag'].lower()} class={t['cls']!r}> {t['text']!r}: {ratio:.2f}")
    ctx.close()
    assert not refused, refused[:5]
    assert checked > 500
    assert not low, "text below the WCAG AA contrast:\n" + "\n".join(low[:20])

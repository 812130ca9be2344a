"""The optional auto-refresh (static/refresh.js) in a real browser (Playwright driving Debian's
chromium, with Playwright's fake clock): a live page reloads when a new snapshot changes it,
stays put when the new snapshot leaves it unchanged, a numbered snapshot's page never polls,
and with JavaScript off every page still shows its numbers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nginx_support import free_port
from publish_support import load, make_store, mini

from tallyroom.publish.builder import Publisher
from tallyroom.store.sql import Store

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]


@dataclass
class Live:
    url: str
    store: Store
    publisher: Publisher
    changed: str  # a station whose hand count arrives in the next snapshot
    quiet: str  # a station the next snapshot leaves alone


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    uvicorn = pytest.importorskip("uvicorn")
    from tallyroom.web.site import site_app

    folder = tmp_path_factory.mktemp("refresh")
    store, key = make_store(folder, machine=None, hand=0)
    publisher = Publisher(store, folder / "pub", key, workers=1)
    assert publisher.publish().status == "published"
    hand = mini().hand[0]
    quiet = next(p.station for p in mini().machine if p.station != hand.station)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            site_app(folder / "pub"), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Live(f"http://127.0.0.1:{port}", store, publisher, hand.station, quiet)
    server.should_exit = True
    thread.join(timeout=10)
    publisher.close()
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
        )
        yield b
        b.close()


def _open(browser: object, url: str, requests: list[str]) -> object:
    ctx = browser.new_context(locale="en-US")  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    page.clock.install()
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.evaluate("window.__loaded_once = true")
    return page


def test_a_live_page_reloads_only_when_a_new_snapshot_changes_it(browser: object, live: Live) -> None:
    seen: list[str] = []
    changed = _open(browser, f"{live.url}/en/station/{live.changed}.html", seen)
    quiet = _open(browser, f"{live.url}/en/station/{live.quiet}.html", seen)
    frozen_seen: list[str] = []
    frozen = _open(browser, f"{live.url}/snapshots/1/en/station/{live.changed}.html", frozen_seen)
    assert f"GET {live.url}/current.json" in seen  # asked once at load, to know where it started
    assert "No protocol of this count yet." in changed.locator("#p-party-list").inner_text()  # type: ignore[attr-defined]
    # Nothing new: no reload however long the page stays open.
    changed.clock.run_for(120_000)  # type: ignore[attr-defined]
    changed.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    assert changed.evaluate("window.__loaded_once === true")  # type: ignore[attr-defined]
    # Snapshot 2: the hand count of one station arrives.
    load(live.store, "hand", [p for p in mini().hand if p.station == live.changed])
    assert live.publisher.publish().status == "published"
    with changed.expect_navigation(timeout=15_000):  # type: ignore[attr-defined]
        changed.clock.run_for(40_000)  # type: ignore[attr-defined]
    changed.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    assert changed.evaluate("window.__loaded_once === undefined")  # type: ignore[attr-defined]
    votes = changed.locator('table.station-votes[data-contest="party-list"] td.votes[data-kind="hand"]')  # type: ignore[attr-defined]
    assert votes.count() > 0
    # The other station's page is the same file in snapshot 2: it asks, and stays.
    with quiet.expect_response(lambda r: r.request.method == "HEAD") as asked:  # type: ignore[attr-defined]
        quiet.clock.run_for(40_000)  # type: ignore[attr-defined]
    assert asked.value.url == f"{live.url}/en/station/{live.quiet}.html"
    quiet.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    assert quiet.evaluate("window.__loaded_once === true")  # type: ignore[attr-defined]
    # A numbered snapshot never changes: its pages do not poll at all.
    frozen.clock.run_for(120_000)  # type: ignore[attr-defined]
    frozen.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    assert not [r for r in frozen_seen if "current.json" in r]
    assert frozen.evaluate("window.__loaded_once === true")  # type: ignore[attr-defined]


def test_a_reader_can_stop_the_reloading(browser: object, live: Live) -> None:
    """WCAG 2.2.2 (Pause, Stop, Hide): a switch at the top of a live page, in its language,
    on by default. Turned off, a page the new snapshot changes stays as it is and says so in
    a polite status line, whose button shows the new results; the choice is remembered."""
    hand = next(p for p in mini().hand if p.station not in (live.changed, live.quiet))
    ru: list[str] = []
    other = _open(browser, f"{live.url}/ru/station/{live.quiet}.html", ru)
    assert other.locator(".live-ctl").inner_text().strip() == (  # type: ignore[attr-defined]
        "Обновлять эту страницу, когда публикуются новые результаты"
    )
    seen: list[str] = []
    page = _open(browser, f"{live.url}/en/station/{hand.station}.html", seen)
    box = page.locator("#live-auto")  # type: ignore[attr-defined]
    assert box.is_checked()
    assert page.locator(".live-ctl").inner_text().strip() == "Update this page when new results are published"  # type: ignore[attr-defined]
    assert page.locator(".live-news").count() == 0  # type: ignore[attr-defined]
    box.uncheck()
    load(live.store, "hand", [p for p in mini().hand if p.station == hand.station])
    assert live.publisher.publish().status == "published"
    with page.expect_response(lambda r: r.request.method == "HEAD"):  # type: ignore[attr-defined]
        page.clock.run_for(40_000)  # type: ignore[attr-defined]
    news = page.locator('.live-news[role="status"]')  # type: ignore[attr-defined]
    news.wait_for(timeout=10_000)
    assert news.inner_text().startswith("Newer results have been published.")
    page.clock.run_for(120_000)  # type: ignore[attr-defined]
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    assert page.evaluate("window.__loaded_once === true")  # type: ignore[attr-defined]
    assert news.count() == 1  # said once
    hand_votes = 'table.station-votes[data-contest="party-list"] td.votes[data-kind="hand"]'
    assert page.locator(hand_votes).count() == 0  # type: ignore[attr-defined]
    with page.expect_navigation(timeout=15_000):  # type: ignore[attr-defined]
        news.locator("button").click()
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    assert page.evaluate("window.__loaded_once === undefined")  # type: ignore[attr-defined]
    assert page.locator(hand_votes).count() > 0  # type: ignore[attr-defined]
    assert not page.locator("#live-auto").is_checked()  # type: ignore[attr-defined]
    page.locator("#live-auto").check()  # type: ignore[attr-defined]
    assert page.evaluate("localStorage.getItem('tallyroom.autoRefresh')") is None  # type: ignore[attr-defined]


def test_pages_work_without_javascript(browser: object, live: Live) -> None:
    ctx = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live.url}/en/")
    rows = page.locator('table.results[data-contest="party-list"][data-kind="machine"] tbody tr')
    assert rows.count() > 5
    page.locator('table.areas tr[data-area="chui"] a').click()
    assert page.url.endswith("/en/area/chui.html")
    assert page.locator("table.results").count() > 0
    assert not [r for r in requests if r.endswith("current.json")]
    assert page.locator(".live-ctl").count() == 0  # no switch that could do nothing
    ctx.close()

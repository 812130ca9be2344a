"""What the operator sees of publishing: ``status.json`` as the publisher keeps it (recent
attempts, the last look at the ledger, a stall), ``/healthz`` and the ``/status`` page."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from publish_support import load, make_store, mini
from starlette.testclient import TestClient
from test_publish_gate import double_count_2021

from tallyroom.publish import status as status_mod
from tallyroom.publish.builder import Publisher, publish_loop
from tallyroom.publish.status import RECENT, StatusBook, stall_limit, stalled, utc_iso
from tallyroom.web.site import site_app


def _status(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "status.json").read_bytes())
    return data


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_status_keeps_every_attempt_and_a_refusal_after_the_site_recovered(tmp_path: Path) -> None:
    store, key = make_store(tmp_path, machine=30, hand=0)
    out = tmp_path / "pub"
    clock = Clock(1_800_000_000.0)
    assert Publisher(store, out, key, clock=clock).publish().status == "published"
    first = _status(out)
    assert first["last_attempt"]["at"] == utc_iso(clock.t) == first["checked_at"]
    assert first["building_since"] is None and first["publish_every"] is None

    # Nothing new: the look is recorded (its time), the last attempt is not replaced.
    clock.t += 60
    again = Publisher(store, out, key, clock=clock)
    assert again.publish().status == "unchanged"
    looked = _status(out)
    assert looked["checked_at"] == utc_iso(clock.t)
    assert looked["last_attempt"] == first["last_attempt"] and looked["recent"] == first["recent"]

    # The 2021 double count is refused, then the right display publishes snapshot 2.
    load(store, "machine", mini().machine[30:45])
    clock.t += 5
    refused = Publisher(store, out, key, clock=clock, display_hook=double_count_2021).publish()
    assert refused.status == "refused"
    clock.t += 5
    assert Publisher(store, out, key, clock=clock).publish().snapshot == 2
    doc = _status(out)
    assert doc["healthy"] is True and doc["current_snapshot"] == 2
    assert [(r["status"], r["snapshot"]) for r in doc["recent"]] == [
        ("published", 2),
        ("refused", None),
        ("published", 1),
    ]
    assert doc["recent"][1]["failures"] == len(refused.failures) > 0
    sizes = [r["ledger_size"] for r in doc["recent"]]
    assert sizes[0] == sizes[1] > sizes[2]

    # The operator's page still shows the refusal, with its failing checks, though the site is
    # healthy again; the health check says ok.
    c = TestClient(site_app(out))
    assert c.get("/healthz").json()["status"] == "ok"
    page = c.get("/status")
    assert page.status_code == 200 and "Publishing: healthy" in page.text
    assert "Refusals recorded" in page.text and "would have been snapshot 2" in page.text
    check = refused.failures[0].check
    assert f"<td>{check}</td>" in page.text
    assert page.text.count("<td>refused</td>") == 1 and page.text.count("<td>published</td>") == 2
    # Every link on it leads somewhere: the site, its stylesheet, the JSON it is made from.
    links = re.findall(r'href="([^"]+)"', page.text)
    assert {"/", "/static/site.css", "/status.json", "/healthz", "/current.json"} <= set(links)
    for href in links:
        assert c.get(href, follow_redirects=True).status_code == 200, href


def test_recent_attempts_are_capped_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    book = StatusBook(path)
    for i in range(RECENT + 5):
        book.attempted({"status": "published", "snapshot": i + 1, "seconds": 0.5, "failures": []}, 1e9 + i)
        path.write_text(json.dumps(book.document(1e9 + i, i + 1)))
    later = StatusBook(path)
    assert [r["snapshot"] for r in later.recent] == list(range(RECENT + 5, 5, -1))
    assert later.last_attempt is not None and later.last_attempt["snapshot"] == RECENT + 5


def test_a_damaged_status_file_is_started_afresh(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    for text in ("not json", "[1, 2]", '{"format": "tallyroom-status/1", "recent": "x", "last_attempt": 3}'):
        path.write_text(text)
        book = StatusBook(path)
        assert book.recent == [] and book.last_attempt is None


def test_the_loop_says_its_interval(tmp_path: Path) -> None:
    store, key = make_store(tmp_path, machine=10, hand=0)
    out = tmp_path / "pub"
    seen: list[str] = []
    publish_loop(Publisher(store, out, key), 0.5, lambda: len(seen) >= 1, lambda o: seen.append(o.status))
    assert seen == ["published"]
    doc = _status(out)
    assert doc["publish_every"] == 0.5 and stall_limit(doc) == status_mod.MIN_STALL_SECONDS


def _stalled_folder(src: Path, tmp_path: Path, **changes: Any) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(src, folder, symlinks=True)
    doc = _status(folder)
    doc.update(changes)
    (folder / "status.json").write_text(json.dumps(doc))
    return folder


def test_a_stalled_publisher_fails_the_health_check(tmp_path: Path) -> None:
    store, key = make_store(tmp_path, machine=10, hand=0)
    out = tmp_path / "pub"
    assert Publisher(store, out, key).publish().status == "published"
    hour_ago = utc_iso(time.time() - 3600)
    # A snapshot made once never goes stale, however old.
    once = _stalled_folder(out, tmp_path / "once", checked_at=hour_ago)
    assert TestClient(site_app(once)).get("/healthz").json()["status"] == "ok"
    # A publisher that should publish every 5 s and has said nothing for an hour has stalled.
    folder = _stalled_folder(out, tmp_path / "loop", checked_at=hour_ago, publish_every=5)
    c = TestClient(site_app(folder))
    r = c.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "stalled"
    assert 3590 <= r.json()["stalled_for_seconds"] <= 3700
    page = c.get("/status")
    assert page.status_code == 503 and "STALLED" in page.text
    assert c.get("/en/index.html").status_code == 200  # the last snapshot stays served
    # A refusal is said as a refusal even when the publisher has gone quiet since.
    failure = {"check": "shares-le-100", "where": "kg", "message": ""}
    refused = _stalled_folder(
        out,
        tmp_path / "refused",
        checked_at=hour_ago,
        publish_every=5,
        healthy=False,
        last_attempt={"status": "refused", "failures": [failure]},
    )
    assert TestClient(site_app(refused)).get("/healthz").json()["status"] == "refused"


def test_nothing_published_yet_is_said_as_such(tmp_path: Path) -> None:
    (tmp_path / "pub").mkdir()
    c = TestClient(site_app(tmp_path / "pub"))
    r = c.get("/healthz")
    assert r.status_code == 503 and r.json()["status"] == "empty"
    assert "nothing published yet" in c.get("/status").text


@given(
    every=st.floats(min_value=0.1, max_value=3600),
    builds=st.lists(st.floats(min_value=0, max_value=10_000), max_size=RECENT),
    building=st.booleans(),
)
def test_a_stall_starts_exactly_past_its_limit(every: float, builds: list[float], building: bool) -> None:
    at = 1_800_000_000
    doc = {
        "publish_every": every,
        "checked_at": utc_iso(at),
        "building_since": utc_iso(at) if building else None,
        "recent": [{"seconds": s} for s in builds],
    }
    limit = stall_limit(doc)
    assert limit is not None
    assert limit >= max(status_mod.MIN_STALL_SECONDS, status_mod.STALL_INTERVALS * every)
    assert limit >= status_mod.STALL_BUILDS * max(builds, default=0)
    if building and not builds:
        assert limit >= status_mod.FIRST_BUILD_SECONDS
    assert stalled(doc, at + limit - 0.001) is None
    assert stalled(doc, at + limit + 1) == pytest.approx(limit + 1)


@given(every=st.one_of(st.none(), st.just(0), st.just(-1), st.text(max_size=3), st.booleans()))
def test_no_interval_means_no_stall(every: object) -> None:
    assert stall_limit({"publish_every": every, "checked_at": "garbage"}) is None
    assert stalled({"publish_every": every, "checked_at": "garbage"}, 2e9) is None

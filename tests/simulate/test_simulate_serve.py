"""`tallyroom serve --publish-dir`: the site at /, the API under /api/v1/, a publisher beside
intake that a gate refusal (or its own death) never takes down with it."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support import DATA, kyrgyz_lines
from tallyroom.commission import create_key
from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.load import load_definition
from tallyroom.intake.keys import generate_for
from tallyroom.intake.signature import DeviceKey
from tallyroom.simulate.server import ServerProcess, free_port
from tallyroom.store.sql import open_store


@dataclass
class Site:
    server: ServerProcess
    election: CompiledElection
    keys: dict[str, DeviceKey]
    db: Path
    out: Path

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, station: str, seed: int = 1) -> httpx.Response:
        c = self.election.contest("party-list")
        st = self.election.stations[self.election.station_index[station]]
        lines = kyrgyz_lines(list(c.choice_ids), st.registered, random.Random(seed))
        body = json.dumps(
            {
                "election": self.election.sha256,
                "station": station,
                "contest": "party-list",
                "count_kind": "hand",
                "lines": lines,
                "sequence": seed,
            }
        ).encode()
        headers = {**self.keys[station].headers(body), "Content-Type": "application/json"}
        return httpx.post(f"{self.url}/api/v1/protocols", content=body, headers=headers, timeout=30)

    def current(self) -> dict[str, int]:
        try:
            data: dict[str, int] = json.loads((self.out / "current.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return data

    def status(self) -> dict[str, object]:
        try:
            data: dict[str, object] = json.loads((self.out / "status.json").read_bytes())
        except (OSError, ValueError):
            return {}
        return data


def wait_for(what: str, ok: Callable[[], bool], timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not ok():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    db = tmp_path / "store.db"
    loaded = load_definition((DATA / "small.yaml").read_bytes(), "small.yaml")
    key_file = tmp_path / "commission.key"
    ck = create_key(key_file, "tallyroom/small-2021")
    store = open_store(str(db))
    store.initialize(loaded, ck.verify_key.encode())
    election = store.election()
    keys = generate_for(store, [s.id for s in election.stations], tmp_path / "keys", "test")
    store.close()
    out = tmp_path / "publish"
    server = ServerProcess(
        str(db),
        free_port(),
        tmp_path / "serve.log",
        publish_dir=out,
        publish_every=0.3,
        env={"TALLYROOM_COMMISSION_KEY": str(key_file)},
    )
    asyncio.run(server.start())
    try:
        yield Site(server, election, {k.station: k for k in keys}, db, out)
    finally:
        server.stop()
    log = server.tail(20_000)
    assert "Traceback" not in log, log


def test_the_site_is_at_the_root_and_the_api_under_api_v1(site: Site) -> None:
    wait_for("the first snapshot", lambda: site.current().get("snapshot") == 1)
    root = httpx.get(f"{site.url}/", headers={"Accept-Language": "ru"})
    assert root.status_code == 302 and root.headers["location"].endswith("/ru/")
    page = httpx.get(f"{site.url}/en/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    health = httpx.get(f"{site.url}/api/v1/health").json()
    assert health["election"] == site.election.sha256
    # The snapshot's JSON API lives under /api/v1/results/ and comes from the publish folder.
    row = httpx.get(f"{site.url}/api/v1/results/party-list/hand/kg.json")
    assert row.status_code == 200 and row.json()["area"] == "kg"
    # A wrong method on an API path is still the API's JSON answer, not the site's page.
    wrong = httpx.get(f"{site.url}/api/v1/protocols")
    assert wrong.status_code == 405 and wrong.json()["reason"] == "method-not-allowed"
    assert httpx.get(f"{site.url}/api/openapi.json").json()["openapi"].startswith("3.1")


def test_accepted_protocols_reach_the_site(site: Site) -> None:
    answer = site.post("1001")
    assert answer.status_code == 201
    index = answer.json()["receipt"]["ledger_index"]
    wait_for("a snapshot with the protocol", lambda: site.current().get("ledger_size", 0) > index)
    row = httpx.get(f"{site.url}/api/v1/results/party-list/hand/chui.json").json()
    assert row["stations_reporting"] == 1


def test_a_gate_refusal_does_not_stop_intake_or_the_site(site: Site) -> None:
    answer = site.post("1001")
    assert answer.status_code == 201
    # The receipt's index, not the ledger's size now: the publisher appends entries of its
    # own, and a size read after one of them may be ahead of every snapshot it will build.
    index = answer.json()["receipt"]["ledger_index"]
    wait_for("a snapshot with station 1001", lambda: site.current().get("ledger_size", 0) > index)
    good = site.current()["snapshot"]
    # Break the running total of Chui behind the server's back: the gate must refuse.
    with sqlite3.connect(site.db) as conn:
        (counts,) = conn.execute(
            "SELECT counts FROM tallies WHERE contest='party-list' AND area='chui' AND count_kind='hand'"
        ).fetchone()
        bumped = json.loads(counts)
        bumped[-1] += 1000
        conn.execute(
            "UPDATE tallies SET counts=? WHERE contest='party-list' AND area='chui' AND count_kind='hand'",
            (json.dumps(bumped),),
        )
    assert site.post("2001").status_code == 201  # intake goes on
    wait_for("the refusal", lambda: site.status().get("healthy") is False)
    assert list((site.out / "refusals").glob("*.json"))
    assert httpx.get(f"{site.url}/healthz").status_code == 503
    assert site.post("2002").status_code == 201  # and on
    time.sleep(1.0)
    assert site.current()["snapshot"] == good  # the previous snapshot stays live
    assert httpx.get(f"{site.url}/en/").status_code == 200
    assert site.server.proc is not None and site.server.proc.poll() is None


def test_the_publisher_stops_when_the_server_is_killed(site: Site) -> None:
    wait_for("the first snapshot", lambda: site.current().get("snapshot") == 1)
    proc = site.server.proc
    assert proc is not None
    children = _children(proc.pid)
    assert children, "no publisher process"
    os.kill(proc.pid, signal.SIGKILL)  # the server only, not its process group
    proc.wait()
    wait_for("the orphaned publisher to exit", lambda: not any(_alive(pid) for pid in children), 15)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

"""The writer process of `tallyroom serve` (docs/decisions/0006): started again when it dies,
stopped with the server, and two servers on one store still count each protocol once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from intake_support import BIN, Live, prepare_store, server_log, start_server


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            out.append(kid)
            todo.append(kid)
    return out


def _writers(live: Live) -> list[int]:
    assert live.proc is not None
    found = []
    for pid in _descendants(live.proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"tallyroom.web.writer" in cmd:
            found.append(pid)
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_writer_is_started_again_and_nothing_is_lost(store_url: str, tmp_path: Path) -> None:
    live = start_server(prepare_store(store_url, tmp_path), workers=2)
    try:
        with httpx.Client(timeout=60) as client:
            first = live.post(client, live.body("1001"))
            assert first.status_code == 201
            (writer,) = _writers(live)
            os.kill(writer, signal.SIGKILL)
            # Until a new writer runs, a submission is answered 503 and nothing else.
            body = live.body("1002")
            statuses = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                r = live.post(client, body)
                statuses.append(r.status_code)
                if r.status_code != 503:
                    break
                assert r.json()["reason"] == "store-unavailable"
                time.sleep(0.05)
            assert statuses[-1] in (200, 201) and set(statuses[:-1]) <= {503}, statuses
            again = live.post(client, live.body("1001"))
            assert again.status_code == 200
            assert again.json()["receipt"] == first.json()["receipt"]
            assert _writers(live) and writer not in _writers(live)
        assert live.store().protocol_count() == 2
    finally:
        live.stop()
    assert "the writer process exited" in server_log(live)


def test_sigterm_stops_the_workers_and_the_writer(tmp_path: Path) -> None:
    for workers in (1, 2):
        work = tmp_path / f"w{workers}"
        work.mkdir()
        live = start_server(prepare_store(str(work / "store.db"), work), workers)
        assert live.proc is not None
        pid = live.proc.pid
        started = _descendants(pid)
        assert _writers(live)
        folders = list(Path(tempfile.gettempdir()).glob(f"tallyroom-writer-{pid}-*"))
        assert len(folders) == 1 and (folders[0] / "writer.sock").exists()
        live.stop()
        deadline = time.monotonic() + 10
        while any(_running(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in started if _running(p)]
        assert not folders[0].exists()


def test_two_servers_on_one_store_count_each_protocol_once(store_url: str, tmp_path: Path) -> None:
    live = prepare_store(store_url, tmp_path)
    a = start_server(dataclasses.replace(live), workers=2)
    b = start_server(dataclasses.replace(live), workers=1)
    try:
        e = live.election
        bodies = [live.body(e.stations[s].id, c.id, kind)
                  for c in e.contests for s in c.stations for kind in ("machine", "hand")]

        async def send(url: str, body: bytes) -> tuple[int, str]:
            station = json.loads(body)["station"]
            h = {**live.keys[station].headers(body), "Content-Type": "application/json"}
            async with httpx.AsyncClient(timeout=60) as client:
                r = await client.post(f"{url}/api/v1/protocols", content=body, headers=h)
            return r.status_code, json.dumps(r.json()["receipt"], sort_keys=True)

        async def run() -> list[tuple[int, str]]:
            return await asyncio.gather(*(send(s.url, body) for body in bodies for s in (a, b, a, b)))

        answers = asyncio.run(run())
        for i in range(len(bodies)):
            mine = answers[4 * i: 4 * i + 4]
            assert sorted(s for s, _ in mine) == [200, 200, 200, 201]
            assert len({r for _, r in mine}) == 1  # one receipt, whoever answered
        assert a.store().protocol_count() == len(bodies)
        check = subprocess.run([str(BIN), "--db", live.db, "rebuild", "--check"],
                               capture_output=True, text=True, cwd=tmp_path, check=False,
                               env={**os.environ, "TALLYROOM_COMMISSION_KEY": str(live.key_file)})
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        a.stop()
        b.stop()

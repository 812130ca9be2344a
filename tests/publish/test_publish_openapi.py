"""The results API (`/api/v1/results/…`, served from the publish folder by `tallyroom serve
--publish-dir`) is described by the OpenAPI document at /api/openapi.json: every JSON file a
snapshot publishes under api/v1/ matches a documented path, and live answers — real files and
schemathesis-generated requests — conform to it (status, content type, body schema)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from nginx_support import free_port
from schemathesis import GenerationMode

from conftest import Published

BIN = Path(sys.executable).parent / "tallyroom"
RESULTS = re.compile(r"^/api/v1/(results/|changes\.json|snapshots\.json|downloads\.json)")
EXAMPLES_PER_MODE = 15

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`tallyroom serve --publish-dir` on a copy of the published mini election."""
    folder = tmp_path_factory.mktemp("serve")
    src = published.db.parent
    for name in ("kg.db", "kg.db-wal", "kg.db-shm", "kg.db.commission-key"):
        if (src / name).exists():
            shutil.copy(src / name, folder / name)
    shutil.copytree(published.out, folder / "pub", symlinks=True)
    port = free_port()
    env = {**os.environ, "TALLYROOM_COMMISSION_KEY": str(folder / "kg.db.commission-key")}
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [
            str(BIN),
            "--db",
            str(folder / "kg.db"),
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--publish-dir",
            str(folder / "pub"),
            "--publish-every",
            "3600",
            "--publish-workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (folder / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/api/v1/results/index.json", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        yield url, (folder / "pub" / "current").resolve()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        assert "Traceback" not in (folder / "serve.log").read_text()


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def test_every_published_api_file_is_documented(server: tuple[str, Path]) -> None:
    url, snapshot = server
    doc = httpx.get(f"{url}/api/openapi.json").json()
    documented = [_template(p) for p in doc["paths"] if RESULTS.match(p)]
    assert len(documented) == 8
    files = [
        "/" + str(p.relative_to(snapshot))
        for p in (snapshot / "api").rglob("*.json")
        if p.is_file() and RESULTS.match("/" + str(p.relative_to(snapshot)))
    ]
    assert len(files) > 100
    undocumented = [f for f in files if not any(t.match(f) for t in documented)]
    assert not undocumented, undocumented[:10]
    for name in ("AreaPage", "StationPage", "AreaRow", "SeatProjection", "HistoryEntry", "IntakeCounts"):
        assert name in doc["components"]["schemas"]


def test_the_publisher_process_is_given_the_page_workers_asked_for(server: tuple[str, Path]) -> None:
    """`serve --publish-workers 1` reaches the publisher process (its command line ends with
    the count, which :func:`tallyroom.web.server._main` hands to the Publisher)."""
    _url, snapshot = server
    pub = str(snapshot.parent.parent)
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if b"publish-loop" in args and pub.encode() in args:
            found.append([a.decode() for a in args])
    assert len(found) == 1, found
    # … publish-loop DB OUT EVERY PARENT_PID WORKERS
    assert found[0][-6] == "publish-loop" and found[0][-4] == pub and found[0][-1] == "1", found


def test_live_results_conform_to_the_document(server: tuple[str, Path]) -> None:
    url, snapshot = server
    schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json")
    operations = {
        op.path: op for op in (r.ok() for r in schema.get_all_operations()) if RESULTS.match(op.path)
    }
    stations = sorted(p.stem for p in (snapshot / "api/v1/results/station").glob("*.json"))
    real = {
        "/api/v1/results/index.json": [{}],
        "/api/v1/results/area/{area}.json": [{"area": "chui"}, {"area": "smd-01"}],
        "/api/v1/results/station/{station}.json": [{"station": s} for s in stations[:3] + stations[-3:]],
        "/api/v1/results/{contest}/{count_kind}/{area}.json": [
            {"contest": "party-list", "count_kind": k, "area": a}
            for k in ("hand", "machine")
            for a in ("kg", "chui")
        ],
        "/api/v1/results/seats/{contest}/{count_kind}.json": [
            {"contest": "party-list", "count_kind": "hand"},
            {"contest": "smd-01", "count_kind": "machine"},
        ],
        "/api/v1/changes.json": [{}],
        "/api/v1/snapshots.json": [{}],
        "/api/v1/downloads.json": [{}],
    }
    assert set(real) == set(operations)
    statuses: dict[int, int] = {}
    for path, cases in real.items():
        for params in cases:
            response = operations[path].Case(path_parameters=params).call_and_validate(timeout=30)
            assert response.status_code == 200, (path, params)
    for path, operation in operations.items():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode), _n=st.just(0))
            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case, _n: int) -> None:
                response = case.call_and_validate(timeout=30)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                assert response.status_code < 500, (case.path, response.text[:300])

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid in a path without parameters
                assert mode == GenerationMode.NEGATIVE, path
    # Random ids name no file: a documented 404, never a 5xx or an undocumented answer.
    assert statuses.get(404, 0) > 20, statuses

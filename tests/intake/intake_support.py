"""A live intake server on loopback for the tests: a real `tallyroom serve` subprocess."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nacl.signing

from support import DATA, kyrgyz_lines
from tallyroom.commission import create_key
from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.load import load_definition
from tallyroom.intake.keys import generate_for
from tallyroom.intake.signature import DeviceKey
from tallyroom.intake.tokens import new_token
from tallyroom.store import intake as db
from tallyroom.store.sql import Store, open_store

BIN = Path(sys.executable).parent / "tallyroom"
PEOPLE = {
    "olga": "operator",
    "sam": "supervisor",
    "sue": "supervisor",
    "ada": "administrator",
    "abe": "auditor",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    """A running server and everything a test needs to talk to it."""

    url: str
    db: str
    workdir: Path
    key_file: Path
    election: CompiledElection
    keys: dict[str, DeviceKey]
    tokens: dict[str, str]
    verify_key: nacl.signing.VerifyKey
    origin: str
    proc: subprocess.Popen[bytes] | None = None
    _store: Store | None = field(default=None, repr=False)

    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.db)
        return self._store

    def auth(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[person]}"}

    def body(self, station: str, contest: str = "party-list", kind: str = "hand", seed: int = 1,
             **extra: Any) -> bytes:
        c = self.election.contest(contest)
        st = self.election.stations[self.election.station_index[station]]
        lines = kyrgyz_lines(list(c.choice_ids), st.registered, random.Random(seed))
        obj = {"election": self.election.sha256, "station": station, "contest": contest,
               "count_kind": kind, "lines": lines, "sequence": seed, **extra}
        return json.dumps(obj).encode()

    def post(self, client: httpx.Client, body: bytes, station: str | None = None,
             key: DeviceKey | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        if key is None:
            key = self.keys[station or json.loads(body)["station"]]
        h = {**key.headers(body), "Content-Type": "application/json", **(headers or {})}
        return client.post(f"{self.url}/api/v1/protocols", content=body, headers=h)

    def ledger_size(self) -> int:
        return self.store().head().size

    def tally_snapshot(self) -> dict[Any, Any]:
        return {k: (t.reporting, list(t.counts)) for k, t in self.store().tally().nonzero().items()}

    def stop(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def prepare_store(db_url: str, workdir: Path) -> Live:
    """Initialise an election store with device keys and staff tokens (no server yet)."""
    loaded = load_definition((DATA / "small.yaml").read_bytes(), "small.yaml")
    key_file = workdir / "commission.key"
    origin = "tallyroom/small-2021"
    ck = create_key(key_file, origin)
    store = open_store(db_url)
    store.initialize(loaded, ck.verify_key.encode())
    election = store.election()
    made = generate_for(store, [s.id for s in election.stations], workdir / "keys", "test-setup")
    tokens = {}
    for name, role in PEOPLE.items():
        plain, hashed = new_token()
        db.create_token(store, hashed, name, role)
        tokens[name] = plain
    store.close()
    return Live(
        url="", db=db_url, workdir=workdir, key_file=key_file, election=election,
        keys={k.station: k for k in made}, tokens=tokens, verify_key=ck.verify_key, origin=origin,
    )


def start_server(live: Live, workers: int = 1, server: str = "uvicorn", timeout: float = 40) -> Live:
    port = free_port()
    env = {**os.environ, "TALLYROOM_COMMISSION_KEY": str(live.key_file)}
    log = open(live.workdir / f"serve-{port}.log", "wb")  # noqa: SIM115 - lives with the process
    live.proc = subprocess.Popen(
        [str(BIN), "--db", live.db, "serve", "--port", str(port), "--workers", str(workers),
         "--server", server],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=live.workdir,
    )
    live.url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live.proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {(live.workdir / f'serve-{port}.log').read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{live.url}/api/v1/health", timeout=1).status_code == 200:
                return live
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    live.stop()
    raise RuntimeError("server did not come up")


def server_log(live: Live) -> str:
    return "".join(p.read_text(errors="replace") for p in live.workdir.glob("serve-*.log"))

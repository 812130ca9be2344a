"""Real published snapshots for the verifier's tests (built by the fixtures in conftest.py).

* ``mini`` — the generated Kyrgyz 2021 election cut to 8 stations per region (tests/publish's
  ``publish_support``): snapshot 1 with every machine count and 100 hand counts; snapshot 2
  with 50 more hand counts, a two-person correction, an annulment and a MACRO audit.
* ``signed`` — the same election with device keys: protocols submitted to a real ``tallyroom
  serve`` on loopback, signed by the stations' keys, with the receipts the server returned.
* ``russia`` — a Russia 2016 import (the first rows of Shpilkin's file) published.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "publish"))

from click.testing import CliRunner
from publish_support import load, make_store, mini

from support import kyrgyz_lines, shared_data
from tallyroom.cli import main
from tallyroom.publish.builder import Publisher
from tallyroom.store.sql import Store

BIN = Path(sys.executable).parent / "tallyroom"


@dataclass
class Pub:
    """A publish folder and the store (and commission key file) it was published from."""

    out: Path
    db: Path
    key: Path
    store: Store | None = None
    receipts: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, Any] = field(default_factory=dict)

    def snapshot(self, n: int | None = None) -> Path:
        if n is None:
            return (self.out / "current").resolve()
        return self.out / "snapshots" / str(n)


def publish(store: Store, out: Path, key: Path) -> None:
    outcome = Publisher(store, out, key, workers=1).publish()
    assert outcome.status == "published", outcome.failures


def store_with_key(folder: Path, key_file: Path) -> tuple[Store, Path]:
    """A new store of the mini election signed by an existing commission key (a second
    history written by the same commission)."""
    from tallyroom.commission import load_key
    from tallyroom.definition.load import load_definition
    from tallyroom.store.sql import open_store

    key = folder / "kg.db.commission-key"
    shutil.copy(key_file, key)
    _name, signing = load_key(key)
    store = open_store(str(folder / "kg.db"))
    store.initialize(load_definition(mini().raw, "definition.yaml"), signing.verify_key.encode())
    return store, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def build_mini(folder: Path) -> Pub:
    store, key = make_store(folder, machine=None, hand=100)
    out = folder / "pub"
    publish(store, out, key)
    m = mini()
    load(store, "hand", m.hand[100:150])
    db = folder / "kg.db"
    _correct_and_annul(store)
    runner = CliRunner()
    r = runner.invoke(
        main,
        [
            "--db",
            str(db),
            "audit",
            "start",
            "--seed",
            "public dice 2021",
            "--risk-limit",
            "10",
            "--contest",
            "party-list",
        ],
    )
    assert r.exit_code == 0, r.output
    publish(store, out, key)
    return Pub(out, db, key, store)


def _correct_and_annul(store: Store) -> None:
    """One correction (supersede) and one annulment, each approved by a second person."""
    from tallyroom.intake.corrections import Person, decide, propose
    from tallyroom.store import intake as db

    election = store.election()
    counted = [
        (election.stations[s].id, election.contests[c].id, k)
        for c, s, k, _counts in store.active_protocols()
        if k == "hand" and c == 0
    ]
    station, contest, kind = counted[3]
    current = db.in_force(store, station, contest, kind)
    assert current is not None
    body = json.loads(db.bodies_for(store, station, contest, kind)[-1])
    body.pop("source", None)
    lines = body["lines"]
    # Move 3 votes between two parties: the rules still hold.
    choices = list(election.contest(contest).choice_ids)
    movable = next(c for c in choices if lines[c] >= 3)
    other = next(c for c in choices if c != movable)
    lines[movable] -= 3
    lines[other] += 3
    olga, sam = Person("olga", "operator"), Person("sam", "supervisor")
    p = propose(
        store, olga, "correction", "recounted at the district commission", station, contest, kind, body
    )
    decide(store, sam, p.id, True)
    station2, contest2, kind2 = counted[5]
    p2 = propose(
        store, olga, "annulment", "the protocol was signed by one member only", station2, contest2, kind2
    )
    decide(store, sam, p2.id, True)


def build_signed(folder: Path) -> Pub:
    """Device-signed protocols through a real intake server, with their receipts."""
    import httpx

    from tallyroom.intake.keys import generate_for

    store, key = make_store(folder, machine=60, hand=0)
    election = store.election()
    stations = [s.id for s in election.stations]
    made = generate_for(store, stations, folder / "keys", "test-setup")
    keys = {k.station: k for k in made}
    db = folder / "kg.db"
    store.close()
    port = free_port()
    env = {**os.environ, "TALLYROOM_COMMISSION_KEY": str(key)}
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [str(BIN), "--db", str(db), "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    receipts: list[dict[str, Any]] = []

    def body_of(sid: str, seed: int) -> bytes:
        st = election.stations[election.station_index[sid]]
        c = election.contest("party-list")
        lines = kyrgyz_lines(list(c.choice_ids), st.registered, random.Random(seed))
        doc = {
            "election": election.sha256,
            "station": sid,
            "contest": "party-list",
            "count_kind": "hand",
            "lines": lines,
            "sequence": seed,
        }
        return json.dumps(doc).encode()

    try:
        wait_http(f"{url}/api/v1/health", proc)
        with httpx.Client(timeout=30) as client:
            for i, sid in enumerate(stations[:24]):
                body = body_of(sid, i)
                r = client.post(
                    f"{url}/api/v1/protocols",
                    content=body,
                    headers={**keys[sid].headers(body), "Content-Type": "application/json"},
                )
                assert r.status_code == 201, r.text
                receipts.append(r.json()["receipt"])
            # A second, different protocol from station 0's device: held as a conflict.
            body = body_of(stations[0], 1000)
            r = client.post(
                f"{url}/api/v1/protocols",
                content=body,
                headers={**keys[stations[0]].headers(body), "Content-Type": "application/json"},
            )
            assert r.status_code == 409, r.text
            conflict = int(r.json()["conflict_id"])
    finally:
        stop(proc)
        log.close()
    from tallyroom.intake.corrections import Person, decide, propose
    from tallyroom.store.sql import open_store

    store = open_store(str(db))
    # Two people accept the device's second reading: a correction entry carrying its signature.
    p = propose(
        store, Person("olga", "operator"), "accept-conflict", "the station re-counted", conflict_id=conflict
    )
    decide(store, Person("sam", "supervisor"), p.id, True)
    out = folder / "pub"
    publish(store, out, key)
    return Pub(out, db, key, store, receipts, dict(keys))


def forge_protocol(pub: Pub, folder: Path, how: str = "other-station") -> tuple[Pub, str, str]:
    """A copy of ``pub``'s store with one protocol the real intake server refuses, appended as
    a compromised server would, then published (the publish gate does not check signatures or
    control rules: that is the verifier's job). ``how``:

    * ``other-station`` — station A's protocol signed by station B's key;
    * ``revoked-key`` — signed by the station's own key after it was revoked (key rotation);
    * ``broken-rule`` — validly signed, but valid ≠ Σ choices (an error rule).

    Returns the new publication, the station and the key's station."""
    import hashlib

    from tallyroom.intake.keys import rotate
    from tallyroom.protocol.model import decode_body
    from tallyroom.protocol.pending import PendingProtocol, prepare, protocol_payload
    from tallyroom.store.sql import open_store

    db = folder / "kg.db"
    shutil.copy(pub.db, db)
    for suffix in ("-wal", "-shm"):
        if Path(f"{pub.db}{suffix}").exists():
            shutil.copy(f"{pub.db}{suffix}", f"{db}{suffix}")
    key = folder / "commission.key"
    shutil.copy(pub.key, key)
    store = open_store(str(db))
    election = store.election()
    victim = election.stations[40].id
    signer = election.stations[1].id if how == "other-station" else victim
    c = election.contest("party-list")
    lines = kyrgyz_lines(list(c.choice_ids), election.stations[40].registered, random.Random(99))
    if how == "broken-rule":  # one vote lost: Σ choices < valid (the gate's orders still hold)
        lines[next(x for x in c.choice_ids if lines[x] > 0)] -= 1
    raw = json.dumps(
        {
            "election": election.sha256,
            "station": victim,
            "contest": "party-list",
            "count_kind": "hand",
            "lines": lines,
            "sequence": 1,
        }
    ).encode()
    device = pub.keys[signer]
    if how == "revoked-key":
        rotate(store, victim, folder / "new-keys", "test", "device lost")
    envelope = {"key_id": device.key_id, "signature": device.sign(raw), "received_at": "2021-11-28T20:00:00Z"}
    if how == "broken-rule":
        counts = [lines[x] for x in c.line_ids]
        pending = PendingProtocol.build(
            c.index,
            election.station_index[victim],
            "hand",
            counts,
            [],
            protocol_payload(envelope, raw),
            hashlib.sha256(raw).hexdigest(),
        )
    else:
        pending = prepare(election, decode_body(raw), raw, envelope)
    store.append_protocols([pending])
    out = folder / "pub"
    shutil.copytree(pub.out, out, symlinks=True)
    publish(store, out, key)
    store.close()
    return Pub(out, db, key), victim, signer


SUBSET_ROWS = 1500


def build_russia(folder: Path, rows: int) -> Pub:
    """The first ``rows`` rows of the Russia 2016 Duma station file, imported and published in
    English and Russian (the whole file: ``benchmarks/bench_verify.py --only ru``)."""
    path = shared_data("ru_uik_shpilkin", "2016.csv.zip")
    with zipfile.ZipFile(path) as zf:
        text = zf.read("2016.csv").decode("utf-8")
    reader = csv.reader(io.StringIO(text))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for n, row in enumerate(reader):
        if n > rows:
            break
        w.writerow(row)
    subset = folder / "2016-subset.csv"
    subset.write_text(buf.getvalue(), encoding="utf-8")
    db = folder / "ru.db"
    r = CliRunner().invoke(main, ["--db", str(db), "import", "--format", "shpilkin", str(subset)])
    assert r.exit_code == 0, r.output
    out = folder / "pub"
    langs = ["--lang", "en", "--lang", "ru"]
    r = CliRunner().invoke(main, ["--db", str(db), "publish", "--out", str(out), *langs])
    assert r.exit_code == 0, r.output
    return Pub(out, db, Path(str(db) + ".commission-key"))

"""Run the app under Granian (default) or uvicorn, with N worker processes, and the publisher.

Workers import ``tallyroom.web.app:app_from_env``; the store URL and commission key path
travel in the environment (``TALLYROOM_DB``, ``TALLYROOM_COMMISSION_KEY``). Every worker has
its own group committer and writer connection; appends from all of them serialise on the
ledger head row (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT … FOR UPDATE``).

With a publish folder (``tallyroom serve --publish-dir DIR``) the workers also serve the
published site (``TALLYROOM_PUBLISH_DIR``), and one publisher process beside them builds a
snapshot every ``--publish-every`` seconds (:func:`publish_forever`). The publisher is a
process of its own, so a slow snapshot never stalls intake and nothing it does can take the
server down: a gate refusal is recorded and the previous snapshot stays live; an exception is
recorded and the next round tries again; if the process itself dies it is started again. It
stops when the server stops (SIGUSR2: after the snapshot in hand), and on its own if the
server is killed (it watches its parent).
"""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TARGET = "tallyroom.web.app:app_from_env"
#: Asks the publisher process to stop after the snapshot in hand (SIGTERM stops it at once).
STOP_SIGNAL = signal.SIGUSR2


@dataclass(frozen=True)
class PublishPlan:
    """What the publisher process needs: the store, the folder, the interval."""

    db: str
    out: Path
    every: float


def run(
    host: str,
    port: int,
    workers: int,
    server: str = "granian",
    log_level: str = "warning",
    publish: PublishPlan | None = None,
) -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    supervisor = PublisherSupervisor(publish) if publish is not None else None
    if supervisor is not None:
        supervisor.start()
    try:
        _serve(host, port, workers, server, log_level)
    finally:
        if supervisor is not None:
            supervisor.stop()


def _serve(host: str, port: int, workers: int, server: str, log_level: str) -> None:
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            TARGET,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=log_level,
            backlog=4096,
        )
        return
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        TARGET,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        loop=Loops.uvloop,
        log_access=False,
        log_level=LogLevels(log_level),
        backlog=4096,
    ).serve()


# -- the publisher beside the server ---------------------------------------------------------


class PublisherSupervisor:
    """Keeps one publisher process running while the server runs (a daemon thread)."""

    #: Seconds to wait before starting a publisher that died, at most.
    MAX_BACKOFF = 30.0

    def __init__(self, plan: PublishPlan) -> None:
        self.plan = plan
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tallyroom-publisher", daemon=True)

    def start(self) -> None:
        self.plan.out.mkdir(parents=True, exist_ok=True)
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        cmd = [
            sys.executable, "-m", "tallyroom.web.server", "publish-loop",
            self.plan.db, str(self.plan.out), repr(self.plan.every), str(os.getpid()),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.wait(0.5):
            proc = self.proc
            if proc is None or proc.poll() is None:
                continue
            print(
                f"tallyroom: the publisher exited with code {proc.returncode}; intake goes on, "
                f"starting it again in {backoff:.0f} s",
                file=sys.stderr, flush=True,
            )
            if self._stop.wait(backoff):
                return
            backoff = min(self.MAX_BACKOFF, backoff * 2)
            self.restarts += 1
            self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(STOP_SIGNAL)  # finishes the snapshot in hand, then exits
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def publish_forever(db: str, out: Path, every: float, parent: int) -> int:
    """The publisher process: a snapshot every ``every`` seconds until SIGTERM or until the
    server process ``parent`` is gone. Every outcome is in ``out/status.json``; a refusal is
    also said on stderr (the server's log), with its failing checks."""
    from tallyroom.commission import key_path
    from tallyroom.publish.builder import Outcome, Publisher, publish_loop
    from tallyroom.store.sql import open_store

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where it is, to the log
    stopping = threading.Event()
    # SIGTERM keeps its default (the render pool's workers are forked from here and stopped
    # with SIGTERM; a handler they inherited would keep them alive and the pool waiting).
    signal.signal(STOP_SIGNAL, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us

    def stop() -> bool:
        return stopping.is_set() or os.getppid() != parent

    def said(outcome: Outcome) -> None:
        if outcome.status == "refused":
            checks = "; ".join(str(f) for f in outcome.failures[:5])
            print(f"tallyroom: publish gate REFUSED a snapshot at ledger size {outcome.ledger_size:,}; "
                  f"the previous one stays live: {checks}", file=sys.stderr, flush=True)

    while not stop():
        try:
            store = open_store(db)
            publisher = Publisher(store, out, key_path(db))
        except Exception as exc:  # the store may be restarting: wait, then try again
            print(f"tallyroom: publisher cannot open the store yet: {exc}", file=sys.stderr, flush=True)
            time.sleep(min(every, 5.0))
            continue
        try:
            publish_loop(publisher, every, stop, said)
        except Exception as exc:  # publish_loop records errors itself; this is a last resort
            print(f"tallyroom: publisher error, trying again: {exc!r}", file=sys.stderr, flush=True)
            time.sleep(min(every, 5.0))
        finally:
            store.close()
    return 0


def _main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "publish-loop":
        return publish_forever(argv[1], Path(argv[2]), float(argv[3]), int(argv[4]))
    print("usage: python -m tallyroom.web.server publish-loop DB OUT EVERY PARENT_PID", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

"""Run the app under uvicorn (default) or Granian, with N web workers, one writer process
and the publisher.

Workers import ``tallyroom.web.app:app_from_env``; the store URL and commission key path
travel in the environment (``TALLYROOM_DB``, ``TALLYROOM_COMMISSION_KEY``). The web workers
check submissions in parallel and send them to one writer process
(:mod:`tallyroom.web.writer`, its socket in ``TALLYROOM_WRITER_SOCKET``) that commits the
batches of all of them together; it is started before the workers, started again if it
dies, and stopped after them. With ``--writer thread`` each worker commits its own batches
in a thread instead. Either way appends serialise on the ledger head row (SQLite ``BEGIN
IMMEDIATE``, PostgreSQL ``SELECT … FOR UPDATE``), so several servers on one store are safe.

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

import contextlib
import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TARGET = "tallyroom.web.app:app_from_env"
#: Asks the publisher process to stop after the snapshot in hand (SIGTERM stops it at once).
STOP_SIGNAL = signal.SIGUSR2


@dataclass(frozen=True)
class PublishPlan:
    """What the publisher process needs: the store, the folder, the interval, and how many
    page workers it forks (None: :func:`tallyroom.publish.builder.default_workers`)."""

    db: str
    out: Path
    every: float
    workers: int | None = None


def run(
    host: str,
    port: int,
    workers: int,
    server: str = "granian",
    log_level: str = "warning",
    publish: PublishPlan | None = None,
    writer: WriterPlan | None = None,
) -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    from tallyroom.web.writer import SOCKET_ENV

    writer_sup = WriterSupervisor(writer) if writer is not None else None
    if writer_sup is not None:
        writer_sup.start()
        os.environ[SOCKET_ENV] = str(writer_sup.socket)
    else:
        os.environ.pop(SOCKET_ENV, None)
    supervisor = PublisherSupervisor(publish) if publish is not None else None
    # A single uvicorn worker shuts down gracefully on SIGTERM, then raises the signal again
    # under the handler it found: this one, so the writer and publisher are stopped below
    # (under the default handler the process would die on the spot and leave them behind).
    previous = signal.signal(signal.SIGTERM, _terminated)
    terminated = False
    try:
        if supervisor is not None:
            supervisor.start()
        _serve(host, port, workers, server, log_level)
    except _Terminated:
        terminated = True
    finally:
        if supervisor is not None:
            supervisor.stop()
        if writer_sup is not None:
            writer_sup.stop()  # after the web workers: their last batches are answered
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        signal.raise_signal(signal.SIGTERM)  # end as a process stopped by SIGTERM does


class _Terminated(Exception):
    """SIGTERM reached the server process."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated()


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


# -- the writer process ----------------------------------------------------------------------


@dataclass(frozen=True)
class WriterPlan:
    """What the writer process needs: the store, the commission key, the batch limit."""

    db: str
    commission_key: Path
    max_batch: int = 1000


class WriterSupervisor:
    """Keeps one writer process (:mod:`tallyroom.web.writer`) running while the server runs.

    Its socket lives in a fresh folder of mode 0700. A writer that dies is started again
    at once (then after up to 5 s if it keeps dying); meanwhile the workers answer 503
    ``store-unavailable``, which devices retry.
    """

    MAX_BACKOFF = 5.0

    PREFIX = "tallyroom-writer-"

    def __init__(self, plan: WriterPlan) -> None:
        self.plan = plan
        _remove_stale_folders(self.PREFIX)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}-"))
        self.socket = self.folder / "writer.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tallyroom-writer-watch", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        cmd = [
            sys.executable, "-m", "tallyroom.web.writer", str(self.socket), self.plan.db,
            str(self.plan.commission_key), str(self.plan.max_batch), str(os.getpid()),
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        backoff = 0.0
        while not self._stop.wait(0.2):
            proc = self.proc
            if proc is None or proc.poll() is None:
                continue
            print(
                f"tallyroom: the writer process exited with code {proc.returncode}; "
                "starting it again",
                file=sys.stderr, flush=True,
            )
            if self._stop.wait(backoff):
                return
            backoff = min(self.MAX_BACKOFF, backoff * 2 or 0.5)
            self.restarts += 1
            self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # it finishes the batch in hand, then exits
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)


def _remove_stale_folders(prefix: str) -> None:
    """Socket folders of servers that were killed (SIGKILL leaves no chance to clean up):
    ours, named after a process id that no longer runs."""
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


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
        if self.plan.workers is not None:
            cmd.append(str(self.plan.workers))
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


def publish_forever(db: str, out: Path, every: float, parent: int, workers: int | None = None) -> int:
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
            publisher = Publisher(store, out, key_path(db), workers=workers)
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
    if len(argv) in (5, 6) and argv[0] == "publish-loop":
        workers = None
        if len(argv) == 6:
            if not argv[5].isdigit() or int(argv[5]) < 1:
                print(f"tallyroom: WORKERS must be a whole number of at least 1, not {argv[5]!r}",
                      file=sys.stderr)
                return 2
            workers = int(argv[5])
        return publish_forever(argv[1], Path(argv[2]), float(argv[3]), int(argv[4]), workers)
    print("usage: python -m tallyroom.web.server publish-loop DB OUT EVERY PARENT_PID [WORKERS]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

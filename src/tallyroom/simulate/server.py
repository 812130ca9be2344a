"""The simulator's own intake server: a real `tallyroom serve` process on a loopback socket,
which it can kill with SIGKILL at any moment and start again.

The server runs in a session of its own, so one ``killpg`` takes down everything it started
(workers and the publisher) at once, as a power cut would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tallyroom.simulate.http import HttpClient, HttpError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tallyroom_command() -> list[str]:
    """How to run the `tallyroom` command line with this Python."""
    script = Path(sys.executable).with_name("tallyroom")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from tallyroom.cli import main; main()"]


@dataclass
class ServerProcess:
    db: str
    port: int
    log: Path
    workers: int = 1
    host: str = "127.0.0.1"
    publish_dir: Path | None = None
    publish_every: float = 2.0
    server: str = "uvicorn"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    #: Seconds each start took until the server answered (the first start included).
    start_seconds: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            *tallyroom_command(),
            "--db",
            self.db,
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--server",
            self.server,
        ]
        if self.publish_dir is not None:
            cmd += ["--publish-dir", str(self.publish_dir), "--publish-every", f"{self.publish_every:g}"]
        return cmd

    async def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until it answers ``/api/v1/health``."""
        t0 = time.monotonic()
        self.starts += 1
        with open(self.log, "ab") as log:
            log.write(f"\n--- start {self.starts} at {time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        client = HttpClient(self.url, max_connections=1, connect_timeout=1.0)
        try:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with code {self.proc.returncode}; "
                        f"its log: {self.log}\n{self.tail()}"
                    )
                try:
                    reply = await client.request("GET", "/api/v1/health", timeout=2.0)
                    if reply.status == 200:
                        self.start_seconds.append(time.monotonic() - t0)
                        return
                except HttpError:
                    pass
                await asyncio.sleep(0.1)
        finally:
            await client.close()
        self.kill(count=False)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s; its log: {self.log}")

    def kill(self, count: bool = True) -> None:
        """SIGKILL the server and everything it started (its process group)."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if count:
            self.kills += 1
            with open(self.log, "ab") as log:
                log.write(f"--- SIGKILL {self.kills} at {time.strftime('%H:%M:%S')} ---\n".encode())

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server the polite way (SIGTERM), then make sure nothing is left."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.proc = None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

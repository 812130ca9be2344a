"""Run deploy/nginx.conf on a free loopback port against a publish folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import REPO

BROTLI_MODULE = Path("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so")


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        str(Path("/usr/sbin/nginx")) if Path("/usr/sbin/nginx").exists() else None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_for(publish_dir: Path, prefix: Path, port: int, workers: int | str = 1) -> str:
    text = (REPO / "deploy" / "nginx.conf").read_text()
    lines = []
    for line in text.splitlines():
        if "# BROTLI" in line and not BROTLI_MODULE.exists():
            continue
        lines.append(line)
    text = "\n".join(lines) + "\n"
    text = text.replace("modules/ngx_http_brotli_static_module.so", str(BROTLI_MODULE))
    text = text.replace("user www-data;", "user root;" if os.geteuid() == 0 else "")
    text = text.replace("worker_processes auto;", f"worker_processes {workers};")
    text = text.replace("/run/tallyroom-nginx.pid", str(prefix / "nginx.pid"))
    text = text.replace("/var/log/nginx/tallyroom-error.log", str(prefix / "error.log"))
    text = text.replace("/var/lib/nginx/", str(prefix) + "/")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    text = text.replace("/srv/tallyroom/publish", str(publish_dir))
    return text


@contextmanager
def running_nginx(publish_dir: Path, prefix: Path, workers: int | str = 1) -> Iterator[str]:
    """Start nginx; yield its base URL; stop it (by its own pid) at the end."""
    binary = nginx_binary()
    assert binary is not None
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(config_for(publish_dir, prefix, port, workers))
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                log = prefix / "error.log"
                raise RuntimeError(f"nginx exited: {out}{log.read_text() if log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

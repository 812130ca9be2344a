"""Run the app under Granian (default) or uvicorn, with N worker processes.

Workers import ``tallyroom.web.app:app_from_env``; the store URL and commission key path
travel in the environment (``TALLYROOM_DB``, ``TALLYROOM_COMMISSION_KEY``). Every worker has
its own group committer and writer connection; appends from all of them serialise on the
ledger head row (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import os

TARGET = "tallyroom.web.app:app_from_env"


def run(
    host: str, port: int, workers: int, server: str = "granian", log_level: str = "warning"
) -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
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

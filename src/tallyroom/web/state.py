"""What one worker process holds: config, election, key cache, reader, group committer."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from tallyroom.commission import key_path, load_key, origin_of
from tallyroom.definition.compiled import CompiledElection
from tallyroom.intake.receipts import ReceiptSigner
from tallyroom.store.sql import StoreError
from tallyroom.web.body import MAX_PROTOCOL_BYTES
from tallyroom.web.commit import GroupCommitter
from tallyroom.web.keycache import KeyCache
from tallyroom.web.reader import Reader
from tallyroom.web.writer import SOCKET_ENV, RemoteCommitter


@dataclass(frozen=True)
class ServerConfig:
    """Everything a worker needs; passed to worker processes through the environment."""

    db: str
    commission_key: Path
    max_body: int = MAX_PROTOCOL_BYTES
    max_batch: int = 1000
    #: The writer process's socket (``tallyroom serve``); None: commit in a thread here.
    writer_socket: str | None = None

    @classmethod
    def from_env(cls) -> ServerConfig:
        db = os.environ.get("TALLYROOM_DB", "tallyroom.db")
        return cls(
            db=db,
            commission_key=key_path(db),
            max_batch=int(os.environ.get("TALLYROOM_MAX_BATCH", "1000")),
            writer_socket=os.environ.get(SOCKET_ENV) or None,
        )


class IntakeState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.reader = Reader(config.db)
        store = self.reader.store
        if not store.is_initialized():
            raise StoreError(f"{config.db} holds no election: run `tallyroom init` first")
        self.election: CompiledElection = store.election()
        name, key = load_key(config.commission_key)
        if key.verify_key.encode().hex() != store.meta("commission_public_key"):
            raise StoreError(
                f"{config.commission_key} is not the key this election was initialised with"
            )
        self.origin = origin_of(store)
        self.signer = ReceiptSigner(self.origin, name, key)
        self.keys = KeyCache(self.reader)
        self.keys.load_all(store)
        self.committer: GroupCommitter | RemoteCommitter
        if config.writer_socket:
            self.committer = RemoteCommitter(config.writer_socket, config.max_batch)
        else:
            self.committer = GroupCommitter(config.db, self.signer, config.max_batch)
        self.committer.on_revoked = self.keys.mark_revoked

    async def start(self) -> None:
        if isinstance(self.committer, GroupCommitter):
            # The writer thread and the event loop share the GIL; a short switch interval
            # keeps the loop answering while the writer works (the default 5 ms stalls every
            # request behind a batch). Measured in benchmarks/bench_intake.py.
            sys.setswitchinterval(float(os.environ.get("TALLYROOM_SWITCH_INTERVAL", "0.0005")))
        await self.committer.start()

    async def stop(self) -> None:
        await self.committer.stop()
        self.reader.close()

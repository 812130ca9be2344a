"""The commission's signing key and the signed checkpoints it issues over the ledger.

The private key lives in a file beside the store (`<db>.commission-key`, mode 0600) or
wherever `TALLYROOM_COMMISSION_KEY` points; only its public half goes into the store and the
published bulletin. The key is never printed or logged.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nacl.signing

from tallyroom.ledger.checkpoint import Checkpoint, sign_checkpoint
from tallyroom.ledger.entry import EntryKind
from tallyroom.ledger.note import make_skey, make_vkey, parse_skey
from tallyroom.store.sql import Store, StoreError


def key_path(db: str) -> Path:
    env = os.environ.get("TALLYROOM_COMMISSION_KEY")
    if env:
        return Path(env)
    if db.startswith(("postgresql://", "postgres://")):
        return Path("tallyroom-commission.key")
    return Path(db.removeprefix("sqlite:///") + ".commission-key")


def origin_of(store: Store) -> str:
    e = store.election().definition.election
    return e.origin or f"tallyroom/{e.id}"


def create_key(path: Path, name: str) -> nacl.signing.SigningKey:
    """Create a new commission key file; refuse to overwrite an existing one."""
    key = nacl.signing.SigningKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(make_skey(name, key) + "\n")
    return key


def load_key(path: Path) -> tuple[str, nacl.signing.SigningKey]:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise StoreError(f"cannot read the commission key {path}: {exc.strerror}") from None
    return parse_skey(text)


def verify_key_string(store: Store) -> str:
    """The commission's public key in signed-note vkey form, as published."""
    name = origin_of(store)
    hexkey = store.meta("commission_public_key")
    if hexkey is None:
        raise StoreError("the store has no commission public key")
    return make_vkey(name, nacl.signing.VerifyKey(bytes.fromhex(hexkey)))


def issue_checkpoint(store: Store, key_file: Path) -> bytes:
    """Sign a checkpoint of the ledger as it is now, record it, and log it as an entry.

    The checkpoint covers the tree before its own entry is appended, so the entry holding
    checkpoint N is leaf N and is covered by the next checkpoint.
    """
    name, key = load_key(key_file)
    if key.verify_key.encode().hex() != store.meta("commission_public_key"):
        raise StoreError(f"{key_file} is not the key this election was initialised with")
    head = store.head()
    cp = Checkpoint(origin=origin_of(store), size=head.size, root=head.root, time=int(time.time()))
    note = sign_checkpoint(cp, name, key)
    store.add_checkpoint(cp.size, cp.root, cp.time, note)
    store.append_entry(EntryKind.CHECKPOINT, note)
    return note

"""Device public keys in memory: loaded at start, looked up on a miss, never trusted for
revocation alone (the writer re-checks revocation in the commit batch)."""

from __future__ import annotations

import time

import nacl.signing

from tallyroom.intake.submission import RegisteredKey
from tallyroom.store import intake as db
from tallyroom.store.sql import Store
from tallyroom.web.reader import Reader

#: An unknown key id is looked up again after this many seconds (bounds database work
#: from a flood of made-up key ids while new registrations still show up quickly).
MISS_TTL = 1.0


def _registered(row: db.KeyRow) -> RegisteredKey:
    return RegisteredKey(
        row.key_id, row.station, nacl.signing.VerifyKey(row.public_key), row.status != "active"
    )


class KeyCache:
    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._keys: dict[str, RegisteredKey] = {}
        self._misses: dict[str, float] = {}

    def load_all(self, store: Store) -> int:
        self._keys = {r.key_id: _registered(r) for r in db.list_keys(store)}
        return len(self._keys)

    async def get(self, key_id: str) -> RegisteredKey | None:
        key = self._keys.get(key_id)
        if key is not None:
            return key
        now = time.monotonic()
        seen = self._misses.get(key_id)
        if seen is not None and now - seen < MISS_TTL:
            return None
        row = await self._reader.run(db.get_key, key_id)
        if row is None:
            if len(self._misses) > 100_000:
                self._misses.clear()
            self._misses[key_id] = now
            return None
        key = self._keys[key_id] = _registered(row)
        return key

    def mark_revoked(self, key_id: str) -> None:
        key = self._keys.get(key_id)
        if key is not None and not key.revoked:
            self._keys[key_id] = RegisteredKey(key.key_id, key.station, key.verify_key, True)

    def forget(self, key_id: str) -> None:
        self._keys.pop(key_id, None)
        self._misses.pop(key_id, None)

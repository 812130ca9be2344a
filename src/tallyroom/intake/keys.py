"""The device key registry: registration, rotation and revocation, each a ledger entry.

The `key_change` entry payload is JSON::

    {"action": "register" | "rotate" | "revoke",
     "keys": [{"key_id": "ed25519:…", "station": "1001", "public_key": "<base64>"}],
     "revoked": ["ed25519:…"], "reason": "…", "by": "…"}

so anyone reading the ledger knows which key could sign for which station at any point, and
can re-check every stored protocol signature.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import msgspec

from tallyroom.intake.errors import Rejection
from tallyroom.intake.signature import DeviceKey, generate_key, key_id_for, write_key_file
from tallyroom.store import intake as db
from tallyroom.store.sql import Store

_json = msgspec.json.Encoder()


def _payload(
    action: str,
    keys: Sequence[tuple[str, str, bytes]],
    revoked: Sequence[str],
    reason: str | None,
    by: str,
) -> bytes:
    return _json.encode(
        {
            "action": action,
            "keys": [
                {"key_id": k, "station": s, "public_key": base64.b64encode(p).decode()}
                for k, s, p in keys
            ],
            "revoked": list(revoked),
            "reason": reason,
            "by": by,
        }
    )


def _check_stations(store: Store, stations: Sequence[str]) -> None:
    index = store.election().station_index
    unknown = [s for s in stations if s not in index]
    if unknown:
        raise Rejection(
            422, "unknown-station", f"unknown station(s): {', '.join(unknown[:10])}", "station"
        )


def generate_for(store: Store, stations: Sequence[str], out: Path, by: str) -> list[DeviceKey]:
    """Make one key pair per station, write the private keys to ``out/<station>.key`` and
    register the public keys (one ledger entry). Refuses stations that have an active key."""
    _check_stations(store, stations)
    have = {k.station for k in db.list_keys(store, status="active")}
    taken = [s for s in stations if s in have]
    if taken:
        raise Rejection(
            409,
            "key-exists",
            f"station(s) {', '.join(taken[:10])} already have an active key: use `keys rotate`",
            "station",
        )
    out.mkdir(parents=True, exist_ok=True)
    keys = [generate_key(s) for s in stations]
    paths = [out / f"{_file_name(k.station)}.key" for k in keys]
    clash = [p for p in paths if p.exists()]
    if clash:
        raise Rejection(409, "file-exists", f"{clash[0]} exists already; not overwriting", "out")
    for path, key in zip(paths, keys, strict=True):
        write_key_file(path, key)
    rows = [(k.key_id, k.station, k.public_key) for k in keys]
    db.change_keys(store, _payload("register", rows, (), None, by), register=rows)
    return keys


def _file_name(station: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in station)


def register_public(store: Store, station: str, public_key: bytes, by: str) -> tuple[str, int]:
    """Register a public key a device made itself; returns (key id, ledger index)."""
    _check_stations(store, [station])
    kid = key_id_for(public_key)
    if db.get_key(store, kid) is not None:
        raise Rejection(409, "key-exists", f'key "{kid}" is registered already', "public_key")
    rows = [(kid, station, public_key)]
    return kid, db.change_keys(store, _payload("register", rows, (), None, by), register=rows)


def rotate(store: Store, station: str, out: Path, by: str, reason: str | None = None) -> DeviceKey:
    """A new key for a station; every active key of the station is revoked in the same entry."""
    _check_stations(store, [station])
    old = [k.key_id for k in db.list_keys(store, station=station, status="active")]
    key = generate_key(station)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{_file_name(station)}.key"
    if path.exists():
        raise Rejection(409, "file-exists", f"{path} exists already; not overwriting", "out")
    write_key_file(path, key)
    rows = [(key.key_id, station, key.public_key)]
    db.change_keys(
        store, _payload("rotate", rows, old, reason, by), register=rows, revoke=old
    )
    return key


def revoke(store: Store, key_id: str, by: str, reason: str | None = None) -> int:
    row = db.get_key(store, key_id)
    if row is None:
        raise Rejection(404, "unknown-key", f'key "{key_id}" is not registered', "key_id")
    if row.status != "active":
        raise Rejection(409, "already-revoked", f'key "{key_id}" is revoked already', "key_id")
    return db.change_keys(store, _payload("revoke", (), [key_id], reason, by), revoke=[key_id])

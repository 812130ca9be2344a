"""Station device keys: Ed25519 key pairs, their ids, key files, signing and checking.

A device signs the exact bytes of the request body; the signature travels base64-encoded in
the ``X-Tallyroom-Signature`` header and the key id in ``X-Tallyroom-Key-Id``. A key id is
``"ed25519:"`` followed by the first 16 hex digits of SHA-256 of the 32-byte public key, so
anyone holding the published public key can recompute it.

A key file (what ``tallyroom keys generate`` writes for provisioning a device) is JSON::

    {"format": "tallyroom-device-key/1", "station": "1001", "key_id": "ed25519:…",
     "public_key": "<base64>", "secret_key": "<base64 of the 32-byte seed>"}

It is a secret; it is written with mode 0600 and never printed or logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

KEY_FILE_FORMAT = "tallyroom-device-key/1"
KEY_ID_HEADER = "X-Tallyroom-Key-Id"
SIGNATURE_HEADER = "X-Tallyroom-Signature"


class KeyFileError(ValueError):
    """A key file that cannot be read or is not a tallyroom device key."""


def key_id_for(public_key: bytes) -> str:
    return "ed25519:" + hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class DeviceKey:
    """A station device's signing key (secret)."""

    station: str
    signing_key: nacl.signing.SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key.encode())

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    def sign(self, body: bytes) -> str:
        """The base64 Ed25519 signature of ``body``, for the signature header."""
        return base64.b64encode(self.signing_key.sign(body).signature).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        return {KEY_ID_HEADER: self.key_id, SIGNATURE_HEADER: self.sign(body)}

    def __repr__(self) -> str:  # never show the secret
        return f"DeviceKey(station={self.station!r}, key_id={self.key_id!r})"


def generate_key(station: str) -> DeviceKey:
    return DeviceKey(station, nacl.signing.SigningKey.generate())


def write_key_file(path: Path, key: DeviceKey) -> None:
    """Write a new key file with mode 0600; refuse to overwrite one."""
    data = {
        "format": KEY_FILE_FORMAT,
        "station": key.station,
        "key_id": key.key_id,
        "public_key": base64.b64encode(key.public_key).decode(),
        "secret_key": base64.b64encode(bytes(key.signing_key.encode())).decode(),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2) + "\n")


def load_key_file(path: Path) -> DeviceKey:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    except ValueError:
        raise KeyFileError(f"{path} is not a JSON key file") from None
    if not isinstance(data, dict) or data.get("format") != KEY_FILE_FORMAT:
        raise KeyFileError(f"{path} is not a {KEY_FILE_FORMAT} key file")
    try:
        seed = base64.b64decode(str(data["secret_key"]), validate=True)
        key = DeviceKey(str(data["station"]), nacl.signing.SigningKey(seed))
    except (KeyError, binascii.Error, ValueError, nacl.exceptions.ValueError):
        raise KeyFileError(f"{path}: secret_key or station is missing or malformed") from None
    if data.get("key_id") not in (None, key.key_id):
        raise KeyFileError(f"{path}: key_id does not match the secret key")
    return key


def decode_public_key(text: str) -> bytes:
    """A public key from base64 (what the admin API accepts); ValueError if not 32 bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("public_key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"public_key must be 32 bytes (Ed25519), got {len(raw)}")
    return raw


def decode_signature(text: str) -> bytes | None:
    """The 64 raw bytes of a base64 signature header, or None if it is malformed."""
    if len(text) > 100:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


def verify(verify_key: nacl.signing.VerifyKey, body: bytes, signature: bytes) -> bool:
    try:
        verify_key.verify(body, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True

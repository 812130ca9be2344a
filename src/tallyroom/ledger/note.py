"""C2SP signed notes with Ed25519 keys (https://c2sp.org/signed-note).

A signed note is UTF-8 text ending in a newline, a blank line, then one line per
signature::

    <text, ending in \\n>
    \\n
    — <key name> <base64(4-byte key ID ‖ signature)>\\n

Only signature type 0x01 (Ed25519 over the note text) is produced or checked here; the
key ID is SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]. Keys are exchanged in the
"vkey" / "skey" string forms of golang.org/x/mod/sumdb/note, which every Go transparency
tool (witnesses, monitors) reads.

Errors are :class:`NoteError` with a message naming the offending line (1-based) of the
note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "NoteError",
    "NoteSignature",
    "key_id",
    "make_skey",
    "make_vkey",
    "parse_note",
    "parse_skey",
    "parse_vkey",
    "sign_note",
    "verify_note",
]

ALG_ED25519 = 0x01
"""Signature type identifier byte of Ed25519 in the C2SP signed-note spec."""

MAX_SIGNATURES = 100
"""Signature lines accepted per note; the spec requires at least 16 (C2SP signed-note)."""

_DASH = "\u2014"
_ED25519_SIG_SIZE = 64
_ED25519_KEY_SIZE = 32


class NoteError(ValueError):
    """A note, key string or signature is malformed or does not verify."""


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, raw signature bytes, and its line."""

    key_name: str
    key_id: bytes
    signature: bytes
    line: int


def _check_key_name(name: str) -> None:
    # C2SP signed-note: non-empty, no Unicode spaces, no '+' (it separates vkey fields).
    if not name:
        raise NoteError("key name must not be empty")
    if "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"key name {name!r} must not contain spaces or '+'")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise NoteError(f"key name {name!r} must not contain control characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"key name {name!r} is not encodable as UTF-8") from exc


def key_id(key_name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """Return SHA-256(key name ‖ 0x0A ‖ alg ‖ public key)[:4] (C2SP signed-note, Signatures)."""
    _check_key_name(key_name)
    return hashlib.sha256(key_name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def _public_bytes(verify_key: nacl.signing.VerifyKey) -> bytes:
    return bytes(verify_key.encode())


def make_vkey(key_name: str, verify_key: nacl.signing.VerifyKey) -> str:
    """Return the verifier key string ``<name>+<hex key ID>+<base64(0x01 ‖ public key)>``.

    This is the format of golang.org/x/mod/sumdb/note ``NewVerifier``; observers paste it
    into their configuration to trust the log.
    """
    public = _public_bytes(verify_key)
    return (
        f"{key_name}+{key_id(key_name, public).hex()}+"
        f"{base64.b64encode(bytes([ALG_ED25519]) + public).decode()}"
    )


def parse_vkey(vkey: str) -> tuple[str, nacl.signing.VerifyKey]:
    """Parse a verifier key string (see :func:`make_vkey`); check its key ID."""
    # The base64 part may itself contain '+', so split at most twice.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("verifier key must have the form <name>+<hex id>+<base64 key>")
    name, id_hex, key_b64 = parts
    _check_key_name(name)
    raw = _strict_b64(key_b64, "verifier key")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != ALG_ED25519:
        raise NoteError("verifier key must be type 0x01 (Ed25519) followed by 32 bytes")
    public = raw[1:]
    if id_hex != key_id(name, public).hex():
        raise NoteError(f"verifier key ID {id_hex!r} does not match the key")
    return name, nacl.signing.VerifyKey(public)


def make_skey(key_name: str, signing_key: nacl.signing.SigningKey) -> str:
    """Return the signer key string ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>``.

    Same format as golang.org/x/mod/sumdb/note ``NewSigner``. It is a secret.
    """
    seed = bytes(signing_key.encode())
    public = _public_bytes(signing_key.verify_key)
    return (
        f"PRIVATE+KEY+{key_name}+{key_id(key_name, public).hex()}+"
        f"{base64.b64encode(bytes([ALG_ED25519]) + seed).decode()}"
    )


def parse_skey(skey: str) -> tuple[str, nacl.signing.SigningKey]:
    """Parse a signer key string (see :func:`make_skey`); check its key ID."""
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise NoteError("signer key must have the form PRIVATE+KEY+<name>+<hex id>+<base64>")
    _, _, name, id_hex, key_b64 = parts
    _check_key_name(name)
    raw = _strict_b64(key_b64, "signer key")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] != ALG_ED25519:
        raise NoteError("signer key must be type 0x01 (Ed25519) followed by a 32-byte seed")
    signing_key = nacl.signing.SigningKey(raw[1:])
    if id_hex != key_id(name, _public_bytes(signing_key.verify_key)).hex():
        raise NoteError(f"signer key ID {id_hex!r} does not match the key")
    return name, signing_key


def _strict_b64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    # Only the canonical encoding is accepted, so each value has exactly one spelling.
    if base64.b64encode(raw).decode() != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _check_text(text: str, first_line: int = 1) -> None:
    for offset, line in enumerate(text.split("\n")):
        for ch in line:
            if ord(ch) < 0x20:
                raise NoteError(
                    f"line {first_line + offset}: control character U+{ord(ch):04X} "
                    "is not allowed in a note"
                )


def sign_note(text: bytes, key_name: str, signing_key: nacl.signing.SigningKey) -> bytes:
    """Return ``text`` signed as a C2SP note with one Ed25519 signature.

    The signature covers the text including its final newline, not the blank line.
    """
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("note text must be UTF-8") from exc
    if not decoded.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text(decoded)
    kid = key_id(key_name, _public_bytes(signing_key.verify_key))
    signature = bytes(signing_key.sign(text).signature)
    line = f"{_DASH} {key_name} {base64.b64encode(kid + signature).decode()}\n"
    return text + b"\n" + line.encode()


def parse_note(note: bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into its text and signature lines (C2SP signed-note, Format).

    Checks structure only; no signature is verified. Raises :class:`NoteError`.
    """
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"note is not valid UTF-8 (byte {exc.start})") from exc
    if not decoded.endswith("\n"):
        raise NoteError("note must end with a newline")
    # The text is separated from the signatures by the *last* blank line.
    cut = decoded.rfind("\n\n")
    if cut < 0:
        raise NoteError("note has no blank line before its signatures")
    text = decoded[: cut + 1]
    sig_block = decoded[cut + 2 :]
    text_lines = text.count("\n")
    _check_text(text)
    sig_lines = sig_block.split("\n")[:-1]
    if not sig_lines:
        raise NoteError(f"line {text_lines + 2}: note has no signature lines")
    if len(sig_lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(sig_lines)} signatures, at most {MAX_SIGNATURES} allowed")
    signatures: list[NoteSignature] = []
    for offset, line in enumerate(sig_lines):
        number = text_lines + 2 + offset
        signatures.append(_parse_signature_line(line, number))
    return text.encode(), signatures


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    _check_text(line, number)
    prefix = _DASH + " "
    if not line.startswith(prefix):
        raise NoteError(f"line {number}: signature line must start with '{_DASH} '")
    fields = line[len(prefix) :].split(" ")
    if len(fields) != 2:
        raise NoteError(f"line {number}: signature line must be '{_DASH} <key name> <base64>'")
    name, sig_b64 = fields
    try:
        _check_key_name(name)
        raw = _strict_b64(sig_b64, "signature")
    except NoteError as exc:
        raise NoteError(f"line {number}: {exc}") from exc
    if len(raw) < 5:
        raise NoteError(f"line {number}: signature is too short ({len(raw)} bytes)")
    return NoteSignature(key_name=name, key_id=raw[:4], signature=raw[4:], line=number)


def verify_note(note: bytes, key_name: str, verify_key: nacl.signing.VerifyKey) -> bytes:
    """Return the note text if it carries a valid Ed25519 signature by this key.

    Per the C2SP signed-note spec, signatures by other keys are ignored, a signature by
    this key (same name and key ID) that fails rejects the whole note, and a note with no
    signature by this key is rejected.
    """
    text, signatures = parse_note(note)
    kid = key_id(key_name, _public_bytes(verify_key))
    mine = [s for s in signatures if s.key_name == key_name and s.key_id == kid]
    if not mine:
        found = ", ".join(f"{s.key_name}+{s.key_id.hex()}" for s in signatures)
        raise NoteError(f"note is not signed by key {key_name}+{kid.hex()} (signed by: {found})")
    for sig in mine:
        if len(sig.signature) != _ED25519_SIG_SIZE:
            raise NoteError(
                f"line {sig.line}: Ed25519 signature must be {_ED25519_SIG_SIZE} bytes, "
                f"got {len(sig.signature)}"
            )
        try:
            verify_key.verify(text, sig.signature)
        except nacl.exceptions.BadSignatureError as exc:
            raise NoteError(
                f"line {sig.line}: bad signature by key {key_name}+{kid.hex()}"
            ) from exc
    return text

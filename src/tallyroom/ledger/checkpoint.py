"""Signed checkpoints: the C2SP tlog-checkpoint format (https://c2sp.org/tlog-checkpoint).

A checkpoint commits the log to its size and root at a moment. Its text is exactly four
lines; the fourth is tallyroom's one extension line, the signing time::

    <origin>
    <tree size, decimal, no leading zeros>
    <base64 root hash>
    time <unix seconds, decimal, no leading zeros>

and it is wrapped in a C2SP signed note (see :mod:`tallyroom.ledger.note`). Parsing is
strict: a checkpoint has exactly one spelling, so re-encoding a parsed checkpoint gives
back the signed bytes.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import nacl.signing

from tallyroom.ledger.merkle import HASH_SIZE
from tallyroom.ledger.note import (
    NoteError,
    NoteSignature,
    key_id,
    make_skey,
    make_vkey,
    parse_note,
    parse_skey,
    parse_vkey,
    sign_note,
    verify_note,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NoteSignature",
    "checkpoint_text",
    "key_id",
    "make_skey",
    "make_vkey",
    "parse_checkpoint_text",
    "parse_signed_checkpoint",
    "parse_skey",
    "parse_vkey",
    "sign_checkpoint",
    "verify_checkpoint",
]

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_TIME_PREFIX = "time "


class CheckpointError(NoteError):
    """A checkpoint note is malformed, unsigned by the expected key, or badly signed."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and signing time (unix seconds)."""

    origin: str
    size: int
    root: bytes
    time: int

    def __post_init__(self) -> None:
        if not self.origin:
            raise CheckpointError("checkpoint origin must not be empty")
        if any(ord(ch) < 0x20 for ch in self.origin):
            raise CheckpointError("checkpoint origin must not contain control characters")
        if not _is_utf8(self.origin):
            raise CheckpointError("checkpoint origin must be encodable as UTF-8")
        if self.size < 0:
            raise CheckpointError(f"checkpoint size must be >= 0, got {self.size}")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root must be {HASH_SIZE} bytes, got {len(self.root)}"
            )
        if self.time < 0:
            raise CheckpointError(f"checkpoint time must be >= 0, got {self.time}")


def _is_utf8(text: str) -> bool:
    # A str may hold lone surrogates, which have no UTF-8 encoding (C2SP notes are UTF-8).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def checkpoint_text(cp: Checkpoint) -> bytes:
    """Return the note text of a checkpoint (C2SP tlog-checkpoint, Note text)."""
    root = base64.b64encode(cp.root).decode()
    return f"{cp.origin}\n{cp.size}\n{root}\n{_TIME_PREFIX}{cp.time}\n".encode()


def parse_checkpoint_text(text: bytes) -> Checkpoint:
    """Parse checkpoint note text; :class:`CheckpointError` names the first bad line."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError("checkpoint is not valid UTF-8") from exc
    if not decoded.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = decoded[:-1].split("\n")
    if len(lines) < 4:
        raise CheckpointError(
            f"line {len(lines) + 1}: checkpoint has {len(lines)} lines, expected 4 "
            "(origin, size, root, time)"
        )
    if len(lines) > 4:
        raise CheckpointError(f"line 5: unexpected extension line {lines[4]!r}")
    origin, size_text, root_text, time_line = lines
    if not origin:
        raise CheckpointError("line 1: origin must not be empty")
    if not _DECIMAL.fullmatch(size_text):
        raise CheckpointError(
            f"line 2: tree size {size_text!r} is not a decimal without leading zeros"
        )
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError as exc:
        raise CheckpointError(f"line 3: root hash {root_text!r} is not valid base64") from exc
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise CheckpointError(
            f"line 3: root hash must be the canonical base64 of {HASH_SIZE} bytes"
        )
    if not time_line.startswith(_TIME_PREFIX) or not _DECIMAL.fullmatch(
        time_line[len(_TIME_PREFIX) :]
    ):
        raise CheckpointError(
            f"line 4: expected 'time <unix seconds>' without leading zeros, got {time_line!r}"
        )
    try:
        return Checkpoint(
            origin=origin,
            size=int(size_text),
            root=root,
            time=int(time_line[len(_TIME_PREFIX) :]),
        )
    except CheckpointError as exc:
        raise CheckpointError(f"line 1: {exc}") from exc


def sign_checkpoint(cp: Checkpoint, key_name: str, signing_key: nacl.signing.SigningKey) -> bytes:
    """Return the full signed-note bytes of a checkpoint, signed with Ed25519.

    C2SP tlog-checkpoint recommends that the key name match the origin; that is the
    caller's choice.
    """
    return sign_note(checkpoint_text(cp), key_name, signing_key)


def parse_signed_checkpoint(note: bytes) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse a signed checkpoint without verifying any signature.

    For display and diagnosis only: trust nothing in it until :func:`verify_checkpoint`
    has checked it.
    """
    try:
        text, signatures = parse_note(note)
    except CheckpointError:
        raise
    except NoteError as exc:
        raise CheckpointError(str(exc)) from exc
    return parse_checkpoint_text(text), signatures


def verify_checkpoint(
    note: bytes,
    key_name: str,
    verify_key: nacl.signing.VerifyKey,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Return the checkpoint if ``note`` is validly signed by this key.

    Raises :class:`CheckpointError` for a malformed note or body (naming the line), a note
    with no signature by this key, or a bad signature by it (C2SP signed-note, Signatures).
    Pass ``origin`` to also require the checkpoint to be for that log: a key may sign for
    several logs, and a checkpoint of one must not be taken for another.
    """
    try:
        text = verify_note(note, key_name, verify_key)
    except CheckpointError:
        raise
    except NoteError as exc:
        raise CheckpointError(str(exc)) from exc
    cp = parse_checkpoint_text(text)
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"line 1: checkpoint is for log {cp.origin!r}, expected {origin!r}")
    return cp

"""Signed notes and checkpoints (C2SP signed-note, C2SP tlog-checkpoint)."""

from __future__ import annotations

import base64
import hashlib
import re

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallyroom.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    checkpoint_text,
    make_vkey,
    parse_checkpoint_text,
    parse_signed_checkpoint,
    parse_vkey,
    sign_checkpoint,
    verify_checkpoint,
)
from tallyroom.ledger.note import (
    NoteError,
    key_id,
    make_skey,
    parse_note,
    parse_skey,
    sign_note,
    verify_note,
)

# Known-answer vector from golang.org/x/mod, sumdb/note/note.go (package doc example)
# and sumdb/note/note_test.go (repository golang/mod): key strings, text and signature.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + (
        "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
        "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    ).encode()
)

ORIGIN = "results.example.kg/2021-parliament"
KEY = nacl.signing.SigningKey(hashlib.sha256(b"tallyroom test log key").digest())
OTHER_KEY = nacl.signing.SigningKey(hashlib.sha256(b"some other key").digest())
ROOT = hashlib.sha256(b"a root").digest()
CP = Checkpoint(origin=ORIGIN, size=2494, root=ROOT, time=1638100800)


# ------------------------------------------------------------------ signed-note KAT


def test_go_note_known_answer() -> None:
    name, signing_key = parse_skey(GO_SKEY)
    assert name == "PeterNeumann"
    assert make_skey(name, signing_key) == GO_SKEY
    assert make_vkey(name, signing_key.verify_key) == GO_VKEY
    # Ed25519 is deterministic (RFC 8032), so signing must reproduce the Go note exactly.
    assert sign_note(GO_TEXT, name, signing_key) == GO_NOTE
    vname, verify_key = parse_vkey(GO_VKEY)
    assert verify_note(GO_NOTE, vname, verify_key) == GO_TEXT
    assert key_id(vname, bytes(verify_key)).hex() == "c74f20a3"


def test_go_note_tampered_text_fails() -> None:
    _, verify_key = parse_vkey(GO_VKEY)
    tampered = GO_NOTE.replace(b"cryptography", b"cryptographY")
    with pytest.raises(NoteError, match="line 4: bad signature by key PeterNeumann"):
        verify_note(tampered, "PeterNeumann", verify_key)


def test_vkey_rejects_manglings() -> None:
    for i in range(len(GO_VKEY)):
        mangled = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            parse_vkey(mangled)
    for bad in ("", "PeterNeumann", GO_VKEY[:-4], GO_VKEY + "AAAA", "a b+c74f20a3+AAAA"):
        with pytest.raises(NoteError):
            parse_vkey(bad)


def test_key_names_are_checked() -> None:
    for bad in ("", "a b", "a+b", "a\u00a0b", "tab\there", "lone\udc80"):
        with pytest.raises(NoteError, match="key name"):
            key_id(bad, bytes(32))


# --------------------------------------------------------------------- checkpoints


def test_checkpoint_text_format() -> None:
    root_b64 = base64.b64encode(ROOT).decode()
    assert checkpoint_text(CP) == f"{ORIGIN}\n2494\n{root_b64}\ntime 1638100800\n".encode()
    assert parse_checkpoint_text(checkpoint_text(CP)) == CP


def test_sign_verify_roundtrip() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    assert verify_checkpoint(note, ORIGIN, KEY.verify_key) == CP
    assert verify_checkpoint(note, ORIGIN, KEY.verify_key, origin=ORIGIN) == CP
    cp, sigs = parse_signed_checkpoint(note)
    assert cp == CP
    assert len(sigs) == 1
    assert sigs[0].key_name == ORIGIN
    assert sigs[0].key_id == key_id(ORIGIN, bytes(KEY.verify_key))
    assert sigs[0].line == 6
    lines = note.decode().split("\n")
    assert lines[4] == ""
    assert re.fullmatch(r"\u2014 \S+ [A-Za-z0-9+/]+=*", lines[5])
    assert len(base64.b64decode(lines[5].split(" ")[2])) == 4 + 64


def test_vkey_roundtrip_verifies_checkpoint() -> None:
    vkey = make_vkey(ORIGIN, KEY.verify_key)
    name, verify_key = parse_vkey(vkey)
    assert verify_checkpoint(sign_checkpoint(CP, ORIGIN, KEY), name, verify_key) == CP


@pytest.mark.parametrize(
    ("line", "old", "new"),
    [
        (1, ORIGIN, ORIGIN + "x"),
        (2, "2494", "2495"),
        (3, base64.b64encode(ROOT).decode(), base64.b64encode(bytes(32)).decode()),
        (4, "time 1638100800", "time 1638100801"),
    ],
)
def test_tampered_field_fails(line: int, old: str, new: str) -> None:
    lines = sign_checkpoint(CP, ORIGIN, KEY).decode().split("\n")
    assert lines[line - 1] == old
    lines[line - 1] = new
    tampered = "\n".join(lines).encode()
    with pytest.raises(CheckpointError, match=f"line 6: bad signature by key {re.escape(ORIGIN)}"):
        verify_checkpoint(tampered, ORIGIN, KEY.verify_key)


def test_tampered_signature_fails() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    text, sig_line = note.decode().rsplit("\n\u2014 ", 1)
    name, b64 = sig_line.rstrip("\n").split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    forged = f"{text}\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    with pytest.raises(CheckpointError, match="bad signature"):
        verify_checkpoint(forged, ORIGIN, KEY.verify_key)


def test_wrong_key_fails() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    with pytest.raises(CheckpointError, match="not signed by key"):
        verify_checkpoint(note, ORIGIN, OTHER_KEY.verify_key)
    with pytest.raises(CheckpointError, match=r"not signed by key other\.example"):
        verify_checkpoint(note, "other.example", KEY.verify_key)


def test_wrong_origin_fails() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    with pytest.raises(CheckpointError, match="line 1: checkpoint is for log"):
        verify_checkpoint(note, ORIGIN, KEY.verify_key, origin="results.example.kg/other")


def test_unknown_signatures_are_ignored_but_bad_known_one_rejects() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    witness = sign_checkpoint(CP, "witness.example", OTHER_KEY)
    cosigned = note + witness.split(b"\n\n", 1)[1]
    assert verify_checkpoint(cosigned, ORIGIN, KEY.verify_key) == CP
    assert verify_checkpoint(cosigned, "witness.example", OTHER_KEY.verify_key) == CP
    assert len(parse_signed_checkpoint(cosigned)[1]) == 2
    # Same name and key ID as the trusted key but a bad signature: reject the note.
    good_line = note.split(b"\n\n", 1)[1]
    name, b64 = good_line.decode().rstrip("\n")[2:].split(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 0x40
    bad_line = f"\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    with pytest.raises(CheckpointError, match="line 7: bad signature"):
        verify_checkpoint(note + bad_line, ORIGIN, KEY.verify_key)


MALFORMED: list[tuple[bytes, str]] = [
    (b"", "must end with a newline"),
    (b"\xff\xfe\n\n", "not valid UTF-8"),
    (b"origin\n1\nroot\n", "no blank line"),
    (b"origin\n1\n\n", "line 4: note has no signature lines"),
    (b"origin\n1\n\n- name AAAA\n", "line 4: signature line must start with"),
    ("o\n1\n\n\u2014 name\n".encode(), "line 4: signature line must be"),
    ("o\n1\n\n\u2014 na me AAAAAAA=\n".encode(), "line 4: signature line must be"),
    ("o\n1\n\n\u2014 name !!!!\n".encode(), "line 4: signature is not valid base64"),
    ("o\n1\n\n\u2014 name AAAA\n".encode(), "line 4: signature is too short"),
    ("o\n1\n\n\u2014 na+me AAAAAAA=\n".encode(), "line 4: key name"),
    ("o\x07\n1\n\n\u2014 name AAAAAAA=\n".encode(), "line 1: control character U\\+0007"),
    ("o\n1\r\n\n\u2014 name AAAAAAA=\n".encode(), "line 2: control character U\\+000D"),
]


@pytest.mark.parametrize(("note", "message"), MALFORMED)
def test_malformed_notes_name_the_problem(note: bytes, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        parse_signed_checkpoint(note)
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(note, ORIGIN, KEY.verify_key)


def _signed_text(text: str) -> bytes:
    return sign_note(text.encode(), ORIGIN, KEY)


ROOT_B64 = base64.b64encode(ROOT).decode()
MALFORMED_BODIES: list[tuple[str, str]] = [
    (f"{ORIGIN}\n1\n{ROOT_B64}\n", "line 4: checkpoint has 3 lines"),
    (f"{ORIGIN}\n1\n", "line 3: checkpoint has 2 lines"),
    (f"{ORIGIN}\n01\n{ROOT_B64}\ntime 5\n", "line 2: tree size '01'"),
    (f"{ORIGIN}\n-1\n{ROOT_B64}\ntime 5\n", "line 2: tree size '-1'"),
    (f"{ORIGIN}\n 1\n{ROOT_B64}\ntime 5\n", "line 2"),
    (f"{ORIGIN}\n1\nnot base64!\ntime 5\n", "line 3: root hash 'not base64!'"),
    (f"{ORIGIN}\n1\n{base64.b64encode(bytes(31)).decode()}\ntime 5\n", "line 3: root hash"),
    (f"{ORIGIN}\n1\n{ROOT_B64}\nstamp 5\n", "line 4: expected 'time <unix seconds>'"),
    (f"{ORIGIN}\n1\n{ROOT_B64}\ntime 05\n", "line 4"),
    (f"{ORIGIN}\n1\n{ROOT_B64}\ntime 5\nextra\n", "line 5: unexpected extension line"),
    (f"\n1\n{ROOT_B64}\ntime 5\n", "line 1: origin must not be empty"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED_BODIES)
def test_malformed_bodies_name_the_line(text: str, message: str) -> None:
    note = _signed_text(text)
    with pytest.raises(CheckpointError, match=message):
        parse_signed_checkpoint(note)
    # The signature is valid; the body is still refused.
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(note, ORIGIN, KEY.verify_key)


def test_checkpoint_fields_are_validated() -> None:
    with pytest.raises(CheckpointError, match="origin"):
        Checkpoint(origin="", size=1, root=ROOT, time=0)
    with pytest.raises(CheckpointError, match="origin"):
        Checkpoint(origin="a\nb", size=1, root=ROOT, time=0)
    with pytest.raises(CheckpointError, match="size"):
        Checkpoint(origin=ORIGIN, size=-1, root=ROOT, time=0)
    with pytest.raises(CheckpointError, match="32 bytes"):
        Checkpoint(origin=ORIGIN, size=1, root=ROOT[:31], time=0)
    with pytest.raises(CheckpointError, match="time"):
        Checkpoint(origin=ORIGIN, size=1, root=ROOT, time=-5)
    with pytest.raises(CheckpointError, match="UTF-8"):
        Checkpoint(origin="log\ud800", size=1, root=ROOT, time=0)


def test_note_signature_count_is_bounded() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    line = note.split(b"\n\n", 1)[1]
    with pytest.raises(NoteError, match="at most 100"):
        parse_note(note + line * 100)


@settings(max_examples=60, deadline=None)
@given(
    origin=st.text(
        alphabet=st.characters(min_codepoint=0x20, exclude_categories=["Cs"]),
        min_size=1,
        max_size=60,
    ),
    size=st.integers(min_value=0, max_value=2**63),
    root=st.binary(min_size=32, max_size=32),
    when=st.integers(min_value=0, max_value=2**40),
)
def test_roundtrip_any_checkpoint(origin: str, size: int, root: bytes, when: int) -> None:
    cp = Checkpoint(origin=origin, size=size, root=root, time=when)
    note = sign_checkpoint(cp, "log.example", KEY)
    assert verify_checkpoint(note, "log.example", KEY.verify_key) == cp
    assert parse_checkpoint_text(checkpoint_text(cp)) == cp


def test_note_text_may_contain_blank_lines() -> None:
    # C2SP signed-note: the text ends at the *last* blank line (its own example has one).
    text = (
        "Ognuno sta solo sul cuor della terra\n"
        "trafitto da un raggio di sole:\n"
        "\n"
        "ed è subito sera.\n"
    )
    note = sign_note(text.encode(), "quasimodo.example", KEY)
    assert verify_note(note, "quasimodo.example", KEY.verify_key) == text.encode()
    parsed, sigs = parse_note(note)
    assert parsed == text.encode()
    assert sigs[0].line == 6


def _non_canonical(b64: str) -> str:
    # Change the unused low bits of the last encoded character before the padding: the
    # decoded bytes stay the same, the spelling does not.
    body = b64.rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(body[-1])
    return body[:-1] + alphabet[last ^ 1] + b64[len(body) :]


def test_non_canonical_base64_is_rejected() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY).decode()
    text, sig_line = note.rsplit("\n\u2014 ", 1)
    name, b64 = sig_line.rstrip("\n").split(" ")
    assert b64.endswith("=")
    odd = _non_canonical(b64)
    assert base64.b64decode(odd) == base64.b64decode(b64)
    forged = f"{text}\n\u2014 {name} {odd}\n".encode()
    with pytest.raises(CheckpointError, match="line 6: signature is not canonical base64"):
        verify_checkpoint(forged, ORIGIN, KEY.verify_key)


def test_wrong_length_signature_by_trusted_key_is_a_note_error() -> None:
    note = sign_checkpoint(CP, ORIGIN, KEY)
    text = note.split(b"\n\n", 1)[0] + b"\n"
    kid = key_id(ORIGIN, bytes(KEY.verify_key))
    for size in (1, 63, 65):
        line = f"\u2014 {ORIGIN} {base64.b64encode(kid + bytes(size)).decode()}\n"
        with pytest.raises(
            CheckpointError, match=f"line 6: Ed25519 signature must be 64 bytes, got {size}"
        ):
            verify_checkpoint(text + b"\n" + line.encode(), ORIGIN, KEY.verify_key)

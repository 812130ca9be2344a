"""Entry bytes: a fixed header line, then the payload exactly as given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallyroom.ledger.entry import EntryError, EntryKind, decode_entry, encode_entry, entry_kind
from tallyroom.ledger.merkle import leaf_hash


def test_kinds_are_the_documented_set() -> None:
    assert [k.value for k in EntryKind] == [
        "protocol",
        "correction",
        "annulment",
        "key_change",
        "checkpoint",
        "snapshot",
        "audit",
        "definition",
    ]


def test_exact_bytes() -> None:
    body = b'{"station":"1001", "valid": 523}\r\n'
    assert encode_entry(EntryKind.PROTOCOL, body) == b"tallyroom-entry/1 protocol\n" + body
    assert encode_entry("key_change", b"") == b"tallyroom-entry/1 key_change\n"


@given(st.sampled_from(list(EntryKind)), st.binary(max_size=2000))
def test_roundtrip_keeps_payload_bytes(kind: EntryKind, payload: bytes) -> None:
    data = encode_entry(kind, payload)
    got_kind, got_payload = decode_entry(data)
    assert got_kind is kind
    assert got_payload == payload
    assert entry_kind(data) is kind


def test_kind_is_bound_into_the_leaf_hash() -> None:
    payload = b"same bytes"
    hashes = {leaf_hash(encode_entry(kind, payload)) for kind in EntryKind}
    assert len(hashes) == len(EntryKind)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "must start with"),
        (b"tallyroom-entry/2 protocol\nx", "must start with"),
        (b"TALLYROOM-ENTRY/1 protocol\nx", "must start with"),
        (b"tallyroom-entry/1 protocol", "missing its newline"),
        (b"tallyroom-entry/1 " + b"p" * 5000, "missing its newline"),
        (b"tallyroom-entry/1 vote\nx", "unknown entry kind b'vote'"),
        (b"tallyroom-entry/1 Protocol\nx", "unknown entry kind"),
        (b"tallyroom-entry/1 protocol \nx", "unknown entry kind"),
        (b"tallyroom-entry/1 \nx", "unknown entry kind"),
        (b"tallyroom-entry/1 \xff\nx", "unknown entry kind"),
    ],
)
def test_malformed_entries(data: bytes, message: str) -> None:
    with pytest.raises(EntryError, match=message):
        decode_entry(data)
    with pytest.raises(EntryError, match=message):
        entry_kind(data)


def test_encode_rejects_unknown_kind_and_non_bytes() -> None:
    with pytest.raises(EntryError, match="unknown entry kind 'vote'"):
        encode_entry("vote", b"x")
    with pytest.raises(EntryError, match="must be bytes"):
        encode_entry(EntryKind.AUDIT, "text")  # type: ignore[arg-type]

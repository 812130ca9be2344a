"""The byte range a ``Range`` header asks for (RFC 9110 §14), against a plain model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tallyroom.web.ranges import UNSATISFIABLE, byte_range


@given(size=st.integers(0, 10_000), first=st.integers(0, 12_000), last=st.integers(0, 12_000))
def test_a_first_last_range(size: int, first: int, last: int) -> None:
    got = byte_range(f"bytes={first}-{last}".encode(), size)
    if last < first:
        assert got is None
    elif first >= size:
        assert got == UNSATISFIABLE
    else:
        assert got == (first, min(last, size - 1))
        data = bytes(size)
        assert len(data[first : min(last, size - 1) + 1]) == min(last, size - 1) + 1 - first


@given(size=st.integers(0, 10_000), first=st.integers(0, 12_000))
def test_an_open_range(size: int, first: int) -> None:
    got = byte_range(f"bytes={first}-".encode(), size)
    assert got == (UNSATISFIABLE if first >= size else (first, size - 1))


@given(size=st.integers(0, 10_000), suffix=st.integers(0, 12_000))
def test_a_suffix_range(size: int, suffix: int) -> None:
    got = byte_range(f"bytes=-{suffix}".encode(), size)
    if suffix == 0 or size == 0:
        assert got == UNSATISFIABLE
    else:
        assert got == (max(0, size - suffix), size - 1)


@given(st.binary(max_size=40))
def test_any_header_gives_an_answer_within_the_file(header: bytes) -> None:
    got = byte_range(header, 1000)
    assert got is None or got == UNSATISFIABLE or (isinstance(got, tuple) and 0 <= got[0] <= got[1] <= 999)


def test_spellings() -> None:
    assert byte_range(b"Bytes = 0-9", 100) == (0, 9)  # the unit is case-insensitive
    assert byte_range(b"bytes=0-9, 20-29", 100) is None  # several ranges: the whole file
    for bad in (b"bytes", b"bytes=", b"bytes=-", b"bytes=a-b", b"bytes=+1-2", b"bytes=1_0-2", b"bits=0-1"):
        assert byte_range(bad, 100) is None, bad
    assert byte_range(b"bytes=" + b"9" * 19 + b"-", 100) is None  # not a length a file can have

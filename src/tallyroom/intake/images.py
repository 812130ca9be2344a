"""Photographs and scans of paper protocols: recognised by their first bytes, never by name."""

from __future__ import annotations

#: Largest image accepted (a phone photo of an A4 protocol is 2–5 MiB).
MAX_IMAGE_BYTES = 8 * 1024 * 1024

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


def sniff(data: bytes) -> str | None:
    """The media type of a JPEG, PNG or PDF by its magic bytes, or None."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    return None

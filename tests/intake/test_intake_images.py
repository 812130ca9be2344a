"""Paper protocol images: type by content, size limit, hash must match the declared one."""

from __future__ import annotations

import hashlib

import httpx
from intake_support import Live

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"protocol photo"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"another photo"


def test_image_upload_checks_type_size_and_declared_hash(live: Live) -> None:
    sha = hashlib.sha256(PNG).hexdigest()
    body = live.body("1001", image_sha256=sha)
    url = f"{live.url}/api/v1/protocols/1001/party-list/hand/image"
    key = live.keys["1001"]
    with httpx.Client(timeout=30) as c:
        # No protocol declares an image yet.
        r = c.put(url, content=PNG, headers=key.headers(PNG))
        assert r.status_code == 404 and r.json()["reason"] == "no-protocol"
        assert live.post(c, body).status_code == 201
        # Not an image by content.
        text = b"GIF89a not allowed"
        r = c.put(url, content=text, headers=key.headers(text))
        assert r.status_code == 415 and r.json()["reason"] == "image-type"
        # A real image, but not the one declared.
        r = c.put(url, content=JPEG, headers=key.headers(JPEG))
        assert r.status_code == 422 and r.json()["reason"] == "image-hash"
        # Another station's key, a forged signature.
        r = c.put(url, content=PNG, headers=live.keys["1002"].headers(PNG))
        assert r.status_code == 403
        r = c.put(url, content=PNG, headers=key.headers(PNG + b"x"))
        assert r.status_code == 401
        # Too large (limit 8 MiB), decided from Content-Length.
        big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (9 * 1024 * 1024)
        r = c.put(url, content=big, headers=key.headers(b""))
        assert r.status_code == 413
        # The declared image: stored once, then 200 for the same bytes.
        r = c.put(url, content=PNG, headers=key.headers(PNG))
        assert r.status_code == 201, r.text
        assert r.json() == {"sha256": sha, "media_type": "image/png", "size": len(PNG), "stored": True}
        r = c.put(url, content=PNG, headers=live.auth("olga"))
        assert r.status_code == 200 and r.json()["stored"] is False
        # Anyone can fetch the image of the protocol in force.
        got = c.get(url)
        assert got.status_code == 200 and got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert c.get(f"{live.url}/api/v1/protocols/1002/party-list/hand/image").status_code == 404
        assert c.get(f"{live.url}/api/v1/protocols/nope/party-list/hand/image").status_code == 404

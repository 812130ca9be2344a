"""Fixtures: a published mini Kyrgyz election shared by the read-only tests."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from publish_support import make_store

from tallyroom.publish.builder import Outcome, Publisher
from tallyroom.store.sql import Store


@dataclass
class Published:
    store: Store
    key: Path
    db: Path
    out: Path
    outcome: Outcome

    @property
    def current(self) -> Path:
        return self.out / "current"


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """All machine counts and the first 100 hand counts, published once."""
    folder = tmp_path_factory.mktemp("published")
    store, key = make_store(folder, machine=None, hand=100)
    out = folder / "pub"
    outcome = Publisher(store, out, key).publish()
    assert outcome.status == "published", outcome.failures
    return Published(store, key, folder / "kg.db", out, outcome)


def check_station_files_served(c: Any, published: Published) -> None:
    """A station page and its JSON twin, stored only as their gzip copy (docs/bulletin.md §2),
    reach every client with the bytes the manifest lists: as the .gz copy with
    ``Content-Encoding: gzip`` to a client that accepts it, decompressed to one that does not;
    revalidation gives 304; the numbered snapshot's copy is immutable. ``c`` is an httpx
    client of the app or of nginx."""
    files = json.loads((published.current / "manifest.json").read_bytes())["files"]
    station = sorted(rel for rel in files if rel.startswith("en/station/"))[0]
    for rel in (station, station.replace("en/station/", "api/v1/results/station/").replace(".html", ".json")):
        sha, size, encodings = files[rel]
        assert encodings == ["gzip-only"] and not (published.current / rel).exists(), rel
        gz = c.get(f"/{rel}", headers={"accept-encoding": "gzip"})
        plain = c.get(f"/{rel}", headers={"accept-encoding": "identity"})
        assert gz.status_code == plain.status_code == 200, (rel, gz.text, plain.text)
        assert gz.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
        for r in (gz, plain):
            assert (hashlib.sha256(r.content).hexdigest(), len(r.content)) == (sha, size), rel
            ctype = "text/html" if rel.endswith(".html") else "application/json"
            assert r.headers["content-type"].startswith(ctype)
            assert r.headers["cache-control"] == "public, max-age=5"
        etag = plain.headers["etag"]
        again = c.get(f"/{rel}", headers={"accept-encoding": "identity", "if-none-match": etag})
        assert again.status_code == 304, rel
        frozen = c.get(f"/snapshots/1/{rel}", headers={"accept-encoding": "identity"})
        assert frozen.status_code == 200 and frozen.content == plain.content
        assert frozen.headers["cache-control"] == "public, max-age=31536000, immutable"
    for bad in ("/en/station/.x.html", "/en/station/none.html", "/snapshots/1/en/station/none.html"):
        assert c.get(bad, headers={"accept-encoding": "identity"}).status_code == 404, bad


def check_security_headers(c: Any, published: Published) -> None:
    """Every kind of response — a page, a snapshot's file, a station page stored only as .gz,
    a revalidation, a redirect, JSON, a missing file — carries the site's security headers
    (tallyroom.web.site.SECURITY_HEADERS), with the same Content-Security-Policy from the app
    and from nginx. ``c`` is an httpx client of either that does not follow redirects."""
    from tallyroom.web.site import SECURITY_HEADERS

    want = {k.decode(): v.decode() for k, v in SECURITY_HEADERS}
    files = json.loads((published.current / "manifest.json").read_bytes())["files"]
    station = sorted(rel for rel in files if rel.startswith("en/station/"))[0]
    page = c.get("/en/index.html")
    responses = {
        "page": page,
        "snapshot file": c.get("/snapshots/1/en/index.html"),
        "station page": c.get(f"/{station}", headers={"accept-encoding": "gzip"}),
        "revalidation": c.get("/en/index.html", headers={"if-none-match": page.headers["etag"]}),
        "redirect": c.get("/", headers={"accept-language": "ru"}),
        "current.json": c.get("/current.json"),
        "missing": c.get("/en/no-such-page.html"),
        "hidden": c.get("/.state/snapshots.json"),
    }
    assert [r.status_code for r in responses.values()] == [200, 200, 200, 304, 302, 200, 404, 404]
    for what, r in responses.items():
        got = {k: r.headers.get(k) for k in want}
        assert got == want, (what, got)


def check_not_found_pages(c: Any, published: Published) -> None:
    """An address with no file gets a 404 with the "page not found" page the publisher wrote,
    in the language of the address, else of Accept-Language, with the security headers and
    a link to the results. ``c`` is an httpx client of the app or of nginx."""
    from tallyroom.web.site import SECURITY_HEADERS

    for lang in ("en", "ru", "ky"):
        assert (published.out / "errors" / f"404.{lang}.html").is_file()
    cases = [
        ("/ru/area/no-such-area.html", {}, "ru", "Страница не найдена"),
        ("/snapshots/1/ky/station/no-such-station.html", {}, "ky", "Барак табылган жок"),
        ("/snapshots/1/ru/no-such.html", {"accept-language": "en"}, "ru", "Страница не найдена"),
        ("/no-such-file.txt", {"accept-language": "en"}, "en", "Page not found"),
        ("/.state/snapshots.json", {"accept-language": "ky"}, "ky", "Барак табылган жок"),
    ]
    for path, headers, lang, words in cases:
        r = c.get(path, headers=headers)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("text/html"), path
        text = r.text
        assert f'<html lang="{lang}">' in text and words in text, (path, text[:300])
        assert f'href="/{lang}/index.html"' in text and 'href="/static/site.css"' in text
        assert all(r.headers.get(k.decode()) == v.decode() for k, v in SECURITY_HEADERS), path
    # The JSON API answers in plain text, as its OpenAPI document says.
    for path in ("/api/v1/results/no-such.json", "/snapshots/1/api/v1/no-such.json"):
        r = c.get(path, headers={"accept-language": "ru"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain"), path
        assert r.text == "not found\n"
    # The pages themselves are not reachable at an address of their own.
    r = c.get("/errors/404.en.html", headers={"accept-language": "ru"})
    assert r.status_code == 404 and '<html lang="ru">' in r.text


def check_byte_ranges(c: Any, published: Published) -> None:
    """A download goes on from where it stopped (RFC 9110 §14): one range of the SQLite
    download, from the start, to the end, the last bytes, one byte, past the end (clamped),
    wholly past the end (416), asked by HEAD, behind an If-Range with the file's own ETag (206) or another
    (the whole file). The same answers from the app and from nginx; ``c`` asks for no
    compression of its own accord."""
    rel = "data/tallyroom.sqlite"
    raw = (published.current / rel).read_bytes()
    n = len(raw)
    ident = {"accept-encoding": "identity"}
    whole = c.get(f"/{rel}", headers=ident)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    etag = whole.headers["etag"]
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, n - 1),
        "bytes=-50": (n - 50, n - 1),
        f"bytes={n - 1}-{n - 1}": (n - 1, n - 1),
        f"bytes=10-{n + 1000}": (10, n - 1),
        "bytes=0-": (0, n - 1),
    }
    for spec, (first, last) in cases.items():
        r = c.get(f"/{rel}", headers={**ident, "range": spec})
        assert r.status_code == 206, spec
        assert r.headers["content-range"] == f"bytes {first}-{last}/{n}", spec
        assert r.content == raw[first : last + 1], spec
        assert int(r.headers["content-length"]) == last + 1 - first, spec
    past = c.get(f"/{rel}", headers={**ident, "range": f"bytes={n}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{n}"
    same = c.get(f"/{rel}", headers={**ident, "range": "bytes=5-9", "if-range": etag})
    assert same.status_code == 206 and same.content == raw[5:10]
    other = c.get(f"/{rel}", headers={**ident, "range": "bytes=5-9", "if-range": '"another"'})
    assert other.status_code == 200 and other.content == raw
    # HEAD answers with the headers GET would have (RFC 9110 §9.3.2), as nginx does.
    head = c.head(f"/{rel}", headers={**ident, "range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["content-length"] == "10" and head.content == b""

"""Serving a publish folder: strong ETags, 304, immutable snapshots, short max-age for
current, precompressed copies, language by Accept-Language, health after a refusal."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import brotli
from starlette.testclient import TestClient

from conftest import (
    Published,
    check_byte_ranges,
    check_not_found_pages,
    check_security_headers,
    check_station_files_served,
)
from tallyroom.web.site import PublishedSite, site_app


def client(folder: Path) -> TestClient:
    return TestClient(site_app(folder), follow_redirects=False)


def test_current_and_snapshot_files(published: Published) -> None:
    c = client(published.out)
    r = c.get("/en/index.html", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=5"
    assert r.headers["vary"] == "Accept-Encoding"
    etag = r.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert r.content == (published.current / "en/index.html").read_bytes()
    # Revalidation: 304 with no body, same ETag.
    r2 = c.get("/en/index.html", headers={"accept-encoding": "identity", "if-none-match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag
    # The same file inside its numbered snapshot is immutable.
    r3 = c.get("/snapshots/1/en/index.html", headers={"accept-encoding": "identity"})
    assert r3.status_code == 200 and r3.content == r.content
    assert r3.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r3.headers["etag"] == etag


def test_precompressed_copies(published: Published) -> None:
    c = client(published.out)
    raw = (published.current / "api/v1/results/index.json").read_bytes()
    br = c.get("/api/v1/results/index.json", headers={"accept-encoding": "gzip, br"})
    assert br.headers["content-encoding"] == "br"
    gz = c.get("/api/v1/results/index.json", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip"
    # httpx decodes both; the bytes are the published file's.
    assert br.content == gz.content == raw
    assert br.headers["etag"] != gz.headers["etag"]  # strong ETags differ per representation
    assert brotli.decompress((published.current / "api/v1/results/index.json.br").read_bytes()) == raw
    assert gzip.decompress((published.current / "api/v1/results/index.json.gz").read_bytes()) == raw
    national = c.get("/en/index.html", headers={"accept-encoding": "br"})
    assert int(national.headers["content-length"]) < 100_000  # a national page under 100 KB


def test_station_files_stored_only_as_gzip(published: Published) -> None:
    check_station_files_served(client(published.out), published)


def test_a_missing_page_gets_the_not_found_page_in_its_language(published: Published) -> None:
    check_not_found_pages(client(published.out), published)


def test_every_response_carries_the_security_headers(published: Published) -> None:
    c = client(published.out)
    check_security_headers(c, published)
    from tallyroom.web.site import SECURITY_HEADERS

    for path in ("/status", "/healthz"):  # the operator's page and the health check too
        r = c.get(path)
        assert all(r.headers.get(k.decode()) == v.decode() for k, v in SECURITY_HEADERS), path


def test_language_and_paths(published: Published) -> None:
    c = client(published.out)
    r = c.get("/", headers={"accept-language": "ru-RU,ru;q=0.9"})
    assert r.status_code == 302 and r.headers["location"] == "/ru/"
    assert r.headers["vary"] == "Accept-Language"
    assert c.get("/", headers={"accept-language": "ky"}).headers["location"] == "/ky/"
    assert c.get("/").headers["location"] == "/en/"
    assert c.get("/ru").headers["location"] == "/ru/"
    r = c.get("/ky/")
    assert r.status_code == 200 and '<html lang="ky">' in r.text
    for bad in (
        "/../kg.db",
        "/.state/1.json",
        "/snapshots/1/../../kg.db",
        "/snapshots/x/a",
        "/en/nope.html",
        "/refusals/",
        "/snapshots/1/.hidden",
    ):
        assert c.get(bad).status_code == 404, bad
    assert c.post("/en/index.html").status_code == 405
    assert c.head("/en/index.html").content == b""
    pointer = c.get("/current.json")
    assert pointer.json()["snapshot"] == 1 and pointer.headers["cache-control"] == "no-cache"
    big = c.get("/data/csv/stations/chui.csv", headers={"accept-encoding": "identity"})
    assert big.status_code == 200 and big.text.startswith("level,contest,count_kind")


def test_health_and_status_follow_the_gate(published: Published, tmp_path: Path) -> None:
    c = client(published.out)
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    folder = tmp_path / "pub"
    shutil.copytree(published.out, folder, symlinks=True)
    status = json.loads((folder / "status.json").read_bytes())
    status["healthy"] = False
    status["last_attempt"] = {
        "status": "refused",
        "failures": [
            {"check": "shares-le-100", "where": "party-list / kg / machine", "message": "shares exceed 100%"}
        ],
    }
    (folder / "status.json").write_text(json.dumps(status))
    c2 = client(folder)
    assert c2.get("/healthz").status_code == 503
    page = c2.get("/status")
    assert page.status_code == 503 and "shares-le-100" in page.text and "REFUSED" in page.text
    assert c2.get("/en/index.html").status_code == 200  # the previous snapshot stays live


def test_nothing_published_yet(tmp_path: Path) -> None:
    c = TestClient(PublishedSite(tmp_path))
    assert c.get("/en/index.html").status_code == 503


def _asgi(app: Any, method: str, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight to the ASGI app: status, headers and every body byte it sent
    (an HTTP client may drop a HEAD response's body before a test could see it)."""
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def test_head_answers_carry_no_body(published: Published, tmp_path: Path) -> None:
    """A HEAD request gets the headers a GET would, with the same Content-Length, and no body:
    for a page, a 404 page, the JSON API's plain 404 and the 503 before any snapshot."""
    app = site_app(published.out)
    empty = PublishedSite(tmp_path)
    for where, path, status in (
        (app, "/en/index.html", 200),
        (app, "/en/nope.html", 404),
        (app, "/api/v1/results/nope.json", 404),
        (empty, "/en/index.html", 503),
    ):
        got_status, got_headers, got_body = _asgi(where, "GET", path)
        head_status, head_headers, head_body = _asgi(where, "HEAD", path)
        assert got_status == head_status == status, path
        assert got_body and int(got_headers[b"content-length"]) == len(got_body), path
        assert head_body == b"", (path, head_body[:40])
        assert head_headers[b"content-length"] == got_headers[b"content-length"], path


def test_downloads_say_what_each_file_holds(published: Published) -> None:
    """Each file on the downloads page is described by what it holds: a region's station CSV
    as station protocols, not as the results of a level."""
    downloads = json.loads((published.current / "api/v1/downloads.json").read_bytes())["downloads"]
    what = {d["path"]: d["what"] for d in downloads}
    station_csv = [p for p in what if p.startswith("data/csv/stations/")]
    level_csv = [p for p in what if p.startswith("data/csv/") and p not in station_csv]
    assert station_csv and level_csv
    assert {what[p] for p in station_csv} == {"stations-csv"} and {what[p] for p in level_csv} == {"csv"}
    page = (published.current / "ru/downloads.html").read_text(encoding="utf-8")
    row = page[page.index(f'<a href="../{station_csv[0]}">') :]
    assert row[: row.index("</tr>")].count("протоколы участков одного региона (CSV)") == 1


def test_a_download_goes_on_from_where_it_stopped(published: Published) -> None:
    check_byte_ranges(client(published.out), published)


def test_ranges_the_app_ignores_get_the_whole_file(published: Published) -> None:
    c = client(published.out)
    raw = (published.current / "data/tallyroom.sqlite").read_bytes()
    # (nginx answers these but the third with 416, and the second with multipart/byteranges.)
    ignored = ("bytes=9-5", "bytes=0-9,20-29", "items=0-9", "bytes=a-b", "bytes=-", "bytes=+1-5")
    for spec in ignored:
        r = c.get("/data/tallyroom.sqlite", headers={"accept-encoding": "identity", "range": spec})
        assert r.status_code == 200 and r.content == raw, spec
        assert "content-range" not in r.headers, spec
    # A range of a compressed copy is a range of the bytes sent, under that copy's own tag.
    gz = (published.current / "api/v1/results/index.json.gz").read_bytes()
    r = c.get("/api/v1/results/index.json", headers={"accept-encoding": "gzip", "range": "bytes=0-9"})
    assert r.status_code == 206 and r.headers["content-encoding"] == "gzip"
    assert r.headers["content-range"] == f"bytes 0-9/{len(gz)}"
    # A revalidation that matches is a 304 whatever range is asked.
    etag = c.get("/data/tallyroom.sqlite", headers={"accept-encoding": "identity"}).headers["etag"]
    both = {"accept-encoding": "identity", "range": "bytes=0-9", "if-none-match": etag}
    r = c.get("/data/tallyroom.sqlite", headers=both)
    assert r.status_code == 304


def test_a_range_of_a_file_too_large_to_keep_in_memory(tmp_path: Path) -> None:
    """Files above CACHE_MAX_FILE are streamed from disk in CHUNK blocks: a range is read
    from its first byte and stops at its last, across block boundaries."""
    from tallyroom.web.site import CACHE_MAX_FILE, CHUNK

    snap = tmp_path / "pub" / "snapshots" / "1" / "data"
    snap.mkdir(parents=True)
    raw = bytes(range(256)) * ((CACHE_MAX_FILE + 3 * CHUNK) // 256 + 7)
    (snap / "big.sqlite").write_bytes(raw)
    (tmp_path / "pub" / "current").symlink_to("snapshots/1")
    c = client(tmp_path / "pub")
    n = len(raw)
    for first, last in ((0, 0), (CHUNK - 1, CHUNK), (5, 2 * CHUNK + 17), (n - CHUNK - 3, n - 1), (0, n - 1)):
        r = c.get("/data/big.sqlite", headers={"range": f"bytes={first}-{last}"})
        assert r.status_code == 206 and r.content == raw[first : last + 1], (first, last)
    assert c.get("/snapshots/1/data/big.sqlite", headers={"range": "bytes=-3"}).content == raw[-3:]
    assert c.get("/data/big.sqlite").content == raw

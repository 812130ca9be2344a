"""deploy/nginx.conf serves a real snapshot the way the app does (real nginx on loopback)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from nginx_support import BROTLI_MODULE, config_for, nginx_binary, running_nginx

from conftest import (
    Published,
    check_byte_ranges,
    check_not_found_pages,
    check_security_headers,
    check_station_files_served,
)

pytestmark = pytest.mark.skipif(
    nginx_binary() is None,
    reason="nginx is not installed (apt-get install nginx; see deploy/apt-packages.txt)",
)


def test_config_is_valid(tmp_path: Path, published: Published) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(config_for(published.out, tmp_path, 8080))
    done = subprocess.run(
        [str(nginx_binary()), "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_nginx_serves_the_snapshot(tmp_path: Path, published: Published) -> None:
    with running_nginx(published.out, tmp_path / "nginx") as base, httpx.Client(base_url=base) as c:
        r = c.get("/en/index.html", headers={"accept-encoding": "identity"})
        assert r.status_code == 200, r.text
        assert r.content == (published.current / "en/index.html").read_bytes()
        assert r.headers["cache-control"] == "public, max-age=5"
        etag = r.headers["etag"]
        assert not etag.startswith("W/")
        r304 = c.get("/en/index.html", headers={"accept-encoding": "identity", "if-none-match": etag})
        assert r304.status_code == 304
        snap = c.get("/snapshots/1/en/index.html", headers={"accept-encoding": "identity"})
        assert snap.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert snap.content == r.content
        gz = c.get("/api/v1/results/index.json", headers={"accept-encoding": "gzip"})
        assert gz.headers.get("content-encoding") == "gzip"
        assert gz.content == (published.current / "api/v1/results/index.json").read_bytes()
        if BROTLI_MODULE.exists():
            br = c.get("/api/v1/results/index.json", headers={"accept-encoding": "br"})
            assert br.headers.get("content-encoding") == "br"
        assert c.get("/en/").status_code == 200
        root = c.get("/", headers={"accept-language": "ru-RU,ru;q=0.9"}, follow_redirects=False)
        assert root.status_code == 302 and root.headers["location"].endswith("/ru/")
        assert c.get("/current.json").json()["snapshot"] == 1
        for bad in ("/.state/1.json", "/snapshots/1/.x", "/refusals/a.json", "/en/none.html"):
            assert c.get(bad).status_code == 404, bad


def test_nginx_serves_station_files_stored_only_as_gzip(tmp_path: Path, published: Published) -> None:
    with running_nginx(published.out, tmp_path / "nginx") as base, httpx.Client(base_url=base) as c:
        check_station_files_served(c, published)


def test_nginx_sends_the_security_headers_of_the_app(tmp_path: Path, published: Published) -> None:
    with running_nginx(published.out, tmp_path / "nginx") as base, httpx.Client(base_url=base) as c:
        check_security_headers(c, published)


def test_nginx_sends_the_not_found_page_of_the_app(tmp_path: Path, published: Published) -> None:
    with running_nginx(published.out, tmp_path / "nginx") as base, httpx.Client(base_url=base) as c:
        check_not_found_pages(c, published)


def test_nginx_serves_byte_ranges_as_the_app_does(tmp_path: Path, published: Published) -> None:
    with running_nginx(published.out, tmp_path / "nginx") as base, httpx.Client(base_url=base) as c:
        check_byte_ranges(c, published)

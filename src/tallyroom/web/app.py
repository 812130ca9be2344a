"""The intake ASGI app (Starlette): station API, staff API, public reads, OpenAPI.

``create_app(config)`` for tests and embedding; ``app_from_env()`` is the factory the
server workers import (``tallyroom serve`` passes the store and key through the
environment). With ``TALLYROOM_PUBLISH_DIR`` set (``tallyroom serve --publish-dir DIR``) the
published site is served beside the API by :class:`WithSite`: the intake and staff API under
``/api/…``, everything else — pages, open data and the snapshot JSON under
``/api/v1/results/…`` and ``/api/v1/{changes,snapshots,downloads}.json`` — from the publish
folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tallyroom.intake.errors import Rejection, clip
from tallyroom.web import admin_api, intake_api, public_api
from tallyroom.web.openapi import document
from tallyroom.web.openapi_results import SITE_API_FILES
from tallyroom.web.responses import error_response, json_response
from tallyroom.web.state import IntakeState, ServerConfig

log = logging.getLogger("tallyroom.web")


async def openapi(request: Request) -> Response:
    return json_response(document())


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    reason = {404: "not-found", 405: "method-not-allowed"}.get(status, "http-error")
    message = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(
        status, "request failed"
    )
    return error_response(Rejection(status, reason, message, None))


async def _crash(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (no request headers or bodies, so no secrets); the
    # client learns only that it was not its fault.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(Rejection(500, "internal", "internal error; nothing was recorded", None))


#: Query parameters each endpoint takes; any other (or a repeated one) is a 400, so a typo
#: such as ?stauts=held is reported instead of silently ignored.
_QUERY: dict[str, frozenset[str]] = {
    "/api/v1/admin/journal": frozenset({"station", "limit", "after"}),
    "/api/v1/admin/conflicts": frozenset({"status"}),
    "/api/v1/admin/proposals": frozenset({"status"}),
    "/api/v1/admin/keys": frozenset({"station", "status"}),
}
_PROOF = "/api/v1/ledger/proof/"


class StrictQuery:
    """ASGI middleware: refuse unknown or repeated query parameters with a JSON 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            path = scope["path"]
            allowed = frozenset({"size"}) if path.startswith(_PROOF) else _QUERY.get(path, frozenset())
            names = [k for k, _ in parse_qsl(scope["query_string"].decode("latin-1"),
                                             keep_blank_values=True)]
            bad = next((n for n in names if n not in allowed or names.count(n) > 1), None)
            if bad is not None:
                what = "repeated" if bad in allowed else "unknown"
                rej = Rejection(400, "unknown-parameter",
                                f'{what} query parameter "{clip(bad)}"', clip(bad))
                await error_response(rej)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def routes() -> list[Route]:
    p = "/api/v1"
    return [
        Route(f"{p}/protocols", intake_api.submit_protocol, methods=["POST"]),
        Route(f"{p}/protocols/{{station}}/{{contest}}/{{count_kind}}/image", intake_api.put_image,
              methods=["PUT"]),
        Route(f"{p}/protocols/{{station}}/{{contest}}/{{count_kind}}/image", intake_api.get_image,
              methods=["GET"]),
        Route(f"{p}/receipts/{{ledger_index}}", public_api.receipt, methods=["GET"]),
        Route(f"{p}/ledger/checkpoint", public_api.checkpoint, methods=["GET"]),
        Route(f"{p}/ledger/proof/{{ledger_index}}", public_api.proof, methods=["GET"]),
        Route(f"{p}/intake/stations", public_api.station_summaries, methods=["GET"]),
        Route(f"{p}/intake/stations/{{station}}", public_api.station_summary, methods=["GET"]),
        Route(f"{p}/health", public_api.health, methods=["GET"]),
        Route(f"{p}/echo", public_api.echo, methods=["POST"]),
        Route(f"{p}/admin/whoami", admin_api.whoami, methods=["GET"]),
        Route(f"{p}/admin/journal", admin_api.journal, methods=["GET"]),
        Route(f"{p}/admin/conflicts", admin_api.conflicts, methods=["GET"]),
        Route(f"{p}/admin/proposals", admin_api.list_proposals, methods=["GET"]),
        Route(f"{p}/admin/proposals", admin_api.create_proposal, methods=["POST"]),
        Route(f"{p}/admin/proposals/{{id}}", admin_api.get_proposal, methods=["GET"]),
        Route(f"{p}/admin/proposals/{{id}}/approve", admin_api.approve, methods=["POST"]),
        Route(f"{p}/admin/proposals/{{id}}/reject", admin_api.reject, methods=["POST"]),
        Route(f"{p}/admin/keys", admin_api.list_keys, methods=["GET"]),
        Route(f"{p}/admin/keys", admin_api.register_key, methods=["POST"]),
        Route(f"{p}/admin/keys/{{key_id}}/revoke", admin_api.revoke_key, methods=["POST"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
    ]


def create_app(config: ServerConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = IntakeState(config)
        app.state.intake = state
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        middleware=[Middleware(StrictQuery)],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )


#: The hot path: station submissions.
SUBMIT_PATH = "/api/v1/protocols"


class FastIntake:
    """ASGI: ``POST /api/v1/protocols`` without a query string goes straight to the handler;
    everything else (and lifespan) to the Starlette app.

    The hot path skips Starlette's middleware stack, routing and request object, which cost
    about as much as the rest of the HTTP handling of a submission (measured with
    benchmarks/bench_intake.py, see docs/decisions/0006). The answers are the same Response
    objects the routed handler returns, and an unexpected error is the same JSON 500. A
    query string (always a 400 here) or another method takes the ordinary route.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != SUBMIT_PATH
            or scope["method"] != "POST"
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        key = sig = length = None
        for name, value in scope["headers"]:
            if name == b"x-tallyroom-key-id":
                key = key if key is not None else value.decode("latin-1")
            elif name == b"x-tallyroom-signature":
                sig = sig if sig is not None else value.decode("latin-1")
            elif name == b"content-length":
                length = length if length is not None else value.decode("latin-1")
        try:
            response = await intake_api.submit(self.app.state.intake, key, sig, length, receive)
        except Exception:
            log.exception("unexpected error on POST %s", SUBMIT_PATH)
            response = error_response(
                Rejection(500, "internal", "internal error; nothing was recorded", None)
            )
        await response(scope, receive, send)


#: Paths under /api/ that belong to the published site (snapshot JSON), not to intake.
SITE_API_PREFIX = "/api/v1/results/"
#: ... and the data of the machine-vs-hand reconciliation pages (docs/bulletin.md §14.3).
SITE_API_RECONCILE = "/api/v1/reconcile/"


class WithSite:
    """ASGI: the intake app for ``/api/…`` (and lifespan), the published site for the rest.

    The site is mounted at ``/``; the API keeps its own JSON errors (a wrong method on an API
    path is still a JSON 405, never the site's 404).
    """

    def __init__(self, api: ASGIApp, site: ASGIApp) -> None:
        self.api = api
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if (
                not path.startswith("/api/")
                or path.startswith((SITE_API_PREFIX, SITE_API_RECONCILE))
                or path in SITE_API_FILES
            ):
                await self.site(scope, receive, send)
                return
        await self.api(scope, receive, send)


def create_app_with_site(config: ServerConfig, publish_dir: str | None) -> ASGIApp:
    """The intake app, with the site of ``publish_dir`` at ``/`` when one is given."""
    api = FastIntake(create_app(config))
    if not publish_dir:
        return api
    from tallyroom.web.site import PublishedSite

    return WithSite(api, PublishedSite(publish_dir))


def app_from_env() -> ASGIApp:
    return create_app_with_site(ServerConfig.from_env(), os.environ.get("TALLYROOM_PUBLISH_DIR"))

"""JSON responses: msgspec-encoded, with the error shape every endpoint shares."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

from tallyroom.intake.errors import Rejection

_encoder = msgspec.json.Encoder()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(data), status, headers, media_type="application/json")


def raw_json(content: bytes, status: int = 200) -> Response:
    return Response(content, status, media_type="application/json")


def error_response(rej: Rejection) -> Response:
    headers = {"Connection": "close"} if rej.status == 413 else None
    if rej.status == 401 and rej.field == "Authorization":
        headers = {"WWW-Authenticate": "Bearer"}
    return json_response(rej.body(), rej.status, headers)

"""The commission staff API (`/api/v1/admin/…`): bearer tokens, roles, the two-person rule."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tallyroom.intake import corrections, keys
from tallyroom.intake.corrections import Person, require
from tallyroom.intake.errors import Rejection, clip
from tallyroom.intake.signature import decode_public_key
from tallyroom.intake.strict import parse_json
from tallyroom.intake.tokens import GRANTS, Permission, Role, token_hash
from tallyroom.store import intake as db
from tallyroom.web.body import ClientGone, read_body
from tallyroom.web.responses import error_response, json_response
from tallyroom.web.state import IntakeState

MAX_ADMIN_BODY = 256 * 1024


def _state(request: Request) -> IntakeState:
    state: IntakeState = request.app.state.intake
    return state


async def authorize(request: Request, permission: Permission) -> Person:
    """The person behind the request's bearer token, if their role grants ``permission``."""
    person = await _anyone(request)
    require(person, permission)
    return person


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_ADMIN_BODY)
    if not raw.strip():
        return {}
    obj = parse_json(raw)
    if not isinstance(obj, dict):
        raise Rejection(400, "wrong-type", "body must be a JSON object", "body")
    return obj


def _str_field(obj: dict[str, Any], name: str, required: bool = False) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise Rejection(422, "missing-field", f'"{name}" is required', name)
        return None
    if not isinstance(value, str):
        raise Rejection(400, "wrong-type", f'"{name}" must be a string', name)
    return value


def _int_param(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 15:
        raise Rejection(404, "not-found", f'{name} "{clip(value)}" is not a number', name)
    return int(value)


def _query_int(request: Request, name: str, default: int, top: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or len(value) > 15:
        raise Rejection(400, "wrong-type", f"query parameter {name} must be a whole number", name)
    return min(int(value), top)


def _status_param(request: Request, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get("status")
    if value is not None and value not in allowed:
        raise Rejection(400, "wrong-value", f"status must be one of {', '.join(allowed)}", "status")
    return value


async def _guard(request: Request, handler: Any) -> Response:
    try:
        result: Response = await handler(request)
        return result
    except ClientGone:
        return Response(status_code=400)
    except Rejection as rej:
        return error_response(rej)


# -- handlers ------------------------------------------------------------------------------


async def whoami(request: Request) -> Response:
    async def run(r: Request) -> Response:
        p = await _anyone(r)
        return json_response(
            {"name": p.name, "role": p.role,
             "permissions": sorted(x.value for x in GRANTS[Role(p.role)])}
        )

    return await _guard(request, run)


async def _anyone(request: Request) -> Person:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Rejection(401, "no-token", "an Authorization: Bearer <token> header is required",
                        "Authorization")
    row = await _state(request).reader.run(db.find_token, token_hash(token.strip()))
    if row is None:
        raise Rejection(401, "bad-token", "the token is unknown or revoked", "Authorization")
    return Person(row.name, row.role)


async def journal(request: Request) -> Response:
    async def run(r: Request) -> Response:
        await authorize(r, Permission.READ)
        lines = await _state(r).reader.run(
            db.journal_lines, r.query_params.get("station"),
            _query_int(r, "limit", 100, 1000), _query_int(r, "after", 0, 2**53),
        )
        return json_response({"lines": lines})

    return await _guard(request, run)


async def conflicts(request: Request) -> Response:
    async def run(r: Request) -> Response:
        await authorize(r, Permission.READ)
        status = _status_param(r, ("held", "accepted", "dismissed"))
        rows = await _state(r).reader.run(db.list_conflicts, status)
        return json_response({"conflicts": [c.to_dict() for c in rows]})

    return await _guard(request, run)


async def list_proposals(request: Request) -> Response:
    async def run(r: Request) -> Response:
        await authorize(r, Permission.READ)
        status = _status_param(r, ("proposed", "approved", "rejected"))
        rows = await _state(r).reader.run(db.list_proposals, status)
        return json_response({"proposals": [p.to_dict() for p in rows]})

    return await _guard(request, run)


async def get_proposal(request: Request) -> Response:
    async def run(r: Request) -> Response:
        await authorize(r, Permission.READ)
        pid = _int_param(str(r.path_params["id"]), "id")
        row = await _state(r).reader.run(db.get_proposal, pid)
        if row is None:
            raise Rejection(404, "unknown-proposal", f"no proposal {pid}", "id")
        return json_response(row.to_dict())

    return await _guard(request, run)


async def create_proposal(request: Request) -> Response:
    async def run(r: Request) -> Response:
        person = await authorize(r, Permission.PROPOSE)
        obj = await _json_body(r)
        conflict = obj.get("conflict_id")
        if conflict is not None and (type(conflict) is not int or not 0 <= conflict < 2**53):
            raise Rejection(400, "wrong-type", '"conflict_id" must be a whole number', "conflict_id")
        action = _str_field(obj, "action", True)
        reason = _str_field(obj, "reason", True)
        body = obj.get("body")
        if body is not None and not isinstance(body, dict):
            raise Rejection(400, "wrong-type", '"body" must be a protocol object', "body")
        unknown = set(obj) - {"action", "reason", "station", "contest", "count_kind", "body",
                              "conflict_id"}
        if unknown:
            name = clip(sorted(unknown)[0])
            raise Rejection(400, "unknown-field", f'unknown field "{name}"', name)
        row = await _state(r).reader.run(
            lambda store: corrections.propose(
                store, person, str(action), str(reason), _str_field(obj, "station"),
                _str_field(obj, "contest"), _str_field(obj, "count_kind"), body, conflict,
            )
        )
        return json_response(row.to_dict(), 201)

    return await _guard(request, run)


def _decision(approve: bool) -> Any:
    async def handler(request: Request) -> Response:
        async def run(r: Request) -> Response:
            person = await _anyone(r)
            pid = _int_param(str(r.path_params["id"]), "id")
            obj = await _json_body(r)
            note = _str_field(obj, "note") or ""
            row = await _state(r).reader.run(
                lambda store: corrections.decide(store, person, pid, approve, note)
            )
            return json_response(row.to_dict())

        return await _guard(request, run)

    return handler


approve = _decision(True)
reject = _decision(False)


async def list_keys(request: Request) -> Response:
    async def run(r: Request) -> Response:
        await authorize(r, Permission.READ)
        status = _status_param(r, ("active", "revoked"))
        rows = await _state(r).reader.run(db.list_keys, r.query_params.get("station"), status)
        return json_response({"keys": [_key_dict(k) for k in rows]})

    return await _guard(request, run)


def _key_dict(k: db.KeyRow) -> dict[str, Any]:
    import base64

    return {
        "key_id": k.key_id, "station": k.station,
        "public_key": base64.b64encode(k.public_key).decode(), "status": k.status,
        "created_at": k.created_at, "revoked_at": k.revoked_at,
        "registered_index": k.registered_index, "revoked_index": k.revoked_index,
    }


async def register_key(request: Request) -> Response:
    async def run(r: Request) -> Response:
        person = await authorize(r, Permission.MANAGE)
        obj = await _json_body(r)
        station = _str_field(obj, "station", True)
        try:
            public = decode_public_key(_str_field(obj, "public_key", True) or "")
        except ValueError as exc:
            raise Rejection(422, "wrong-value", str(exc), "public_key") from None
        state = _state(r)
        kid, idx = await state.reader.run(keys.register_public, str(station), public, person.name)
        state.keys.forget(kid)
        return json_response({"key_id": kid, "station": station, "ledger_index": idx}, 201)

    return await _guard(request, run)


async def revoke_key(request: Request) -> Response:
    async def run(r: Request) -> Response:
        person = await authorize(r, Permission.MANAGE)
        kid = str(r.path_params["key_id"])
        obj = await _json_body(r)
        reason = _str_field(obj, "reason")
        state = _state(r)
        idx = await state.reader.run(keys.revoke, kid, person.name, reason)
        state.keys.mark_revoked(kid)
        return json_response({"key_id": kid, "status": "revoked", "ledger_index": idx})

    return await _guard(request, run)

"""The station API: protocol submission and paper protocol images."""

from __future__ import annotations

import base64
import hashlib

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from tallyroom.intake.errors import Rejection, clip
from tallyroom.intake.images import MAX_IMAGE_BYTES, sniff
from tallyroom.intake.journal import JournalLine, Outcome
from tallyroom.intake.signature import KEY_ID_HEADER, SIGNATURE_HEADER
from tallyroom.intake.submission import RegisteredKey, authenticate, check_body, signature_headers
from tallyroom.intake.tokens import Permission
from tallyroom.store import intake as db
from tallyroom.store.sql import utcnow
from tallyroom.web.body import ClientGone, read_asgi_body, read_body
from tallyroom.web.commit import journal_job, submission_job
from tallyroom.web.responses import error_response, json_response
from tallyroom.web.state import IntakeState


class _StationOnly(msgspec.Struct):
    station: str = ""


_station_only = msgspec.json.Decoder(_StationOnly)


def _state(request: Request) -> IntakeState:
    state: IntakeState = request.app.state.intake
    return state


def _claimed_station(state: IntakeState, key: RegisteredKey | None, raw: bytes | None) -> str | None:
    """The station to file a refused attempt under: the key's, else a known one the body names."""
    if key is not None:
        return key.station
    if raw:
        try:
            station = _station_only.decode(raw).station
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            return None
        if station in state.election.station_index:
            return station
    return None


async def submit_protocol(request: Request) -> Response:
    h = request.headers
    return await submit(
        _state(request), h.get(KEY_ID_HEADER), h.get(SIGNATURE_HEADER), h.get("content-length"),
        request.receive,
    )


async def submit(
    state: IntakeState,
    key_hdr: str | None,
    sig_hdr: str | None,
    content_length: str | None,
    receive: Receive,
) -> Response:
    """``POST /api/v1/protocols`` from its headers and the raw ASGI ``receive`` (so the
    server's fast path, :class:`tallyroom.web.app.FastIntake`, can call it without building
    a Starlette request)."""
    received_at = utcnow()
    raw: bytes | None = None
    key: RegisteredKey | None = None
    try:
        raw = await read_asgi_body(content_length, receive, state.config.max_body)
        key_id, signature = signature_headers(key_hdr, sig_hdr)
        key = await state.keys.get(key_id)
        key = authenticate(key, key_id, signature, raw)
        envelope = {
            "key_id": key_id,
            "signature": base64.b64encode(signature).decode(),
            "received_at": received_at,
        }
        checked = check_body(state.election, key, raw, envelope)
    except ClientGone:
        return Response(status_code=400)
    except Rejection as rej:
        line = JournalLine(
            received_at,
            _claimed_station(state, key, raw),
            clip(key_hdr, 64) if key_hdr else None,
            Outcome.REJECTED,
            rej.reason,
            rej.status,
            rej.message,
            None,
            hashlib.sha256(raw).hexdigest() if raw is not None else None,
        )
        await state.committer.submit(journal_job(line))
        return error_response(rej)
    answer = await state.committer.submit(submission_job(received_at, checked))
    return Response(answer.body, answer.status, media_type="application/json")


def _protocol_key(request: Request, state: IntakeState) -> tuple[str, str, str]:
    p = request.path_params
    station, contest, kind = str(p["station"]), str(p["contest"]), str(p["count_kind"])
    if station not in state.election.station_index:
        raise Rejection(404, "unknown-station", f'unknown station "{clip(station)}"', "station")
    if contest not in state.election.contest_index:
        raise Rejection(404, "unknown-contest", f'unknown contest "{clip(contest)}"', "contest")
    if kind not in ("machine", "hand", "recount"):
        raise Rejection(404, "unknown-count-kind", f'unknown count kind "{clip(kind)}"', "count_kind")
    return station, contest, kind


class _ImageRef(msgspec.Struct):
    image_sha256: str | None = None


_image_ref = msgspec.json.Decoder(_ImageRef)


def _declared(bodies: list[bytes]) -> set[str]:
    out: set[str] = set()
    for b in bodies:
        try:
            ref = _image_ref.decode(b).image_sha256
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if ref:
            out.add(ref)
    return out


async def put_image(request: Request) -> Response:
    from tallyroom.web.admin_api import authorize

    state = _state(request)
    try:
        station, contest, kind = _protocol_key(request, state)
        data = await read_body(request, MAX_IMAGE_BYTES)
        uploader: str
        if request.headers.get(KEY_ID_HEADER) or not request.headers.get("authorization"):
            key_id, signature = signature_headers(
                request.headers.get(KEY_ID_HEADER), request.headers.get(SIGNATURE_HEADER)
            )
            key = authenticate(await state.keys.get(key_id), key_id, signature, data)
            if key.station != station:
                raise Rejection(
                    403, "wrong-station",
                    f'key "{key.key_id}" is registered for station {key.station}, not {station}',
                    "station",
                )
            uploader = key.key_id
        else:
            person = await authorize(request, Permission.PROPOSE)
            uploader = person.name
        media_type = sniff(data)
        if media_type is None:
            raise Rejection(
                415, "image-type", "the image must be a JPEG, PNG or PDF (checked by content)",
                "body",
            )
        sha = hashlib.sha256(data).hexdigest()
        declared = _declared(await state.reader.run(db.bodies_for, station, contest, kind))
        if not declared:
            raise Rejection(
                404, "no-protocol",
                f"no protocol for station {station}, {contest}, {kind} declares an image",
                "station",
            )
        if sha not in declared:
            raise Rejection(
                422, "image-hash",
                f"the image's SHA-256 {sha} is not the image_sha256 any protocol for this "
                "station declared",
                "body",
                extra={"sha256": sha},
            )
        fresh = await state.reader.run(
            db.put_image, sha, media_type, data, station, contest, kind, uploader
        )
    except ClientGone:
        return Response(status_code=400)
    except Rejection as rej:
        return error_response(rej)
    return json_response(
        {"sha256": sha, "media_type": media_type, "size": len(data), "stored": fresh},
        201 if fresh else 200,
    )


async def get_image(request: Request) -> Response:
    state = _state(request)
    try:
        station, contest, kind = _protocol_key(request, state)
        current = await state.reader.run(db.in_force, station, contest, kind)
        if current is None:
            raise Rejection(404, "no-protocol", "no protocol is in force for this station", "station")
        data = await state.reader.run(db.entry_data, current.entry_idx)
        ref = _declared([data.split(b"\n", 2)[-1]]) if data else set()
        image = await state.reader.run(db.get_image, next(iter(ref))) if ref else None
        if image is None:
            raise Rejection(404, "no-image", "no image has been uploaded for this protocol", "station")
    except Rejection as rej:
        return error_response(rej)
    return Response(image[1], 200, media_type=image[0])

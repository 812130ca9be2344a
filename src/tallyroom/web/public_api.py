"""Public read endpoints: receipts, checkpoints, inclusion proofs, intake per station."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from tallyroom.intake.errors import Rejection, clip
from tallyroom.intake.journal import summarise
from tallyroom.ledger.merkle import inclusion_proof, tree_root
from tallyroom.store import intake as db
from tallyroom.store.sql import Store
from tallyroom.web.body import ClientGone, read_body
from tallyroom.web.responses import error_response, json_response, raw_json
from tallyroom.web.state import IntakeState

MAX_ECHO_BYTES = 64 * 1024


def _state(request: Request) -> IntakeState:
    state: IntakeState = request.app.state.intake
    return state


def _index(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 15:
        raise Rejection(404, "not-found", f'{name} "{clip(value)}" is not a ledger index', name)
    return int(value)


async def health(request: Request) -> Response:
    state = _state(request)
    head = await state.reader.run(Store.head)
    return json_response(
        {"status": "ok", "election": state.election.sha256, "origin": state.origin,
         "ledger_size": head.size}
    )


async def receipt(request: Request) -> Response:
    try:
        idx = _index(str(request.path_params["ledger_index"]), "ledger_index")
        found = await _state(request).reader.run(db.receipts_for, [idx])
        if idx not in found:
            raise Rejection(404, "no-receipt", f"no receipt was issued for ledger index {idx}",
                            "ledger_index")
    except Rejection as rej:
        return error_response(rej)
    return raw_json(found[idx].encode())


async def checkpoint(request: Request) -> Response:
    latest = await _state(request).reader.run(db.latest_checkpoint)
    if latest is None:
        return error_response(Rejection(404, "no-checkpoint", "no checkpoint has been signed yet"))
    size, root, ts, note = latest
    return json_response({"size": size, "root": root.hex(), "time": ts, "note": note.decode()})


def _proof(store: Store, idx: int, size: int | None) -> dict[str, object]:
    head = store.head()
    if size is None:
        latest = db.latest_checkpoint(store)
        size = latest[0] if latest is not None else head.size
    if size > head.size:
        raise Rejection(404, "no-such-size", f"the ledger has only {head.size} entries", "size")
    if idx >= size:
        raise Rejection(
            404, "not-in-tree", f"ledger index {idx} is not in the tree of size {size}",
            "ledger_index",
        )
    note = db.checkpoint_at(store, size)
    return {
        "ledger_index": idx,
        "size": size,
        "root": tree_root(size, store).hex(),
        "leaf_hash": store.node(0, idx).hex(),
        "proof": [h.hex() for h in inclusion_proof(idx, size, store)],
        "checkpoint": None if note is None else note.decode(),
    }


async def proof(request: Request) -> Response:
    try:
        idx = _index(str(request.path_params["ledger_index"]), "ledger_index")
        size_param = request.query_params.get("size")
        if size_param is not None and (not size_param.isdigit() or len(size_param) > 15):
            raise Rejection(400, "wrong-type", "query parameter size must be a whole number",
                            "size")
        size = None if size_param is None else int(size_param)
        out = await _state(request).reader.run(_proof, idx, size)
    except Rejection as rej:
        return error_response(rej)
    return json_response(out)


async def station_summaries(request: Request) -> Response:
    rows = await _state(request).reader.run(db.journal_counts, None)
    return json_response({"stations": [s.to_dict() for s in summarise(rows)]})


async def station_summary(request: Request) -> Response:
    state = _state(request)
    station = str(request.path_params["station"])
    if station not in state.election.station_index:
        return error_response(
            Rejection(404, "unknown-station", f'unknown station "{clip(station)}"', "station")
        )
    rows = await state.reader.run(db.journal_counts, station)
    found = summarise(rows)
    if found:
        return json_response(found[0].to_dict())
    return json_response({"station": station, "accepted": 0, "duplicate": 0, "conflict": 0,
                          "rejected": 0, "reasons": {}})


async def echo(request: Request) -> Response:
    """A bare JSON echo: the baseline the intake benchmark compares against."""
    try:
        raw = await read_body(request, MAX_ECHO_BYTES)
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise Rejection(400, "malformed-json", "body is not JSON", "body") from None
    except ClientGone:
        return Response(status_code=400)
    except Rejection as rej:
        return error_response(rej)
    return raw_json(raw)

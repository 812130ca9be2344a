"""The OpenAPI 3.1 document of the intake, admin and results API, served at /api/openapi.json.

Written by hand next to the handlers and kept true by tests/intake/test_intake_openapi.py and
tests/publish/test_publish_openapi.py, which run schemathesis against a live server and check
every response against it. The results API (the snapshot's JSON files) is in
:mod:`.openapi_results`.
"""

from __future__ import annotations

from typing import Any

from tallyroom.intake.images import MAX_IMAGE_BYTES
from tallyroom.web.body import MAX_PROTOCOL_BYTES
from tallyroom.web.openapi_results import RESULTS_PATHS, RESULTS_SCHEMAS

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Malformed request: bad JSON, wrong types, unknown fields (field named).",
        401: "Missing, malformed or forged signature or token; unknown key id.",
        403: "Key revoked or not for this station, election hash mismatch, or role not allowed.",
        404: "No such resource.",
        409: "Conflicts with the state: different protocol already counted, replay, decided.",
        413: "Body larger than the documented limit (checked before it is read whole).",
        415: "Image is not a JPEG, PNG or PDF by its content.",
        422: "Well-formed but wrong: unknown station or contest, lines or control rules fail.",
        503: "The store could not commit; nothing was recorded; retry.",
    }
    return {str(c): _json(_ref("Error"), words[c]) for c in codes}


_STATION = {"name": "station", "in": "path", "required": True, "schema": {"type": "string"}}
_CONTEST = {"name": "contest", "in": "path", "required": True, "schema": {"type": "string"}}
_KIND = {
    "name": "count_kind", "in": "path", "required": True,
    "schema": {"type": "string", "enum": ["machine", "hand", "recount"]},
}
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "reason", "field", "rules"],
        "properties": {
            "error": {"type": "string", "description": "What is wrong, in one sentence."},
            "reason": {"type": "string", "description": "Stable slug, as counted in the journal."},
            "field": {**_NULLABLE_STR, "description": "JSON field, header or path part at fault."},
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rule"],
                    "properties": {
                        "rule": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "expr": {"type": "string"},
                        "severity": {"type": "string"},
                        "left": {"type": "integer"},
                        "right": {"type": "integer"},
                        "values": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
            },
            "existing_index": {"type": "integer"},
            "conflict_id": {"type": "integer"},
            "limit": {"type": "integer"},
            "sha256": {"type": "string"},
        },
    },
    "ProtocolBody": {
        "type": "object",
        "description": "One station's counts for one contest and count kind. Sign these exact bytes.",
        "required": ["election", "station", "contest", "count_kind", "lines"],
        "additionalProperties": False,
        "properties": {
            "election": {"type": "string", "description": "SHA-256 of the election definition."},
            "station": {"type": "string"},
            "contest": {"type": "string"},
            "count_kind": {"type": "string", "enum": ["machine", "hand", "recount"]},
            "lines": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
            },
            "sequence": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1},
            "time": {"type": ["string", "null"]},
            "image_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
        },
    },
    "Receipt": {
        "type": "object",
        "required": ["ledger_index", "leaf_hash", "entry_hash", "body_sha256", "checkpoint",
                     "key_name", "signature"],
        "properties": {
            "ledger_index": {"type": "integer"},
            "leaf_hash": {"type": "string", "description": "RFC 6962 leaf hash, hex."},
            "entry_hash": {"type": "string", "description": "SHA-256 of the entry bytes, hex."},
            "body_sha256": {"type": "string"},
            "checkpoint": {"type": "string", "description": "C2SP signed checkpoint note."},
            "key_name": {"type": "string"},
            "signature": {"type": "string", "description": "Commission Ed25519 signature, base64."},
        },
    },
    "Submitted": {
        "type": "object",
        "required": ["status", "receipt", "warnings"],
        "properties": {
            "status": {"type": "string", "enum": ["accepted", "duplicate"]},
            "receipt": _ref("Receipt"),
            "warnings": {"type": "array", "items": {"type": "object"}},
        },
    },
    "StationSummary": {
        "type": "object",
        "required": ["station", "accepted", "duplicate", "conflict", "rejected", "reasons"],
        "properties": {
            "station": {"type": "string"},
            "accepted": {"type": "integer"},
            "duplicate": {"type": "integer"},
            "conflict": {"type": "integer"},
            "rejected": {"type": "integer"},
            "reasons": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    },
    "Proposal": {
        "type": "object",
        "required": ["id", "action", "station", "contest", "count_kind", "target_index", "status",
                     "proposed_by"],
        "properties": {
            "id": {"type": "integer"},
            "action": {"type": "string"},
            "station": {"type": "string"},
            "contest": {"type": "string"},
            "count_kind": {"type": "string"},
            "target_index": {"type": "integer"},
            "conflict_id": _NULLABLE_INT,
            "body": _NULLABLE_STR,
            "body_sha256": _NULLABLE_STR,
            "reason": {"type": "string"},
            "proposed_by": {"type": "string"},
            "proposed_at": {"type": "string"},
            "status": {"type": "string", "enum": ["proposed", "approved", "rejected"]},
            "decided_by": _NULLABLE_STR,
            "decided_at": _NULLABLE_STR,
            "decision_note": _NULLABLE_STR,
            "ledger_index": _NULLABLE_INT,
        },
    },
    "NewProposal": {
        "type": "object",
        "required": ["action", "reason"],
        "additionalProperties": False,
        "properties": {
            "action": {
                "type": "string",
                "enum": ["correction", "annulment", "accept-conflict", "dismiss-conflict"],
            },
            "reason": {"type": "string"},
            "station": {"type": "string"},
            "contest": {"type": "string"},
            "count_kind": {"type": "string", "enum": ["machine", "hand", "recount"]},
            "body": _ref("ProtocolBody"),
            "conflict_id": {"type": "integer"},
        },
    },
    "Conflict": {
        "type": "object",
        "required": ["id", "station", "contest", "count_kind", "existing_index", "status", "body"],
        "properties": {
            "id": {"type": "integer"},
            "received_at": {"type": "string"},
            "station": {"type": "string"},
            "contest": {"type": "string"},
            "count_kind": {"type": "string"},
            "key_id": _NULLABLE_STR,
            "existing_index": {"type": "integer"},
            "body_sha256": {"type": "string"},
            "status": {"type": "string", "enum": ["held", "accepted", "dismissed"]},
            "resolved_at": _NULLABLE_STR,
            "resolution_index": _NULLABLE_INT,
            "body": {"type": "string"},
        },
    },
    "DeviceKey": {
        "type": "object",
        "required": ["key_id", "station", "public_key", "status"],
        "properties": {
            "key_id": {"type": "string"},
            "station": {"type": "string"},
            "public_key": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "revoked"]},
            "created_at": {"type": "string"},
            "revoked_at": _NULLABLE_STR,
            "registered_index": _NULLABLE_INT,
            "revoked_index": _NULLABLE_INT,
        },
    },
}

_DECISION_BODY = {
    "required": False,
    "content": {"application/json": {"schema": {
        "type": "object", "properties": {"note": {"type": "string"}}, "additionalProperties": False,
    }}},
}
_PROPOSAL_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
def _status_q(*values: str) -> dict[str, Any]:
    return {"name": "status", "in": "query", "required": False,
            "schema": {"type": "string", "enum": list(values)}}


def _img_content() -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"image/jpeg": binary, "image/png": binary, "application/pdf": binary}


PATHS: dict[str, Any] = {
    "/api/v1/protocols": {
        "post": {
            "operationId": "submitProtocol",
            "summary": "Submit a station protocol signed by the station's device key.",
            "description": (
                "The body is the protocol JSON; `X-Tallyroom-Signature` is the base64 Ed25519 "
                "signature of the exact body bytes by the key named in `X-Tallyroom-Key-Id`. "
                f"Body limit {MAX_PROTOCOL_BYTES:,} bytes. The answer comes only after the ledger "
                "entry is committed. Resending the identical body returns the same receipt."
            ),
            "parameters": [
                {"name": "X-Tallyroom-Key-Id", "in": "header", "required": True,
                 "schema": {"type": "string"}},
                {"name": "X-Tallyroom-Signature", "in": "header", "required": True,
                 "schema": {"type": "string"}},
            ],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("ProtocolBody")}}},
            "responses": {
                "201": _json(_ref("Submitted"), "New: appended to the ledger; receipt attached."),
                "200": _json(_ref("Submitted"), "Identical protocol sent again: the same receipt."),
                **_errors(400, 401, 403, 409, 413, 422, 503),
            },
        }
    },
    "/api/v1/protocols/{station}/{contest}/{count_kind}/image": {
        "put": {
            "operationId": "putProtocolImage",
            "summary": "Upload the photo or scan of the paper protocol whose SHA-256 a protocol declared.",
            "description": (
                "Signed like a submission (device key of that station, signature over the image "
                "bytes) or sent with an operator's bearer token. JPEG, PNG or PDF by content; "
                f"limit {MAX_IMAGE_BYTES:,} bytes."
            ),
            "parameters": [
                _STATION, _CONTEST, _KIND,
                {"name": "X-Tallyroom-Key-Id", "in": "header", "required": False,
                 "schema": {"type": "string"}},
                {"name": "X-Tallyroom-Signature", "in": "header", "required": False,
                 "schema": {"type": "string"}},
            ],
            "requestBody": {"required": True, "content": _img_content()},
            "responses": {
                "201": _json({"type": "object", "required": ["sha256", "media_type", "size"],
                              "properties": {"sha256": {"type": "string"},
                                             "media_type": {"type": "string"},
                                             "size": {"type": "integer"},
                                             "stored": {"type": "boolean"}}}, "Stored."),
                "200": _json({"type": "object"}, "That exact image was stored already."),
                **_errors(400, 401, 403, 404, 413, 415, 422),
            },
        },
        "get": {
            "operationId": "getProtocolImage",
            "summary": "The image of the protocol in force.",
            "parameters": [_STATION, _CONTEST, _KIND],
            "responses": {"200": {"description": "The image.", "content": _img_content()},
                          **_errors(404)},
        },
    },
    "/api/v1/receipts/{ledger_index}": {
        "get": {
            "operationId": "getReceipt",
            "summary": "The receipt issued for a ledger entry.",
            "parameters": [{"name": "ledger_index", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _json(_ref("Receipt"), "The receipt."), **_errors(404)},
        }
    },
    "/api/v1/ledger/checkpoint": {
        "get": {
            "operationId": "getCheckpoint",
            "summary": "The latest signed checkpoint (C2SP tlog-checkpoint note).",
            "responses": {
                "200": _json({"type": "object", "required": ["size", "root", "time", "note"],
                              "properties": {"size": {"type": "integer"},
                                             "root": {"type": "string"},
                                             "time": {"type": "integer"},
                                             "note": {"type": "string"}}}, "Checkpoint."),
                **_errors(404),
            },
        }
    },
    "/api/v1/ledger/proof/{ledger_index}": {
        "get": {
            "operationId": "getInclusionProof",
            "summary": "RFC 9162 inclusion proof of an entry in the tree of a given size.",
            "parameters": [
                {"name": "ledger_index", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 0}},
                {"name": "size", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1},
                 "description": "Tree size (default: the latest checkpoint's)."},
            ],
            "responses": {
                "200": _json({"type": "object",
                              "required": ["ledger_index", "size", "root", "leaf_hash", "proof"],
                              "properties": {"ledger_index": {"type": "integer"},
                                             "size": {"type": "integer"},
                                             "root": {"type": "string"},
                                             "leaf_hash": {"type": "string"},
                                             "proof": {"type": "array", "items": {"type": "string"}},
                                             "checkpoint": _NULLABLE_STR}}, "Proof."),
                **_errors(404),
            },
        }
    },
    "/api/v1/intake/stations": {
        "get": {
            "operationId": "listStationIntake",
            "summary": "Every station's intake attempts in aggregate (from the intake journal).",
            "responses": {"200": _json({"type": "object", "required": ["stations"], "properties": {
                "stations": {"type": "array", "items": _ref("StationSummary")}}}, "Summaries.")},
        }
    },
    "/api/v1/intake/stations/{station}": {
        "get": {
            "operationId": "getStationIntake",
            "summary": "One station's intake attempts in aggregate.",
            "parameters": [_STATION],
            "responses": {"200": _json(_ref("StationSummary"), "Summary."), **_errors(404)},
        }
    },
    "/api/v1/health": {
        "get": {
            "operationId": "health",
            "summary": "Liveness and ledger size.",
            "responses": {"200": _json({"type": "object", "required": ["status", "ledger_size"],
                                        "properties": {"status": {"type": "string"},
                                                       "election": {"type": "string"},
                                                       "origin": {"type": "string"},
                                                       "ledger_size": {"type": "integer"}}},
                                       "Up.")},
        }
    },
    "/api/v1/echo": {
        "post": {
            "operationId": "echo",
            "summary": "Returns the JSON body unchanged (benchmark baseline).",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
            "responses": {"200": _json({}, "The same body."), **_errors(400, 413)},
        }
    },
    "/api/v1/admin/whoami": {
        "get": {
            "operationId": "whoami", "security": _AUTH,
            "summary": "The token's person, role and permissions.",
            "responses": {"200": _json({"type": "object", "required": ["name", "role"], "properties": {
                "name": {"type": "string"}, "role": {"type": "string"},
                "permissions": {"type": "array", "items": {"type": "string"}}}}, "Who."),
                **_errors(401)},
        }
    },
    "/api/v1/admin/journal": {
        "get": {
            "operationId": "adminJournal", "security": _AUTH,
            "summary": "Intake journal lines (auditor and up).",
            "parameters": [
                {"name": "station", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0}},
                {"name": "after", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {"200": _json({"type": "object", "required": ["lines"], "properties": {
                "lines": {"type": "array", "items": {"type": "object"}}}}, "Lines."),
                **_errors(400, 401, 403)},
        }
    },
    "/api/v1/admin/conflicts": {
        "get": {
            "operationId": "adminConflicts", "security": _AUTH,
            "summary": "Held and resolved conflicts.",
            "parameters": [_status_q("held", "accepted", "dismissed")],
            "responses": {"200": _json({"type": "object", "required": ["conflicts"], "properties": {
                "conflicts": {"type": "array", "items": _ref("Conflict")}}}, "Conflicts."),
                **_errors(400, 401, 403)},
        }
    },
    "/api/v1/admin/proposals": {
        "get": {
            "operationId": "adminListProposals", "security": _AUTH,
            "summary": "Corrections, annulments and conflict resolutions.",
            "parameters": [_status_q("proposed", "approved", "rejected")],
            "responses": {"200": _json({"type": "object", "required": ["proposals"], "properties": {
                "proposals": {"type": "array", "items": _ref("Proposal")}}}, "Proposals."),
                **_errors(400, 401, 403)},
        },
        "post": {
            "operationId": "adminPropose", "security": _AUTH,
            "summary": "Propose a correction, annulment or conflict resolution (operator and up).",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("NewProposal")}}},
            "responses": {"201": _json(_ref("Proposal"), "Proposed; nothing changes until approved."),
                          **_errors(400, 401, 403, 404, 409, 413, 422)},
        },
    },
    "/api/v1/admin/proposals/{id}": {
        "get": {
            "operationId": "adminGetProposal", "security": _AUTH,
            "parameters": [_PROPOSAL_ID],
            "responses": {"200": _json(_ref("Proposal"), "Proposal."), **_errors(401, 403, 404)},
        }
    },
    "/api/v1/admin/proposals/{id}/approve": {
        "post": {
            "operationId": "adminApprove", "security": _AUTH,
            "summary": "Approve: a supervisor other than the proposer. Writes the ledger entry.",
            "parameters": [_PROPOSAL_ID],
            "requestBody": _DECISION_BODY,
            "responses": {"200": _json(_ref("Proposal"), "Approved and applied."),
                          **_errors(400, 401, 403, 404, 409, 413, 422)},
        }
    },
    "/api/v1/admin/proposals/{id}/reject": {
        "post": {
            "operationId": "adminReject", "security": _AUTH,
            "summary": "Reject (a supervisor) or withdraw (the proposer).",
            "parameters": [_PROPOSAL_ID],
            "requestBody": _DECISION_BODY,
            "responses": {"200": _json(_ref("Proposal"), "Rejected."),
                          **_errors(400, 401, 403, 404, 409, 413, 422)},
        }
    },
    "/api/v1/admin/keys": {
        "get": {
            "operationId": "adminListKeys", "security": _AUTH,
            "parameters": [
                {"name": "station", "in": "query", "required": False, "schema": {"type": "string"}},
                _status_q("active", "revoked"),
            ],
            "responses": {"200": _json({"type": "object", "required": ["keys"], "properties": {
                "keys": {"type": "array", "items": _ref("DeviceKey")}}}, "Keys."),
                **_errors(400, 401, 403)},
        },
        "post": {
            "operationId": "adminRegisterKey", "security": _AUTH,
            "summary": "Register a device public key for a station (administrator); a key_change entry.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["station", "public_key"],
                "properties": {"station": {"type": "string"},
                               "public_key": {"type": "string", "description": "base64, 32 bytes"}}}}}},
            "responses": {"201": _json({"type": "object", "required": ["key_id", "ledger_index"],
                                        "properties": {"key_id": {"type": "string"},
                                                       "station": {"type": "string"},
                                                       "ledger_index": {"type": "integer"}}},
                                       "Registered."),
                          **_errors(400, 401, 403, 409, 413, 422)},
        },
    },
    "/api/v1/admin/keys/{key_id}/revoke": {
        "post": {
            "operationId": "adminRevokeKey", "security": _AUTH,
            "summary": "Revoke a device key (administrator); a key_change entry.",
            "parameters": [{"name": "key_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"reason": {"type": "string"}}}}}},
            "responses": {"200": _json({"type": "object", "required": ["key_id", "status"],
                                        "properties": {"key_id": {"type": "string"},
                                                       "status": {"type": "string"},
                                                       "ledger_index": {"type": "integer"}}},
                                       "Revoked."),
                          **_errors(400, 401, 403, 404, 409, 413, 422)},
        }
    },
}


def _with_common_errors(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation may answer 400: unknown or repeated query parameters are refused."""
    for item in paths.values():
        for op in item.values():
            op["responses"].setdefault("400", _errors(400)["400"])
    return paths


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tallyroom API",
            "version": "1",
            "description": (
                "Signed protocol intake, receipts, intake journal, and the commission's "
                "two-person correction workflow: every error body is "
                '{"error", "reason", "field", "rules"} (docs/intake-api.md). The results '
                "(`/api/v1/results/…`, tag `results`) are the JSON files of the current "
                "snapshot, served when the server publishes (`serve --publish-dir`); "
                "docs/bulletin.md specifies them."
            ),
        },
        "paths": {**_with_common_errors(PATHS), **RESULTS_PATHS},
        "components": {
            "schemas": {**SCHEMAS, **RESULTS_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }

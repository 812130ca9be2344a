"""The results API in the OpenAPI document: the page data and rows of the current snapshot,
served from the publish folder under ``/api/v1/results/…`` (docs/bulletin.md §7, §12).

These are static files of an immutable snapshot, so every answer is a file or a 404: no
query parameters, no errors in JSON. Objects may carry more fields than listed here (a new
page block does not break a client); the listed ones are always there.
``tests/publish/test_publish_openapi.py`` checks live answers against this document.
"""

from __future__ import annotations

from typing import Any

_INT: dict[str, Any] = {"type": "integer"}
_NINT: dict[str, Any] = {"type": ["integer", "null"]}
_STR: dict[str, Any] = {"type": "string"}
_NSTR: dict[str, Any] = {"type": ["string", "null"]}
_BOOL: dict[str, Any] = {"type": "boolean"}
_HEX: dict[str, Any] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_KIND: dict[str, Any] = {"type": "string", "enum": ["machine", "hand", "recount"]}
_PCT: dict[str, Any] = {
    "type": ["string", "null"],
    "pattern": "^[0-9]+\\.[0-9]{2}$",
    "description": "An exact decimal with two places, of its stated base (docs/bulletin.md §6.5); "
    "null when the base is zero.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "required": required, "properties": properties}
    if description:
        out["description"] = description
    return out


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_FIGURES = {"registered": _NINT, "took_part": _NINT, "ballots_cast": _NINT, "valid": _NINT, "invalid": _NINT}

RESULTS_SCHEMAS: dict[str, Any] = {
    "Snapshot": _obj(
        ["number", "previous", "ledger_size", "root", "published_at", "definition_sha256"],
        {
            "number": _INT,
            "previous": _NINT,
            "ledger_size": _INT,
            "root": _STR,
            "published_at": _STR,
            "definition_sha256": _HEX,
        },
        "Which snapshot: its number, the ledger prefix it was computed from and its root.",
    ),
    "AreaRow": _obj(
        [
            "area",
            "area_name",
            "contest",
            "count_kind",
            "official",
            "stations_reporting",
            "stations_expected",
            "stations_reporting_percent",
            *_FIGURES,
            "turnout_percent",
            "percent_base",
            "choices",
            "lines",
        ],
        {
            "area": _STR,
            "area_name": _STR,
            "contest": _STR,
            "count_kind": _KIND,
            "official": _BOOL,
            "stations_reporting": _INT,
            "stations_expected": _INT,
            "stations_reporting_percent": _PCT,
            **_FIGURES,
            "turnout_percent": _PCT,
            "percent_base": _obj(
                ["figure", "value", "words"], {"figure": _STR, "value": _NINT, "words": _STR}
            ),
            "choices": _array(
                _obj(
                    ["id", "name", "votes", "percent", "percent_base", "against_all"],
                    {
                        "id": _STR,
                        "name": _STR,
                        "votes": _INT,
                        "percent": _PCT,
                        "percent_base": _STR,
                        "against_all": _BOOL,
                    },
                )
            ),
            "lines": {"type": "object", "additionalProperties": _INT},
        },
        "One contest in one area for one count kind (docs/bulletin.md §7.1).",
    ),
    "SeatProjection": _obj(
        [
            "contest",
            "count_kind",
            "official",
            "provisional",
            "stations_reporting",
            "stations_expected",
            "method",
            "seats_total",
            "status",
            "parties",
            "allocation",
        ],
        {
            "contest": _STR,
            "count_kind": _KIND,
            "official": _BOOL,
            "provisional": _BOOL,
            "stations_reporting": _INT,
            "stations_expected": _INT,
            "method": _STR,
            "seats_total": _INT,
            "status": {"type": "string", "enum": ["ok", "no-data", "no-eligible", "error"]},
            "message": _NSTR,
            "parties": _array(_obj(["id", "votes", "seats"], {"id": _STR, "votes": _INT, "seats": _INT})),
            "allocation": {"type": ["object", "null"]},
            "notes": {**_array(_STR), "description": "Party-list contests: what was left out and why."},
            "outcome": _STR,
            "winner": _NSTR,
            "leader": _NSTR,
        },
        "Seats from the national row of a count (docs/bulletin.md §7.4).",
    ),
    "Leader": {
        "type": ["object", "null"],
        "required": ["id", "votes", "percent", "colour"],
        "properties": {"id": _STR, "votes": _INT, "percent": _PCT, "colour": _STR},
    },
    "Section": _obj(
        [
            "contest",
            "count_kind",
            "official",
            "stations_reporting",
            "stations_expected",
            "stations_reporting_percent",
            *_FIGURES,
            "turnout_percent",
            "percent_base",
            "percent_base_value",
            "choices",
            "seats",
        ],
        {
            "contest": _STR,
            "count_kind": _KIND,
            "official": _BOOL,
            "stations_reporting": _INT,
            "stations_expected": _INT,
            "stations_reporting_percent": _PCT,
            **_FIGURES,
            "turnout_percent": _PCT,
            "percent_base": _STR,
            "percent_base_value": _NINT,
            "choices": _array(
                _obj(
                    ["id", "votes", "percent", "colour"],
                    {"id": _STR, "votes": _INT, "percent": _PCT, "against_all": _BOOL, "colour": _STR},
                )
            ),
            "seats": {"type": ["object", "null"], "description": "The seat view at a contest's own area."},
            "sensitivity": {
                "type": ["object", "null"],
                "description": "Beside a party-list count's seats: how many votes each threshold decision "
                "and the last seat rest on (docs/bulletin.md §14.2).",
            },
        },
        "One count of one contest on an area page, choices sorted by votes.",
    ),
    "AreaPage": _obj(
        [
            "page",
            "area",
            "kind",
            "hierarchy",
            "chain",
            "contests",
            "primary_kind",
            "main_contest",
            "sections",
            "children",
            "stations",
            "related",
        ],
        {
            "page": {"type": "string", "enum": ["national", "area"]},
            "area": _STR,
            "kind": _STR,
            "hierarchy": _STR,
            "chain": _array(_STR),
            "contests": _array(_STR),
            "primary_kind": _STR,
            "main_contest": _NSTR,
            "sections": _array(_ref("Section")),
            "children": _array(
                _obj(
                    [
                        "area",
                        "stations_reporting",
                        "stations_expected",
                        "stations_reporting_percent",
                        "turnout_percent",
                        "leader",
                    ],
                    {
                        "area": _STR,
                        "code": _NSTR,
                        "stations_reporting": _INT,
                        "stations_expected": _INT,
                        "stations_reporting_percent": _PCT,
                        "turnout_percent": _PCT,
                        "leader": _ref("Leader"),
                    },
                )
            ),
            "stations": _array(
                _obj(
                    ["id", "registered", "kinds"],
                    {
                        "id": _STR,
                        "registered": _NINT,
                        "kinds": {
                            "type": "object",
                            "additionalProperties": {
                                "type": ["object", "null"],
                                "properties": {"turnout_percent": _PCT, "leader": _ref("Leader")},
                            },
                        },
                    },
                )
            ),
            "related": _array(_STR),
            "reconciliation": _array(
                _obj(["contest", "region"], {"contest": _STR, "region": _NSTR}),
            ),
            "snapshot": _ref("Snapshot"),
            "changed_in": _ref("Snapshot"),
            "map": {"type": ["object", "null"]},
        },
        "The data of the national page (``snapshot``, ``map``) or of an area page (``changed_in``: "
        "the snapshot in which it last changed). Every number is the gate-checked row's.",
    ),
    "HistoryEntry": _obj(
        [
            "ledger_index",
            "leaf_hash",
            "entry",
            "action",
            "status",
            "ended_by",
            "target",
            "source",
            "key_id",
            "body_sha256",
            "reason",
            "proposed_by",
            "approved_by",
        ],
        {
            "ledger_index": _INT,
            "leaf_hash": _HEX,
            "entry": {"type": "string", "enum": ["protocol", "correction", "annulment"]},
            "action": {"type": "string", "enum": ["submit", "supersede", "dismiss", "annul"]},
            "status": {
                "type": "string",
                "enum": ["counts", "superseded", "annulled", "dismissed", "decision"],
            },
            "ended_by": _NINT,
            "target": _NINT,
            "source": {"type": ["string", "null"], "enum": ["import", "device", "commission", None]},
            "key_id": _NSTR,
            "body_sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
            "reason": _NSTR,
            "proposed_by": _NSTR,
            "approved_by": _NSTR,
        },
        "One ledger entry acting on a station's protocol (docs/bulletin.md §12).",
    ),
    "IntakeCounts": _obj(
        ["accepted", "duplicate", "conflict", "rejected", "reasons"],
        {
            "accepted": _INT,
            "duplicate": _INT,
            "conflict": _INT,
            "rejected": _INT,
            "reasons": {"type": "object", "additionalProperties": _INT},
        },
        "Intake attempts of one station from the intake journal (bulletin/journal.json).",
    ),
    "StationPage": _obj(
        [
            "page",
            "station",
            "registered",
            "abroad",
            "key",
            "areas",
            "contests",
            "rule_columns",
            "rules",
            "history",
            "intake",
        ],
        {
            "page": {"const": "station"},
            "station": _STR,
            "registered": _NINT,
            "abroad": _BOOL,
            "key": _NSTR,
            "areas": _array(_array(_STR)),
            "contests": _array(
                _obj(
                    ["contest", "columns", "any_reported", "lines", "choices"],
                    {
                        "contest": _STR,
                        "any_reported": _BOOL,
                        "columns": _array(
                            _obj(
                                ["count_kind", "reported"],
                                {
                                    "count_kind": _STR,
                                    "reported": _BOOL,
                                    "official": _BOOL,
                                    "ledger_index": _INT,
                                    "leaf_hash": _HEX,
                                    "body_sha256": _HEX,
                                    "envelope": {"type": "object"},
                                    "took_part": _NINT,
                                    "turnout_percent": _PCT,
                                    "percent_base": _STR,
                                    "percent_base_value": _NINT,
                                    "rules_failed": _INT,
                                    "image": {
                                        "type": ["object", "null"],
                                        "required": ["sha256", "path", "media_type"],
                                        "properties": {
                                            "sha256": _HEX,
                                            "path": {
                                                "type": ["string", "null"],
                                                "pattern": "^images/[0-9a-f]{64}\\.(jpg|png|pdf)$",
                                            },
                                            "media_type": _NSTR,
                                        },
                                    },
                                },
                            )
                        ),
                        "lines": _array({"type": "array", "prefixItems": [_STR, _array(_NINT)]}),
                        "choices": _array({"type": "array", "prefixItems": [_STR, _STR, {"type": "array"}]}),
                    },
                )
            ),
            "rule_columns": _array(_STR),
            "rules": _array(_obj(["rule", "expr", "severity", "checks"], {"checks": {"type": "object"}})),
            "history": _array(
                _obj(
                    ["contest", "count_kind", "in_force", "entries"],
                    {
                        "contest": _STR,
                        "count_kind": _KIND,
                        "in_force": _NINT,
                        "entries": _array(_ref("HistoryEntry")),
                    },
                )
            ),
            "intake": {"oneOf": [_ref("IntakeCounts"), {"type": "null"}]},
            "changed_in": _ref("Snapshot"),
        },
        "One station: its protocols of every count side by side, receipts, photos, control rules, "
        "the history of every version and its intake attempts (docs/bulletin.md §7.3, §12).",
    ),
    "ChangesPage": _obj(
        ["page", "snapshot", "changes"],
        {
            "page": {"const": "changes"},
            "snapshot": _ref("Snapshot"),
            "changes": _obj(
                [
                    "format",
                    "snapshot",
                    "previous",
                    "ledger_from",
                    "ledger_to",
                    "rows_changed_total",
                    "rows_changed",
                    "new_protocols_total",
                    "new_protocols",
                    "decisions_total",
                    "decisions",
                ],
                {
                    "format": {"const": "tallyroom-changes/1"},
                    "snapshot": _INT,
                    "previous": _NINT,
                    "ledger_from": _INT,
                    "ledger_to": _INT,
                    "rows_changed_total": _INT,
                    "rows_changed": _array({"type": "object"}),
                    "new_protocols_total": _INT,
                    "new_protocols": _array(
                        _obj(
                            ["contest", "station", "count_kind", "ledger_index"],
                            {"contest": _STR, "station": _STR, "count_kind": _KIND, "ledger_index": _INT},
                        )
                    ),
                    "decisions_total": _INT,
                    "decisions": _array(
                        _obj(
                            [
                                "ledger_index",
                                "entry",
                                "action",
                                "contest",
                                "station",
                                "count_kind",
                                "target",
                                "reason",
                                "proposed_by",
                                "approved_by",
                            ],
                            {
                                "ledger_index": _INT,
                                "entry": {"enum": ["correction", "annulment"]},
                                "action": {"enum": ["supersede", "dismiss", "annul"]},
                                "contest": _STR,
                                "station": _STR,
                                "count_kind": _KIND,
                                "target": _INT,
                                "reason": _NSTR,
                                "proposed_by": _NSTR,
                                "approved_by": _NSTR,
                            },
                        )
                    ),
                },
            ),
        },
    ),
    "SnapshotsPage": _obj(
        ["page", "snapshot", "snapshots"],
        {
            "page": {"const": "snapshots"},
            "snapshot": _ref("Snapshot"),
            "snapshots": _array(
                _obj(
                    ["number", "ledger_size", "root", "published_at"],
                    {"number": _INT, "ledger_size": _INT, "root": _STR, "published_at": _STR},
                )
            ),
        },
    ),
    "DownloadsPage": _obj(
        ["page", "snapshot", "downloads"],
        {
            "page": {"const": "downloads"},
            "snapshot": _ref("Snapshot"),
            "downloads": _array(
                _obj(
                    ["path", "what", "size", "sha256"],
                    {"path": _STR, "what": _STR, "size": _INT, "sha256": _HEX},
                )
            ),
        },
    ),
    "ReconcilePage": _obj(
        ["page", "contest", "order", "orders", "stations_compared", "stations_differing", "groups"],
        {
            "page": {"const": "reconcile"},
            "contest": _STR,
            "order": {"type": "string", "enum": ["difference", "overstatement", "region", "station"]},
            "orders": _array(_STR),
            "stations_compared": _INT,
            "stations_differing": _INT,
            "stations_flagged": _INT,
            "groups": _array(
                _obj(["area", "stations"], {"area": _NSTR, "stations": _array({"type": "object"})})
            ),
            "histogram": {"type": ["object", "null"]},
            "regions": {"type": ["array", "null"]},
            "map": {"type": ["object", "null"]},
        },
        "A contest's machine vs hand count, stations in one order (docs/bulletin.md §14.3).",
    ),
}

_NOT_FOUND = {
    "description": (
        "No such file in the current snapshot: an unknown area, station, contest or count (text); "
        "or this server does not publish results (`serve` without `--publish-dir`: a JSON error)."
    ),
    "content": {"text/plain": {"schema": _STR}, "application/json": {"schema": _ref("Error")}},
}
_NOTHING_YET = {
    "description": "Nothing has been published yet.",
    "content": {"text/plain": {"schema": _STR}},
}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _STR}


def _get(operation: str, summary: str, schema: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation,
            "tags": ["results"],
            "summary": summary,
            "description": (
                "A file of the current snapshot: strong ETag, `If-None-Match` answered with 304, "
                "short `Cache-Control` (the same file under `/snapshots/<n>/` is immutable)."
            ),
            "parameters": params,
            "responses": {
                "200": {
                    "description": "The file.",
                    "content": {"application/json": {"schema": _ref(schema)}},
                },
                "404": _NOT_FOUND,
                "503": _NOTHING_YET,
            },
        }
    }


_AREA = _path("area", "Area id as in the definition.")
_CONTEST = _path("contest", "Contest id as in the definition.")
_COUNT = {
    "name": "count_kind",
    "in": "path",
    "required": True,
    "description": "A published count kind of the contest.",
    "schema": _KIND,
}

RESULTS_PATHS: dict[str, Any] = {
    "/api/v1/results/index.json": _get(
        "resultsNational", "The national page's data (every count, seats, map, regions).", "AreaPage", []
    ),
    "/api/v1/results/area/{area}.json": _get(
        "resultsArea", "An area page's data (its counts, children, stations).", "AreaPage", [_AREA]
    ),
    "/api/v1/results/station/{station}.json": _get(
        "resultsStation",
        "A station page's data: protocols, receipts, photos, rule checks, history, intake attempts.",
        "StationPage",
        [_path("station", "Station id as in the definition.")],
    ),
    "/api/v1/results/{contest}/{count_kind}/{area}.json": _get(
        "resultsRow", "One area row, exactly as in data/results.json.", "AreaRow", [_CONTEST, _COUNT, _AREA]
    ),
    "/api/v1/results/seats/{contest}/{count_kind}.json": _get(
        "resultsSeats", "One seat projection (official or provisional).", "SeatProjection", [_CONTEST, _COUNT]
    ),
    "/api/v1/changes.json": _get(
        "resultsChanges", "What changed since the previous snapshot.", "ChangesPage", []
    ),
    "/api/v1/snapshots.json": _get(
        "resultsSnapshots", "Every snapshot published so far.", "SnapshotsPage", []
    ),
    "/api/v1/downloads.json": _get(
        "resultsDownloads", "The downloadable files of the snapshot with their SHA-256.", "DownloadsPage", []
    ),
    "/api/v1/reconcile/{contest}/{order}.json": _get(
        "resultsReconcile",
        "A contest's machine vs hand count, station by station, in one order.",
        "ReconcilePage",
        [_CONTEST, _path("order", "difference, overstatement, region or station.")],
    ),
}

#: Paths under /api/ that are files of the current snapshot (served by the published site).
SITE_API_FILES = frozenset({"/api/v1/changes.json", "/api/v1/snapshots.json", "/api/v1/downloads.json"})

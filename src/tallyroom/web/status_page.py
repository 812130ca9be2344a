"""The operator's view of publishing: ``/healthz`` (for monitors) and ``/status`` (for people).

Both read only the publish folder: ``status.json`` (:mod:`tallyroom.publish.status`),
``current.json`` and the refusal records in ``refusals/``. The health check answers 503 when
the gate refused the ledger as it is now (the previous snapshot stays live) or when a
continuously publishing publisher has stopped writing its status (:func:`~tallyroom.publish.
status.stalled`): either way the public numbers are no longer following the ledger, which an
operator must learn from the monitor, not from a reader.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from tallyroom.publish.status import parse_time, stalled, utc_iso

#: Refusal records shown on the page, newest first.
REFUSALS_SHOWN = 10
#: Failing checks shown per refusal record (the record itself holds them all).
CHECKS_SHOWN = 5


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_status(root: Path, has_current: bool) -> dict[str, Any]:
    """``status.json``, or what can be said without it (a folder published by an older
    version, or not yet)."""
    return read_json(root / "status.json") or {"healthy": has_current, "last_attempt": None}


def health(status: dict[str, Any], has_current: bool, now: float) -> tuple[str, float | None]:
    """``ok``, ``refused``, ``stalled`` or ``empty`` (nothing published yet), and for a stall
    the seconds since the publisher last wrote its status."""
    last = status.get("last_attempt")
    if not has_current and not (isinstance(last, dict) and last.get("status") == "refused"):
        return "empty", None
    if not status.get("healthy"):
        return "refused", None
    quiet = stalled(status, now)
    return ("stalled", quiet) if quiet is not None else ("ok", None)


def health_document(status: dict[str, Any], has_current: bool, now: float) -> dict[str, Any]:
    state, quiet = health(status, has_current, now)
    doc: dict[str, Any] = {
        "status": state,
        "current_snapshot": status.get("current_snapshot"),
        "last_attempt": (status.get("last_attempt") or {}).get("status"),
        "checked_at": status.get("checked_at"),
    }
    if quiet is not None:
        doc["stalled_for_seconds"] = None if quiet == float("inf") else round(quiet)
    return doc


def recent_refusals(root: Path, n: int = REFUSALS_SHOWN) -> list[dict[str, Any]]:
    """The newest ``n`` refusal records (``refusals/<ms>-<N>.json``), newest first."""
    try:
        names = [p for p in (root / "refusals").iterdir() if p.suffix == ".json"]
    except OSError:
        return []

    def when(p: Path) -> int:
        head = p.name.split("-", 1)[0]
        return int(head) if head.isdigit() else -1

    out = []
    for p in sorted(names, key=when, reverse=True)[:n]:
        record = read_json(p)
        if record is not None:
            out.append(record)
    return out


def _e(value: object) -> str:
    return "—" if value is None else html.escape(str(value))


def _n(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _e(value)


def _ago(at: object, now: float) -> str:
    ts = parse_time(at)
    if ts is None:
        return _e(at)
    age = max(0, round(now - ts))
    span = f"{age} s" if age < 120 else (f"{age // 60} min" if age < 7200 else f"{age // 3600} h")
    return f'<time datetime="{_e(at)}">{_e(at)}</time> ({span} ago)'


def _failures_table(failures: list[dict[str, Any]], caption: str) -> str:
    rows = "".join(
        f"<tr><td>{_e(f.get('check'))}</td><td>{_e(f.get('where'))}</td><td>{_e(f.get('message'))}</td></tr>"
        for f in failures
        if isinstance(f, dict)
    )
    return (
        f'<div class="table-wrap"><table><caption>{_e(caption)}</caption><thead><tr>'
        '<th scope="col">Check</th><th scope="col">Where</th><th scope="col">What</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _recent_table(recent: list[Any], now: float) -> str:
    rows = "".join(
        f"<tr><td>{_ago(r.get('at'), now)}</td><td>{_e(r.get('status'))}</td>"
        f'<td class="n">{_n(r.get("snapshot"))}</td><td class="n">{_n(r.get("ledger_size"))}</td>'
        f'<td class="n">{_n(r.get("protocols_new"))}</td><td class="n">{_n(r.get("pages_rendered"))}</td>'
        f'<td class="n">{_e(r.get("seconds"))}</td><td class="n">{_n(r.get("failures"))}</td></tr>'
        for r in recent
        if isinstance(r, dict)
    )
    return (
        '<div class="table-wrap"><table><caption>Recent attempts, newest first</caption><thead><tr>'
        '<th scope="col">When</th><th scope="col">Outcome</th><th scope="col" class="n">Snapshot</th>'
        '<th scope="col" class="n">Ledger size</th><th scope="col" class="n">New protocols</th>'
        '<th scope="col" class="n">Pages rendered</th><th scope="col" class="n">Seconds</th>'
        f'<th scope="col" class="n">Failing checks</th></tr></thead><tbody>{rows}</tbody></table></div>'
    )


def status_page(
    status: dict[str, Any],
    current: dict[str, Any] | None,
    refusals: list[dict[str, Any]],
    has_current: bool,
    now: float,
) -> str:
    """The operator's status page (English: it is for the commission's staff, not readers).
    It reloads itself every 10 seconds."""
    state, quiet = health(status, has_current, now)
    headline = {
        "ok": "healthy",
        "refused": "REFUSED — the gate refused the ledger as it is now; the previous snapshot stays live",
        "empty": "nothing published yet",
        "stalled": "STALLED — the publisher has not reported"
        + ("" if quiet in (None, float("inf")) else f" for {round(quiet or 0)} s")
        + "; the site shows the last snapshot",
    }[state]
    last = status.get("last_attempt") or {}
    when = " " + _ago(last["at"], now) if last.get("at") else ""
    facts = [
        (
            "Current snapshot",
            "—"
            if current is None
            else f'<a href="/">{_n(current.get("snapshot"))}</a>, ledger size '
            f"{_n(current.get('ledger_size'))}, published {_ago(current.get('published_at'), now)}",
        ),
        ("Last look at the ledger", _ago(status.get("checked_at"), now)),
        (
            "Publishing",
            "once (tallyroom publish)"
            if not status.get("publish_every")
            else f"every {_e(status.get('publish_every'))} s",
        ),
        ("Building since", _ago(status["building_since"], now) if status.get("building_since") else "—"),
        (
            "Last attempt",
            f"{_e(last.get('status'))}{when}, ledger size "
            f"{_n(last.get('ledger_size'))}, {_e(last.get('seconds'))} s, "
            f"{_n(last.get('protocols_new'))} new protocols, {_n(last.get('pages_rendered'))} pages "
            f"rendered and {_n(last.get('pages_reused'))} reused, {_n(last.get('checked_numbers'))} "
            "numbers checked by the gate"
            if last
            else "—",
        ),
    ]
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="refresh" content="10">',
        "<title>Publishing status — tallyroom</title>",
        '<link rel="stylesheet" href="/static/site.css"></head><body><main id="main">',
        f'<h1 class="status-{state}">Publishing: {_e(headline)}</h1>',
        "<dl>",
        *(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts),
        "</dl>",
    ]
    if last.get("failures"):
        parts.append(_failures_table(last["failures"], "Failing checks of the last attempt"))
    recent = status.get("recent") or []
    if recent:
        parts.append(_recent_table(recent, now))
    parts.append("<h2>Refusals recorded</h2>")
    if not refusals:
        parts.append("<p>The gate has refused no snapshot in this folder.</p>")
    for r in refusals:
        failures = [f for f in r.get("failures") or [] if isinstance(f, dict)]
        caption = (
            f"Refused at {r.get('refused_at')}: would have been snapshot {r.get('would_have_been_snapshot')} "
            f"(ledger size {r.get('ledger_size')}); {len(failures)} failing checks"
            + (f", the first {CHECKS_SHOWN} shown" if len(failures) > CHECKS_SHOWN else "")
        )
        parts.append(_failures_table(failures[:CHECKS_SHOWN], caption))
    parts.append(
        f"<p>As of {utc_iso(now)}. The same in JSON: "
        '<a href="/status.json">status.json</a>, <a href="/healthz">healthz</a>, '
        '<a href="/current.json">current.json</a>.</p></main></body></html>\n'
    )
    return "".join(parts)

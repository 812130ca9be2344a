"""The publisher's status file (``status.json`` beside ``current``), read by the operator's
page and the health check (docs/bulletin.md §9).

It says whether the last snapshot the publisher tried was published or refused by the gate,
when the publisher last looked at the ledger (also when nothing had changed), which build is
running, and the last :data:`RECENT` attempts that built something. An operator must be able
to tell three things apart on election night: the site is up to date; the gate refused what
the ledger holds now (the previous snapshot stays live); the publisher has stopped looking
(nothing new appears, although nothing was refused). The third is what
:func:`stalled` detects, from the file alone, so that a health check on another machine
(nginx serves ``status.json`` too) can tell it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Attempts kept in ``recent``, newest first.
RECENT = 20
#: A publisher that publishes continuously is stalled when it has not written its status for
#: this long at least, whatever its interval: a long build is not a stall.
MIN_STALL_SECONDS = 120.0
#: ... nor for ten intervals, nor for three times its longest recent build.
STALL_INTERVALS = 10
STALL_BUILDS = 3
#: A first build (no earlier one to compare with) may take this long before it counts as a
#: stall: a full build of 100,000 stations took minutes on a 2-core machine (BENCHMARKS.md).
FIRST_BUILD_SECONDS = 1800.0

FORMAT = "tallyroom-status/1"


def parse_time(text: object) -> float | None:
    """Seconds since the epoch of a ``YYYY-MM-DDTHH:MM:SSZ`` time, or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def utc_iso(ts: float) -> str:
    """``ts`` as ``YYYY-MM-DDTHH:MM:SSZ`` (RFC 3339, UTC, whole seconds)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _summary(attempt: dict[str, Any]) -> dict[str, Any]:
    """One line of ``recent``: an attempt without its timings and failing checks."""
    return {
        "at": attempt.get("at"),
        "status": attempt.get("status"),
        "snapshot": attempt.get("snapshot"),
        "ledger_size": attempt.get("ledger_size"),
        "seconds": attempt.get("seconds"),
        "protocols_new": attempt.get("protocols_new"),
        "pages_rendered": attempt.get("pages_rendered"),
        "failures": len(attempt.get("failures") or []),
    }


class StatusBook:
    """What the publisher says about itself, kept between its writes of ``status.json``.

    A publisher that starts on a folder with a status file goes on from it, so that the
    recent attempts and the last refusal survive a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Seconds between snapshots when publishing continuously; None for one snapshot.
        self.every: float | None = None
        self.last_attempt: dict[str, Any] | None = None
        self.recent: list[dict[str, Any]] = []
        self.building_since: str | None = None
        try:
            old = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return
        if isinstance(old, dict) and old.get("format") == FORMAT:
            last = old.get("last_attempt")
            self.last_attempt = last if isinstance(last, dict) else None
            recent = old.get("recent")
            if isinstance(recent, list):
                self.recent = [r for r in recent if isinstance(r, dict)][:RECENT]

    def building(self, now: float) -> None:
        self.building_since = utc_iso(now)

    def attempted(self, attempt: dict[str, Any], now: float) -> None:
        """A build ended, published or refused (``attempt`` is ``Outcome.to_dict()``)."""
        self.building_since = None
        self.last_attempt = {"at": utc_iso(now), **attempt}
        self.recent = [_summary(self.last_attempt), *self.recent][:RECENT]

    def checked(self) -> None:
        """The ledger held nothing new: no build, only the time of the look changes."""
        self.building_since = None

    def document(self, now: float, current: int | None) -> dict[str, Any]:
        last = self.last_attempt
        return {
            "format": FORMAT,
            "checked_at": utc_iso(now),
            "building_since": self.building_since,
            "publish_every": self.every,
            "current_snapshot": current,
            "healthy": last is None or last.get("status") != "refused",
            "last_attempt": last,
            "recent": self.recent,
        }


def stall_limit(status: dict[str, Any]) -> float | None:
    """Seconds after ``checked_at`` from which the publisher counts as stalled; None when it
    does not publish continuously (a snapshot made once never goes stale)."""
    every = status.get("publish_every")
    if not isinstance(every, int | float) or isinstance(every, bool) or every <= 0:
        return None
    builds = [
        r["seconds"]
        for r in status.get("recent") or []
        if isinstance(r, dict) and isinstance(r.get("seconds"), int | float)
    ]
    limit = max(MIN_STALL_SECONDS, STALL_INTERVALS * float(every))
    if builds:
        limit = max(limit, STALL_BUILDS * max(builds))
    elif status.get("building_since"):
        limit = max(limit, FIRST_BUILD_SECONDS)
    return limit


def stalled(status: dict[str, Any], now: float) -> float | None:
    """How many seconds ago a continuously publishing publisher last wrote its status, when
    that is longer than :func:`stall_limit` allows (None when it is not stalled). A status
    with no readable time counts as stalled only if it says it publishes continuously."""
    limit = stall_limit(status)
    if limit is None:
        return None
    at = parse_time(status.get("checked_at"))
    if at is None:
        return float("inf")
    age = now - at
    return age if age > limit else None

"""The intake journal: one line per attempt, kept apart from the results ledger.

Observers see it per station in aggregate (``GET /api/v1/intake/stations``): that station
1234 had five forged attempts is a fact worth publishing even though none of them counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class JournalLine:
    at: str
    station: str | None
    key_id: str | None
    outcome: Outcome
    reason: str | None
    http_status: int
    detail: str
    ledger_index: int | None = None
    body_sha256: str | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.at,
            self.station,
            self.key_id,
            str(self.outcome),
            self.reason,
            self.http_status,
            self.detail[:500],
            self.ledger_index,
            self.body_sha256,
        )


@dataclass(frozen=True, slots=True)
class StationSummary:
    """What happened at one station's intake, counted by outcome and by rejection reason."""

    station: str
    accepted: int
    duplicate: int
    conflict: int
    rejected: int
    reasons: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "conflict": self.conflict,
            "rejected": self.rejected,
            "reasons": dict(sorted(self.reasons.items())),
        }

    def sentence(self) -> str:
        parts = [f"{n} {reason.replace('-', ' ')}" for reason, n in sorted(self.reasons.items())]
        extra = f" ({', '.join(parts)})" if parts else ""
        return (
            f"station {self.station}: {self.accepted} accepted, {self.duplicate} duplicate, "
            f"{self.conflict} conflict, {self.rejected} rejected{extra}"
        )


def summarise(rows: list[tuple[str | None, str, str | None, int]]) -> list[StationSummary]:
    """Fold (station, outcome, reason, count) rows into one summary per station."""
    acc: dict[str, dict[str, Any]] = {}
    for station, outcome, reason, n in rows:
        name = station if station is not None else "(unknown)"
        s = acc.setdefault(name, {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0, "reasons": {}})
        if outcome in ("accepted", "duplicate", "conflict", "rejected"):
            s[outcome] += n
        if outcome in ("rejected", "conflict") and reason:
            s["reasons"][reason] = s["reasons"].get(reason, 0) + n
    return [
        StationSummary(name, v["accepted"], v["duplicate"], v["conflict"], v["rejected"], v["reasons"])
        for name, v in sorted(acc.items())
    ]

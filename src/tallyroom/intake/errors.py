"""A refused intake attempt: what the client is told and what the journal records."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Any


def clip(value: object, limit: int = 80) -> str:
    """A value for an error message, bounded so a hostile input cannot bloat a response."""
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Rejection(Exception):
    """Why a submission (or an admin request) is refused.

    ``reason`` is a short stable slug (``forged-signature``, ``rules``…) that the intake
    journal counts per station; ``message`` is the sentence for people; ``field`` names the
    JSON field, header or path part at fault; ``rules`` lists each violated rule or line
    with its values.
    """

    status: int
    reason: str
    message: str
    field: str | None = None
    rules: list[dict[str, Any]] = _field(default_factory=list)
    extra: dict[str, Any] = _field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        rules = self.rules or [{"rule": self.reason, "message": self.message}]
        out: dict[str, Any] = {
            "error": self.message,
            "reason": self.reason,
            "field": self.field,
            "rules": rules,
        }
        out.update(self.extra)
        return out

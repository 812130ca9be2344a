"""What a verification found: mismatches (each naming file, number, value and reason), counts.

A :class:`Mismatch` is one published fact that is not what the published ledger says it must
be. It names the file (or ledger entry), where in it, what was published, what it should be and
why. A :class:`Report` collects them with the counts of what was checked; its last line is the
contract of ``tallyroom verify``::

    verified 1,234,567 numbers in 3,210 files against 96,871 signed protocols: 0 mismatches
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

#: Mismatches kept per check name (the first ones, in the order found); the rest are counted.
KEEP_PER_CHECK = 500


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One published fact that does not hold."""

    check: str
    file: str
    where: str
    published: str | None
    expected: str | None
    why: str

    def sentence(self) -> str:
        parts = [self.file]
        if self.where:
            parts.append(self.where)
        head = " › ".join(parts)
        if self.published is None and self.expected is None:
            return f"{head}: {self.why}"
        values = f"published {self.published}, should be {self.expected}"
        return f"{head}: {values} — {self.why}" if self.why else f"{head}: {values}"


@dataclass
class Tally:
    """Counts and findings of one part of the work (a worker's share, or the whole run)."""

    numbers: int = 0
    files: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    per_check: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        check: str,
        file: str,
        where: str,
        published: Any,
        expected: Any,
        why: str,
    ) -> None:
        self.per_check[check] += 1
        if self.per_check[check] <= KEEP_PER_CHECK:
            self.mismatches.append(Mismatch(check, file, where, _show(published), _show(expected), why))

    def fail(self, check: str, file: str, where: str, why: str) -> None:
        """A mismatch that is not one number against another (a missing file, a bad proof)."""
        self.per_check[check] += 1
        if self.per_check[check] <= KEEP_PER_CHECK:
            self.mismatches.append(Mismatch(check, file, where, None, None, why))

    def merge(self, other: Tally) -> None:
        self.numbers += other.numbers
        self.files += other.files
        for m in other.mismatches:
            if self.per_check[m.check] < KEEP_PER_CHECK:
                self.mismatches.append(m)
        self.per_check.update(other.per_check)

    @property
    def count(self) -> int:
        return sum(self.per_check.values())


def _show(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)[:300]


@dataclass
class Report:
    """The whole verification of one source."""

    source: str
    snapshot: int | None = None
    ledger_size: int = 0
    tally: Tally = field(default_factory=Tally)
    #: Protocol entries (protocols and superseding corrections) whose bodies were checked.
    protocols: int = 0
    #: Of which: device signatures checked (the rest were imported or made by the commission).
    signatures: int = 0
    #: Facts worth knowing that are not mismatches (e.g. an audit's status).
    notes: list[str] = field(default_factory=list)
    #: Things that could not be checked (e.g. a receipt newer than the snapshot).
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.tally.count == 0

    def summary(self) -> str:
        n = self.tally.count
        return (
            f"verified {self.tally.numbers:,} numbers in {self.tally.files:,} files against "
            f"{self.protocols:,} signed protocols: {n:,} mismatch{'es' if n != 1 else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "tallyroom-verify-report/1",
            "source": self.source,
            "snapshot": self.snapshot,
            "ledger_size": self.ledger_size,
            "ok": self.ok,
            "numbers": self.tally.numbers,
            "files": self.tally.files,
            "protocols": self.protocols,
            "signatures": self.signatures,
            "mismatches_total": self.tally.count,
            "mismatches_by_check": dict(sorted(self.tally.per_check.items())),
            "mismatches": [asdict(m) for m in self.tally.mismatches],
            "notes": self.notes,
            "warnings": self.warnings,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "summary": self.summary(),
        }

    def messages(self) -> list[str]:
        return [m.sentence() for m in self.tally.mismatches]

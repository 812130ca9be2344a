"""Watch a live site: verify each new snapshot as it appears, alert on the first problem.

Every ``interval`` seconds the source's current snapshot is looked up. A new one is verified
in full; in addition it must extend the last snapshot seen — the published ledger's first
``size`` entries hash to that snapshot's signed root (an RFC 9162 consistency proof is built
from the new entries and checked), and the ledger's record of that snapshot carries the
manifest hash that was seen. A snapshot whose number goes back, or that changes under the
same number, is rewritten history. The first problem ends the watch (exit code 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tallyroom.verify.bulletin import consistent_with
from tallyroom.verify.report import Report
from tallyroom.verify.run import Verified, verify_opened
from tallyroom.verify.source import FileMissing, SourceError, open_source
from tallyroom.verify.workers import WorkerDied


@dataclass(frozen=True)
class Seen:
    number: int
    manifest_sha256: str
    size: int
    root: bytes


@dataclass
class WatchOutcome:
    code: int
    polls: int
    verified: list[int]
    alert: str | None = None
    last: Report | None = None


def _manifest_sha(spec: str) -> tuple[int | None, str]:
    import hashlib

    opened = open_source(spec)
    raw = opened.snapshot.read("manifest.json")
    return opened.number_hint, hashlib.sha256(raw).hexdigest()


def check_extends(prev: Seen, v: Verified) -> str | None:
    """None if the verified snapshot extends the one seen before; else the alert."""
    if v.ledger is None or v.manifest is None:
        return "the new snapshot could not be read"
    why = consistent_with(v.ledger, prev.size, prev.root)
    if why is not None:
        return (
            f"snapshot {v.manifest.number} rewrites history: {why} "
            f"(snapshot {prev.number} was seen with that root)"
        )
    walk = v.walk
    if walk is not None:
        rec = next((r for r in walk.snapshots if r.number == prev.number), None)
        if rec is None:
            return (
                f"snapshot {v.manifest.number}'s ledger has no record of snapshot {prev.number}, "
                "which was seen"
            )
        if rec.manifest_sha256 != prev.manifest_sha256:
            return (
                f"the ledger records snapshot {prev.number}'s manifest as {rec.manifest_sha256}, but "
                f"{prev.manifest_sha256} was seen: snapshot {prev.number} was replaced after it was read"
            )
    return None


def watch(
    spec: str,
    interval: float,
    max_polls: int | None,
    workers: int | None,
    on_report: Callable[[Report], None],
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> WatchOutcome:
    prev: Seen | None = None
    verified: list[int] = []
    polls = 0
    last: Report | None = None
    while max_polls is None or polls < max_polls:
        if polls:
            sleep(interval)
        polls += 1
        try:
            number, sha = _manifest_sha(spec)
        except (SourceError, FileMissing) as exc:
            if prev is None:
                return WatchOutcome(2, polls, verified, f"cannot read {spec}: {exc}")
            say(f"poll {polls}: cannot read the site ({exc}); trying again")
            continue
        if prev is not None and number is not None:
            if number < prev.number:
                return WatchOutcome(
                    1,
                    polls,
                    verified,
                    f"the current snapshot went back from {prev.number} to "
                    f"{number}: published history was withdrawn",
                    last,
                )
            if number == prev.number:
                if sha != prev.manifest_sha256:
                    return WatchOutcome(
                        1,
                        polls,
                        verified,
                        f"snapshot {number} changed after publication: its "
                        f"manifest was {prev.manifest_sha256}, now {sha}",
                        last,
                    )
                say(f"poll {polls}: snapshot {number} unchanged")
                continue
        try:
            v = verify_opened(open_source(spec), workers)
        except SourceError as exc:
            say(f"poll {polls}: cannot read the site ({exc}); trying again")
            continue
        except WorkerDied as exc:
            return WatchOutcome(2, polls, verified, f"verification did not finish: {exc}", last)
        last = v.report
        on_report(v.report)
        if v.manifest is None or v.ledger is None:
            return WatchOutcome(1, polls, verified, "the new snapshot has no usable manifest", last)
        if prev is not None:
            alert = check_extends(prev, v)
            if alert is not None:
                return WatchOutcome(1, polls, verified, alert, last)
        if not v.report.ok:
            return WatchOutcome(
                1, polls, verified, f"snapshot {v.manifest.number}: {v.report.summary()}", last
            )
        verified.append(v.manifest.number)
        prev = Seen(v.manifest.number, v.manifest.sha256, v.ledger.size, v.ledger.root())
        say(f"poll {polls}: snapshot {v.manifest.number} verified; it extends every snapshot seen before")
    return WatchOutcome(0, polls, verified, None, last)

"""Recompute the status of every risk-limiting audit recorded in the ledger.

Audit entries carry ``{"audit": "macro", "contest", "action", "state"}`` where ``state`` is the
whole MACRO audit (``tallyroom.audit.macro.MacroAudit``). For each contest's audit:

* the state re-validates (margins and error bounds follow from the reported counts);
* at ``start`` the reported batches are exactly the machine-count protocols in force at that
  point of the ledger, and the assertions are the ones the reported outcome rests on;
* later entries keep seed, risk limit, batches and assertions, and only add rounds and counts;
* every round's draws are re-drawn from the public seed and must be the same;
* the final status (confirmed, continue, full hand count …) is recomputed and reported.
"""

from __future__ import annotations

import json
from typing import Any

from tallyroom.definition.compiled import CompiledElection
from tallyroom.verify.bulletin import Ledger
from tallyroom.verify.ledger import AuditEntry
from tallyroom.verify.report import Report, Tally


def check_audits(
    audits: list[AuditEntry], election: CompiledElection, ledger: Ledger, out: Tally, report: Report
) -> None:
    if not audits:
        return
    from tallyroom.audit.from_election import contest_assertions, reported_batches
    from tallyroom.audit.macro import MacroAudit

    latest: dict[str, tuple[int, Any]] = {}
    for a in audits:
        where = ledger.locate(a.index)
        doc = a.doc
        if not isinstance(doc, dict) or doc.get("audit") != "macro":
            out.fail("audit", where, f"entry {a.index}", "not a MACRO audit entry")
            continue
        cid = doc.get("contest")
        if cid not in election.contest_index:
            out.fail("audit", where, f"entry {a.index}", f"audit of unknown contest {cid!r}")
            continue
        try:
            state = MacroAudit.from_json(json.dumps(doc.get("state")))
        except Exception as exc:  # the audit package raises several kinds on bad state
            out.fail("audit", where, f"entry {a.index}", f"the audit state does not re-validate: {exc}")
            continue
        contest = election.contest(cid)
        action = doc.get("action")
        prev = latest.get(cid)
        if action == "start":
            batches = reported_batches(election, contest, a.machine)
            want = {b.batch_id: (b.ballots, dict(b.lines)) for b in batches}
            got = {b.batch_id: (b.ballots, dict(b.lines)) for b in state.batches}
            out.numbers += len(want)
            if got != want:
                diff = sorted(set(got) ^ set(want)) or sorted(k for k in want if got.get(k) != want[k])
                out.fail(
                    "audit",
                    where,
                    f"entry {a.index}",
                    f"the audit's reported batches are not the machine-count protocols in force at this "
                    f"point of the ledger (first differences: {', '.join(diff[:5])})",
                )
            totals: dict[str, int] = {}
            for b in batches:
                for line, v in b.lines.items():
                    totals[line] = totals.get(line, 0) + v
            if tuple(contest_assertions(contest, totals)) != tuple(state.assertions):
                out.fail(
                    "audit",
                    where,
                    f"entry {a.index}",
                    "the audit tests assertions other than the ones the reported outcome rests on",
                )
        elif prev is None:
            out.fail("audit", where, f"entry {a.index}", f"audit {action!r} before any audit start of {cid}")
            continue
        else:
            before = prev[1]
            same = (before.seed, before.risk_limit, before.batches, before.assertions) == (
                state.seed,
                state.risk_limit,
                state.batches,
                state.assertions,
            )
            extends = (
                state.rounds[: len(before.rounds)] == before.rounds
                and state.audited[: len(before.audited)] == before.audited
            )
            if not same or not extends:
                out.fail(
                    "audit",
                    where,
                    f"entry {a.index}",
                    "the audit changed its seed, risk limit, batches or assertions, or dropped "
                    "earlier rounds or hand counts",
                )
        replay = MacroAudit.start(
            state.risk_limit, state.seed, state.assertions, state.batches, resolution=state.resolution
        )
        for r in state.rounds:
            replay = replay.draw_round(len(r.draws))
            out.numbers += len(r.draws)
            if replay.rounds[-1].draws != r.draws:
                out.fail(
                    "audit",
                    where,
                    f"entry {a.index}",
                    f"round {r.round_number}'s draws are not the ones the public seed {state.seed!r} gives",
                )
                break
        latest[cid] = (a.index, state)
    for cid, (idx, state) in sorted(latest.items()):
        status = state.status()
        p = "—" if status.p_value is None else f"{float(status.p_value):.4f}"
        report.notes.append(
            f"audit of {cid} (ledger entry {idx}): {status.status} after {status.draws} draws, "
            f"P-value {p} at risk limit {float(state.risk_limit) * 100:g}%"
        )

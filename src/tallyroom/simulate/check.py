"""The final check of a simulated night: the server against the ground truth and against
everything its clients were told. Its verdict is `tallyroom simulate`'s exit code.

Checks, each a :class:`Finding` with precise problems (which station, area, line, value):

1. **tally == truth**: the store's running totals, a rebuild from the ledger's bytes alone,
   and the final published snapshot each equal the ground truth (after the night's
   corrections and annulments) for every contest, area and count kind, line by line; every
   counted protocol is the one that should count.
2. **receipts**: every receipt a client received is signed by the commission and its entry is
   in the ledger, proven by an RFC 9162 inclusion proof against the final signed checkpoint.
3. **nothing forged counted**: every protocol in the ledger is signed by its own station's
   device key, and no body that was sent to be refused (forged, misaddressed, broken,
   unbalanced) is in the ledger.
4. **publishing**: no publish-gate refusal; every published snapshot's numbers equal a
   rebuild of the ledger prefix it names and keep every invariant (choices ≤ valid ≤ ballots
   ≤ registered, shares ≤ 100% of their stated base, exact percentages).
5. **journal**: every answer a client received is in the intake journal with the same status
   and reason.
6. **answers**: every answer was the one its fault must get (checked as they came).
7. **verify**: ``tallyroom verify`` passes on the final snapshot (when that command exists).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing

from tallyroom.commission import origin_of
from tallyroom.definition.compiled import CompiledElection
from tallyroom.intake.receipts import ReceiptError, verify_receipt
from tallyroom.intake.signature import DeviceKey
from tallyroom.ledger.checkpoint import CheckpointError, verify_checkpoint
from tallyroom.ledger.entry import EntryKind, decode_entry
from tallyroom.ledger.merkle import MemoryNodes, ProofError, inclusion_proof, leaf_hash, verify_inclusion
from tallyroom.protocol.pending import split_payload
from tallyroom.simulate.night import Observations
from tallyroom.simulate.plan import ProtoKey
from tallyroom.store import intake as db
from tallyroom.store.sql import Store
from tallyroom.tally.rebuild import RebuildError, rebuild
from tallyroom.tally.report import percent
from tallyroom.tally.running import Tally, TallyKey, Totals

#: Problems listed per check (the rest are counted).
SHOW = 12


@dataclass
class Finding:
    name: str
    ok: bool
    summary: str
    problems: list[str] = field(default_factory=list)
    more: int = 0

    def add(self, problem: str) -> None:
        self.ok = False
        if len(self.problems) < SHOW:
            self.problems.append(problem)
        else:
            self.more += 1

    def lines(self) -> list[str]:
        mark = "ok  " if self.ok else "FAIL"
        out = [f"  {mark} {self.name}: {self.summary}"]
        out += [f"         - {p}" for p in self.problems]
        if self.more:
            out.append(f"         … and {self.more:,} more")
        return out


@dataclass
class CheckReport:
    findings: list[Finding]
    lost: int = 0
    forged_accepted: int = 0
    tally_equal: bool = False

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def lines(self) -> list[str]:
        return [line for f in self.findings for line in f.lines()]


class Published:
    """The published site: a publish folder, or the same files over HTTP."""

    def __init__(self, folder: Path | None = None, url: str | None = None) -> None:
        self.folder = folder
        self.url = url.rstrip("/") if url else None

    def read(self, rel: str) -> bytes | None:
        if self.folder is not None:
            try:
                return (self.folder / rel).read_bytes()
            except OSError:
                return None
        assert self.url is not None
        try:
            with urllib.request.urlopen(f"{self.url}/{rel}", timeout=60) as resp:
                data: bytes = resp.read()
                return data
        except (urllib.error.URLError, OSError):
            return None

    def json(self, rel: str) -> Any:
        data = self.read(rel)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    def snapshots(self) -> list[int]:
        """Every published snapshot (a folder lists them all; over HTTP only the current one)."""
        if self.folder is not None:
            folder = self.folder / "snapshots"
            if not folder.exists():
                return []
            return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
        cur = self.json("current.json")
        return [int(cur["snapshot"])] if isinstance(cur, dict) and "snapshot" in cur else []

    def refusals(self) -> list[dict[str, Any]]:
        if self.folder is None or not (self.folder / "refusals").exists():
            return []
        out = []
        for p in sorted((self.folder / "refusals").glob("*.json")):
            try:
                out.append(json.loads(p.read_bytes()))
            except (OSError, ValueError):
                out.append(
                    {"file": p.name, "failures": [{"check": "unreadable", "where": "", "message": ""}]}
                )
        return out

    def describe(self) -> str:
        return str(self.folder) if self.folder is not None else str(self.url)


# -- the truth as a tally --------------------------------------------------------------------


def truth_tally(election: CompiledElection, final: Mapping[ProtoKey, Mapping[str, int]]) -> Tally:
    tally = Tally(election)
    tally.apply_batch(
        (election.contest_index[c], election.station_index[s], k, counts_of(election, c, lines))
        for (s, c, k), lines in final.items()
    )
    return tally


def counts_of(election: CompiledElection, contest: str, lines: Mapping[str, int]) -> list[int]:
    ids = election.contest(contest).line_ids
    return [int(lines.get(i, 0)) for i in ids]


def _where(election: CompiledElection, key: TallyKey) -> str:
    return f"{election.contests[key.contest].id} / {election.areas[key.area].id} / {key.count_kind}"


def compare_tallies(
    election: CompiledElection,
    got: Mapping[TallyKey, Totals],
    truth: Mapping[TallyKey, Totals],
    what: str,
    finding: Finding,
) -> int:
    """Add a problem per (contest, area, kind) where ``got`` differs; returns how many."""
    bad = 0
    for key in sorted(set(got) | set(truth)):
        g, t = got.get(key), truth.get(key)
        g_counts = g.counts if g is not None else None
        t_counts = t.counts if t is not None else None
        g_rep = g.reporting if g is not None else 0
        t_rep = t.reporting if t is not None else 0
        if g_counts == t_counts and g_rep == t_rep:
            continue
        if (g is None or not any(g.counts)) and (t is None or not any(t.counts)) and g_rep == t_rep:
            continue
        bad += 1
        ids = election.contests[key.contest].line_ids
        diffs = [
            f"{ids[i]} {a:,} (truth {b:,})"
            for i, (a, b) in enumerate(
                zip(g_counts or [0] * len(ids), t_counts or [0] * len(ids), strict=True)
            )
            if a != b
        ]
        rep = f"{g_rep:,} stations reporting (truth {t_rep:,})" if g_rep != t_rep else ""
        detail = ", ".join([*([rep] if rep else []), *diffs[:4]]) + (" …" if len(diffs) > 4 else "")
        finding.add(f"{what}: {_where(election, key)}: {detail}")
    return bad


# -- the check -------------------------------------------------------------------------------


@dataclass
class CheckInput:
    store: Store
    election: CompiledElection
    final: Mapping[ProtoKey, Mapping[str, int]]
    observations: Observations
    keys: Mapping[str, DeviceKey]
    published: Published | None
    #: Ledger size when the night ended: the final snapshot must cover at least this much.
    night_size: int
    verify_command: Sequence[str] | None = None
    verify_source: str | None = None
    #: More arguments for `tallyroom verify` (the receipts and the observers' copies).
    verify_args: Sequence[str] = ()
    #: Why verify is not run, when it is not (no such command, or not asked for).
    verify_skipped: str = "this tallyroom has no `verify` command yet"
    #: Snapshots compared with a rebuild of their ledger prefix, at most (evenly spread, the
    #: last one always); every snapshot's rows are checked for the invariants.
    max_prefix_checks: int = 40


def final_check(inp: CheckInput) -> CheckReport:
    election = inp.election
    entries = [(idx, kind, data) for idx, kind, data, _leaf in inp.store.entries()]
    truth = truth_tally(election, inp.final).nonzero()
    report = CheckReport([])

    tally = Finding("tally == truth", True, "")
    compare_tallies(election, inp.store.tally().nonzero(), truth, "store tally", tally)
    rebuilt = None
    try:
        rebuilt = rebuild(election, ((i, d) for i, _k, d in entries))
    except RebuildError as exc:
        tally.add(f"the ledger cannot be rebuilt: {exc}")
    if rebuilt is not None:
        compare_tallies(election, rebuilt.tally.nonzero(), truth, "ledger rebuild", tally)
        _compare_protocols(election, rebuilt.active, inp.final, tally)
    published_ok = _check_published_final(inp, truth, tally)
    n_areas = len({(k.contest, k.area, k.count_kind) for k in truth})
    tally.summary = (
        f"{len(inp.final):,} protocols; {n_areas:,} (contest, area, count kind) totals equal in the store, "
        f"the ledger rebuild{' and the final snapshot' if published_ok else ''}"
        if tally.ok
        else "the numbers differ from the ground truth"
    )
    report.tally_equal = tally.ok
    report.findings.append(tally)

    lost, receipts = _check_receipts(inp, entries)
    report.lost = lost
    report.findings.append(receipts)

    forged, signed = _check_signatures(inp, entries)
    report.forged_accepted = forged
    report.findings.append(signed)

    report.findings.append(_check_snapshots(inp, entries))
    report.findings.append(_check_journal(inp))

    answers = Finding("answers", True, "")
    for m in inp.observations.mistakes:
        answers.add(m)
    answers.more = max(0, inp.observations.mistakes_total - len(answers.problems))
    answers.ok = inp.observations.mistakes_total == 0
    answers.summary = (
        "every answer was the one its fault must get"
        if answers.ok
        else f"{inp.observations.mistakes_total:,} unexpected answer(s)"
    )
    report.findings.append(answers)
    report.findings.append(_check_verify(inp))
    return report


def _compare_protocols(
    election: CompiledElection,
    active: Mapping[tuple[int, int, str], tuple[int, list[int]]],
    final: Mapping[ProtoKey, Mapping[str, int]],
    finding: Finding,
) -> None:
    got = {
        (election.stations[s].id, election.contests[c].id, k): (idx, counts)
        for (c, s, k), (idx, counts) in active.items()
    }
    for key in sorted(set(got) | set(final)):
        station, contest, kind = key
        if key not in final:
            finding.add(
                f"station {station} {contest} {kind}: ledger entry {got[key][0]} counts, "
                "but nothing should count there"
            )
            continue
        want = counts_of(election, contest, final[key])
        if key not in got:
            finding.add(f"station {station} {contest} {kind}: nothing counts, but its protocol should")
            continue
        idx, counts = got[key]
        if counts != want:
            ids = election.contest(contest).line_ids
            diffs = [
                f"{ids[i]} {a} (truth {b})"
                for i, (a, b) in enumerate(zip(counts, want, strict=True))
                if a != b
            ]
            finding.add(
                f"station {station} {contest} {kind}: ledger entry {idx} counts " + ", ".join(diffs[:4])
            )


def _rows_of(doc: Any) -> list[dict[str, Any]]:
    rows = doc.get("rows") if isinstance(doc, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _row_totals(
    election: CompiledElection, rows: Iterable[dict[str, Any]], finding: Finding, label: str
) -> dict[TallyKey, Totals]:
    out: dict[TallyKey, Totals] = {}
    for r in rows:
        try:
            contest = election.contest(str(r["contest"]))
            key = TallyKey(contest.index, election.area_index[str(r["area"])], str(r["count_kind"]))
            lines = r["lines"]
            out[key] = Totals([int(lines[i]) for i in contest.line_ids], int(r["stations_reporting"]))
        except (KeyError, TypeError, ValueError) as exc:
            finding.add(f"{label}: a row cannot be read ({exc!r}): {json.dumps(r)[:200]}")
    return out


def _check_published_final(inp: CheckInput, truth: Mapping[TallyKey, Totals], finding: Finding) -> bool:
    pub = inp.published
    if pub is None:
        return False
    cur = pub.json("current.json")
    if not isinstance(cur, dict) or "snapshot" not in cur:
        finding.add(f"nothing is published in {pub.describe()} (no current.json)")
        return False
    n, size = int(cur["snapshot"]), int(cur.get("ledger_size", 0))
    if size < inp.night_size:
        finding.add(
            f"the final snapshot {n} covers {size:,} ledger entries, the night wrote {inp.night_size:,}"
        )
    doc = pub.json(f"snapshots/{n}/data/results.json")
    if doc is None:
        finding.add(f"snapshot {n}: data/results.json is missing or not JSON")
        return False
    got = _row_totals(inp.election, _rows_of(doc), finding, f"snapshot {n}")
    compare_tallies(inp.election, got, truth, f"published snapshot {n}", finding)
    return True


def _check_receipts(inp: CheckInput, entries: Sequence[tuple[int, str, bytes]]) -> tuple[int, Finding]:
    f = Finding("receipts", True, "")
    store = inp.store
    vk = nacl.signing.VerifyKey(bytes.fromhex(str(store.meta("commission_public_key"))))
    origin = origin_of(store)
    latest = db.latest_checkpoint(store)
    unique: dict[tuple[int, str], dict[str, Any]] = {}
    for r in inp.observations.receipts:
        unique.setdefault((r.ledger_index, json.dumps(r.data, sort_keys=True)), r.data)
    if latest is None:
        f.add("the ledger has no signed checkpoint")
        f.summary = "no checkpoint to prove receipts against"
        return len(unique), f
    size, _root, _ts, note = latest
    key_name = next((str(d.get("key_name")) for d in unique.values()), origin)
    try:
        cp = verify_checkpoint(note, key_name, vk, origin=origin)
    except CheckpointError as exc:
        f.add(f"the final checkpoint (size {size:,}) does not verify: {exc}")
        return len(unique), f
    leaves = [leaf_hash(data) for _i, _k, data in entries[: cp.size]]
    if len(leaves) < cp.size:
        f.add(f"the final checkpoint covers {cp.size:,} entries, the ledger holds {len(entries):,}")
        return len(unique), f
    nodes = MemoryNodes(leaves)
    if nodes.root(cp.size) != cp.root:
        f.add(f"the ledger's entries do not hash to the root of the signed checkpoint of size {cp.size:,}")
        return len(unique), f
    lost = 0
    for (idx, _), data in sorted(unique.items()):
        problem = _receipt_problem(data, idx, vk, origin, cp.size, cp.root, nodes, entries)
        if problem is not None:
            lost += 1
            f.add(f"receipt for ledger entry {idx}: {problem}")
    f.summary = (
        f"{len(unique):,} distinct receipts (of {len(inp.observations.receipts):,} received) proven "
        f"in the ledger against the final signed checkpoint (size {cp.size:,}); {lost} lost"
    )
    return lost, f


def _receipt_problem(
    data: dict[str, Any],
    idx: int,
    vk: nacl.signing.VerifyKey,
    origin: str,
    size: int,
    root: bytes,
    nodes: MemoryNodes,
    entries: Sequence[tuple[int, str, bytes]],
) -> str | None:
    try:
        verify_receipt(data, vk, origin)
    except ReceiptError as exc:
        return f"not a valid commission receipt: {exc}"
    if idx >= size:
        return f"beyond the final checkpoint (size {size:,})"
    entry = entries[idx][2]
    leaf = leaf_hash(entry)
    if leaf.hex() != data.get("leaf_hash"):
        return "the ledger entry at that index is not the one the receipt names (leaf hash differs)"
    if hashlib.sha256(entry).hexdigest() != data.get("entry_hash"):
        return "entry hash differs"
    try:
        proof = inclusion_proof(idx, size, nodes)
    except ProofError as exc:
        return f"no inclusion proof: {exc}"
    if not verify_inclusion(leaf, idx, size, proof, root):
        return "the inclusion proof does not lead to the checkpoint's root"
    kind, payload = decode_entry(entry)
    body = payload.partition(b"\n")[2]
    if hashlib.sha256(body).hexdigest() != data.get("body_sha256"):
        return f"the {kind} entry's body is not the body the receipt was issued for"
    return None


def _check_signatures(inp: CheckInput, entries: Sequence[tuple[int, str, bytes]]) -> tuple[int, Finding]:
    f = Finding("nothing forged counted", True, "")
    by_id = {k.key_id: k for k in inp.keys.values()}
    bad = inp.observations.bad_bodies
    forged = 0
    checked = 0
    for idx, kind, data in entries:
        if kind not in (EntryKind.PROTOCOL, EntryKind.CORRECTION):
            continue
        _k, payload = decode_entry(data)
        try:
            head, body = split_payload(payload)
        except ValueError as exc:
            forged += 1
            f.add(f"ledger entry {idx} ({kind}): unreadable: {exc}")
            continue
        envelope = head if kind == EntryKind.PROTOCOL else head.get("device")
        if kind == EntryKind.CORRECTION and not isinstance(envelope, dict):
            continue  # a commission correction or dismissal: signed by two people, not a device
        checked += 1
        problem = _signature_problem(envelope, body, by_id)
        sha = hashlib.sha256(body).hexdigest()
        if problem is None and sha in bad:
            problem = "its body was sent to be refused (forged, misaddressed, broken or unbalanced)"
        if problem is not None:
            forged += 1
            station = _station_of(body)
            f.add(f"ledger entry {idx} ({kind}, station {station}): {problem}")
    f.summary = (
        f"{checked:,} device protocols in the ledger, each signed by its own station's key; "
        f"{len(bad):,} refused bodies, none in the ledger"
        if forged == 0
        else f"{forged:,} forged or invalid protocol(s) accepted"
    )
    return forged, f


def _station_of(body: bytes) -> str:
    try:
        obj = json.loads(body)
    except ValueError:
        return "?"
    return str(obj.get("station", "?")) if isinstance(obj, dict) else "?"


def _signature_problem(envelope: Any, body: bytes, by_id: Mapping[str, DeviceKey]) -> str | None:
    if not isinstance(envelope, dict):
        return "no signature envelope"
    key = by_id.get(str(envelope.get("key_id")))
    if key is None:
        return f"signed with key {envelope.get('key_id')!r}, which is no station device's key"
    try:
        sig = base64.b64decode(str(envelope.get("signature")), validate=True)
        key.signing_key.verify_key.verify(body, sig)
    except (binascii.Error, ValueError, nacl.exceptions.BadSignatureError):
        return f"the signature is not station {key.station}'s signature of these bytes"
    station = _station_of(body)
    if station != key.station:
        return f"signed by station {key.station}'s key, but for station {station}"
    return None


def _check_row(row: dict[str, Any]) -> list[str]:
    """The invariants of one published row (DESIGN invariants 2 and 6)."""
    out = []
    votes = [int(c["votes"]) for c in row.get("choices", [])]
    valid, cast, took, reg = (
        row.get("valid"),
        row.get("ballots_cast"),
        row.get("took_part"),
        row.get("registered"),
    )
    if valid is not None and sum(votes) > valid:
        out.append(f"choices add up to {sum(votes):,}, more than the {valid:,} valid votes")
    if valid is not None and cast is not None and valid > cast:
        out.append(f"{valid:,} valid votes but {cast:,} ballots cast")
    for name, v in (("ballots cast", cast), ("voters who took part", took)):
        if v is not None and reg is not None and v > reg:
            out.append(f"{v:,} {name} but {reg:,} registered")
    base = row.get("percent_base", {}).get("value")
    for c in row.get("choices", []):
        want = percent(int(c["votes"]), int(base or 0))
        if c.get("percent") != want:
            out.append(f"{c.get('id')}: {c.get('percent')}% published, {want}% of the stated base {base}")
        elif want is not None and float(want) > 100:
            out.append(f"{c.get('id')}: {want}% is more than all of its base")
    if row.get("stations_reporting", 0) > row.get("stations_expected", 0):
        out.append(f"{row.get('stations_reporting')} stations reporting of {row.get('stations_expected')}")
    return out


def _check_snapshots(inp: CheckInput, entries: Sequence[tuple[int, str, bytes]]) -> Finding:
    f = Finding("publishing", True, "")
    pub = inp.published
    if pub is None:
        f.summary = "not checked: no publish folder or site"
        return f
    for r in pub.refusals():
        failures = r.get("failures") or []
        first = "; ".join(f"{x.get('check')} {x.get('where')}: {x.get('message')}" for x in failures[:3])
        f.add(f"the publish gate refused a snapshot at ledger size {r.get('ledger_size')}: {first}")
    status = pub.json("status.json")
    if isinstance(status, dict) and status.get("healthy") is False:
        last = json.dumps(status.get("last_attempt"))[:300]
        f.add(f"status.json says the last publish attempt failed: {last}")
    numbers = pub.snapshots()
    election = inp.election
    step = max(1, -(-len(numbers) // max(1, inp.max_prefix_checks)))
    rebuild_these = set(numbers[::-1][::step])
    rebuilt_n = 0
    checked_rows = 0
    previous_size = -1
    for n in numbers:
        doc = pub.json(f"snapshots/{n}/data/results.json")
        if doc is None:
            f.add(f"snapshot {n}: data/results.json is missing or not JSON")
            continue
        size = int(doc.get("snapshot", {}).get("ledger_size", -1))
        if size < previous_size:
            f.add(
                f"snapshot {n} covers {size:,} entries, fewer than the snapshot before it ({previous_size:,})"
            )
        previous_size = max(previous_size, size)
        rows = _rows_of(doc)
        for row in rows:
            for problem in _check_row(row):
                where = f"{row.get('contest')} / {row.get('area')} / {row.get('count_kind')}"
                f.add(f"snapshot {n}: {where}: {problem}")
        checked_rows += len(rows)
        if n not in rebuild_these:
            continue
        rebuilt_n += 1
        if 0 <= size <= len(entries):
            try:
                prefix = rebuild(election, ((i, d) for i, _k, d in entries[:size])).tally.nonzero()
            except RebuildError as exc:
                f.add(f"snapshot {n}: its ledger prefix cannot be rebuilt: {exc}")
                continue
            got = _row_totals(election, rows, f, f"snapshot {n}")
            compare_tallies(election, got, prefix, f"snapshot {n} vs its ledger prefix of {size:,}", f)
        else:
            f.add(f"snapshot {n} claims {size:,} ledger entries; the ledger has {len(entries):,}")
    f.summary = (
        f"{len(numbers):,} snapshots ({checked_rows:,} rows) keep every invariant; {rebuilt_n:,} "
        "compared with a rebuild of their ledger prefix: equal; no gate refusal"
        if f.ok
        else "a published snapshot broke an invariant or was refused"
    )
    return f


def _check_journal(inp: CheckInput) -> Finding:
    f = Finding("journal", True, "")
    journal: Counter[tuple[str, int, str]] = Counter()
    after = 0
    while True:
        lines = db.journal_lines(inp.store, None, 10_000, after)
        if not lines:
            break
        for ln in lines:
            sha = ln.get("body_sha256")
            key = f"sha:{sha}" if sha else f"key:{ln.get('key_id') or ''}"
            journal[(key, int(ln["http_status"]), str(ln.get("reason") or ""))] += 1
        after = int(lines[-1]["id"])
    missing = 0
    for (key, status, reason), n in sorted(inp.observations.answers.items()):
        if journal[(key, status, reason)] < n:
            missing += n - journal[(key, status, reason)]
            f.add(
                f"{n} answer(s) {status} {reason or ''} for {key[:20]}… but the journal has "
                f"{journal[(key, status, reason)]}"
            )
    total = sum(inp.observations.answers.values())
    rejected = sum(n for (_k, s, _r), n in inp.observations.answers.items() if s >= 400)
    f.summary = (
        f"all {total:,} answers ({rejected:,} refusals) are in the intake journal "
        f"({sum(journal.values()):,} lines) with the same status and reason"
        if missing == 0
        else f"{missing:,} answer(s) missing from the intake journal"
    )
    return f


def verify_options() -> set[str] | None:
    """The options of this tallyroom's `verify` command (None: it has no such command)."""
    try:
        from tallyroom.cli import main
    except ImportError:
        return None
    command = main.commands.get("verify")
    if command is None:
        return None
    return {opt for p in command.params for opt in getattr(p, "opts", [])}


def write_receipts(path: Path, obs: Observations) -> int:
    """Every distinct receipt received, one JSON object per line (``verify --receipts``)."""
    seen: set[str] = set()
    with path.open("w", encoding="utf-8") as fh:
        for r in obs.receipts:
            line = json.dumps(r.data, sort_keys=True)
            if line not in seen:
                seen.add(line)
                fh.write(line + "\n")
    return len(seen)


def write_copies(path: Path, election: CompiledElection, final: Mapping[ProtoKey, Mapping[str, int]]) -> int:
    """The protocols as observers copied them at the stations (``verify --compare``): the
    truth of every protocol that counts at the end."""
    import csv

    columns: dict[str, None] = {}
    for c in election.contests:
        columns.update(dict.fromkeys(c.line_ids))
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["station", "contest", "count_kind", *columns])
        for (station, contest, kind), lines in sorted(final.items()):
            w.writerow([station, contest, kind, *(lines.get(c, "") for c in columns)])
    return len(final)


def _check_verify(inp: CheckInput) -> Finding:
    f = Finding("tallyroom verify", True, "")
    if inp.verify_command is None or inp.verify_source is None:
        f.summary = f"not run: {inp.verify_skipped if inp.verify_command is None else 'nothing published'}"
        return f
    cmd = [*inp.verify_command, "verify", *inp.verify_args, inp.verify_source]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = done.stdout.strip().splitlines()
    tail = out[-1] if out else ""
    if done.returncode != 0:
        shown = [ln.lstrip("✗ ").strip() for ln in out if ln.startswith("✗")]
        for line in shown or (done.stderr.strip() or done.stdout.strip())[-600:].splitlines()[-5:]:
            f.add(line)
        f.summary = f"`tallyroom verify {inp.verify_source}` exited {done.returncode}: {tail}"
    else:
        f.summary = tail or "passed"
    return f

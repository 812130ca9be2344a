"""The publish gate: nothing is published that does not add up (DESIGN invariant 2).

Before a snapshot goes live the gate

1. checks that the ledger prefix hashes to the root of the checkpoint the snapshot carries,
   and that entry 0 is the definition the snapshot names;
2. recomputes every total from the ledger bytes alone (:func:`tallyroom.tally.rebuild.rebuild`),
   independently of the running tally, and checks the structural invariants on it
   (:func:`tallyroom.tally.invariants.check_tally`);
3. compares the running tally with the recomputed one;
4. compares **every published number** — each area row and each station protocol produced by
   the display step (:mod:`.results`) — with the same row computed from the recomputed tally;
5. checks the published rows themselves, as a reader would: children sum to their parent, line
   by line, in every hierarchy; Σ choices ≤ valid ≤ ballots cast ≤ registered; took part ≤
   registered; every share ≤ 100% of its stated base and equal to votes ÷ base; shares of one
   base sum to at most 100% (plus rounding); stations reporting ≤ expected.

Any failure refuses the snapshot. Each failure names the check, the contest, area and count
kind, and the numbers involved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tallyroom.definition.compiled import CompiledElection
from tallyroom.publish.ledger_view import LedgerPrefix, definition_bytes, protocol_entries
from tallyroom.publish.results import (
    Results,
    Row,
    area_rows,
    published_kinds,
    station_protocols,
)
from tallyroom.tally.invariants import check_row, check_tally
from tallyroom.tally.rebuild import RebuildError, Rebuilt, rebuild
from tallyroom.tally.report import ChoiceResult, TallyRow, percent
from tallyroom.tally.running import Tally

#: At most this many failures are recorded per check (the first ones, in a stable order).
MAX_PER_CHECK = 50


@dataclass(frozen=True, slots=True)
class GateFailure:
    check: str
    where: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "where": self.where, "message": self.message}

    def __str__(self) -> str:
        return f"{self.check} [{self.where}]: {self.message}"


@dataclass
class GateReport:
    failures: list[GateFailure]
    rebuilt: Rebuilt | None
    checked_rows: int = 0
    checked_protocols: int = 0
    checked_numbers: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_rows": self.checked_rows,
            "checked_protocols": self.checked_protocols,
            "checked_numbers": self.checked_numbers,
            "failures": [f.to_dict() for f in self.failures],
        }


class _Collector:
    def __init__(self) -> None:
        self.failures: list[GateFailure] = []
        self._counts: dict[str, int] = {}

    def add(self, check: str, where: str, message: str) -> None:
        n = self._counts.get(check, 0)
        self._counts[check] = n + 1
        if n < MAX_PER_CHECK:
            self.failures.append(GateFailure(check, where, message))


def _where(key: tuple[str, str, str]) -> str:
    return " / ".join(key)


def _numbers(row: Row) -> int:
    return 10 + len(row.get("choices", ())) * 2 + len(row.get("lines", {}))


@dataclass
class GateMemo:
    """What a long-running publisher may remember between snapshots: station records the gate
    computed itself (by leaf hash: a pure function of the entry's bytes) and the leaf hashes
    whose records passed every check. ``commit()`` only after the snapshot was published."""

    stations: dict[bytes, Row] = field(default_factory=dict)
    checked: set[bytes] = field(default_factory=set)
    pending: set[bytes] = field(default_factory=set)

    def commit(self) -> None:
        self.checked |= self.pending
        self.pending = set()


def recompute(election: CompiledElection, prefix: LedgerPrefix) -> GateReport:
    """Recompute the tally from the ledger bytes alone (a report that fails if it cannot)."""
    out = _Collector()
    report = GateReport(out.failures, None)
    try:
        report.rebuilt = rebuild(election, prefix.pairs())
    except (RebuildError, ValueError, KeyError) as exc:
        out.add("rebuild", f"size {prefix.size}", f"the ledger cannot be recomputed: {exc}")
    return report


def check(
    election: CompiledElection,
    prefix: LedgerPrefix,
    checkpoint_root: bytes,
    results: Results,
    running: Tally | None,
    rebuilt: Rebuilt,
    memo: GateMemo | None = None,
) -> GateReport:
    """Run every check on the published ``results``; publish only if ``report.ok``.

    ``rebuilt`` comes from :func:`recompute` over the same prefix; ``checkpoint_root`` is the
    root the snapshot's checkpoint will certify.
    """
    out = _Collector()
    report = GateReport(out.failures, rebuilt)
    # 1. The ledger prefix is the one the checkpoint certifies.
    root = prefix.root()
    if root != checkpoint_root:
        out.add(
            "ledger-root",
            f"size {prefix.size}",
            f"entries hash to {root.hex()}, the checkpoint says {checkpoint_root.hex()}",
        )
    if election.sha256 != hashlib.sha256(definition_bytes(prefix)).hexdigest():
        out.add("definition", "entry 0", "entry 0 is not the definition the snapshot names")
    # 2. The recomputed tally keeps the structural invariants.
    stations = {k: v[1] for k, v in rebuilt.active.items()}
    for f in check_tally(election, rebuilt.tally, stations):
        out.add(f.invariant, f"{f.contest} / {f.area} / {f.count_kind}", f"recomputed tally: {f.message}")
    # 3. The running tally equals the recomputed one.
    if running is not None:
        mine, fresh = running.nonzero(), rebuilt.tally.nonzero()
        for key in sorted(set(mine) | set(fresh)):
            a, b = mine.get(key), fresh.get(key)
            if a is None or b is None or a.counts != b.counts or a.reporting != b.reporting:
                where = (
                    f"{election.contests[key.contest].id} / {election.areas[key.area].id} / {key.count_kind}"
                )
                out.add(
                    "running-tally-equals-ledger",
                    where,
                    "the running tally differs from the tally recomputed from the ledger",
                )
    # 4. Every published number equals the recomputed one.
    kinds = published_kinds(election, {k[2] for k in rebuilt.active})
    if kinds != results.kinds:
        out.add("count-kinds", "election", f"published kinds {results.kinds} ≠ {kinds}")
    expected_rows = area_rows(election, rebuilt.tally, kinds)
    _compare(out, "published-equals-recomputed", expected_rows, results.rows)
    memo = memo if memo is not None else GateMemo()
    entries = protocol_entries(election, prefix, rebuilt.active)
    expected_stations = station_protocols(election, entries, memo.stations)
    _compare(out, "published-protocol-equals-ledger", expected_stations, results.stations)
    # 5. The published rows add up by themselves. A station record equal to its recomputed
    # record that already passed these checks in an earlier snapshot need not be checked again.
    for rkey, row in results.rows.items():
        for name, message in check_published_row(row):
            out.add(name, _where(rkey), message)
    leaf = {
        (election.contests[p.contest].id, election.stations[p.station].id, p.count_kind): p.leaf_hash
        for p in entries
    }
    for rkey, row in results.stations.items():
        h = leaf.get(rkey)
        if h is not None and h in memo.checked and row == expected_stations.get(rkey):
            continue
        problems = check_published_row(row)
        for name, message in problems:
            out.add(name, _where(rkey), message)
        if h is not None and not problems and row == expected_stations.get(rkey):
            memo.pending.add(h)
    for f2 in children_sum(election, results):
        out.add("children-sum-to-parent", f2[0], f2[1])
    report.checked_rows = len(results.rows)
    report.checked_protocols = len(results.stations)
    report.checked_numbers = sum(map(_numbers, results.rows.values())) + sum(
        map(_numbers, results.stations.values())
    )
    return report


def _diff(expected: Any, got: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(got, dict):
        out: list[str] = []
        for k in sorted(set(expected) | set(got), key=str):
            if k not in got:
                out.append(f"{path}{k} missing")
            elif k not in expected:
                out.append(f"{path}{k} unexpected")
            else:
                out.extend(_diff(expected[k], got[k], f"{path}{k}."))
        return out
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{path.rstrip('.')} has {len(got)} items, expected {len(expected)}"]
        out = []
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            label = a.get("id", i) if isinstance(a, dict) else i
            out.extend(_diff(a, b, f"{path}{label}."))
        return out
    if expected != got:
        return [f"{path.rstrip('.')} is {got!r}, recomputed {expected!r}"]
    return []


def _compare(
    out: _Collector,
    check: str,
    expected: Mapping[tuple[str, str, str], Row],
    published: Mapping[tuple[str, str, str], Row],
) -> None:
    for key in sorted(set(expected) | set(published)):
        if key not in published:
            out.add(check, _where(key), "missing from the published data")
        elif key not in expected:
            out.add(check, _where(key), "published but not in the ledger")
        elif expected[key] != published[key]:
            diffs = _diff(expected[key], published[key])
            out.add(check, _where(key), "; ".join(diffs[:6]))


def _order(row: Row) -> list[tuple[str, str]]:
    out = []
    choices = sum(int(c["votes"]) for c in row["choices"])
    chain = [
        ("choices-le-valid", "Σ choices", choices, "valid", row["valid"]),
        ("valid-le-ballots-cast", "valid", row["valid"], "ballots cast", row["ballots_cast"]),
        ("ballots-cast-le-registered", "ballots cast", row["ballots_cast"], "registered", row["registered"]),
        ("took-part-le-registered", "took part", row["took_part"], "registered", row["registered"]),
    ]
    for name, a_label, a, b_label, b in chain:
        if a is not None and b is not None and a > b:
            out.append((name, f"{a_label} {a:,} > {b_label} {b:,}"))
    return out


def check_published_row(row: Row) -> list[tuple[str, str]]:
    """Check one published row on its own numbers (no recomputation from the ledger)."""
    out = _order(row)
    base = row["percent_base"]
    trow = TallyRow(
        contest=row["contest"],
        area=str(row.get("area", row.get("station", ""))),
        area_name=row.get("area_name", ""),
        count_kind=row["count_kind"],
        stations_reporting=row["stations_reporting"],
        stations_expected=row["stations_expected"],
        registered=row["registered"],
        took_part=row["took_part"],
        ballots_cast=row["ballots_cast"],
        valid=row["valid"],
        invalid=row["invalid"],
        turnout_percent=row["turnout_percent"],
        percent_base=base["figure"],
        percent_base_value=base["value"],
        choices=tuple(
            ChoiceResult(c["id"], c["name"], c["votes"], c["percent"], c["percent_base"], c["against_all"])
            for c in row["choices"]
        ),
        lines=row["lines"],
    )
    seen = {name for name, _ in out}
    for f in check_row(trow):
        if f.invariant not in seen:
            out.append((f.invariant, f.message))
    # The base and the turnout are the figures they claim to be.
    fig = base["figure"]
    if base["value"] != row.get(fig, base["value"]):
        out.append(("base-is-stated-figure", f"base {base['value']:,} ≠ {fig} {row.get(fig)}"))
    turnout_num = row["took_part"] if row["took_part"] is not None else row["ballots_cast"]
    want = percent(turnout_num or 0, row["registered"] or 0)
    if row["turnout_percent"] != want:
        out.append(("turnout-matches", f"turnout {row['turnout_percent']}% ≠ {want}%"))
    want = percent(row["stations_reporting"], row["stations_expected"])
    if row.get("stations_reporting_percent", want) != want:
        out.append(
            ("reporting-percent-matches", f"{row['stations_reporting_percent']}% of stations ≠ {want}%")
        )
    lines = row["lines"]
    for c in row["choices"]:
        if lines.get(c["id"]) != c["votes"]:
            out.append(("choice-equals-line", f"{c['id']} {c['votes']:,} ≠ line {lines.get(c['id'])}"))
    return out


def children_sum(election: CompiledElection, results: Results) -> list[tuple[str, str]]:
    """Each published area row equals the sum of its published children and station records."""
    out: list[tuple[str, str]] = []
    direct: dict[int, list[int]] = {}
    for si in range(len(election.stations)):
        for a in election.station_direct[si]:
            direct.setdefault(a, []).append(si)
    rows, stations = results.rows, results.stations
    for contest in election.contests:
        width = len(contest.line_ids)
        for kind in results.kinds.get(contest.id, ()):
            for area in contest.stations_expected:
                got = rows.get((contest.id, election.areas[area].id, kind))
                if got is None:
                    continue
                total = [0] * width
                reporting = 0
                parts: list[Row] = []
                for child in election.children[area]:
                    r = rows.get((contest.id, election.areas[child].id, kind))
                    if r is not None:
                        parts.append(r)
                for si in direct.get(area, ()):
                    r = stations.get((contest.id, election.stations[si].id, kind))
                    if r is not None:
                        parts.append(r)
                for r in parts:
                    vals = r["lines"]
                    for i, lid in enumerate(contest.line_ids):
                        total[i] += int(vals.get(lid, 0))
                    reporting += int(r["stations_reporting"])
                mine = [int(got["lines"].get(lid, 0)) for lid in contest.line_ids]
                if mine != total:
                    diffs = [
                        f"{lid} {a:,} ≠ {b:,}"
                        for lid, a, b in zip(contest.line_ids, mine, total, strict=True)
                        if a != b
                    ]
                    out.append(
                        (
                            _where((contest.id, election.areas[area].id, kind)),
                            "total ≠ sum of its published parts: " + "; ".join(diffs[:5]),
                        )
                    )
                if got["stations_reporting"] != reporting:
                    out.append(
                        (
                            _where((contest.id, election.areas[area].id, kind)),
                            f"stations reporting {got['stations_reporting']} ≠ {reporting} "
                            "in its published parts",
                        )
                    )
    return out


def check_files(root: Path, results: Results) -> list[str]:
    """Read the written JSON back and compare it with the checked rows.

    Checks ``data/results.json`` (every row and station record) and every per-row file
    ``api/v1/results/<contest>/<kind>/<area>.json`` present in the snapshot folder.
    """
    import msgspec

    problems: list[str] = []
    doc = msgspec.json.decode((root / "data" / "results.json").read_bytes())
    rows = {(r["contest"], r["area"], r["count_kind"]): r for r in doc["rows"]}
    if rows != results.rows:
        problems.append("data/results.json rows differ from the checked rows")
    seen = 0
    for rel in doc["station_files"]:
        for r in msgspec.json.decode((root / rel).read_bytes())["stations"]:
            seen += 1
            want = results.stations.get((r["contest"], r["station"], r["count_kind"]))
            if want is None or want["lines"] != r["lines"] or want["ledger_index"] != r["ledger_index"]:
                problems.append(f"{rel}: station {r['station']} differs from the checked record")
                break
    if seen != len(results.stations):
        problems.append(f"the station files hold {seen} records, {len(results.stations)} were checked")
    for (cid, aid, kind), row in results.rows.items():
        path = root / "api" / "v1" / "results" / cid / kind / f"{aid}.json"
        if msgspec.json.decode(path.read_bytes()) != row:
            problems.append(f"{path.relative_to(root)} differs from the checked row")
    return problems

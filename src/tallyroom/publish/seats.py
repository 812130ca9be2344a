"""Seats shown on the site: a projection from the gate-checked rows, through ``tallyroom.seats``.

Seats are computed from the published rows (never from anything the gate did not check), with
the contest's allocation rules from the definition. A projection on an incomplete count, or on
a count kind that is not the official one, is labelled provisional (issue 3: official seats
come only from the count kind the definition declares official, with every station in).
"""

from __future__ import annotations

from typing import Any

from tallyroom.definition.compiled import CompiledContest, CompiledElection
from tallyroom.definition.model import ContestKind
from tallyroom.publish.results import Results, Row
from tallyroom.tally.report import BASE_WORDS, percent

try:  # the seats package is finished in parallel; without it the site shows no projection
    from tallyroom import seats as _seats
except ImportError:  # pragma: no cover
    _seats = None  # type: ignore[assignment]


def _status(row: Row) -> tuple[bool, dict[str, int]]:
    complete = row["stations_reporting"] == row["stations_expected"]
    return (not (complete and row["official"])), {
        "stations_reporting": row["stations_reporting"],
        "stations_expected": row["stations_expected"],
    }


def projection(
    election: CompiledElection, contest: CompiledContest, kind: str, results: Results
) -> dict[str, Any] | None:
    """The seat projection of one contest for one count kind, or None without rules."""
    rules = contest.contest.allocation
    if rules is None or _seats is None:
        return None
    root = contest.contest.area
    row = results.rows.get((contest.id, root, kind))
    if row is None:
        return None
    provisional, stations = _status(row)
    out: dict[str, Any] = {
        "contest": contest.id,
        "count_kind": kind,
        "official": row["official"],
        "provisional": provisional,
        **stations,
        "method": rules.method,
        "seats_total": rules.seats,
        "status": "ok",
        "message": None,
        "parties": [],
        "allocation": None,
    }
    if row["stations_reporting"] == 0:
        out["status"] = "no-data"
        out["message"] = "no station has reported yet"
        return out
    votes = {c["id"]: c["votes"] for c in row["choices"]}
    against = [c["id"] for c in row["choices"] if c["against_all"]]
    prov = (
        _seats.Provisional(row["stations_reporting"], row["stations_expected"])
        if provisional and row["stations_expected"] > 0
        else None
    )
    try:
        if contest.contest.kind == ContestKind.CANDIDATES or rules.method == "plurality":
            base_value = row["percent_base"]["value"] or 0
            base = (
                _seats.Base(BASE_WORDS.get(row["percent_base"]["figure"], "base"), base_value)
                if base_value > 0
                else None
            )
            result = _seats.plurality(
                votes,
                against_all=against[0] if against else None,
                base=base,
                contest=contest.id,
                provisional=prov,
            )
            out["allocation"] = result.to_json_dict()
            out["outcome"] = result.outcome.value
            out["winner"] = result.winner
            out["leader"] = result.leader
            out["parties"] = [
                {
                    "id": c["id"],
                    "votes": c["votes"],
                    "seats": 1 if c["id"] == result.winner else 0,
                    "status": "elected" if c["id"] == result.winner else "",
                }
                for c in row["choices"]
            ]
            return out
        thresholds, notes = _thresholds(election, contest, kind, results, row)
        allocation = _seats.allocate(
            votes,
            rules.seats,
            rules.method,
            thresholds=thresholds,
            cap=rules.cap,
            against_all=against,
            provisional=prov,
        )
    except _seats.NoEligibleChoicesError as exc:
        out["status"] = "no-eligible"
        out["message"] = str(exc)
        return out
    except _seats.SeatsError as exc:
        out["status"] = "error"
        out["message"] = str(exc)
        return out
    out["allocation"] = allocation.to_json_dict()
    out["notes"] = notes
    out["parties"] = _parties(row, allocation, rules.regional_threshold is not None)
    return out


def _thresholds(
    election: CompiledElection, contest: CompiledContest, kind: str, results: Results, row: Row
) -> tuple[list[Any], list[str]]:
    assert _seats is not None
    rules = contest.contest.allocation
    assert rules is not None
    notes: list[str] = []
    out: list[Any] = []
    fig = str(rules.threshold_base)
    label = BASE_WORDS.get(fig, fig)
    if rules.threshold_percent is not None:
        value = row.get(fig) or 0
        if value > 0:
            out.append(_seats.PercentThreshold(rules.threshold_percent, _seats.Base(label, value)))
    if rules.regional_threshold is not None:
        regions = []
        for aid in rules.regional_threshold.areas:
            r = results.rows.get((contest.id, aid, kind))
            value = 0 if r is None else (r.get(fig) or 0)
            if r is None or value <= 0:
                notes.append(f"no {label} yet in {aid}: its regional threshold is not applied")
                continue
            regions.append(
                _seats.Region(aid, {c["id"]: c["votes"] for c in r["choices"]}, _seats.Base(label, value))
            )
        if regions:
            out.append(_seats.RegionalThreshold(rules.regional_threshold.percent, regions))
    return out, notes


def _parties(row: Row, allocation: Any, regional: bool) -> list[dict[str, Any]]:
    checks = allocation.explanation.thresholds
    by_choice: dict[str, list[Any]] = {}
    for chk in checks:
        by_choice.setdefault(chk.choice, []).append(chk)
    out = []
    for c in sorted(row["choices"], key=lambda c: (-c["votes"], c["id"])):
        mine = by_choice.get(c["id"], [])
        national = [k for k in mine if k.region is None]
        region_checks = [k for k in mine if k.region is not None]
        failed = [k.region for k in region_checks if not k.passed]
        lowest = min(region_checks, key=lambda k: k.share) if region_checks else None
        entry: dict[str, Any] = {
            "id": c["id"],
            "votes": c["votes"],
            "seats": allocation.seats.get(c["id"], 0),
            "status": next(
                (ln.status.value for ln in allocation.explanation.lines if ln.name == c["id"]), ""
            ),
            "against_all": c["against_all"],
            "national_percent": None,
            "national_required_percent": None,
            "national_passed": None,
            "regions_total": len(region_checks) if regional else None,
            "regions_passed": sum(1 for k in region_checks if k.passed) if regional else None,
            "regions_failed": failed,
            "lowest_region": None,
        }
        if national:
            k = national[0]
            assert k.base is not None
            entry["national_percent"] = percent(k.value, k.base.value)
            entry["national_required_percent"] = _plain(k.percent)
            entry["national_passed"] = k.passed
            entry["base"] = {"label": k.base.label, "value": k.base.value}
        if lowest is not None:
            assert lowest.base is not None
            entry["lowest_region"] = {
                "area": lowest.region,
                "percent": percent(lowest.value, lowest.base.value),
                "required_percent": _plain(lowest.percent),
            }
        out.append(entry)
    return out


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    from tallyroom.seats.exact import decimal_text

    text: str = decimal_text(value) if value.denominator != 1 else str(value.numerator)
    return text.rstrip("0").rstrip(".") if "." in text else text


def all_projections(election: CompiledElection, results: Results) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for contest in election.contests:
        for kind in results.kinds.get(contest.id, ()):
            p = projection(election, contest, kind, results)
            if p is not None:
                out[(contest.id, kind)] = p
    return out

"""Compare the published JSON with the recomputed numbers (docs/bulletin.md §7, §9, §12).

Every number in ``data/results.json``, the station files, the per-row and per-seat API files
and the pages' JSON twins is compared with its recomputed value; each difference is reported
with the file, the JSON path, both values and the reason.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from tallyroom.verify.expected import FIGURES, Expected, Row, RowKey, StationKey
from tallyroom.verify.numbers import percent
from tallyroom.verify.report import Tally

_MISSING = object()
ROW_FIELDS = (
    "area",
    "area_name",
    "contest",
    "count_kind",
    "official",
    "stations_reporting",
    "stations_expected",
    "stations_reporting_percent",
    *FIGURES,
    "turnout_percent",
)


def _get(d: Any, k: str) -> Any:
    return d.get(k, _MISSING) if isinstance(d, dict) else _MISSING


def _p(label: str) -> str:
    return f"{label} › " if label else ""


def _val(v: Any) -> Any:
    return "(missing)" if v is _MISSING else v


def compare_row(
    out: Tally,
    ex: Expected,
    key: RowKey,
    file: str,
    label: str,
    exp: Row,
    got: Any,
    check: str,
    fields: tuple[str, ...] = ROW_FIELDS,
) -> None:
    """One area row (or a station's figures) field by field, choices and lines included."""
    if not isinstance(got, dict):
        out.fail(check, file, label, "not a row object")
        return
    for f in fields:
        if f not in exp:
            continue
        out.numbers += 1
        g = _get(got, f)
        if g != exp[f]:
            out.add(check, file, f"{_p(label)}{f}", _val(g), exp[f], ex.why(key, f))
    pb, gpb = exp["percent_base"], _get(got, "percent_base")
    for f in ("figure", "value", "words"):
        out.numbers += 1
        g = _get(gpb, f)
        if g != pb[f]:
            out.add(check, file, f"{_p(label)}percent_base.{f}", _val(g), pb[f], ex.why(key, "percent_base"))
    compare_choices(out, ex, key, file, label, exp, _get(got, "choices"), check, ordered=True)
    compare_lines(out, ex, key, file, label, exp["lines"], _get(got, "lines"), check)


def compare_lines(
    out: Tally, ex: Expected, key: RowKey, file: str, label: str, exp: dict[str, int], got: Any, check: str
) -> None:
    if not isinstance(got, dict):
        out.fail(check, file, f"{_p(label)}lines", "missing")
        return
    for lid, v in exp.items():
        out.numbers += 1
        g = got.get(lid, _MISSING)
        if g != v:
            out.add(check, file, f"{_p(label)}lines.{lid}", _val(g), v, ex.why(key, "lines." + lid))
    for lid in got:
        if lid not in exp:
            out.fail(check, file, f"{_p(label)}lines.{lid}", "a line the contest's form does not have")


def compare_choices(
    out: Tally,
    ex: Expected,
    key: RowKey,
    file: str,
    label: str,
    exp: Row,
    got: Any,
    check: str,
    *,
    ordered: bool,
) -> None:
    """Choices: every one present once, votes and share equal; in ballot order if ``ordered``,
    else sorted by votes (most first)."""
    if not isinstance(got, list):
        out.fail(check, file, f"{_p(label)}choices", "missing")
        return
    want = {c["id"]: c for c in exp["choices"]}
    seen: set[str] = set()
    ids = []
    for i, c in enumerate(got):
        cid = _get(c, "id")
        if cid not in want or cid in seen:
            out.fail(
                check,
                file,
                f"{_p(label)}choices[{i}]",
                f"choice {cid!r} is not a choice of this contest, or repeated",
            )
            continue
        seen.add(cid)
        ids.append(cid)
        e = want[cid]
        for f in ("votes", "percent", "name", "percent_base", "against_all"):
            g = _get(c, f)
            if g is _MISSING and f not in ("votes", "percent"):
                continue  # page data carries only some fields
            out.numbers += 1
            if g != e[f]:
                why = ex.why(key, f, cid) if f in ("votes", "percent") else "the definition"
                if f == "percent":
                    why += ex.wrong_base(exp, cid, g)
                out.add(check, file, f"{_p(label)}choices.{cid}.{f}", _val(g), e[f], why)
    for cid in want:
        if cid not in seen:
            out.fail(check, file, f"{_p(label)}choices", f"choice {cid} is missing")
    if ordered:
        order = [c["id"] for c in exp["choices"] if c["id"] in seen]
        if ids != order:
            out.fail(check, file, f"{_p(label)}choices", "not in the definition's ballot order")
    else:
        votes = [want[c]["votes"] for c in ids]
        if any(a < b for a, b in pairwise(votes)):
            out.fail(check, file, f"{_p(label)}choices", "not sorted by votes (most first)")


# -- data/results.json (§7.2) ----------------------------------------------------------------


def check_results(file: str, doc: Any, ex: Expected, snapshot: dict[str, Any], out: Tally) -> None:
    check = "results-json"
    if not isinstance(doc, dict):
        out.fail(check, file, "", "not a JSON object")
        return
    if doc.get("format") != "tallyroom-results/1":
        out.add(check, file, "format", doc.get("format"), "tallyroom-results/1", "docs/bulletin.md §7.2")
    election = doc.get("election") or {}
    for f, want in (("id", ex.election.definition.election.id), ("definition_sha256", ex.election.sha256)):
        if _get(election, f) != want:
            out.add(
                check,
                file,
                f"election.{f}",
                _val(_get(election, f)),
                want,
                "the definition in ledger entry 0",
            )
    if doc.get("snapshot") != snapshot:
        out.add(check, file, "snapshot", doc.get("snapshot"), snapshot, "the snapshot block of manifest.json")
    check_kinds(file, doc.get("kinds"), ex, out, check)
    rows = doc.get("rows")
    if not isinstance(rows, list):
        out.fail(check, file, "rows", "missing")
        rows = []
    got_keys: list[RowKey] = []
    for i, r in enumerate(rows):
        key = (_get(r, "contest"), _get(r, "area"), _get(r, "count_kind"))
        if key not in ex.rows:
            out.fail(
                check,
                file,
                f"rows[{i}]",
                f"row {' / '.join(map(str, key))} should not exist "
                "(no such contest, area and published count kind)",
            )
            continue
        got_keys.append(key)
        compare_row(out, ex, key, file, f"rows[{' / '.join(key)}]", ex.rows[key], r, check)
    missing = set(ex.rows) - set(got_keys)
    for key in sorted(missing)[:50]:
        out.fail(check, file, "rows", f"row {' / '.join(key)} is missing")
    if got_keys != sorted(got_keys):
        out.fail(check, file, "rows", "not sorted by (contest, area, count kind)")
    want_files = [f"data/stations/{g}.json" for g in sorted(ex.groups)]
    if doc.get("station_files") != want_files:
        out.add(
            check,
            file,
            "station_files",
            doc.get("station_files"),
            want_files,
            "one file per region with counted protocols (§7.3)",
        )
    seats = doc.get("seats")
    if not isinstance(seats, list):
        out.fail(check, file, "seats", "missing")
        seats = []
    seen = []
    for doc_seat in seats:
        k = (_get(doc_seat, "contest"), _get(doc_seat, "count_kind"))
        seen.append(k)
        if k not in ex.seats:
            out.fail(
                check,
                file,
                f"seats[{k[0]} / {k[1]}]",
                "a seat projection for a contest without allocation rules",
            )
            continue
        check_seats(out, ex, file, f"seats[{k[0]} / {k[1]}]", ex.seats[k], doc_seat)
    for k in sorted(set(ex.seats) - set(seen)):
        out.fail(check, file, "seats", f"seat projection {k[0]} / {k[1]} is missing")


def check_kinds(file: str, kinds: Any, ex: Expected, out: Tally, check: str) -> None:
    if not isinstance(kinds, dict):
        out.fail(check, file, "kinds", "missing")
        return
    for cid, want in ex.kinds.items():
        got = kinds.get(cid)
        out.numbers += 1
        if not isinstance(got, list) or not got or got[0] != want[0] or sorted(got) != sorted(want):
            out.add(
                check,
                file,
                f"kinds.{cid}",
                got,
                want,
                "the official count kind first, then every kind with a protocol in force (§6)",
            )


def check_station_records(file: str, doc: Any, group: str, ex: Expected, out: Tally) -> None:
    """``data/stations/<region>.json`` (§7.3)."""
    check = "stations-json"
    if not isinstance(doc, dict) or doc.get("format") != "tallyroom-stations-results/1":
        out.fail(check, file, "", "not a tallyroom-stations-results/1 document")
        return
    if doc.get("group") != group:
        out.add(check, file, "group", doc.get("group"), group, "the file's name")
    want = ex.groups.get(group, [])
    # Sets for membership: a region of a 100,000-station night holds tens of thousands of
    # protocols, and list lookups made this check quadratic (minutes per file).
    wanted = set(want)
    got: set[StationKey] = set()
    # What each record must hold is read from the protocol in force, not from its published
    # record (choices and shares): 400,000 of them at 100,000 Kyrgyz-shaped stations.
    in_force, forms = ex.in_force, ex.election.contests
    for i, r in enumerate(doc.get("stations") or []):
        key = (_get(r, "contest"), _get(r, "station"), _get(r, "count_kind"))
        p = in_force.get(key) if key in wanted else None
        if p is not None and isinstance(r, dict):
            lines = dict(zip(forms[p.contest].line_ids, p.counts, strict=True))
            if (
                r.get("ledger_index") == p.index
                and r.get("leaf_hash") == p.leaf.hex()
                and r.get("body_sha256") == p.body_sha256
                and r.get("lines") == lines
            ):
                got.add(key)
                out.numbers += 3 + len(lines)
                continue
        label = f"stations[{' / '.join(map(str, key))}]"
        exp = ex.stations.get(key)
        if exp is None or key not in wanted:
            out.fail(
                check,
                file,
                f"stations[{i}]",
                f"protocol {' / '.join(map(str, key))} is not in force "
                "in this region according to the ledger",
            )
            continue
        got.add(key)
        for f in ("ledger_index", "leaf_hash", "body_sha256"):
            out.numbers += 1
            if _get(r, f) != exp[f]:
                out.add(
                    check,
                    file,
                    f"{_p(label)}{f}",
                    _val(_get(r, f)),
                    exp[f],
                    f"the ledger entry in force for this protocol ({exp['ledger_index']})",
                )
        compare_lines(out, ex, key, file, label, exp["lines"], _get(r, "lines"), check)
    for key in want:
        if key not in got:
            out.fail(
                check,
                file,
                "stations",
                f"protocol {' / '.join(key)} (ledger entry "
                f"{ex.stations[key]['ledger_index']}) is in force but not published",
            )


def check_seats(out: Tally, ex: Expected, file: str, label: str, exp: dict[str, Any], got: Any) -> None:
    """A seat projection (§7.4): status, counts, every seat and the allocation itself."""
    check = "seats"
    label = f"{label}" if label else ""
    if not isinstance(got, dict):
        out.fail(check, file, label.rstrip(" ›"), "not a seat projection")
        return
    for f in (
        "contest",
        "count_kind",
        "official",
        "provisional",
        "stations_reporting",
        "stations_expected",
        "method",
        "seats_total",
        "status",
    ):
        out.numbers += 1
        if _get(got, f) != exp[f]:
            out.add(
                check,
                file,
                f"{label}{f}",
                _val(_get(got, f)),
                exp[f],
                "recomputed from the national row and the definition's allocation rules (§7.4)",
            )
    if exp["status"] != "ok" or _get(got, "status") != "ok":
        return
    seats = exp["seats"]
    alloc = _get(got, "allocation")
    if alloc != exp["allocation"]:
        out.numbers += 1
        got_seats = (
            _get(alloc, "seats") if exp["method"] != "plurality" else {"winner": _get(alloc, "winner")}
        )
        want_seats = (
            exp["allocation"].get("seats") if exp["method"] != "plurality" else {"winner": exp["winner"]}
        )
        out.add(
            check,
            file,
            f"{label}allocation",
            _val(got_seats),
            want_seats,
            f"tallyroom.seats.{'plurality' if 'winner' in exp else 'allocate'} on the recomputed "
            f"votes {exp['votes']}" + _diff_hint(exp["allocation"], alloc),
        )
    for f in ("outcome", "winner", "leader"):
        if f in exp:
            out.numbers += 1
            if _get(got, f) != exp[f]:
                out.add(check, file, f"{label}{f}", _val(_get(got, f)), exp[f], "tallyroom.seats.plurality")
    parties = _get(got, "parties")
    if not isinstance(parties, list):
        out.fail(check, file, f"{label}parties", "missing")
        return
    base = exp.get("threshold_base")
    for p in parties:
        pid = _get(p, "id")
        if pid not in seats:
            out.fail(check, file, f"{label}parties", f"{pid!r} is not a choice of the contest")
            continue
        out.numbers += 2
        if _get(p, "seats") != seats[pid]:
            out.add(
                check,
                file,
                f"{label}parties.{pid}.seats",
                _val(_get(p, "seats")),
                seats[pid],
                "seats allocated to it by the recomputed allocation",
            )
        if _get(p, "votes") != exp["votes"][pid]:
            out.add(
                check,
                file,
                f"{label}parties.{pid}.votes",
                _val(_get(p, "votes")),
                exp["votes"][pid],
                "its votes in the recomputed national row",
            )
        shown = _get(p, "national_percent")
        if base is not None and shown not in (_MISSING, None):
            out.numbers += 1
            want = percent(exp["votes"][pid], base["value"])
            if shown != want:
                out.add(
                    check,
                    file,
                    f"{label}parties.{pid}.national_percent",
                    shown,
                    want,
                    f"{exp['votes'][pid]:,} of {base['value']:,} ({base['figure']}, the threshold base)",
                )
    notes = _get(got, "notes")
    notes_text = " ".join(map(str, notes)) if isinstance(notes, list) else ""
    for aid in exp["left_out"]:
        if aid not in notes_text:
            out.fail(
                check,
                file,
                f"{label}notes",
                f"region {aid} has no votes of the threshold base yet, so its regional threshold "
                "is not applied: §7.4 says the notes must name it",
            )


def _diff_hint(exp: Any, got: Any, path: str = "") -> str:
    """The first place two JSON values differ, for the message."""
    if isinstance(exp, dict) and isinstance(got, dict):
        for k in exp:
            if k not in got:
                return f"; {path}{k} is missing"
            h = _diff_hint(exp[k], got[k], f"{path}{k}.")
            if h:
                return h
        return ""
    if isinstance(exp, list) and isinstance(got, list):
        if len(exp) != len(got):
            return f"; {path.rstrip('.')} has {len(got)} items, recomputed {len(exp)}"
        for i, (a, b) in enumerate(zip(exp, got, strict=True)):
            h = _diff_hint(a, b, f"{path}{i}.")
            if h:
                return h
        return ""
    if exp != got:
        return f"; first difference at {path.rstrip('.')}: {got!r}, recomputed {exp!r}"
    return ""


# -- pages' JSON twins (§12) -------------------------------------------------------------------


SECTION_FIELDS = (
    "official",
    "stations_reporting",
    "stations_expected",
    "stations_reporting_percent",
    *FIGURES,
    "turnout_percent",
)


def page_contests(ex: Expected, area: int) -> list[str]:
    """Contests shown on an area's page: those whose area is the area or one of its ancestors."""
    e = ex.election
    chain = {e.areas[a].id for a in e.area_chain[area]}
    return [c.id for c in e.contests if c.contest.area in chain]


def leader_of(row: Row) -> list[str]:
    """The choices with the most votes (any may be shown as leading), or [] when none."""
    if row["stations_reporting"] == 0:
        return []
    top = max(c["votes"] for c in row["choices"])
    if top == 0:
        return []
    return [c["id"] for c in row["choices"] if c["votes"] == top]


def _check_leader(out: Tally, file: str, label: str, row: Row, got: Any, key: RowKey, ex: Expected) -> None:
    check = "page-json"
    leaders = leader_of(row)
    if not leaders:
        if got not in (None, _MISSING):
            out.add(check, file, f"{_p(label)}leader", _get(got, "id"), None, "no votes counted there yet")
        return
    if not isinstance(got, dict) or got.get("id") not in leaders:
        out.add(
            check,
            file,
            f"{_p(label)}leader",
            _get(got, "id") if isinstance(got, dict) else got,
            " or ".join(leaders),
            "the choice with the most votes",
        )
        return
    c = next(c for c in row["choices"] if c["id"] == got["id"])
    for f in ("votes", "percent"):
        out.numbers += 1
        if got.get(f) != c[f]:
            why = ex.why(key, f, c["id"]) + (
                ex.wrong_base(row, c["id"], got.get(f)) if f == "percent" else ""
            )
            out.add(check, file, f"{_p(label)}leader.{f}", got.get(f), c[f], why)


def check_area_page(file: str, doc: Any, area_id: str, ex: Expected, out: Tally) -> None:
    """``api/v1/results/index.json`` and ``api/v1/results/area/<area>.json``."""
    check = "page-json"
    e = ex.election
    if not isinstance(doc, dict) or doc.get("area") != area_id:
        out.fail(check, file, "area", f"is not the page data of area {area_id}")
        return
    area = e.area_index[area_id]
    contests = page_contests(ex, area)
    sections = doc.get("sections") or []
    seen: set[tuple[str, str]] = set()
    for s in sections:
        cid, kind = _get(s, "contest"), _get(s, "count_kind")
        key = (cid, area_id, kind)
        label = f"sections[{cid} / {kind}]"
        if cid not in contests or key not in ex.rows:
            out.fail(check, file, label, "no such count on this page: its contest does not cover this area")
            continue
        seen.add((cid, kind))
        row = ex.rows[key]
        for f in SECTION_FIELDS:
            out.numbers += 1
            if _get(s, f) != row[f]:
                out.add(check, file, f"{_p(label)}{f}", _val(_get(s, f)), row[f], ex.why(key, f))
        for f, want in (
            ("percent_base", row["percent_base"]["figure"]),
            ("percent_base_value", row["percent_base"]["value"]),
        ):
            out.numbers += 1
            if _get(s, f) != want:
                out.add(check, file, f"{_p(label)}{f}", _val(_get(s, f)), want, ex.why(key, "percent_base"))
        compare_choices(out, ex, key, file, label, row, _get(s, "choices"), check, ordered=False)
        seat = _get(s, "seats")
        contest_area = e.contest(cid).contest.area
        proj = ex.seats.get((cid, kind)) if contest_area == area_id else None
        if seat not in (None, _MISSING):
            if proj is None:
                out.fail(check, file, f"{_p(label)}seats", "seats shown where the contest allocates none")
            else:
                _check_seat_view(out, file, f"{_p(label)}seats", proj, seat)
        elif proj is not None:
            out.fail(
                check,
                file,
                f"{_p(label)}seats",
                "the seat projection of this contest is not shown at the contest's own area",
            )
    for cid in contests:
        for kind in ex.kinds[cid]:
            if (cid, area_id, kind) in ex.rows and (cid, kind) not in seen:
                out.fail(check, file, "sections", f"the {kind} count of {cid} is not shown")
    main: Any = doc.get("main_contest")
    primary: Any = doc.get("primary_kind")
    if main is not None and (main not in contests or primary not in ex.kinds.get(main, [])):
        out.fail(check, file, "main_contest", f"{main} / {primary} is not a count of this page")
        return
    children = {e.areas[c].id for c in e.children[area]}
    for ch in doc.get("children") or []:
        cid_area = _get(ch, "area")
        key = (main, cid_area, primary)
        label = f"children[{cid_area}]"
        if cid_area not in children or key not in ex.rows:
            out.fail(check, file, label, "not a child area with this count")
            continue
        row = ex.rows[key]
        for f in ("stations_reporting", "stations_expected", "stations_reporting_percent", "turnout_percent"):
            out.numbers += 1
            if _get(ch, f) != row[f]:
                out.add(check, file, f"{_p(label)}{f}", _val(_get(ch, f)), row[f], ex.why(key, f))
        _check_leader(out, file, label, row, _get(ch, "leader"), key, ex)
    direct = {e.stations[si].id for si in ex.direct_stations().get(area, ())}
    for st in doc.get("stations") or []:
        sid = _get(st, "id")
        label = f"stations[{sid}]"
        if sid not in direct:
            out.fail(check, file, label, "not a station directly in this area")
            continue
        out.numbers += 1
        reg = e.stations[e.station_index[sid]].registered
        if _get(st, "registered") != reg:
            out.add(
                check, file, f"{_p(label)}registered", _val(_get(st, "registered")), reg, "the definition"
            )
        kinds = _get(st, "kinds")
        for k in ex.kinds.get(main, []) if main else []:
            skey = (main, sid, k)
            view = ex.station_view(skey)
            got = _get(kinds, k)
            if view is not None and isinstance(got, dict):
                shown = got.get("leader")
                # The usual case, decided without the station's full record.
                if got.get("turnout_percent") == view.turnout_percent and (
                    (not view.leaders and shown is None)
                    or (
                        isinstance(shown, dict)
                        and any(
                            shown.get("id") == cid and shown.get("votes") == v and shown.get("percent") == pct
                            for cid, v, pct in view.leaders
                        )
                    )
                ):
                    out.numbers += 3 if view.leaders else 1
                    continue
            srow = ex.stations.get(skey)
            if srow is None:
                if got not in (None, _MISSING):
                    out.fail(
                        check, file, f"{_p(label)}kinds.{k}", "shown as reported, but no protocol is in force"
                    )
                continue
            if not isinstance(got, dict):
                out.fail(
                    check,
                    file,
                    f"{_p(label)}kinds.{k}",
                    f"not shown, but ledger entry {srow['ledger_index']} is in force",
                )
                continue
            out.numbers += 1
            if got.get("turnout_percent") != srow["turnout_percent"]:
                out.add(
                    check,
                    file,
                    f"{_p(label)}kinds.{k}.turnout_percent",
                    got.get("turnout_percent"),
                    srow["turnout_percent"],
                    ex.why(skey, "turnout_percent"),
                )
            _check_leader(out, file, f"{_p(label)}kinds.{k}", srow, got.get("leader"), skey, ex)


def _check_seat_view(out: Tally, file: str, label: str, proj: dict[str, Any], got: Any) -> None:
    check = "page-json"
    for f in ("status", "provisional", "stations_reporting", "stations_expected", "seats_total", "method"):
        out.numbers += 1
        if _get(got, f) != proj[f]:
            out.add(
                check, file, f"{_p(label)}{f}", _val(_get(got, f)), proj[f], "the recomputed seat projection"
            )
    if proj["status"] != "ok":
        return
    seats = proj["seats"]
    for p in _get(got, "parties") if isinstance(_get(got, "parties"), list) else []:
        pid = _get(p, "id")
        if pid in seats:
            out.numbers += 1
            if _get(p, "seats") != seats[pid]:
                out.add(
                    check,
                    file,
                    f"{_p(label)}parties.{pid}.seats",
                    _val(_get(p, "seats")),
                    seats[pid],
                    "the recomputed seat allocation",
                )
    for item in _get(got, "legend") if isinstance(_get(got, "legend"), list) else []:
        pid = _get(item, "id")
        if pid in seats:
            out.numbers += 1
            if _get(item, "seats") != seats[pid]:
                out.add(
                    check,
                    file,
                    f"{_p(label)}legend.{pid}",
                    _val(_get(item, "seats")),
                    seats[pid],
                    "the recomputed seat allocation",
                )
    for f in ("winner", "outcome"):
        if f in proj and _get(got, f) not in (_MISSING,):
            out.numbers += 1
            if _get(got, f) != proj[f]:
                out.add(
                    check, file, f"{_p(label)}{f}", _val(_get(got, f)), proj[f], "tallyroom.seats.plurality"
                )


def check_station_page(file: str, doc: Any, station_id: str, ex: Expected, out: Tally) -> None:
    """``api/v1/results/station/<station>.json``: every count of every contest, side by side."""
    check = "page-json"
    e = ex.election
    if not isinstance(doc, dict) or doc.get("station") != station_id:
        out.fail(check, file, "station", f"is not the page data of station {station_id}")
        return
    si = e.station_index[station_id]
    st = e.stations[si]
    out.numbers += 1
    if doc.get("registered") != st.registered:
        out.add(check, file, "registered", doc.get("registered"), st.registered, "the definition")
    if doc.get("key") != st.key:
        out.add(check, file, "key", doc.get("key"), st.key, "the definition")
    contests = {_get(c, "contest"): c for c in doc.get("contests") or []}
    rules_want: dict[str, dict[str, Any]] = {}
    columns_want: list[str] = []
    for contest in e.contests:
        if si not in contest.station_set:
            continue
        got = contests.get(contest.id)
        if got is None:
            out.fail(check, file, "contests", f"contest {contest.id} is missing")
            continue
        kinds = ex.kinds[contest.id]
        cols = _get(got, "columns")
        cols = cols if isinstance(cols, list) else []
        if [_get(c, "count_kind") for c in cols] != kinds:
            out.add(
                check,
                file,
                f"contests.{contest.id}.columns",
                [_get(c, "count_kind") for c in cols],
                kinds,
                "one column per published count kind",
            )
            continue
        facts = [ex.protocol((contest.id, station_id, k)) for k in kinds]
        for k, col, f in zip(kinds, cols, facts, strict=True):
            label = f"contests.{contest.id}.columns.{k}"
            skey = (contest.id, station_id, k)
            if f is None:
                if _get(col, "reported") is not False:
                    out.fail(check, file, label, "shown as reported, but no protocol is in force")
                continue
            if _get(col, "reported") is not True:
                out.fail(
                    check,
                    file,
                    label,
                    f"shown as not reported, but ledger entry {f.index} is in force",
                )
                continue
            rules = ex.station_rules(skey)
            want = {
                "official": f.official,
                "ledger_index": f.index,
                "leaf_hash": f.leaf_hash,
                "body_sha256": f.body_sha256,
                "envelope": f.envelope,
                "took_part": f.took_part,
                "turnout_percent": f.turnout_percent,
                "percent_base": f.base_figure,
                "percent_base_value": f.base_value,
                "rules_failed": sum(1 for r in rules if not r["holds"]),
            }
            out.numbers += len(want)
            # Every expected field present with its value (the column may hold others).
            same = isinstance(col, dict) and want.items() <= col.items()
            for name, v in want.items() if not same else ():
                if _get(col, name) != v:
                    why = (
                        ex.why(skey, name)
                        if name in FIGURES or name.endswith("percent")
                        else (
                            "control rules of the contest evaluated on the protocol"
                            if name == "rules_failed"
                            else f"ledger entry {f.index}"
                        )
                    )
                    out.add(check, file, f"{label}.{name}", _val(_get(col, name)), v, why)
            _check_image(out, file, f"{label}.image", ex, f.index, _get(col, "image"))
            colname = f"{contest.id}/{k}"
            columns_want.append(colname)
            for r in rules:
                entry = rules_want.setdefault(r["rule"], {"expr": r["expr"], "checks": {}})
                entry["checks"][colname] = None if r["holds"] else {"left": r["left"], "right": r["right"]}
        lines = _get(got, "lines")
        lines = lines if isinstance(lines, list) else []
        lids = contest.line_ids[: contest.choice_start]
        nothing = [None] * len(lids)
        columns = [nothing if f is None else f.lines for f in facts]
        # [line id, [value per count kind]] for each line.
        want_lines = [[lid, list(vs)] for lid, vs in zip(lids, zip(*columns, strict=True), strict=True)]
        out.numbers += len(kinds) * len(want_lines)
        for i, wl in enumerate(want_lines if lines != want_lines else []):
            gl = lines[i] if i < len(lines) else None
            if gl != wl:
                out.add(
                    check,
                    file,
                    f"contests.{contest.id}.lines.{wl[0]}",
                    gl,
                    wl,
                    "the protocol lines in force, one value per count kind",
                )
        choices = _get(got, "choices")
        got_choices = (
            {c[0]: c for c in choices if isinstance(c, list) and c} if isinstance(choices, list) else {}
        )
        no_votes = [None] * len(contest.choice_ids)
        cells = [
            no_votes if f is None else list(map(list, zip(f.votes, f.percents, strict=True))) for f in facts
        ]
        # {choice: [[votes, share] or None per count kind]}.
        want_choices = {
            cid: list(cs) for cid, cs in zip(contest.choice_ids, zip(*cells, strict=True), strict=True)
        }
        out.numbers += 2 * len(kinds) * len(want_choices)
        if {k: v[2] for k, v in got_choices.items() if len(v) > 2} == want_choices:
            continue
        for cid, want_cells in want_choices.items():
            gc = got_choices.get(cid)
            if gc is None or len(gc) < 3 or gc[2] != want_cells:
                out.add(
                    check,
                    file,
                    f"contests.{contest.id}.choices.{cid}",
                    gc[2] if gc and len(gc) > 2 else None,
                    want_cells,
                    "votes and share of the stated base in each count's protocol",
                )
    got_rules = {_get(r, "rule"): r for r in doc.get("rules") or []}
    for rid, want_rule in rules_want.items():
        gr = got_rules.get(rid)
        if gr is None:
            out.fail(check, file, f"rules.{rid}", "a control rule of the contest is not shown")
            continue
        out.numbers += len(want_rule["checks"])
        got_checks = _get(gr, "checks")
        if isinstance(got_checks, dict) and want_rule["checks"].items() <= got_checks.items():
            continue  # every expected check shown, with its value
        for col, v in want_rule["checks"].items():
            g = _get(got_checks, col)
            if g != v:
                out.add(
                    check,
                    file,
                    f"rules.{rid}.checks.{col}",
                    _val(g),
                    v,
                    f"{want_rule['expr']} evaluated on the protocol ({'holds' if v is None else 'fails'})",
                )
    check_history(out, file, doc.get("history"), ex.history(station_id))
    if ex.journal is not None:
        want_intake = ex.journal.get(station_id)
        out.numbers += 1
        if doc.get("intake") != want_intake:
            out.add(
                check,
                file,
                "intake",
                doc.get("intake"),
                want_intake,
                f"bulletin/journal.json's counts for station {station_id} (the page must show the "
                "published journal; the journal itself is not recomputable from the ledger)",
            )


#: §12 history items: the fields compared, each recomputed from the ledger entry it names.
HISTORY_FIELDS = (
    "ledger_index",
    "leaf_hash",
    "entry",
    "action",
    "status",
    "ended_by",
    "target",
    "source",
    "key_id",
    "body_sha256",
    "reason",
    "proposed_by",
    "approved_by",
)


def check_history(out: Tally, file: str, got: Any, want: list[dict[str, Any]]) -> None:
    """A station page's ``history`` (§12): every group and every entry, field by field."""
    check = "page-json"
    n = sum(len(g["entries"]) for g in want)
    out.numbers += n * len(HISTORY_FIELDS) + len(want)
    if got == want:
        return
    if not isinstance(got, list):
        out.fail(check, file, "history", "missing")
        return
    shown = {(_get(g, "contest"), _get(g, "count_kind")): g for g in got}
    for g in want:
        key = (g["contest"], g["count_kind"])
        label = f"history[{key[0]} / {key[1]}]"
        gg = shown.pop(key, None)
        if gg is None:
            out.fail(
                check,
                file,
                label,
                f"missing: the ledger holds {len(g['entries'])} entries for it "
                f"(first: entry {g['entries'][0]['ledger_index']})",
            )
            continue
        if _get(gg, "in_force") != g["in_force"]:
            out.add(
                check,
                file,
                f"{label}.in_force",
                _val(_get(gg, "in_force")),
                g["in_force"],
                "the ledger entry in force at the end of the published prefix (null: annulled)",
            )
        events = _get(gg, "entries")
        events = events if isinstance(events, list) else []
        by_index = {_get(e, "ledger_index"): e for e in events}
        for e in g["entries"]:
            idx = e["ledger_index"]
            ge = by_index.pop(idx, None)
            if ge is None:
                out.fail(
                    check,
                    file,
                    f"{label}.entries",
                    f"ledger entry {idx} ({e['entry']}, {e['action']}) is missing",
                )
                continue
            for f in HISTORY_FIELDS:
                if _get(ge, f) != e[f]:
                    out.add(
                        check,
                        file,
                        f"{label}.entries[{idx}].{f}",
                        _val(_get(ge, f)),
                        e[f],
                        f"ledger entry {idx} and the decisions after it (§12)",
                    )
        for idx in by_index:
            out.fail(
                check, file, f"{label}.entries", f"entry {idx!r} does not act on this station's protocol"
            )
        if [_get(x, "ledger_index") for x in events] != sorted(
            i for i in (_get(x, "ledger_index") for x in events) if isinstance(i, int)
        ):
            out.fail(check, file, f"{label}.entries", "not in ledger order")
    for key in shown:
        out.fail(
            check,
            file,
            f"history[{key[0]} / {key[1]}]",
            "no ledger entry acts on this station's protocol of that contest and count kind",
        )
    order = [(_get(g, "contest"), _get(g, "count_kind")) for g in got]
    want_order = [(g["contest"], g["count_kind"]) for g in want]
    if order != want_order and sorted(map(str, order)) == sorted(map(str, want_order)):
        out.fail(check, file, "history", "not in §12's order (contests as defined; machine, hand, recount)")


def _check_image(out: Tally, file: str, label: str, ex: Expected, index: int, got: Any) -> None:
    """The photo a protocol in force declares (§12): the declared hash is the body's
    ``image_sha256``; a link points at ``images/<sha256>.<ext>`` in the snapshot."""
    check = "page-json"
    declared = ex.walk.images.get(index)
    out.numbers += 1
    if declared is None:
        if got not in (None, _MISSING):
            out.fail(check, file, label, f"a photo is shown, but ledger entry {index} declares none")
        return
    if not isinstance(got, dict) or got.get("sha256") != declared:
        out.add(
            check,
            file,
            f"{label}.sha256",
            got.get("sha256") if isinstance(got, dict) else _val(got),
            declared,
            f"the image_sha256 of the protocol body in ledger entry {index}",
        )
        return
    published = ex.images.get(declared)
    path = got.get("path")
    if path is None:
        if published is not None:
            out.fail(
                check, file, f"{label}.path", f"says the photo was not uploaded, but {published} is published"
            )
    elif path != published:
        out.add(
            check,
            file,
            f"{label}.path",
            path,
            published,
            "the snapshot's file images/<sha256>.<ext> whose manifest SHA-256 is the declared one",
        )

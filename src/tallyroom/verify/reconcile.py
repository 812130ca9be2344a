"""Machine-vs-hand reconciliation and outcome sensitivity, recomputed and compared (§14).

Recomputed from the protocols in force with the audit mathematics (``tallyroom.audit``: station
comparison, recount rules, histogram, threshold margins, the smallest seat move) and seats from
``tallyroom.seats.allocate`` itself, assembled here from docs/bulletin.md §14 — not with the
publisher's code — and compared with ``data/reconciliation.json`` and ``.csv``, the pages'
JSON twins ``api/v1/reconcile/<contest>/<order>.json``, their HTML pages, and the sensitivity
shown beside the seats on the national page.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from tallyroom.definition.compiled import CompiledContest
from tallyroom.definition.model import ContestKind
from tallyroom.verify.expected import Expected, Row, station_group
from tallyroom.verify.numbers import Symbols, figure_words, percent, symbols
from tallyroom.verify.report import Tally

MACHINE, HAND = "machine", "hand"
#: §14.1: a line differing by more than 1% of the machine count marks the station for recount.
RECOUNT_RELATIVE = Fraction(1, 100)
HISTOGRAM_BINS = 20
ORDERS = ("difference", "overstatement", "region", "station")
CSV_HEADER = "contest,station,region,line,machine,hand,difference,relative_percent,flagged"
_FIGURES = ("registered", "took_part", "ballots_cast", "valid", "invalid")
_WHY = "recomputed from the protocols in force with tallyroom.audit (docs/bulletin.md §14.1)"
_WHY_SENS = "recomputed from the national row with tallyroom.audit.sensitivity and tallyroom.seats (§14.2)"


def decimal(value: Fraction | int) -> str:
    """§14: an exact decimal string (every margin here has one; others: 6 places, half up)."""
    x = Fraction(value)
    if x.denominator == 1:
        return str(x.numerator)
    sign, x = ("-" if x < 0 else ""), abs(x)
    for places in range(1, 13):
        scaled = x * 10**places
        if scaled.denominator == 1:
            whole, frac = divmod(scaled.numerator, 10**places)
            return f"{sign}{whole}.{frac:0{places}d}"
    q = (x.numerator * 10**6 * 2 + x.denominator) // (x.denominator * 2)
    return f"{sign}{q // 10**6}.{q % 10**6:06d}"


def relative(difference: int, machine: int) -> str | None:
    """§14.1 ``relative_percent``: |difference| / machine × 100 (two decimals, half up), signed."""
    if machine == 0:
        return "0.00" if difference == 0 else None
    shown = percent(abs(difference), machine)
    assert shown is not None
    return "-" + shown if difference < 0 and shown != "0.00" else shown


def _lines(contest: CompiledContest, counts: list[int]) -> dict[str, int]:
    from tallyroom.audit.from_election import station_lines

    return station_lines(contest, counts)


def _row_lines(row: Row) -> dict[str, int]:
    out = dict(row["lines"])
    for f in _FIGURES:
        if row.get(f) is not None:
            out["figure:" + f] = row[f]
    return out


def reconciliation(ex: Expected) -> dict[str, Row]:
    """§14.1 for every contest whose published count kinds include machine and hand."""
    from tallyroom.audit.from_election import contest_assertions
    from tallyroom.audit.reconcile import (
        OutcomeAtRisk,
        RecountRule,
        RelativeDifference,
        StationCounts,
        compare_station,
        histogram,
    )

    e = ex.election
    out: dict[str, Row] = {}
    for contest in e.contests:
        cid = contest.id
        if not {MACHINE, HAND} <= set(ex.kinds[cid]):
            continue
        totals = ex.rows.get((cid, contest.contest.area, MACHINE))
        assertions: tuple[Any, ...] = ()
        margins: dict[str, Fraction] = {}
        if totals is not None and totals["stations_reporting"] > 0:
            reported = _row_lines(totals)
            assertions = contest_assertions(contest, reported)
            margins = {a.name: a.margin(reported) for a in assertions}
        rules: list[RecountRule] = [RelativeDifference(line, RECOUNT_RELATIVE) for line in contest.line_ids]
        if assertions:
            rules.append(OutcomeAtRisk(assertions, margins))
        shown = set(contest.line_ids)
        n_machine = n_hand = 0
        largest: list[int] = []
        compared: dict[str, int] = {}
        stations: list[Row] = []
        for si in contest.stations:
            sid = e.stations[si].id
            m = ex.in_force.get((cid, sid, MACHINE))
            h = ex.in_force.get((cid, sid, HAND))
            n_machine += m is not None
            n_hand += h is not None
            if m is None or h is None:
                continue
            region = station_group(e, si)
            compared[region] = compared.get(region, 0) + 1
            if m.counts == h.counts:
                largest.append(0)
                continue
            st = compare_station(
                StationCounts(sid, _lines(contest, m.counts)),
                StationCounts(sid, _lines(contest, h.counts)),
                assertions,
                rules,
            )
            diffs: list[Row] = [
                {
                    "line": d.line,
                    "machine": d.machine,
                    "hand": d.hand,
                    "difference": d.difference,
                    "relative_percent": relative(d.difference, d.machine),
                }
                for d in st.differences
                if d.line in shown and d.difference
            ]
            worst = max(st.overstatements, key=lambda o: o.overstatement, default=None)
            big = max(abs(x["difference"]) for x in diffs)
            largest.append(big)
            stations.append(
                {
                    "station": sid,
                    "region": region,
                    "largest_difference": big,
                    "absolute_difference": sum(abs(x["difference"]) for x in diffs),
                    "lines": diffs,
                    "overstatement": (
                        {"assertion": worst.assertion, "votes": decimal(worst.overstatement)}
                        if worst is not None and worst.overstatement > 0
                        else None
                    ),
                    "flagged": bool(st.flags),
                    "flags": [{"rule": f.rule, "line": f.line, "assertion": f.assertion} for f in st.flags],
                }
            )
        stations.sort(key=lambda s: (-s["largest_difference"], s["station"]))
        width = max(1, math.ceil((max(largest, default=0) + 1) / HISTOGRAM_BINS))
        regions = []
        for region in sorted(
            {station_group(e, si) for si in contest.stations}, key=lambda a: e.area_index[a]
        ):
            mine = [s for s in stations if s["region"] == region]
            n = compared.get(region, 0)
            regions.append(
                {
                    "area": region,
                    "stations_compared": n,
                    "stations_differing": len(mine),
                    "stations_flagged": sum(1 for s in mine if s["flagged"]),
                    "differing_percent": percent(len(mine), n),
                    "absolute_difference": sum(s["absolute_difference"] for s in mine),
                }
            )
        rules_doc = contest.contest.allocation
        out[cid] = {
            "contest": cid,
            "machine_kind": MACHINE,
            "hand_kind": HAND,
            "stations_expected": len(contest.stations),
            "stations_machine": n_machine,
            "stations_hand": n_hand,
            "stations_compared": len(largest),
            "stations_differing": len(stations),
            "stations_flagged": sum(1 for s in stations if s["flagged"]),
            "recount_rule": {
                "relative_percent": decimal(RECOUNT_RELATIVE * 100),
                "outcome_at_risk": bool(assertions),
            },
            "threshold_percent": rules_doc.threshold_percent if rules_doc is not None else None,
            "assertions": [_assertion(a, margins[a.name]) for a in assertions],
            "histogram": {
                "measure": "largest_difference",
                "bin_width": width,
                "bins": [{"low": b.low, "high": b.high, "count": b.count} for b in histogram(largest, width)],
            },
            "regions": regions,
            "stations": stations,
        }
    return out


def _assertion(a: Any, margin: Fraction) -> Row:
    if a.kind == "pairwise":
        choice = next(k for k, c in a.terms.items() if c > 0)
        other = next(k for k, c in a.terms.items() if c < 0)
    else:
        pick = max if a.kind == "threshold_passed" else min
        choice, other = pick(a.terms, key=lambda k: a.terms[k]), None
    return {"name": a.name, "kind": a.kind, "choice": choice, "other": other, "margin": decimal(margin)}


def sensitivity(ex: Expected) -> dict[tuple[str, str], Row]:
    """§14.2 for every party-list count with a row of its own area and reporting stations."""
    out: dict[tuple[str, str], Row] = {}
    for contest in ex.election.contests:
        rules = contest.contest.allocation
        if rules is None or contest.contest.kind != ContestKind.PARTY_LIST:
            continue
        if rules.method in ("plurality", "two-round"):
            continue
        for kind in ex.kinds[contest.id]:
            doc = _sensitivity(ex, contest, kind)
            if doc is not None:
                out[(contest.id, kind)] = doc
    return out


def _sensitivity(ex: Expected, contest: CompiledContest, kind: str) -> Row | None:
    from tallyroom import seats as s
    from tallyroom.audit.sensitivity import smallest_seat_move, threshold_margins

    rules = contest.contest.allocation
    assert rules is not None
    row = ex.rows.get((contest.id, contest.contest.area, kind))
    if row is None or row["stations_reporting"] == 0:
        return None
    fig = str(rules.threshold_base)
    base = row.get(fig) or 0
    votes = {c["id"]: c["votes"] for c in row["choices"]}
    against = {c["id"] for c in row["choices"] if c["against_all"]}
    parties = [p for p in votes if p not in against]
    doc: Row = {
        "contest": contest.id,
        "count_kind": kind,
        "official": row["official"],
        "stations_reporting": row["stations_reporting"],
        "stations_expected": row["stations_expected"],
        "method": rules.method,
        "seats_total": rules.seats,
        "threshold": None,
        "parties": [],
        "regions_left_out": [],
        "regional_held": rules.regional_threshold is not None,
        "seat_move": None,
    }
    pct = Fraction(rules.threshold_percent) if rules.threshold_percent is not None else None
    if pct is not None:
        if base <= 0:
            return doc
        doc["threshold"] = {
            "percent": rules.threshold_percent,
            "figure": fig,
            "base": base,
            "required": decimal(pct * base / 100),
        }
        margins = threshold_margins({p: votes[p] for p in parties}, base, pct / 100)
        doc["parties"] = [
            {
                "id": m.party,
                "votes": m.votes,
                "passes": m.passes,
                "margin": decimal(abs(m.margin)),
                "votes_to_change": m.votes_to_change,
            }
            for m in sorted(margins, key=lambda m: (-m.votes, m.party))
        ]
    held = set(against)
    if rules.regional_threshold is not None:
        rpct = Fraction(rules.regional_threshold.percent)
        for aid in rules.regional_threshold.areas:
            r = ex.rows.get((contest.id, aid, kind))
            rbase = 0 if r is None else (r.get(fig) or 0)
            if r is None or rbase <= 0:
                doc["regions_left_out"].append(aid)
                continue
            held.update(c["id"] for c in r["choices"] if c["id"] in votes and c["votes"] * 100 < rpct * rbase)
    thresholds = [] if pct is None else [s.PercentThreshold(pct, s.Base(figure_words(fig), base))]

    def allocate(v: Mapping[str, int], n: int) -> Mapping[str, int]:
        # The threshold base is held fixed; failed regional thresholds never take seats.
        try:
            got = s.allocate(
                v, n, rules.method, thresholds=thresholds, cap=rules.cap, against_all=sorted(held)
            )
        except s.NoEligibleChoicesError:
            return {}  # nobody passes: no seats at all, which is a change too
        return got.seats

    eligible = [p for p in parties if p not in held and (pct is None or votes[p] * 100 >= pct * base)]
    try:
        seated = any(allocate(votes, rules.seats).values())
        move = smallest_seat_move(votes, rules.seats, allocate, parties=eligible) if seated else None
    except s.SeatsError:
        move = None
    if move is not None:
        doc["seat_move"] = {
            "source": move.source,
            "target": move.target,
            "votes": move.votes,
            "seats_before": dict(sorted(move.seats_before.items())),
            "seats_after": dict(sorted(move.seats_after.items())),
            "changes": [
                {"id": p, "before": move.seats_before.get(p, 0), "after": move.seats_after.get(p, 0)}
                for p in votes
                if move.seats_before.get(p, 0) != move.seats_after.get(p, 0)
            ],
        }
    return doc


# -- comparing JSON ------------------------------------------------------------------------------

_KEYS = ("station", "line", "area", "id", "name", "low")


def _label(item: Any, i: int) -> str:
    if isinstance(item, dict):
        for k in _KEYS:
            if isinstance(item.get(k), str | int) and not isinstance(item.get(k), bool):
                return f"{k}={item[k]}"
    return str(i)


def compare(
    out: Tally,
    check: str,
    file: str,
    path: str,
    expected: Any,
    got: Any,
    why: Callable[[str], str],
) -> None:
    """Every leaf of ``expected`` against ``got``; each difference names its JSON path."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            out.add(check, file, path, got, "an object", why(path))
            return
        for k in expected:
            sub = f"{path}.{k}" if path else str(k)
            if k not in got:
                out.fail(check, file, sub, "missing (docs/bulletin.md §14)")
            else:
                compare(out, check, file, sub, expected[k], got[k], why)
        return
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            n = len(got) if isinstance(got, list) else got
            out.add(check, file, f"{path} (items)", n, len(expected), why(path))
            if not isinstance(got, list):
                return
            got_by = {_label(g, i): g for i, g in enumerate(got)}
            for i, item in enumerate(expected):
                label = _label(item, i)
                if label in got_by:
                    compare(out, check, file, f"{path}[{label}]", item, got_by[label], why)
            return
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            label = _label(a, i)
            if label != _label(b, i):
                out.add(check, file, f"{path}[{i}]", _label(b, i), label, why(path) + "; order of §14")
                continue
            compare(out, check, file, f"{path}[{label}]", a, b, why)
        return
    out.numbers += 1
    if expected != got or type(expected) is not type(got):
        out.add(check, file, path, got, expected, why(path))


def _why_recon(ex: Expected, cid: str) -> Callable[[str], str]:
    def why(path: str) -> str:
        m = re.search(r"stations\[station=([^\]]+)\]\.lines\[line=([^\]]+)\]\.(\w+)", path)
        if m is not None:
            sid, line, what = m.groups()
            pm = ex.in_force.get((cid, sid, MACHINE))
            ph = ex.in_force.get((cid, sid, HAND))
            where = (
                f"line {line} of station {sid}: hand count (ledger entry {ph.index if ph else '—'}) "
                f"and machine count (ledger entry {pm.index if pm else '—'})"
            )
            if what == "difference":
                return f"hand − machine on {where}"
            if what == "relative_percent":
                return f"(hand − machine) / machine × 100, rounded half up, on {where}"
            return where
        return _WHY

    return why


def check_document(file: str, doc: Any, ex: Expected, out: Tally) -> None:
    """``data/reconciliation.json``."""
    check = "reconciliation"
    contests = doc.get("contests") if isinstance(doc, dict) else None
    if not isinstance(contests, list):
        out.fail(check, file, "contests", "missing")
        return
    got = {c.get("contest"): c for c in contests if isinstance(c, dict)}
    if list(got) != sorted(ex.reconciliation):
        out.add(
            check, file, "contests", list(got), sorted(ex.reconciliation), "every contest with both counts"
        )
    for cid, want in ex.reconciliation.items():
        if cid in got:
            compare(out, check, file, f"contests[{cid}]", want, got[cid], _why_recon(ex, cid))


def csv_lines(ex: Expected) -> list[list[str]]:
    rows = []
    for cid in sorted(ex.reconciliation):
        for s in ex.reconciliation[cid]["stations"]:
            for x in s["lines"]:
                rel = x["relative_percent"]
                rows.append(
                    [
                        cid,
                        s["station"],
                        s["region"],
                        x["line"],
                        str(x["machine"]),
                        str(x["hand"]),
                        str(x["difference"]),
                        "" if rel is None else rel,
                        "true" if s["flagged"] else "false",
                    ]
                )
    return rows


def check_csv(file: str, data: bytes, ex: Expected, out: Tally) -> None:
    """``data/reconciliation.csv``: one line per differing line (§14.1)."""
    check = "reconciliation"
    lines = list(csv.reader(io.StringIO(data.decode("utf-8", "replace"))))
    if not lines or ",".join(lines[0]) != CSV_HEADER:
        out.fail(check, file, "header", f"must be {CSV_HEADER}")
        return
    want = csv_lines(ex)
    got = lines[1:]
    names = CSV_HEADER.split(",")
    if len(got) != len(want):
        out.add(
            check, file, "lines", len(got), len(want), "one line per differing line of each station listed"
        )
    for n, (a, b) in enumerate(zip(want, got, strict=False), start=2):
        for col, x, y in zip(names, a, b, strict=False):
            out.numbers += 1
            if x != y:
                where = f"line {n} ({' / '.join(b[i] for i in (0, 1, 3) if i < len(b))})"
                out.add(
                    check,
                    file,
                    f"{where} › {col}",
                    y,
                    x,
                    _why_recon(ex, a[0])(f"stations[station={a[1]}].lines[line={a[3]}].{col}"),
                )
                break


def page_data(ex: Expected, cid: str, order: str) -> Row:
    """§14.3: what the page of one ordering shows."""
    doc = ex.reconciliation[cid]
    stations = list(doc["stations"])
    if order == "overstatement":

        def over(s: Row) -> tuple[int, Fraction, int, str]:
            o = s["overstatement"]
            key = (1, Fraction(0)) if o is None else (0, -Fraction(o["votes"]))
            return (*key, -s["largest_difference"], s["station"])

        stations.sort(key=over)
    elif order == "station":
        stations.sort(key=lambda s: s["station"])
    regions = [r["area"] for r in doc["regions"]]
    if order == "region":
        place = {a: i for i, a in enumerate(regions)}
        stations.sort(key=lambda s: (place[s["region"]], -s["largest_difference"], s["station"]))
        groups = [{"area": a, "stations": [s for s in stations if s["region"] == a]} for a in regions]
    else:
        groups = [{"area": None, "stations": stations}]
    keys = (
        "machine_kind",
        "hand_kind",
        "stations_expected",
        "stations_machine",
        "stations_hand",
        "stations_compared",
        "stations_differing",
        "stations_flagged",
        "recount_rule",
        "threshold_percent",
    )
    data: Row = {"contest": cid, "order": order, **{k: doc[k] for k in keys}, "groups": groups}
    data["assertions"] = {a["name"]: a for a in doc["assertions"]}
    if order == ORDERS[0]:
        data["regions"] = doc["regions"]
    return data


def check_page_json(file: str, doc: Any, cid: str, order: str, ex: Expected, out: Tally) -> None:
    """``api/v1/reconcile/<contest>/<order>.json``."""
    check = "reconciliation-page"
    if cid not in ex.reconciliation or order not in ORDERS:
        out.fail(check, file, "", "a reconciliation page that should not exist (§14.3)")
        return
    want = page_data(ex, cid, order)
    compare(out, check, file, "", want, doc, _why_recon(ex, cid))
    hist = doc.get("histogram") if isinstance(doc, dict) else None
    if order == ORDERS[0]:
        bins = ex.reconciliation[cid]["histogram"]["bins"]
        bars = hist.get("bars") if isinstance(hist, dict) else None
        if not isinstance(bars, list):
            out.fail(check, file, "histogram.bars", "missing")
            return
        compare(
            out,
            check,
            file,
            "histogram.bars",
            [{"low": b["low"], "count": b["count"]} for b in bins],
            [{"low": b.get("low"), "count": b.get("count")} for b in bars if isinstance(b, dict)],
            lambda _p: "the histogram of §14.1: compared stations by their largest difference",
        )


# -- comparing HTML ------------------------------------------------------------------------------

_DD = re.compile(r'<dd data-count="(\w+)">([^<]*)</dd>')
_ROW = re.compile(r'<tr data-station="([^"]+)">(.*?)</tr>', re.S)
_LARGEST = re.compile(r'<td class="n largest">([^<]*)</td>')
_LINE = re.compile(
    r'<li data-line="([^"]+)">.*?<span class="m">([^<]*)</span> → <span class="h">([^<]*)</span> '
    r'\(<span class="d">([^<]*)</span>; <span class="r">([^<]*)</span>\)</li>',
    re.S,
)
_OVER = re.compile(r'<span class="v">([^<]*)</span>')
_BIN = re.compile(r'<tr data-low="(-?\d+)"><th scope="row">[^<]*</th><td class="n">([^<]*)</td></tr>')
_REGION = re.compile(r'<tr data-region="([^"]+)">.*?</th>((?:<td class="n">[^<]*</td>){5})</tr>', re.S)
_TD = re.compile(r'<td class="n">([^<]*)</td>')


def _dec(sym: Symbols, value: str) -> str:
    """An exact decimal string as pages write it (§13): grouped whole part, the locale's decimal
    sign (``Symbols.share`` leaves numbers under 1,000 ungrouped: shares, not vote counts)."""
    whole, dot, frac = value.partition(".")
    sign = "-" if whole.startswith("-") else ""
    out = sign + sym.integer(int(whole.lstrip("-")))
    return out + sym.decimal + frac if dot else out


def _signed(sym: Symbols, v: int) -> str:
    return ("+" if v > 0 else "") + sym.integer(v)


def check_page_html(file: str, text: str, lang: str, cid: str, order: str, ex: Expected, out: Tally) -> None:
    """``<lang>/reconcile/<contest>/<order>.html``: counts, every listed station's numbers, the
    histogram table and the region totals, written the locale's way (§13)."""
    check = "html"
    if cid not in ex.reconciliation or order not in ORDERS:
        out.fail(check, file, "", "a reconciliation page that should not exist (§14.3)")
        return
    sym = symbols(lang)
    doc = ex.reconciliation[cid]
    why = _why_recon(ex, cid)

    def same(where: str, shown: str, want: str, reason: str) -> None:
        out.numbers += 1
        if shown.strip() != want:
            out.add(check, file, where, shown.strip(), want, reason)

    counts = dict(_DD.findall(text))
    for k in ("compared", "differing", "flagged"):
        if k not in counts:
            out.fail(check, file, f"dd[data-count={k}]", "is not on the page")
        else:
            same(f"stations {k}", counts[k], sym.integer(doc[f"stations_{k}"]), _WHY)
    listed = {m.group(1): m.group(2) for m in _ROW.finditer(text)}
    want = {s["station"]: s for s in doc["stations"]}
    for sid in sorted(set(listed) - set(want)):
        out.fail(
            check, file, f"tr[data-station={sid}]", "listed, but its machine and hand counts do not differ"
        )
    for sid in sorted(set(want) - set(listed)):
        out.fail(check, file, f"tr[data-station={sid}]", "its counts differ, but it is not listed")
    for sid, cells in listed.items():
        s = want.get(sid)
        if s is None:
            continue
        label = f"tr[data-station={sid}]"
        big = _LARGEST.search(cells)
        same(
            f"{label} › largest difference",
            big.group(1) if big else "",
            sym.integer(s["largest_difference"]),
            _WHY,
        )
        shown_lines = {m.group(1): m.groups()[1:] for m in _LINE.finditer(cells)}
        for x in s["lines"]:
            got = shown_lines.get(x["line"])
            if got is None:
                out.fail(check, file, f"{label} › {x['line']}", "a line that differs is not shown")
                continue
            path = f"stations[station={sid}].lines[line={x['line']}]"
            rel = x["relative_percent"]
            sign = "+" if x["difference"] > 0 else ""
            want_rel = None if rel is None else f"{sign}{sym.share(rel)}%"
            same(
                f"{label} › {x['line']} › machine", got[0], sym.integer(x["machine"]), why(path + ".machine")
            )
            same(f"{label} › {x['line']} › hand", got[1], sym.integer(x["hand"]), why(path + ".hand"))
            same(
                f"{label} › {x['line']} › difference",
                got[2],
                _signed(sym, x["difference"]),
                why(path + ".difference"),
            )
            if want_rel is not None:
                same(f"{label} › {x['line']} › relative", got[3], want_rel, why(path + ".relative_percent"))
        over = _OVER.search(cells)
        if s["overstatement"] is not None:
            same(
                f"{label} › overstatement",
                over.group(1) if over else "",
                _dec(sym, s["overstatement"]["votes"]),
                _WHY,
            )
    if order == ORDERS[0]:
        bins = {int(low): n for low, n in _BIN.findall(text)}
        for b in doc["histogram"]["bins"]:
            same(
                f"histogram › {b['low']}",
                bins.get(b["low"], ""),
                sym.integer(b["count"]),
                "compared stations whose largest difference lies in the bin (§14.1)",
            )
        regions = {a: _TD.findall(cells) for a, cells in _REGION.findall(text)}
        for r in doc["regions"]:
            cells = regions.get(r["area"])
            if cells is None:
                out.fail(check, file, f"tr[data-region={r['area']}]", "is not on the page")
                continue
            pct = r["differing_percent"]
            want_cells = [
                sym.integer(r["stations_compared"]),
                sym.integer(r["stations_differing"]),
                "—" if pct is None else sym.share(pct) + "%",
                sym.integer(r["stations_flagged"]),
                sym.integer(r["absolute_difference"]),
            ]
            for name, a, b in zip(
                ("compared", "differing", "share", "flagged", "absolute difference"),
                cells,
                want_cells,
                strict=True,
            ):
                same(f"tr[data-region={r['area']}] › {name}", a, b, _WHY)


_MARGINS = re.compile(
    r'<table class="margins" data-contest="([^"]+)" data-kind="([^"]+)">(.*?)</table>', re.S
)
_MARGIN_ROW = re.compile(
    r'<tr data-choice="([^"]+)">.*?<td class="n">([^<]*)</td><td class="n margin">([^<]*)</td>'
    r'<td class="n change">([^<]*)</td></tr>',
    re.S,
)
_SEAT_MOVE = re.compile(
    r'<div class="sensitivity" id="sens-([^"]+)">\s*<h4>.*?</h4>\s*(?:<p class="seat-move">(.*?)</p>)?', re.S
)


def check_sensitivity_html(file: str, text: str, lang: str, area_id: str, ex: Expected, out: Tally) -> None:
    """The sensitivity beside the seats of a contest's own area: each party's votes, distance
    from the threshold and the votes that change the decision; the votes of the last-seat move."""
    sym = symbols(lang)
    tables = {(c, k): body for c, k, body in _MARGINS.findall(text)}
    moves = {tag: body for tag, body in _SEAT_MOVE.findall(text)}
    for (cid, kind), doc in ex.sensitivity.items():
        if ex.election.contest(cid).contest.area != area_id:
            continue
        label = f"sensitivity[{cid} / {kind}]"
        if doc["threshold"] is not None:
            body = tables.get((cid, kind))
            if body is None:
                out.fail("html", file, label, "the threshold margins are not on the page (§14.2)")
            else:
                rows = {m[0]: m[1:] for m in _MARGIN_ROW.findall(body)}
                for q in doc["parties"]:
                    got = rows.get(q["id"])
                    if got is None:
                        out.fail("html", file, f"{label} › {q['id']}", "not shown")
                        continue
                    for what, shown, want in (
                        ("votes", got[0], [sym.integer(q["votes"])]),
                        ("margin", got[1], [_dec(sym, q["margin"])]),
                        ("votes to change", got[2], [sym.integer(q["votes_to_change"])]),
                    ):
                        out.numbers += 1
                        tokens = sym.tokens(shown)
                        if tokens[:1] != want and tokens[-1:] != want:
                            out.add("html", file, f"{label} › {q['id']} › {what}", shown, want[0], _WHY_SENS)
        move = doc["seat_move"]
        shown_move = moves.get(f"{cid}-{kind}")
        if move is not None:
            out.numbers += 1
            tokens = sym.tokens(shown_move or "")
            if not tokens or tokens[0] != sym.integer(move["votes"]):
                out.add(
                    "html",
                    file,
                    f"{label} › last seat",
                    tokens[0] if tokens else None,
                    sym.integer(move["votes"]),
                    _WHY_SENS,
                )


def check_sensitivity_json(file: str, doc: Any, area_id: str, ex: Expected, out: Tally) -> None:
    """``sections[].sensitivity`` of a page's JSON twin at a contest's own area."""
    sections = doc.get("sections") if isinstance(doc, dict) else None
    for s in sections if isinstance(sections, list) else []:
        if not isinstance(s, dict):
            continue
        key = (s.get("contest"), s.get("count_kind"))
        cid = key[0]
        own = cid in ex.election.contest_index and ex.election.contest(cid).contest.area == area_id
        want = ex.sensitivity.get(key) if own else None  # type: ignore[arg-type]
        got = s.get("sensitivity")
        label = f"sections[{key[0]} / {key[1]}].sensitivity"
        if want is None:
            if got is not None:
                out.fail("page-json", file, label, "sensitivity shown where §14.2 gives none")
            continue
        if got is None and s.get("seats") is not None:
            out.fail("page-json", file, label, "missing beside the seat projection (§14.2)")
            continue
        if got is not None:
            compare(out, "page-json", file, label, want, got, lambda _p: _WHY_SENS)

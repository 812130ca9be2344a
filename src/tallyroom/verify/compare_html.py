"""Read every number off the HTML pages and compare it with the recomputed one (§13).

Pages are parsed at the hooks docs/bulletin.md §13 names — ``section.count[data-contest]
[data-kind]``, ``table.results … tr[data-choice]`` with ``td.votes`` and ``td.pct``,
``table.station-votes`` with ``td.votes[data-kind]``, ``tr[data-area]`` — and, where §13 names
no hook, at the structure of the templates in ``tallyroom/web/templates`` (the figures list,
the reporting line, the protocol lines table, the control-rule table, the receipts). Each shown
number must be *exactly* the recomputed value written the locale's way (``en`` 1,281,622 and
17.32%; ``ru``/``ky`` 1 281 622 with U+00A0 and 17,32%). Parsing uses targeted regular
expressions rather than a full HTML parser: tens of thousands of pages must be read in seconds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any

from tallyroom.verify.compare_json import leader_of, page_contests
from tallyroom.verify.expected import Expected, Row, RowKey
from tallyroom.verify.numbers import Symbols, symbols
from tallyroom.verify.report import Tally

_SECTION = re.compile(r'<section class="count [^"]*" id="[^"]*" data-contest="([^"]+)" data-kind="([^"]+)">')
_REPORTING = re.compile(
    r'<div class="reporting">\s*<p>(.*?)</p>\s*'
    r'<progress max="([^"]*)" value="([^"]*)"(?: aria-hidden="true")?>([^<]*)</progress>',
    re.S,
)
_FIGURES = re.compile(r'<dl class="figures">(.*?)</dl>', re.S)
_DD = re.compile(r"<dd>([^<]*)</dd>")
_CHOICE_ROW = re.compile(r'<tr data-choice="([^"]+)">(.*?)</tr>', re.S)
_VOTES = re.compile(r'<td class="n votes">([^<]*)</td><td class="n pct">([^<]*)</td>')
_BAR = re.compile(r'class="bar" style="width:([^%;"]*)%')
_LEGEND = re.compile(r'<table class="legend">(.*?)</table>', re.S)
_LEGEND_ROW = re.compile(r'<tr data-choice="([^"]+)">.*?<td class="n">([^<]*)</td></tr>', re.S)
_THRESH = re.compile(r'<table class="thresholds">(.*?)</table>', re.S)
_THRESH_ROW = re.compile(r'<tr data-choice="([^"]+)">.*?<td class="n">([^<%]*)% <span class="req">', re.S)
_AREA_ROW = re.compile(r'<tr data-area="([^"]+)">(.*?)</tr>', re.S)
_AREA_CELLS = re.compile(
    r'<td class="n">([^<]*) / ([^<]*)</td><td class="n">([^<]*)</td><td>(.*?)</td>', re.S
)
_STATION_ROW = re.compile(r'<tr data-station="([^"]+)">(.*?)</tr>', re.S)
_TD = re.compile(r"<td[^>]*>(.*?)</td>", re.S)
_TAG = re.compile(r"<[^>]+>")
_PROTOCOL = re.compile(r'<section class="protocol" id="[^"]*" data-contest="([^"]+)">')
_LINES = re.compile(r'<table class="lines">(.*?)</table>', re.S)
_LINE_ROW = re.compile(r'<tr><th scope="row">[^<]*</th>((?:<td class="n">[^<]*</td>)+)</tr>')
_N_CELL = re.compile(r'<td class="n">([^<]*)</td>')
_SVOTES_ROW_CELL = re.compile(
    r'<td class="n(?: votes)?"(?: data-kind="([^"]+)")?>([^<]*)</td>'
    r'<td class="n(?: pct)?">([^<]*)</td>'
)
_VOTE_TOKENS = re.compile(
    r'<tr data-choice="([^"]+)">|<td class="n(?: votes)?"(?: data-kind="([^"]+)")?>([^<]*)</td>'
    r'<td class="n(?: pct)?">([^<]*)</td>'
)
_RECEIPT = re.compile(r'<dl class="receipt" data-kind="([^"]+)">(.*?)</dl>', re.S)
_CODE = re.compile(r"<code>([^<]*)</code>")
_RULES = re.compile(r'<table class="rules"[^>]*>.*?<tbody>(.*?)</tbody>', re.S)
_RULE_ROW = re.compile(r'<tr><th scope="row"><code>(.*?)</code></th>(.*?)</tr>', re.S)
_HISTORY_TABLE = re.compile(
    r'<table class="history" data-contest="([^"]+)" data-kind="([^"]+)">(.*?)</table>', re.S
)
_HISTORY_ROW = re.compile(
    r'<tr data-index="([^"]*)" data-status="([^"]*)">.*?<td><code>([^<]*)</code></td></tr>', re.S
)
_FIGURE = re.compile(r'<figure class="protocol-image" data-kind="([^"]+)">(.*?)</figure>', re.S)
_IMAGE_HREF = re.compile(r'href="(?:\.\./)*(images/[^"]+)"')
_INTAKE = re.compile(r'<p class="intake">(.*?)</p>', re.S)
_INTAKE_REASON = re.compile(r'<li data-reason="([^"]*)">(.*?)</li>', re.S)
_H1_P = re.compile(r"</h1>\s*<p>(.*?)</p>", re.S)


def _escape(text: str) -> str:
    """Escaped as the templates escape (markupsafe's choice of entities)."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment)).strip()


class _Page:
    def __init__(self, out: Tally, file: str, ex: Expected, sym: Symbols) -> None:
        self.out = out
        self.file = file
        self.ex = ex
        self.sym = sym

    def same(self, where: str, shown: str, want: str, why: str) -> None:
        self.out.numbers += 1
        if shown.strip() != want:
            self.out.add("html", self.file, where, shown.strip(), want, why)

    def num(self, v: int | None) -> str:
        return self.sym.integer(v)

    def pct(self, v: str | None) -> str:
        return "—" if v is None else self.sym.share(v) + "%"

    def missing(self, where: str, what: str) -> None:
        self.out.fail("html", self.file, where, f"{what} is not on the page (docs/bulletin.md §13 hooks)")


def _last(tokens: list[str]) -> str | None:
    return tokens[-1] if tokens else None


def _parse_area(text: str, sym: Symbols) -> Any:
    sections = {}
    starts = [(m.start(), m.group(1), m.group(2)) for m in _SECTION.finditer(text)]
    for i, (pos, cid, kind) in enumerate(starts):
        seg = text[pos : starts[i + 1][0] if i + 1 < len(starts) else len(text)]
        rep = _REPORTING.search(seg)
        fig = _FIGURES.search(seg)
        table = re.search(r'<table class="results"[^>]*>\s*<caption>(.*?)</caption>(.*?)</table>', seg, re.S)
        choices = {}
        order = []
        if table is not None:
            for m in _CHOICE_ROW.finditer(table.group(2)):
                cells = _VOTES.search(m.group(2))
                bar = _BAR.search(m.group(2))
                choices[m.group(1)] = (
                    (cells.group(1), cells.group(2)) if cells else None,
                    bar.group(1) if bar else None,
                )
                order.append(m.group(1))
        sections[(cid, kind)] = (
            sorted(sym.tokens(_text(rep.group(1)))) if rep else None,
            (rep.group(2), rep.group(3)) if rep else None,
            [html.unescape(d) for d in _DD.findall(fig.group(1))] if fig else None,
            sym.tokens(_text(table.group(1))) if table else None,
            choices,
            order,
        )
    children = {}
    for m in _AREA_ROW.finditer(text):
        cells = _AREA_CELLS.search(m.group(2))
        children[m.group(1)] = (
            (cells.group(1), cells.group(2), _text(cells.group(3)), _last(sym.tokens(_text(cells.group(4)))))
            if cells
            else None
        )
    stations = {}
    for m in _STATION_ROW.finditer(text):
        tds = [_text(t) for t in _TD.findall(m.group(2))]
        kinds: list[tuple[str | None, str | None] | None] = []
        for cell in tds[1:]:
            if "·" in cell:
                left, right = cell.split("·", 1)
                kinds.append((_last(sym.tokens(left)), _last(sym.tokens(right))))
            else:
                kinds.append(None)
        stations[m.group(1)] = (tds[0] if tds else None, kinds)
    return sections, children, stations


def _leader_share(row: Row, sym: Symbols) -> str | None:
    leaders = leader_of(row)
    if not leaders:
        return None
    c = next(c for c in row["choices"] if c["id"] == leaders[0])
    return None if c["percent"] is None else sym.share(c["percent"])


def _expect_area(ex: Expected, area_id: str, sym: Symbols, main: Any, kind: Any) -> tuple[Any, int]:
    e = ex.election
    area = e.area_index[area_id]
    sections = {}
    n = 0
    for cid in page_contests(ex, area):
        for k in ex.kinds[cid]:
            row = ex.rows.get((cid, area_id, k))
            if row is None:
                continue
            figs = [
                sym.share(row[f]) + "%" if f == "turnout_percent" else sym.integer(row[f])
                for f in ("registered", "took_part", "turnout_percent", "ballots_cast", "valid", "invalid")
                if row[f] is not None
            ]
            base = row["percent_base"]["value"]
            choices = {
                c["id"]: (
                    (sym.integer(c["votes"]), "—" if c["percent"] is None else sym.share(c["percent"]) + "%"),
                    c["percent"],
                )
                for c in row["choices"]
            }
            order = [c["id"] for c in sorted(row["choices"], key=lambda c: (-c["votes"], c["id"]))]
            sections[(cid, k)] = (
                sorted(
                    [
                        sym.integer(row["stations_reporting"]),
                        sym.integer(row["stations_expected"]),
                        sym.share(row["stations_reporting_percent"]),
                    ]
                ),
                (str(row["stations_expected"]), str(row["stations_reporting"])),
                figs,
                [sym.integer(base)] if base is not None else [],
                choices,
                order,
            )
            n += 3 + len(figs) + 1 + 2 * len(choices)
    children = {}
    stations: dict[str, Any] = {}
    if main is not None:
        for child in e.children[area]:
            row = ex.rows.get((main, e.areas[child].id, kind))
            if row is None:
                continue
            children[e.areas[child].id] = (
                sym.integer(row["stations_reporting"]),
                sym.integer(row["stations_expected"]),
                "—" if row["turnout_percent"] is None else sym.share(row["turnout_percent"]) + "%",
                _leader_share(row, sym),
            )
            n += 4
        for si in ex.direct_stations().get(area, ()):
            sid = e.stations[si].id
            cells = []
            for k in ex.kinds.get(main, []):
                view = ex.station_view((main, sid, k))
                cells.append(
                    None
                    if view is None
                    else (
                        None if view.turnout_percent is None else sym.share(view.turnout_percent),
                        None
                        if not view.leaders or view.leaders[0][2] is None
                        else sym.share(view.leaders[0][2]),
                    )
                )
            stations[sid] = (sym.integer(e.stations[si].registered), cells)
            n += 1 + 2 * len(cells)
    return (sections, children, stations), n


_MAP_REGION = re.compile(r'<a href="(?:\.\./)*area/([^"]+)\.html"><path [^>]*><title>(.*?)</title>', re.S)


def _maps(p: _Page, text: str, main: Any, kind: Any, snapshot: int | None) -> None:
    """The national page: its snapshot number and the two maps (leading party, turnout), whose
    region titles show each region's share and turnout."""
    ex = p.ex
    lead, _ = _between(text, '<p class="lead">', "</p>")
    if lead is not None and snapshot is not None:
        tokens = p.sym.tokens(lead)
        p.out.numbers += 1
        if not tokens or tokens[0] != str(snapshot):
            p.out.add(
                "html",
                p.file,
                "lead › snapshot",
                tokens[0] if tokens else lead,
                str(snapshot),
                "the number of this snapshot (manifest.json)",
            )
    maps = text.find('<section class="maps"')
    if maps < 0 or main is None:
        return
    end = text.find("</section>", maps)
    regions = _MAP_REGION.findall(text[maps:end])
    half = len(regions) // 2
    for i, (aid, title) in enumerate(regions):
        key = (main, aid, kind)
        row = ex.rows.get(key)
        if row is None:
            p.out.fail("html", p.file, f"map › {aid}", "a region without a row of the main count")
            continue
        tokens = p.sym.tokens(_text(title))
        if i < half:
            want = _leader_share(row, p.sym)
            what, why = "leading share", "share of the choice with the most votes"
        else:
            want = None if row["turnout_percent"] is None else p.sym.share(row["turnout_percent"])
            what, why = "turnout", ex.why(key, "turnout_percent")
        p.out.numbers += 1
        shown = tokens[-1] if tokens else None
        if shown != want:
            p.out.add("html", p.file, f"map › {aid} › {what}", shown or _text(title), want or "—", why)


def check_area_html(
    file: str,
    text: str,
    lang: str,
    area_id: str,
    page: Any,
    ex: Expected,
    out: Tally,
    snapshot: int | None = None,
) -> None:
    """A national or area page; ``page`` is its JSON twin (for the main contest and count)."""
    sym = symbols(lang)
    main: Any = page.get("main_contest") if isinstance(page, dict) else None
    kind: Any = page.get("primary_kind") if isinstance(page, dict) else None
    if area_id == ex.election.areas[ex.election.roots[0]].id:
        _maps(_Page(out, file, ex, sym), text, main, kind, snapshot)
    got = _parse_area(text, sym)
    want, n = _expect_area(ex, area_id, sym, main, kind)
    if got == want:
        out.numbers += n
        p = _Page(out, file, ex, sym)
        for cid, k in want[0]:
            if ex.election.contest(cid).contest.area == area_id and (cid, k) in ex.seats:
                for m in _SECTION.finditer(text):
                    if (m.group(1), m.group(2)) == (cid, k):
                        _seats_html(p, f"section[{cid} / {k}]", text[m.start() :], (cid, area_id, k))
        return
    _check_area_html(file, text, lang, area_id, page, ex, out)


def _check_area_html(
    file: str, text: str, lang: str, area_id: str, page: Any, ex: Expected, out: Tally
) -> None:
    p = _Page(out, file, ex, symbols(lang))
    e = ex.election
    area = e.area_index[area_id]
    starts = [(m.start(), m.group(1), m.group(2)) for m in _SECTION.finditer(text)]
    seen = set()
    for i, (pos, cid, kind) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        seg = text[pos:end]
        key = (cid, area_id, kind)
        row = ex.rows.get(key)
        label = f"section[{cid} / {kind}]"
        if row is None or cid not in page_contests(ex, area):
            out.fail("html", file, label, "a count that does not exist for this area")
            continue
        seen.add((cid, kind))
        _section(p, label, seg, key, row, lang)
    for cid in page_contests(ex, area):
        for kind in ex.kinds[cid]:
            if (cid, area_id, kind) in ex.rows and (cid, kind) not in seen:
                p.missing("sections", f"the {kind} count of {cid}")
    main: Any = page.get("main_contest") if isinstance(page, dict) else None
    primary: Any = page.get("primary_kind") if isinstance(page, dict) else None
    if main is None:
        return
    children = {e.areas[c].id for c in e.children[area]}
    for m in _AREA_ROW.finditer(text):
        child = m.group(1)
        key = (main, child, primary)
        row = ex.rows.get(key)
        label = f"tr[data-area={child}]"
        if child not in children or row is None:
            out.fail("html", file, label, "not a child area with a row of the main count")
            continue
        cells = _AREA_CELLS.search(m.group(2))
        if cells is None:
            p.missing(label, "the reporting, turnout and leader cells")
            continue
        p.same(
            f"{label} › stations reporting",
            cells.group(1),
            p.num(row["stations_reporting"]),
            ex.why(key, "stations_reporting"),
        )
        p.same(
            f"{label} › stations expected",
            cells.group(2),
            p.num(row["stations_expected"]),
            ex.why(key, "stations_expected"),
        )
        p.same(
            f"{label} › turnout",
            _text(cells.group(3)),
            p.pct(row["turnout_percent"]),
            ex.why(key, "turnout_percent"),
        )
        _leader_cell(p, f"{label} › leader", _text(cells.group(4)), row, key)
    direct = {e.stations[si].id for si in ex.direct_stations().get(area, ())}
    for m in _STATION_ROW.finditer(text):
        sid = m.group(1)
        label = f"tr[data-station={sid}]"
        if sid not in direct:
            out.fail("html", file, label, "not a station directly in this area")
            continue
        tds = [_text(t) for t in _TD.findall(m.group(2))]
        reg = e.stations[e.station_index[sid]].registered
        if not tds:
            p.missing(label, "the station's cells")
            continue
        p.same(f"{label} › registered", tds[0], p.num(reg), "the definition")
        for k, cell in zip(ex.kinds.get(main, []), tds[1:], strict=False):
            skey = (main, sid, k)
            srow = ex.stations.get(skey)
            if srow is None:
                if p.sym.tokens(cell):
                    out.fail("html", file, f"{label} › {k}", "numbers shown, but no protocol is in force")
                continue
            tokens = p.sym.tokens(cell.replace("%", " % "))
            want = [p.sym.share(srow["turnout_percent"])] if srow["turnout_percent"] is not None else []
            leaders = leader_of(srow)
            out.numbers += 1
            if not tokens or (want and tokens[0] != want[0]):
                out.add(
                    "html",
                    file,
                    f"{label} › {k} turnout",
                    tokens[0] if tokens else cell,
                    want[0] if want else "—",
                    ex.why(skey, "turnout_percent"),
                )
            if leaders:
                shares = {
                    p.sym.share(c["percent"]) for c in srow["choices"] if c["id"] in leaders and c["percent"]
                }
                out.numbers += 1
                if len(tokens) < 2 or tokens[-1] not in shares:
                    out.add(
                        "html",
                        file,
                        f"{label} › {k} leader",
                        tokens[-1] if len(tokens) > 1 else cell,
                        " or ".join(sorted(shares)),
                        "share of the leading choice in the station's protocol",
                    )


def _leader_cell(p: _Page, label: str, cell: str, row: Row, key: RowKey) -> None:
    leaders = leader_of(row)
    if not leaders:
        p.same(label, cell, "—", "no votes counted there yet")
        return
    shares = {
        p.sym.share(c["percent"]) for c in row["choices"] if c["id"] in leaders and c["percent"] is not None
    }
    tokens = p.sym.tokens(cell)
    p.out.numbers += 1
    if not tokens or tokens[-1] not in shares:
        p.out.add(
            "html",
            p.file,
            label,
            tokens[-1] if tokens else cell,
            " or ".join(sorted(shares)),
            "share of the choice with the most votes: " + p.ex.why(key, "percent", leaders[0]),
        )


def _section(p: _Page, label: str, seg: str, key: RowKey, row: Row, lang: str) -> None:
    ex = p.ex
    rep = _REPORTING.search(seg)
    if rep is None:
        p.missing(label, "the reporting line")
    else:
        tokens = sorted(p.sym.tokens(_text(rep.group(1))))
        want_rep = sorted(
            [
                p.num(row["stations_reporting"]),
                p.num(row["stations_expected"]),
                p.sym.share(row["stations_reporting_percent"]) if row["stations_reporting_percent"] else "—",
            ]
        )
        p.out.numbers += 3
        if tokens != [w for w in want_rep if w != "—"]:
            p.out.add(
                "html",
                p.file,
                f"{label} › reporting",
                " ".join(tokens),
                " ".join(want_rep),
                ex.why(key, "stations_reporting") + "; " + ex.why(key, "stations_reporting_percent"),
            )
        p.same(
            f"{label} › progress max",
            rep.group(2),
            str(row["stations_expected"]),
            ex.why(key, "stations_expected"),
        )
        p.same(
            f"{label} › progress value",
            rep.group(3),
            str(row["stations_reporting"]),
            ex.why(key, "stations_reporting"),
        )
    fig = _FIGURES.search(seg)
    if fig is None:
        p.missing(label, "the figures")
    else:
        shown_figs = _DD.findall(fig.group(1))
        want_figs = [
            (name, p.pct(row[name]) if name == "turnout_percent" else p.num(row[name]))
            for name in ("registered", "took_part", "turnout_percent", "ballots_cast", "valid", "invalid")
            if row[name] is not None
        ]
        if len(shown_figs) != len(want_figs):
            p.out.fail(
                "html",
                p.file,
                f"{label} › figures",
                f"{len(shown_figs)} figures shown, {len(want_figs)} expected "
                f"({', '.join(n for n, _ in want_figs)})",
            )
        for (name, want), got in zip(want_figs, shown_figs, strict=False):
            p.same(f"{label} › {name}", html.unescape(got), want, ex.why(key, name))
    table = re.search(
        rf'<table class="results" data-contest="{re.escape(key[0])}" data-kind="{re.escape(key[2])}">\s*'
        r"<caption>(.*?)</caption>(.*?)</table>",
        seg,
        re.S,
    )
    if table is None:
        p.missing(label, "table.results")
        return
    base = row["percent_base"]["value"]
    caption_tokens = p.sym.tokens(_text(table.group(1)))
    p.out.numbers += 1
    if p.num(base) not in caption_tokens:
        p.out.add(
            "html",
            p.file,
            f"{label} › caption (stated base)",
            " ".join(caption_tokens) or _text(table.group(1)),
            p.num(base),
            ex.why(key, "percent_base"),
        )
    want_choices = {c["id"]: c for c in row["choices"]}
    order: list[int] = []
    seen = set()
    for m in _CHOICE_ROW.finditer(table.group(2)):
        cid = m.group(1)
        c = want_choices.get(cid)
        where = f"{label} › {cid}"
        if c is None:
            p.out.fail("html", p.file, where, "not a choice of this contest")
            continue
        seen.add(cid)
        cells = _VOTES.search(m.group(2))
        if cells is None:
            p.missing(where, "td.votes / td.pct")
            continue
        p.same(f"{where} › votes", cells.group(1), p.num(c["votes"]), ex.why(key, "votes", cid))
        shown_pct = cells.group(2).strip()
        want_pct = p.pct(c["percent"])
        p.out.numbers += 1
        if shown_pct != want_pct:
            as_plain = shown_pct.rstrip("%").replace(p.sym.group, "").replace(p.sym.decimal, ".")
            p.out.add(
                "html",
                p.file,
                f"{where} › share",
                shown_pct,
                want_pct,
                ex.why(key, "percent", cid) + ex.wrong_base(row, cid, as_plain),
            )
        bar = _BAR.search(m.group(2))
        if bar is not None and c["percent"] is not None and bar.group(1) != c["percent"]:
            p.out.add(
                "html",
                p.file,
                f"{where} › bar width",
                bar.group(1) + "%",
                c["percent"] + "%",
                "the bar is drawn at the share",
            )
        order.append(c["votes"])
    for cid in want_choices:
        if cid not in seen:
            p.missing(label, f"choice {cid}")
    if any(a < b for a, b in pairwise(order)):
        p.out.fail("html", p.file, label, "choices are not sorted by votes (most first)")
    _seats_html(p, label, seg, key)


def _seats_html(p: _Page, label: str, seg: str, key: RowKey) -> None:
    """The seat table and thresholds shown at a contest's own area."""
    ex = p.ex
    proj = ex.seats.get((key[0], key[2])) if ex.election.contest(key[0]).contest.area == key[1] else None
    if proj is None or proj["status"] != "ok":
        return
    end = seg.find("</section>", seg.find('<section class="seats"'))
    seg = seg[: end if end > 0 else len(seg)]
    legend = _LEGEND.search(seg)
    if legend is not None:
        for m in _LEGEND_ROW.finditer(legend.group(1)):
            cid = m.group(1)
            if cid in proj["seats"]:
                p.same(
                    f"{label} › seats › {cid}",
                    m.group(2),
                    p.num(proj["seats"][cid]),
                    "the recomputed seat allocation (§7.4)",
                )
    elif proj.get("method") != "plurality" and any(proj["seats"].values()):
        p.missing(label, "the seat table")
    thresh = _THRESH.search(seg)
    base_fig = proj.get("threshold_base")
    if thresh is not None and base_fig is not None and base_fig["value"]:
        from tallyroom.verify.numbers import percent

        for m in _THRESH_ROW.finditer(thresh.group(1)):
            cid = m.group(1)
            if cid in proj["votes"]:
                want = percent(proj["votes"][cid], base_fig["value"])
                p.same(
                    f"{label} › threshold › {cid}",
                    m.group(2).strip(),
                    p.sym.share(want),
                    f"{proj['votes'][cid]:,} of {base_fig['value']:,} "
                    f"({base_fig['figure']}, the threshold base)",
                )


def _between(text: str, start: str, end: str, pos: int = 0) -> tuple[str | None, int]:
    """The text after ``start`` up to ``end`` (str.find: much faster than a lazy regex)."""
    i = text.find(start, pos)
    if i < 0:
        return None, pos
    i += len(start)
    j = text.find(end, i)
    if j < 0:
        return None, pos
    return text[i:j], j + len(end)


_RULE_CELL = re.compile(r"<td>(.*?)</td>", re.S)


def _parse_history(text: str) -> list[tuple[str, str, list[tuple[str, str, str]]]]:
    """Each history table: (contest, count kind, [(ledger index, status, leaf hash)])."""
    return [(c, k, _HISTORY_ROW.findall(body)) for c, k, body in _HISTORY_TABLE.findall(text)]


def _parse_images(text: str) -> list[tuple[str, str, str | None, str | None]]:
    """Each protocol photo: (contest, count kind, declared SHA-256, the linked file)."""
    out = []
    starts = [(m.start(), m.group(1)) for m in _PROTOCOL.finditer(text)]
    for i, (pos, cid) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        for kind, body in _FIGURE.findall(text, pos, end):
            codes = _CODE.findall(body)
            href = _IMAGE_HREF.search(body)
            out.append((cid, kind, codes[-1] if codes else None, href.group(1) if href else None))
    return out


def _parse_intake(text: str, sym: Symbols) -> tuple[list[str], dict[str, str]] | None:
    """The intake figures: the four counts, and each reason's count."""
    m = _INTAKE.search(text)
    if m is None:
        return None
    reasons = {}
    for reason, item in _INTAKE_REASON.findall(text, m.end()):
        tokens = sym.tokens(_text(item).rpartition(":")[2])
        reasons[html.unescape(reason)] = tokens[-1] if tokens else ""
    return sym.tokens(_text(m.group(1))), reasons


_DASH = "—".encode()
_TICK = "✓".encode()


@dataclass(frozen=True, slots=True)
class _StationFacts:
    """Everything a station page must show, before numbers are written the locale's way: bytes
    are shown as they are; integers and shares (exact decimal strings) are None for "—"; a
    control rule's cell is True (holds), ``(left, right, severity)`` (fails) or b"" (not a
    rule of that count)."""

    registered: int
    #: (contest, lines, caption, votes, receipts) as :func:`_parse_station_bytes` finds them,
    #: but lines as (values line by line, count kinds) and votes as (choices, the count kind
    #: of each cell, votes and shares choice by choice, count kinds): see :func:`_format_station`.
    protocols: list[Any]
    rule_rows: list[tuple[bytes, list[Any]]] | None
    history: list[tuple[bytes, bytes, list[tuple[bytes, ...]]]]
    images: list[tuple[bytes, bytes, bytes | None, bytes | None]]
    numbers: int


#: A rule's expression as a page shows it, escaped: the same few dozen on every station page.
_ESCAPED: dict[str, bytes] = {}
#: Shares as pages show them, per (grouping, decimal mark): a share is one of 10,001 strings.
_SHARES: dict[tuple[str, str], dict[str | None, bytes]] = {}


def _by_cell(columns: Iterable[list[Any]]) -> list[Any]:
    """One list per count kind (equally long) → their values row by row, cell by cell."""
    return list(chain.from_iterable(zip(*columns, strict=True)))


def _rows_of(cells: list[Any], width: int) -> list[list[Any]]:
    """Consecutive cells in rows of ``width``."""
    it = iter(cells)
    return list(map(list, zip(*[it] * width, strict=True)))


def _station_facts(ex: Expected, station_id: str) -> _StationFacts:
    """What :func:`_parse_station_bytes` must find, for every language (see
    :func:`_format_station`)."""
    e = ex.election
    si = e.station_index[station_id]
    n = 1
    protocols: list[Any] = []
    columns: list[str] = []
    rules: dict[str, tuple[bytes, dict[str, Any]]] = {}
    images: list[tuple[bytes, bytes, bytes | None, bytes | None]] = []
    for contest in e.contests:
        if si not in contest.station_set:
            continue
        kinds = ex.kinds[contest.id]
        facts = [ex.protocol((contest.id, station_id, k)) for k in kinds]
        if not any(facts):
            protocols.append((contest.id.encode(), None, None, None, {}))
            continue
        # Lines and votes flat, in the order the page shows them (line by line, choice by
        # choice; within each, one cell per count kind): _format_station maps them whole.
        lids = contest.line_ids[: contest.choice_start]
        order = tuple(c.encode() for c in contest.choice_ids)
        line_values = _by_cell([None] * len(lids) if f is None else f.lines for f in facts)
        caption = [f.base_value for f in facts if f is not None]
        cell_kinds = tuple(b"" if f is None else k.encode() for k, f in zip(kinds, facts, strict=True))
        nothing = [None] * len(order)
        votes = (
            order,
            cell_kinds * len(order),
            _by_cell(nothing if f is None else f.votes for f in facts),
            _by_cell(nothing if f is None else f.percents for f in facts),
            len(kinds),
        )
        receipts = {}
        for k, f in zip(kinds, facts, strict=True):
            if f is None:
                continue
            receipts[k.encode()] = (
                [str(f.index).encode()],
                [f.leaf_hash.encode(), f.body_sha256.encode()],
            )
            declared = ex.walk.images.get(f.index)
            if declared is not None:
                path = ex.images.get(declared)
                images.append(
                    (
                        contest.id.encode(),
                        k.encode(),
                        declared.encode(),
                        None if path is None else path.encode(),
                    )
                )
            col = f"{contest.id}/{k}"
            columns.append(col)
            for rc in ex.station_rules((contest.id, station_id, k)):
                entry = rules.get(rc["rule"])
                if entry is None:
                    expr = _ESCAPED.get(rc["expr"])
                    if expr is None:
                        expr = _ESCAPED[rc["expr"]] = _escape(rc["expr"]).encode()
                    entry = rules[rc["rule"]] = (expr, {})
                entry[1][col] = True if rc["holds"] else (rc["left"], rc["right"], rc["severity"])
        n += len(lids) * len(kinds) + len(caption) + 2 * len(order) * len(kinds) + 3 * len(receipts)
        protocols.append((contest.id.encode(), (line_values, len(kinds)), caption, votes, receipts))
    rule_rows = [(expr, [checks.get(col, b"") for col in columns]) for expr, checks in rules.values()]
    history: list[tuple[bytes, bytes, list[tuple[bytes, ...]]]] = [
        (
            g["contest"].encode(),
            g["count_kind"].encode(),
            [
                (str(h["ledger_index"]).encode(), h["status"].encode(), h["leaf_hash"].encode())
                for h in g["entries"]
            ],
        )
        for g in ex.history(station_id)
    ]
    n += sum(len(r[1]) for r in rule_rows) + sum(3 * len(g[2]) for g in history) + len(images)
    return _StationFacts(
        e.stations[si].registered, protocols, rule_rows if rule_rows else None, history, images, n
    )


#: Integers under 1,000 (and "—" for none) as every locale writes them: most of a station's.
_SMALL: dict[int | None, bytes] = {None: _DASH, **{v: b"%d" % v for v in range(1000)}}


def _format_station(facts: _StationFacts, sym: Symbols) -> Any:
    """The facts as :func:`_parse_station_bytes` finds them on a page in ``sym``'s locale
    (without the intake figures: see :func:`check_station_html`)."""
    group = sym.group
    shares = _SHARES.setdefault((sym.group, sym.decimal), {None: _DASH})
    small = _SMALL.__getitem__
    known_share = shares.__getitem__

    def share(p: str | None) -> bytes:
        got = shares.get(p)
        if got is None:
            if len(shares) > 20_000:  # only shares over 100 % are not among the usual 10,001
                shares.clear()
                shares[None] = _DASH
            got = shares[p] = sym.share(p).encode() + b"%"
        return got

    def num(v: int | None) -> bytes:  # Symbols.integer, as bytes
        got = _SMALL.get(v)
        if got is not None:
            return got
        text = f"{v:,}"
        return (text if group == "," else text.replace(",", group)).encode()

    # Whole lists are mapped at C speed; a list with a large number or a new share takes the
    # functions (the KeyError comes before anything is built from it).
    def nums(values: list[Any]) -> list[bytes]:
        try:
            return list(map(small, values))
        except KeyError:
            return [num(v) for v in values]

    def pcts(values: list[Any]) -> list[bytes]:
        try:
            return list(map(known_share, values))
        except KeyError:
            return [share(p) for p in values]

    def table(lines: tuple[list[Any], int]) -> list[list[Any]]:
        values, width = lines
        return _rows_of(nums(values), width)

    def votes_of(votes: tuple[tuple[bytes, ...], tuple[bytes, ...], list[Any], list[Any], int]) -> Any:
        order, kinds, values, percents, width = votes
        cells = list(zip(kinds, nums(values), pcts(percents), strict=True))
        return dict(zip(order, _rows_of(cells, width), strict=True))

    def rule(v: Any) -> bytes:
        if v is True:
            return _TICK
        if isinstance(v, tuple):
            left, right, severity = v
            return (
                f'<span class="no">✗ {sym.integer(left)} / {sym.integer(right)} ({severity})</span>'.encode()
            )
        return b""

    protocols = [
        (cid, None, None, None, {})
        if lines is None
        else (
            cid,
            table(lines),
            [sym.integer(v) for v in caption],
            votes_of(votes),
            receipts,
        )
        for cid, lines, caption, votes, receipts in facts.protocols
    ]
    rule_rows = (
        None
        if facts.rule_rows is None
        else [(expr, [rule(c) for c in cells]) for expr, cells in facts.rule_rows]
    )
    return ([sym.integer(facts.registered)], protocols, rule_rows, facts.history, facts.images)


def _expect_intake(ex: Expected, station_id: str, sym: Symbols) -> tuple[list[str], dict[str, str]] | None:
    counts = (ex.journal or {}).get(station_id)
    if not isinstance(counts, dict):
        return None
    reasons = counts.get("reasons")
    if not isinstance(reasons, dict):
        reasons = {}
    return (
        [sym.integer(counts.get(o)) for o in ("accepted", "duplicate", "conflict", "rejected")],
        {r: sym.integer(v) for r, v in reasons.items()},
    )


# -- the station pages' fast path, on the page's bytes ----------------------------------------
#
# A snapshot has one station page per station and language (300,000 for 100,000 stations), so
# they are read without decoding them first: the same expressions as above, over the UTF-8
# bytes (no pattern can match inside a multi-byte character: every delimiter is ASCII), each
# started at the first occurrence of its literal prefix (``bytes.find`` is several times faster
# than the regular expression engine's scan, and no match can start before it). Numbers in
# running text (the intro, the caption, the intake line) are decoded fragment by fragment, so
# that ``\w`` means what it means on a page. A page that differs in any way from what is
# expected goes to :func:`_check_station_html`, which names each difference.


def _bytes_re(pattern: re.Pattern[str], tail: bytes = b"") -> re.Pattern[bytes]:
    """The same expression over bytes (its flags but Unicode matching); with ``tail``, its
    head: the expression without that ending (see :func:`_b_blocks`)."""
    source = pattern.pattern.encode()
    if tail:
        assert source.endswith(tail), (source, tail)
        source = source[: -len(tail)]
    return re.compile(source, pattern.flags & ~re.UNICODE)


_B_PROTOCOL = _bytes_re(_PROTOCOL)
_B_VOTE_TOKENS = _bytes_re(_VOTE_TOKENS)
_B_LINE_ROW = _bytes_re(_LINE_ROW)
_B_N_CELL = _bytes_re(_N_CELL)
_B_RECEIPT_HEAD = _bytes_re(_RECEIPT, rb"(.*?)</dl>")
_B_DD = _bytes_re(_DD)
_B_CODE = _bytes_re(_CODE)
_B_RULE_ROW = _bytes_re(_RULE_ROW)
_B_RULE_CELL = _bytes_re(_RULE_CELL)
_B_HISTORY_HEAD = _bytes_re(_HISTORY_TABLE, rb"(.*?)</table>")
_B_HISTORY_ROW = _bytes_re(_HISTORY_ROW)
_B_FIGURE_HEAD = _bytes_re(_FIGURE, rb"(.*?)</figure>")
_B_IMAGE_HREF = _bytes_re(_IMAGE_HREF)
_B_INTAKE = _bytes_re(_INTAKE)
_B_INTAKE_REASON = _bytes_re(_INTAKE_REASON)


def _b_between(data: bytes, start: bytes, end: bytes) -> bytes | None:
    i = data.find(start)
    if i < 0:
        return None
    i += len(start)
    j = data.find(end, i)
    return None if j < 0 else data[i:j]


def _b_blocks(data: bytes, head: re.Pattern[bytes], prefix: bytes, end: bytes) -> list[tuple[bytes, ...]]:
    """``re.findall(head.pattern + rb"(.*?)" + end, data, re.S)`` for a ``head`` that starts
    with ``prefix``: the lazy body ends at the first ``end`` after the head, which
    ``bytes.find`` finds without trying every byte in between."""
    found: list[tuple[bytes, ...]] = []
    at = data.find(prefix)
    while at >= 0:
        m = head.match(data, at)
        if m is None:
            at = data.find(prefix, at + 1)
            continue
        stop = data.find(end, m.end())
        if stop < 0:  # no later head can be closed either
            break
        found.append((*m.groups(), data[m.end() : stop]))
        at = data.find(prefix, stop + len(end))
    return found


def _b_tokens(sym: Symbols, fragment: bytes) -> list[str]:
    return sym.tokens(fragment.decode("utf-8", "replace"))


#: How every row of a station page's rules table begins (§13).
_RULE_START = b'<tr><th scope="row"><code>'
#: Rows of the rules table as :func:`_rules_bytes` writes them, by (expression, cells).
_RULE_ROW_BYTES: dict[tuple[bytes, tuple[bytes, ...]], bytes] = {}


def _rules_bytes(rule_rows: list[tuple[bytes, list[bytes]]]) -> bytes:
    """The body of a rules table holding exactly ``rule_rows`` (escaped expression, cells), in
    the markup §13 gives: ``_B_RULE_ROW`` and ``_B_RULE_CELL`` find in it each row and cell
    back (an expression is escaped, so holds no ``<``; a cell is "✓", empty or a ``<span>``
    without closing tags of cells or rows)."""
    parts = []
    for expr, cells in rule_rows:
        key = (expr, tuple(cells))
        got = _RULE_ROW_BYTES.get(key)
        if got is None:
            if len(_RULE_ROW_BYTES) > 10_000:
                _RULE_ROW_BYTES.clear()
            got = _RULE_ROW_BYTES[key] = b"".join(
                [_RULE_START, expr, b"</code></th>", *(b"<td>" + c + b"</td>" for c in cells), b"</tr>"]
            )
        parts.append(got)
    return b"".join(parts)


def _holds_rows(region: bytes, rows: bytes) -> bool:
    """Whether the rules region of a page (from the table's start to ``</tbody>``) ends with
    ``<tbody>`` and exactly ``rows``, and no row begins before them. Every match of
    ``_B_RULE_ROW`` begins with ``_RULE_START``, so the region's rows are then those of
    ``rows`` alone: what the expressions would find, without running them."""
    return (
        rows.startswith(_RULE_START)
        and region.endswith(b"<tbody>" + rows)
        and region.find(_RULE_START) == len(region) - len(rows)
    )


def _parse_station_bytes(data: bytes, sym: Symbols, rules_known: tuple[bytes, Any] | None = None) -> Any:
    """Every number a station page shows, in one structure compared with
    :func:`_format_station`'s: what the hooks of §13 capture (as bytes), the numbers in running
    text (as text), and the history, photos and intake (:func:`_parse_history`,
    :func:`_parse_images`, :func:`_parse_intake` on the bytes). ``rules_known`` is the rules
    table's expected body and what the expressions find in it (:func:`_rules_bytes`): a
    table that holds exactly that body is not parsed again."""
    intro = _b_between(data, b"</h1>\n<p>", b"</p>")
    protocols = []
    images = []
    starts = []
    at = data.find(b'<section class="protocol" ')
    while at >= 0:  # _B_PROTOCOL.finditer(data), each match looked for where its prefix is
        m = _B_PROTOCOL.match(data, at)
        if m is None:
            at = data.find(b'<section class="protocol" ', at + 1)
        else:
            starts.append((at, m.group(1)))
            at = data.find(b'<section class="protocol" ', m.end())
    for i, (pos, cid) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(data)
        seg = data[pos:end]
        lines = _b_between(seg, b'<table class="lines">', b"</table>")
        table = _b_between(seg, b'<table class="results station-votes"', b"</table>")
        votes: dict[bytes, list[tuple[bytes, bytes, bytes]]] | None = None
        caption = None
        if table is not None:
            caption = _b_between(table, b"<caption>", b"</caption>")
            votes = {}
            cells: list[tuple[bytes, bytes, bytes]] = []
            for choice, kind, v, share in _B_VOTE_TOKENS.findall(table):
                if choice:
                    cells = votes[choice] = []
                else:
                    cells.append((kind, v, share))
        receipts = {
            kind: (_B_DD.findall(body)[:1], _B_CODE.findall(body))
            for kind, body in _b_blocks(seg, _B_RECEIPT_HEAD, b'<dl class="receipt" ', b"</dl>")
        }
        protocols.append(
            (
                cid,
                [_B_N_CELL.findall(tr) for tr in _B_LINE_ROW.findall(lines)] if lines is not None else None,
                _b_tokens(sym, caption) if caption is not None else None,
                votes,
                receipts,
            )
        )
        for kind, body in _b_blocks(seg, _B_FIGURE_HEAD, b'<figure class="protocol-image" ', b"</figure>"):
            codes = _B_CODE.findall(body)
            href = _B_IMAGE_HREF.search(body)
            images.append((cid, kind, codes[-1] if codes else None, href.group(1) if href else None))
    rules = _b_between(data, b'<table class="rules"', b"</tbody>")
    history = [
        (c, k, _B_HISTORY_ROW.findall(body))
        for c, k, body in _b_blocks(data, _B_HISTORY_HEAD, b'<table class="history" ', b"</table>")
    ]
    intake = None
    i0 = data.find(b'<p class="intake">')
    m = _B_INTAKE.search(data, i0) if i0 >= 0 else None
    if m is not None:
        reasons = {}
        for reason, item in _B_INTAKE_REASON.findall(data, m.end()):
            tokens = sym.tokens(_text(item.decode("utf-8", "replace")).rpartition(":")[2])
            reasons[html.unescape(reason.decode("utf-8", "replace"))] = tokens[-1] if tokens else ""
        intake = (sym.tokens(_text(m.group(1).decode("utf-8", "replace"))), reasons)
    return (
        _b_tokens(sym, intro) if intro is not None else None,
        protocols,
        None
        if rules is None
        else rules_known[1]
        if rules_known is not None and _holds_rows(rules, rules_known[0])
        else [(e, _B_RULE_CELL.findall(cells)) for e, cells in _B_RULE_ROW.findall(rules)],
        history,
        images,
        intake,
    )


#: The facts of the last stations checked, and their pages' expected structure per locale:
#: a station's JSON and HTML pages are checked one after another (``run._subject``).
_FACTS_CACHE: dict[tuple[int, str], _StationFacts] = {}
_EXPECT_CACHE: dict[tuple[int, str, str, str], Any] = {}


def check_station_html(
    file: str, data: bytes | str, lang: str, station_id: str, ex: Expected, out: Tally
) -> None:
    """A station page (its bytes as published, or its text)."""
    if isinstance(data, str):
        data = data.encode()
    sym = symbols(lang)
    fk = (id(ex), station_id)
    facts = _FACTS_CACHE.get(fk)
    if facts is None:
        if len(_FACTS_CACHE) > 32:
            _FACTS_CACHE.clear()
        facts = _FACTS_CACHE[fk] = _station_facts(ex, station_id)
    ck = (id(ex), station_id, sym.group, sym.decimal)
    cached = _EXPECT_CACHE.get(ck)
    if cached is None:
        if len(_EXPECT_CACHE) > 64:
            _EXPECT_CACHE.clear()
        expected = _format_station(facts, sym)
        rule_rows = expected[2]
        cached = _EXPECT_CACHE[ck] = (
            expected,
            None if rule_rows is None else (_rules_bytes(rule_rows), rule_rows),
        )
    want, rules_known = cached
    got = _parse_station_bytes(data, sym, rules_known)
    n = facts.numbers
    if ex.journal is not None:  # else there is nothing to compare the intake figures with
        intake = _expect_intake(ex, station_id, sym)
        if got[-1] != intake:
            _check_station_html(file, data.decode("utf-8", "replace"), lang, station_id, ex, out)
            return
        n += 0 if intake is None else 4 + len(intake[1])
    if got[:-1] == want:
        out.numbers += n
        return
    _check_station_html(file, data.decode("utf-8", "replace"), lang, station_id, ex, out)


def _check_station_html(file: str, text: str, lang: str, station_id: str, ex: Expected, out: Tally) -> None:
    p = _Page(out, file, ex, symbols(lang))
    e = ex.election
    si = e.station_index[station_id]
    reg = e.stations[si].registered
    intro = _H1_P.search(text)
    if intro is None:
        p.missing("intro", "the registered voters line")
    else:
        tokens = p.sym.tokens(_text(intro.group(1)))
        p.out.numbers += 1
        if p.num(reg) not in tokens:
            out.add("html", file, "registered", " ".join(tokens), p.num(reg), "the definition")
    starts = [(m.start(), m.group(1)) for m in _PROTOCOL.finditer(text)]
    shown_contests = set()
    columns: list[str] = []
    rules_rows: dict[str, dict[str, Any]] = {}
    for i, (pos, cid) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        seg = text[pos:end]
        if cid not in e.contest_index or si not in e.contest(cid).station_set:
            out.fail("html", file, f"protocol[{cid}]", "not a contest of this station")
            continue
        shown_contests.add(cid)
        contest = e.contest(cid)
        kinds = ex.kinds[cid]
        rows = [ex.stations.get((cid, station_id, k)) for k in kinds]
        for k, r in zip(kinds, rows, strict=True):
            if r is not None:
                columns.append(f"{cid}/{k}")
                for rc in ex.station_rules((cid, station_id, k)):
                    entry = rules_rows.setdefault(rc["rule"], {"expr": rc["expr"], "checks": {}})
                    entry["checks"][f"{cid}/{k}"] = rc
        if not any(rows):
            continue
        _station_protocol(p, seg, cid, station_id, contest.line_ids[: contest.choice_start], kinds, rows)
    for c in e.contests:
        if si in c.station_set and c.id not in shown_contests:
            p.missing("protocols", f"contest {c.id}")
    if rules_rows:
        _rules_table(p, text, columns, rules_rows)
    _history_html(p, text, station_id)
    _images_html(p, text, station_id)
    if ex.journal is not None:
        want_intake = _expect_intake(ex, station_id, p.sym)
        got_intake = _parse_intake(text, p.sym)
        p.out.numbers += 1
        if got_intake != want_intake:
            out.add(
                "html",
                file,
                "intake",
                got_intake,
                want_intake,
                "bulletin/journal.json's counts for this station (accepted, sent again, conflicting, "
                "rejected; rejections by reason)",
            )


def _history_html(p: _Page, text: str, station_id: str) -> None:
    """§13 hooks ``table.history[data-contest][data-kind] tr[data-index][data-status]`` with
    the leaf hash: every entry acting on the station, its status, in ledger order."""
    shown = {(c, k): rows for c, k, rows in _parse_history(text)}
    for g in p.ex.history(station_id):
        key = (g["contest"], g["count_kind"])
        label = f"history[{key[0]} / {key[1]}]"
        want = [(str(h["ledger_index"]), h["status"], h["leaf_hash"]) for h in g["entries"]]
        rows = shown.pop(key, None)
        if rows is None:
            p.missing(label, "the history table")
            continue
        p.out.numbers += 3 * len(want)
        if rows != want:
            p.out.add(
                "html",
                p.file,
                label,
                [" ".join(r) for r in rows],
                [" ".join(r) for r in want],
                "ledger index, status and leaf hash of every entry acting on it, in ledger order (§12)",
            )
    for c, k in shown:
        p.out.fail("html", p.file, f"history[{c} / {k}]", "no ledger entry acts on this protocol")


def _images_html(p: _Page, text: str, station_id: str) -> None:
    """Each photo shown under a receipt: the declared SHA-256 and the file it links."""
    ex = p.ex
    shown = {(c, k): (sha, path) for c, k, sha, path in _parse_images(text)}
    for c in ex.election.contests:
        for k in ex.kinds.get(c.id, []):
            row = ex.stations.get((c.id, station_id, k))
            if row is None:
                continue
            declared = ex.walk.images.get(row["ledger_index"])
            got = shown.pop((c.id, k), None)
            label = f"protocol[{c.id}] › photo {k}"
            if declared is None:
                if got is not None:
                    p.out.fail("html", p.file, label, f"ledger entry {row['ledger_index']} declares no photo")
                continue
            want = (declared, ex.images.get(declared))
            p.out.numbers += 1
            if got != want:
                p.out.add(
                    "html",
                    p.file,
                    label,
                    list(got) if got else None,
                    list(want),
                    f"the image_sha256 of ledger entry {row['ledger_index']} and the published file "
                    "images/<sha256>.<ext> (null: not uploaded)",
                )
    for cid, k in shown:
        p.out.fail("html", p.file, f"protocol[{cid}] › photo {k}", "no protocol in force of this count")


def _station_protocol(
    p: _Page,
    seg: str,
    cid: str,
    station_id: str,
    line_ids: tuple[str, ...],
    kinds: list[str],
    rows: list[Row | None],
) -> None:
    ex = p.ex
    label = f"protocol[{cid}]"
    lines = _LINES.search(seg)
    if lines is None:
        p.missing(label, "the protocol lines table")
    else:
        trs = _LINE_ROW.findall(lines.group(1))
        if len(trs) != len(line_ids):
            p.out.fail(
                "html", p.file, f"{label} › lines", f"{len(trs)} lines shown, the form has {len(line_ids)}"
            )
        for lid, tr in zip(line_ids, trs, strict=False):
            cells = _N_CELL.findall(tr)
            for k, r, cell in zip(kinds, rows, cells, strict=False):
                want = "—" if r is None else p.num(r["lines"][lid])
                p.same(
                    f"{label} › {lid} › {k}",
                    cell,
                    want,
                    "the line in the protocol in force"
                    if r is None
                    else f"line {lid} of ledger entry {r['ledger_index']}",
                )
    table = re.search(
        rf'<table class="results station-votes" data-contest="{re.escape(cid)}">\s*'
        r"<caption>(.*?)</caption>(.*?)</table>",
        seg,
        re.S,
    )
    if table is None:
        p.missing(label, "table.station-votes")
        return
    caption = p.sym.tokens(_text(table.group(1)))
    for k, r in zip(kinds, rows, strict=True):
        if r is not None:
            base = r["percent_base"]["value"]
            p.out.numbers += 1
            if p.num(base) not in caption:
                p.out.add(
                    "html",
                    p.file,
                    f"{label} › caption › {k} base",
                    " ".join(caption),
                    p.num(base),
                    ex.why((cid, station_id, k), "percent_base"),
                )
    seen = set()
    for m in _CHOICE_ROW.finditer(table.group(2)):
        choice = m.group(1)
        seen.add(choice)
        cells = _SVOTES_ROW_CELL.findall(m.group(2))
        if len(cells) != len(kinds):
            p.out.fail(
                "html", p.file, f"{label} › {choice}", f"{len(cells)} count columns, expected {len(kinds)}"
            )
            continue
        for k, r, (dk, votes, share) in zip(kinds, rows, cells, strict=True):
            skey = (cid, station_id, k)
            if r is None:
                p.same(f"{label} › {choice} › {k}", votes, "—", "no protocol of this count is in force")
                continue
            if dk and dk != k:
                p.out.add(
                    "html",
                    p.file,
                    f"{label} › {choice} › column",
                    dk,
                    k,
                    "columns follow the published count kinds",
                )
            c = next((c for c in r["choices"] if c["id"] == choice), None)
            if c is None:
                p.out.fail("html", p.file, f"{label} › {choice}", "not a choice of this contest")
                break
            p.same(
                f"{label} › {choice} › {k} votes",
                votes,
                p.num(c["votes"]),
                f"line {choice} of ledger entry {r['ledger_index']}",
            )
            shown = share.strip()
            want = p.pct(c["percent"])
            p.out.numbers += 1
            if shown != want:
                as_plain = shown.rstrip("%").replace(p.sym.group, "").replace(p.sym.decimal, ".")
                p.out.add(
                    "html",
                    p.file,
                    f"{label} › {choice} › {k} share",
                    shown,
                    want,
                    ex.why(skey, "percent", choice) + ex.wrong_base(r, choice, as_plain),
                )
    contest = ex.election.contest(cid)
    for choice in contest.choice_ids:
        if choice not in seen:
            p.missing(label, f"choice {choice}")
    receipts = {m.group(1): m.group(2) for m in _RECEIPT.finditer(seg)}
    for k, r in zip(kinds, rows, strict=True):
        if r is None:
            continue
        body = receipts.get(k)
        if body is None:
            p.missing(f"{label} › receipt {k}", "the receipt (ledger entry, leaf hash)")
            continue
        dd = _DD.findall(body)
        codes = _CODE.findall(body)
        p.same(
            f"{label} › receipt {k} › ledger entry",
            dd[0] if dd else "",
            str(r["ledger_index"]),
            "the ledger entry in force",
        )
        p.same(
            f"{label} › receipt {k} › leaf hash",
            codes[0] if codes else "",
            r["leaf_hash"],
            "SHA-256(0x00 ‖ entry bytes) of the entry in force",
        )
        p.same(
            f"{label} › receipt {k} › body SHA-256",
            codes[1] if len(codes) > 1 else "",
            r["body_sha256"],
            "SHA-256 of the protocol body in force",
        )


def _rules_table(p: _Page, text: str, columns: list[str], rules: dict[str, dict[str, Any]]) -> None:
    table = _RULES.search(text)
    if table is None:
        p.missing("rules", "the control rules table")
        return
    shown = _RULE_ROW.findall(table.group(1))
    if len(shown) != len(rules):
        p.out.fail("html", p.file, "rules", f"{len(shown)} rules shown, {len(rules)} apply")
    for (rid, want), (expr, cells_html) in zip(rules.items(), shown, strict=False):
        label = f"rules › {rid}"
        if html.unescape(expr) != want["expr"]:
            p.out.add(
                "html", p.file, label, html.unescape(expr), want["expr"], "the contest's rules in order"
            )
            continue
        cells = [_text(c) for c in _TD.findall(cells_html)]
        for col, cell in zip(columns, cells, strict=False):
            rc = want["checks"].get(col)
            if rc is None:
                expect = ""
            elif rc["holds"]:
                expect = "✓"
            else:
                expect = f"✗ {p.num(rc['left'])} / {p.num(rc['right'])} ({rc['severity']})"
            p.same(
                f"{label} › {col}",
                cell,
                expect,
                "not a rule of this count"
                if rc is None
                else f"{rc['expr']} holds on the protocol"
                if rc["holds"]
                else f"{rc['expr']}: left {rc['left']:,}, right {rc['right']:,} on the protocol",
            )

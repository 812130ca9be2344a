"""Kyrgyzstan, Jogorku Kenesh election of 4 October 2020 (annulled): Kloop's station CSV.

Source: KloopMedia/ParliamentCalculatorV2, src/data/PARTIES_RESULTS_REACT_LEVEL_ONE.csv
(commit 1e616c2; copy in ../shared/data/kg_2020_parl_kloop/). One row per polling station:
one column per party (16) and `БААРЫНА КАРШЫ` (against all), `total` (their sum), Kloop's
`form2_percent`, and `level_one`, the station's region. The file has no station numbers, so a
station's id is its region and its ordinal among that region's rows (`bishkek-0001`); the
ledger keeps the file's row in every protocol's source, so each id leads back to its row.

The counts were stored as floats after a computation (`84.99999999999999`): each is rounded
to the nearest integer, and a value further than 0.01 from an integer is rejected with its
line named (TOLERANCE).

The definition built from the file: country → 9 regions (7 oblasts, Bishkek and Osh cities) and
`abroad` for the stations of the Ministry of Foreign Affairs (`МИД КР`) → stations; one contest
`party-list-2020` with the 16 parties and against all, an inline form with the one line `total`
and the rule `total == sum(choices)`, and the 2020 allocation: 120 seats by Hare largest
remainder among lists over 7% nationally and 0.7% in each of the 9 regions, at most 65 seats for
one party. The law counted the thresholds against the voters who took part; the file has no such
figure, so they are taken of valid votes (parties + against all). With this file that lets
«МЕКЕНЧИЛ» (7.04% of valid votes) pass, which the reported preliminary result (about 6.9% of
voters who took part) did not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from tallyroom.definition.model import (
    Allocation,
    Area,
    Choice,
    Contest,
    ContestKind,
    Definition,
    Election,
    Figure,
    Form,
    Hierarchy,
    Line,
    LineRole,
    RegionalThreshold,
    Rule,
    Station,
)
from tallyroom.importers.generic import decode, iter_records, read_header
from tallyroom.importers.pipeline import ImportFileError, ImportRow

CONTEST_ID = "party-list-2020"
COUNTRY = "kg"
AGAINST_ALL = "БААРЫНА КАРШЫ"
#: A float further than this from an integer is not taken for a count.
TOLERANCE = 0.01
_NOT_CHOICES = ("total", "form2_percent", "level_one")

#: `level_one` as the file spells it -> (area id, en, ru, ky, OCHA P-code from kg_boundaries/).
REGIONS: dict[str, tuple[str, str, str, str, str | None]] = {
    "БАТКЕНСКАЯ ОБЛАСТЬ":
        ("batken", "Batken Region", "Баткенская область", "Баткен облусу", "KG05000000000"),
    "ДЖАЛАЛ-АБАДСКАЯ ОБЛАСТЬ":
        ("jalal-abad", "Jalal-Abad Region", "Джалал-Абадская область", "Жалал-Абад облусу",
         "KG03000000000"),
    "ЫСЫК-КУЛЬСКАЯ ОБЛАСТЬ":
        ("issyk-kul", "Issyk-Kul Region", "Иссык-Кульская область", "Ысык-Көл облусу",
         "KG02000000000"),
    "НАРЫНСКАЯ ОБЛАСТЬ":
        ("naryn", "Naryn Region", "Нарынская область", "Нарын облусу", "KG04000000000"),
    "ОШСКАЯ ОБЛАСТЬ":
        ("osh-region", "Osh Region", "Ошская область", "Ош облусу", "KG06000000000"),
    "ТАЛАССКАЯ ТИК":
        ("talas", "Talas Region", "Таласская область", "Талас облусу", "KG07000000000"),
    "ЧУЙСКАЯ ОБЛАСТЬ":
        ("chui", "Chui Region", "Чуйская область", "Чүй облусу", "KG08000000000"),
    "БИШКЕК Г.": ("bishkek", "Bishkek", "г. Бишкек", "Бишкек ш.", "KG11000000000"),
    "ОШ Г.": ("osh-city", "Osh (city)", "г. Ош", "Ош ш.", "KG21000000000"),
    "МИД КР":
        ("abroad", "Abroad (Ministry of Foreign Affairs)", "За рубежом (МИД КР)",
         "Чет өлкөлөр (ТИМ)", None),
}  # fmt: skip
ABROAD = "abroad"

_TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "ң": "ng", "о": "o", "ө": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ү": "u", "ф": "f", "х": "kh", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia",
})  # fmt: skip
_QUOTED = re.compile(r"«([^»]+)»")


def choice_id(name: str) -> str:
    """An ASCII id for a party: its quoted name transliterated, at most four words."""
    if name.strip() == AGAINST_ALL:
        return "against-all"
    m = _QUOTED.search(name)
    words = re.findall(r"[a-z0-9]+", (m.group(1) if m else name).lower().translate(_TRANSLIT))
    return "-".join(words[:4]) or "party"


@dataclass(frozen=True)
class KloopFile:
    name: str
    header: list[str]
    #: (column, choice id, name as in the file).
    choices: list[tuple[int, str, str]]
    total_col: int
    region_col: int
    #: (row number, region area id, station id, cells) for every station row.
    rows: list[tuple[int, str, str, list[str]]]


def parse(name: str, raw: bytes) -> KloopFile:
    text = decode(name, raw)
    header = read_header(name, text)
    for required in ("total", "level_one", AGAINST_ALL):
        if required not in header:
            raise ImportFileError(
                f"{name}: row 1: missing column {required!r} (the station file with `level_one`, "
                "PARTIES_RESULTS_REACT_LEVEL_ONE.csv, is the one to import)"
            )
    choices: list[tuple[int, str, str]] = []
    taken: set[str] = set()
    for i, h in enumerate(header):
        if h in _NOT_CHOICES or not h:
            continue
        cid = base = choice_id(h)
        k = 2
        while cid in taken:
            cid, k = f"{base}-{k}", k + 1
        taken.add(cid)
        choices.append((i, cid, h))
    region_col = header.index("level_one")
    counter: dict[str, int] = {}
    rows = []
    for n, row in iter_records(name, text, len(header)):
        level = row[region_col].strip()
        region = REGIONS.get(level)
        if region is None:
            raise ImportFileError(
                f"{name}: row {n}: unknown region (level_one) {level!r}; known: {', '.join(REGIONS)}"
            )
        k = counter[region[0]] = counter.get(region[0], 0) + 1
        rows.append((n, region[0], f"{region[0]}-{k:04d}", row))
    if not rows:
        raise ImportFileError(f"{name}: no station rows")
    return KloopFile(name, header, choices, header.index("total"), region_col, rows)


def count(value: str) -> int | str:
    """A float cell rounded to the integer it stands for, or text for the pipeline to reject."""
    try:
        x = float(value)
    except ValueError:
        return value
    r = round(x) if math.isfinite(x) else None
    if r is None or abs(x - r) > TOLERANCE:
        return f"{value} (more than {TOLERANCE} from a whole number)"
    return r


FORM = Form(
    lines=[Line(id="total", name={"en": "Total votes (all parties and against all)",
                                  "ru": "Всего голосов (все партии и против всех)",
                                  "ky": "Бардык добуштар (партиялар жана баарына каршы)"},
                role=LineRole.VALID)],
    rules=[Rule(id="total-equals-choices", expr="total == sum(choices)",
                description={"en": "The total equals the votes of every party and against all"})],
    # The file has no number of registered voters or voters who took part: no turnout.
    figures={Figure.VALID: "total"},
)  # fmt: skip


def build_definition(f: KloopFile) -> bytes:
    areas = [
        Area(
            id=COUNTRY,
            name={
                "en": "Kyrgyz Republic",
                "ru": "Кыргызская Республика",
                "ky": "Кыргыз Республикасы",
            },
            hierarchy="admin",
            kind="country",
            code="KG",
        )
    ]
    present = {region for _, region, _, _ in f.rows}
    for aid, en, ru, ky, code in REGIONS.values():
        if aid in present or aid != ABROAD:
            kind = (
                "abroad"
                if aid == ABROAD
                else ("city" if code in ("KG11000000000", "KG21000000000") else "region")
            )
            areas.append(
                Area(
                    id=aid,
                    name={"en": en, "ru": ru, "ky": ky},
                    hierarchy="admin",
                    parent=COUNTRY,
                    kind=kind,
                    code=code,
                )
            )
    names = {aid: en for aid, en, *_ in REGIONS.values()}
    stations = [
        Station(
            id=sid,
            name={"en": f"{names[region]}, station {sid.rsplit('-', 1)[1]} (file row {n})"},
            areas=[region],
            registered=0,
            abroad=region == ABROAD,
        )
        for n, region, sid, _ in f.rows
    ]
    regions = [aid for aid, *_ in REGIONS.values() if aid != ABROAD]
    contest = Contest(
        id=CONTEST_ID,
        name={
            "en": "Jogorku Kenesh, party list, 2020",
            "ru": "Жогорку Кенеш, партийные списки, 2020",
            "ky": "Жогорку Кеңеш, партиялык тизмелер, 2020",
        },
        kind=ContestKind.PARTY_LIST,
        area=COUNTRY,
        choices=[Choice(id=cid, name=h, against_all=cid == "against-all") for _, cid, h in f.choices],
        form=FORM,
        percent_base=Figure.VALID,
        allocation=Allocation(
            method="hare",
            seats=120,
            threshold_percent="7",
            threshold_base=Figure.VALID,
            regional_threshold=RegionalThreshold(percent="0.7", areas=regions),
            cap=65,
        ),
    )
    definition = Definition(
        election=Election(
            id="kg-2020-parliament",
            name={
                "en": "Jogorku Kenesh election, 4 October 2020 (annulled; Kloop station data)",
                "ru": "Выборы в Жогорку Кенеш 4 октября 2020 (отменены; данные Kloop)",
                "ky": "Жогорку Кеңешке шайлоо, 2020-жылдын 4-октябры (жокко чыгарылган)",
            },
            date="2020-10-04",
            country="KG",
            languages=["ky", "ru", "en"],
        ),
        hierarchies=[Hierarchy(id="admin", name={"en": "Regions", "ru": "Области", "ky": "Облустар"})],
        areas=areas,
        stations=stations,
        contests=[contest],
    )
    return msgspec.json.encode(definition)


def iter_rows(f: KloopFile) -> Iterator[ImportRow]:
    cols = [(cid, c) for c, cid, _ in f.choices]
    cols.append(("total", f.total_col))
    for n, _region, sid, row in f.rows:
        lines = {lid: count(row[c]) for lid, c in cols}
        yield ImportRow(n, sid, CONTEST_ID, lines)  # a text value is rejected by line

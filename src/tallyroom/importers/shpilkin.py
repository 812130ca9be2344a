"""Russian polling-station results in Sergey Shpilkin's CSV layout (zipped or not).

One row per precinct commission (UIK): region, single-member district (OIK), territorial
commission (TIK), UIK number, the protocol lines under their Russian names, then one column per
party ("1. …", "2. …"). When the store is empty, the election definition is built from the
file itself: region → single-member district → territorial commission → station, the parties,
the `russia-duma` form and rules, and 225 list seats by Hare largest remainder with a 5%
threshold of ballots cast (Federal Law 20-FZ art. 88).
"""

from __future__ import annotations

import csv
import io
import operator
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import msgspec

from tallyroom.definition.compiled import CompiledElection
from tallyroom.definition.model import (
    Allocation,
    Area,
    Choice,
    Contest,
    ContestKind,
    CountKind,
    Definition,
    Election,
    Figure,
    Hierarchy,
    Station,
)
from tallyroom.importers.pipeline import (
    CHUNK,
    ImportFileError,
    ImportRow,
    LineSource,
    RowBlock,
    after_first_record,
    read_lines,
    text_lines,
)

CONTEST_ID = "federal-list"

#: The 12 lines of the federal protocol by the exact Russian column name in the file.
LINE_COLUMNS: dict[str, str] = {
    "Число избирателей, внесенных в список избирателей на момент окончания голосования": "L1",
    "Число избирательных бюллетеней, полученных участковой избирательной комиссией": "L2",
    "Число избирательных бюллетеней, выданных избирателям, проголосовавшим досрочно": "L3",
    "Число избирательных бюллетеней, выданных в помещении для голосования в день голосования": "L4",
    "Число избирательных бюллетеней, выданных вне помещения для голосования в день голосования": "L5",
    "Число погашенных избирательных бюллетеней": "L6",
    "Число избирательных бюллетеней, содержащихся в переносных ящиках для голосования": "L7",
    "Число избирательных бюллетеней, содержащихся в стационарных ящиках для голосования": "L8",
    "Число недействительных избирательных бюллетеней": "L9",
    "Число действительных избирательных бюллетеней": "L10",
    "Число утраченных избирательных бюллетеней": "L11",
    "Число избирательных бюллетеней, не учтенных при получении": "L12",
}
_PARTY = re.compile(r"^(\d+)\.\s*(.+)$")
_OIK = re.compile(r"^(\d+)\s")
_REGION_ID = re.compile(r"r\d{2,}")


@dataclass(frozen=True)
class ShpilkinFile:
    name: str
    data: bytes
    header: list[str]
    line_cols: dict[str, int]
    party_cols: list[tuple[int, str, str]]  # (column, choice id, name)


def read_file(path: Path) -> tuple[bytes, bytes]:
    """Return (the file's raw bytes for hashing, the CSV text bytes)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    if raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if len(names) != 1:
                    raise ImportFileError(
                        f"{path}: the zip must hold exactly one .csv file, found {len(names)}"
                    )
                return raw, zf.read(names[0])
        except (zipfile.BadZipFile, EOFError) as exc:
            raise ImportFileError(f"{path}: damaged zip file ({exc})") from None
    return raw, raw


def parse_header(name: str, data: bytes) -> ShpilkinFile:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{name}: byte {exc.start}: not UTF-8 text ({exc.reason})") from None
    first = text.split("\n", 1)[0]
    header = next(csv.reader([first]))
    for col in ("region", "oik", "tik", "uik"):
        if col not in header:
            raise ImportFileError(f"{name}: missing column {col!r} (not a Shpilkin station file?)")
    line_cols: dict[str, int] = {}
    for col_name, line in LINE_COLUMNS.items():
        if col_name not in header:
            raise ImportFileError(f"{name}: missing protocol column {col_name!r} (line {line})")
        line_cols[line] = header.index(col_name)
    parties = []
    for i, h in enumerate(header):
        m = _PARTY.match(h)
        if m:
            parties.append((i, f"p{int(m.group(1)):02d}", m.group(2).strip()))
    if not parties:
        raise ImportFileError(f"{name}: no party columns ('1. …') in the header")
    return ShpilkinFile(name, data, header, line_cols, parties)


def _rows(f: ShpilkinFile) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(text_lines(f.data.decode("utf-8-sig"), 0, "\n"))
    next(reader)
    width = len(f.header)
    for n, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != width:
            raise ImportFileError(
                f"{f.name}: row {n}: {len(row)} columns, the header has {width} (truncated file?)"
            )
        yield n, row


def _ids(f: ShpilkinFile) -> Iterator[tuple[int, list[str], str, str, str, str]]:
    """Yield (row number, row, region id, oik id, tik id, station id)."""
    ri, oi, ti, ui = (f.header.index(c) for c in ("region", "oik", "tik", "uik"))
    regions: dict[str, str] = {}
    oiks: dict[str, str] = {}
    tiks: dict[tuple[str, str], str] = {}
    tiks_in_oik: dict[str, int] = {}
    for n, row in _rows(f):
        region = regions.get(row[ri])
        if region is None:
            region = regions[row[ri]] = f"r{len(regions) + 1:02d}"
        oik = oiks.get(row[oi])
        if oik is None:
            m = _OIK.match(row[oi])
            oik = oiks[row[oi]] = f"oik-{int(m.group(1)):03d}" if m else f"{region}-oik"
        tik = tiks.get((oik, row[ti]))
        if tik is None:
            k = tiks_in_oik[oik] = tiks_in_oik.get(oik, 0) + 1
            tik = tiks[(oik, row[ti])] = f"{oik}-t{k:02d}"
        yield n, row, region, oik, tik, f"{region}-{row[ui]}"


def build_definition(f: ShpilkinFile) -> bytes:
    """Build the election definition (JSON bytes) from the stations in the file."""
    areas: list[Area] = [
        Area(
            id="ru",
            name={"en": "Russian Federation", "ru": "Российская Федерация"},
            hierarchy="admin",
            kind="country",
        )
    ]
    stations: list[Station] = []
    seen_areas: set[str] = set()
    seen_stations: set[str] = set()
    ri, oi, ti = (f.header.index(c) for c in ("region", "oik", "tik"))
    l1 = f.line_cols["L1"]
    for n, row, region, oik, tik, station in _ids(f):
        for aid, name, parent, kind in (
            (region, row[ri], "ru", "region"),
            (oik, row[oi], region, "single-member district"),
            (tik, row[ti], oik, "territorial commission"),
        ):
            if aid not in seen_areas:
                seen_areas.add(aid)
                areas.append(
                    Area(
                        id=aid,
                        name={"ru": name, "en": name},
                        hierarchy="admin",
                        parent=parent,
                        kind=kind,
                    )
                )
        if station in seen_stations:
            raise ImportFileError(f"{f.name}: row {n}: station {station} appears twice")
        seen_stations.add(station)
        try:
            registered = int(row[l1])
        except ValueError:
            raise ImportFileError(f"{f.name}: row {n}: line L1 is not a whole number: {row[l1]!r}") from None
        stations.append(
            Station(
                id=station,
                name=f"УИК №{station.split('-', 1)[1]}",
                areas=[tik],
                registered=registered,
            )
        )
    contest = Contest(
        id=CONTEST_ID,
        name={"en": "Federal party list", "ru": "Федеральный избирательный округ"},
        kind=ContestKind.PARTY_LIST,
        area="ru",
        choices=[Choice(id=cid, name={"ru": name, "en": name}) for _, cid, name in f.party_cols],
        form="federal-list",
        official_count=CountKind.HAND,
        percent_base=Figure.BALLOTS_CAST,
        allocation=Allocation(
            method="hare", seats=225, threshold_percent="5", threshold_base=Figure.BALLOTS_CAST
        ),
    )
    definition = Definition(
        election=Election(
            id="ru-duma-import",
            name={
                "en": "State Duma election (imported)",
                "ru": "Выборы в Государственную Думу (импорт)",
            },
            date="",
            country="RU",
            languages=["ru", "en"],
        ),
        profile="russia-duma",
        hierarchies=[Hierarchy(id="admin", name={"en": "Regions and districts", "ru": "Субъекты и округа"})],
        areas=areas,
        stations=stations,
        contests=[contest],
    )
    return msgspec.json.encode(definition)


def line_ids(f: ShpilkinFile) -> tuple[str, ...]:
    """The line ids of a row's count cells, in order: the form lines, then the parties."""
    return (*f.line_cols, *(cid for _c, cid, _name in f.party_cols))


def _row(n: int, station: str, names: tuple[str, ...], texts: Sequence[str]) -> ImportRow:
    """One row as an ImportRow: numbers that are not integers are passed on as text so that
    the row is rejected with the line named."""
    try:
        lines: dict[str, object] = dict(zip(names, map(int, texts), strict=True))
    except ValueError:
        # Keep the bad value as text so the row is rejected with its line named.
        lines = {}
        for name, v in zip(names, texts, strict=True):
            try:
                lines[name] = int(v)
            except ValueError:
                lines[name] = v
    return ImportRow(n, station, CONTEST_ID, lines)


def regions_of(election: CompiledElection) -> dict[str, str]:
    """Region name -> id as a definition built from a Shpilkin file has them (`r01`, …).

    Worker processes use this to name stations before they know the file's order; the
    order each region first appears in is then checked against these ids (`ShpilkinRows`).
    """
    out: dict[str, str] = {}
    for a in election.areas:
        if a.kind == "region" and a.parent == "ru" and _REGION_ID.fullmatch(a.id):
            out.setdefault(a.name if isinstance(a.name, str) else a.name.get("ru", ""), a.id)
    return out


class ShpilkinRows(LineSource):
    """The station rows of a Shpilkin file, for `import_source`.

    Stations are named `<region>-<uik>`, regions numbered as they first appear in the file;
    workers name them from `regions` (`regions_of` the store's election) and the parent
    checks, chunk by chunk, that the regions appear in exactly that order.
    """

    def __init__(self, f: ShpilkinFile, regions: Mapping[str, str] | None = None) -> None:
        self.f = f
        self.text = f.data.decode("utf-8-sig")
        self.start = after_first_record(self.text, "\n")
        self.first_row = 2
        self.names = line_ids(f)
        self.getter = operator.itemgetter(*f.line_cols.values(), *(c for c, _cid, _name in f.party_cols))
        self.ri, self.ui = f.header.index("region"), f.header.index("uik")
        self.regions = dict(regions or {})
        #: The regions met so far in file order (chunks the parent accepted), name -> id.
        self.seen: dict[str, str] = {}

    def _block(self, rows: list[int], cells: list[list[str]], stations: list[str]) -> RowBlock:
        names = self.names
        values: list[Sequence[str] | None] = list(map(self.getter, cells))
        return RowBlock(
            names,
            rows,
            stations,
            [CONTEST_ID] * len(rows),
            values,
            lambda i: _row(rows[i], stations[i], names, cast(Sequence[str], values[i])),
        )

    def parse(self, chunk: str, row: int) -> tuple[RowBlock, object] | None:
        lines = read_lines(chunk, "\n")
        if lines is None:
            return None
        width = len(self.f.header)
        kept = [k for k, r in enumerate(lines) if r]
        rows = lines if len(kept) == len(lines) else [lines[k] for k in kept]
        if any(len(r) != width for r in rows):
            return None  # read in order, which says which row
        ri, ui = self.ri, self.ui
        names = [r[ri] for r in rows]
        ids = list(map(self.regions.get, names))
        if None in ids:
            return None
        stations = [f"{g}-{r[ui]}" for g, r in zip(ids, rows, strict=True)]
        block = self._block([row + k for k in kept], rows, stations)
        return block, list(dict.fromkeys(names))

    def accept(self, note: object) -> bool:
        seen = dict(self.seen)
        for name in cast(list[str], note):
            if name not in seen:
                seen[name] = f"r{len(seen) + 1:02d}"
                if self.regions.get(name) != seen[name]:
                    return False
        self.seen = seen
        return True

    def blocks_from(self, offset: int, row: int) -> Iterator[RowBlock]:
        f = self.f
        width = len(f.header)
        ri, ui = self.ri, self.ui
        regions = self.seen
        reader = csv.reader(text_lines(self.text, offset, "\n"))
        while True:
            rows: list[int] = []
            cells: list[list[str]] = []
            stations: list[str] = []
            for n, r in enumerate(reader, start=row):
                row = n + 1
                if not r:
                    continue
                if len(r) != width:
                    raise ImportFileError(
                        f"{f.name}: row {n}: {len(r)} columns, the header has {width} (truncated file?)"
                    )
                region = regions.get(r[ri])
                if region is None:
                    region = regions[r[ri]] = f"r{len(regions) + 1:02d}"
                rows.append(n)
                cells.append(r)
                stations.append(f"{region}-{r[ui]}")
                if len(rows) >= CHUNK:
                    break
            if not rows:
                return
            yield self._block(rows, cells, stations)


def iter_rows(f: ShpilkinFile) -> Iterator[ImportRow]:
    """One ImportRow per station row of the file."""
    source = ShpilkinRows(f)
    for block in source.blocks_from(source.start, source.first_row):
        for i in range(len(block.rows)):
            yield block.loose(i)

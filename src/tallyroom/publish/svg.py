"""Charts drawn on the server as SVG geometry: region maps, the seat hemicycle, progress bars.

Only geometry is computed here (coordinates, colours); numbers shown beside the charts come from
the gate-checked rows. Maps come from boundary files (GeoJSON) whose features carry the P-code
that an area's ``code`` names; they are simplified (Douglas–Peucker) and projected once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

Point = tuple[float, float]
Ring = list[Point]

#: Width of the map's view box; the height follows the shape.
MAP_WIDTH = 640.0


def packaged_boundaries() -> list[Path]:
    folder = Path(str(files("tallyroom.web"))) / "static" / "maps"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def _codes_in(props: Mapping[str, Any]) -> set[str]:
    return {v for v in props.values() if isinstance(v, str) and v}


def read_features(path: Path) -> dict[str, list[Ring]]:
    """code -> rings (outer rings only) from a GeoJSON FeatureCollection or a simplified file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[Ring]] = {}
    if "features" in doc and doc.get("format") == "tallyroom-map/1":
        for f in doc["features"]:
            out[f["code"]] = [[(float(x), float(y)) for x, y in ring] for ring in f["rings"]]
        return out
    for f in doc.get("features", []):
        geom = f.get("geometry") or {}
        polys = geom.get("coordinates", [])
        if geom.get("type") == "Polygon":
            polys = [polys]
        elif geom.get("type") != "MultiPolygon":
            continue
        rings = [[(float(p[0]), float(p[1])) for p in poly[0]] for poly in polys if poly]
        for code in _codes_in(f.get("properties") or {}):
            out.setdefault(code, rings)
    return out


def _perp(p: Point, a: Point, b: Point) -> float:
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    if dx == 0 and dy == 0:
        return math.hypot(x - x1, y - y1)
    return abs(dy * x - dx * y + x2 * y1 - y2 * x1) / math.hypot(dx, dy)


def simplify(points: Sequence[Point], tolerance: float) -> Ring:
    """Douglas–Peucker (iterative), keeping the first and last point."""
    if len(points) < 3:
        return list(points)
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        best, idx = 0.0, -1
        for k in range(i + 1, j):
            d = _perp(points[k], points[i], points[j])
            if d > best:
                best, idx = d, k
        if idx >= 0 and best > tolerance:
            keep[idx] = True
            stack.append((i, idx))
            stack.append((idx, j))
    return [p for p, k in zip(points, keep, strict=True) if k]


@dataclass(frozen=True)
class MapShape:
    """Projected outlines: area code -> SVG path data, and the view box."""

    paths: dict[str, str]
    width: int
    height: int
    attribution: str


def project(features: Mapping[str, list[Ring]], tolerance: float = 0.01) -> MapShape:
    rings_all = [p for rings in features.values() for ring in rings for p in ring]
    if not rings_all:
        return MapShape({}, 0, 0, "")
    lon0 = min(p[0] for p in rings_all)
    lon1 = max(p[0] for p in rings_all)
    lat0 = min(p[1] for p in rings_all)
    lat1 = max(p[1] for p in rings_all)
    k = math.cos(math.radians((lat0 + lat1) / 2))
    scale = MAP_WIDTH / ((lon1 - lon0) * k)
    height = (lat1 - lat0) * scale
    paths: dict[str, str] = {}
    for code, rings in features.items():
        parts = []
        for ring in rings:
            pts = simplify(ring, tolerance)
            if len(pts) < 4:
                continue
            xy = [((x - lon0) * k * scale, (lat1 - y) * scale) for x, y in pts]
            d = "M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in xy) + "Z"
            parts.append(d)
        if parts:
            paths[code] = "".join(parts)
    return MapShape(paths, int(MAP_WIDTH), math.ceil(height), "")


@cache
def map_for(codes: frozenset[str], extra: tuple[str, ...] = ()) -> MapShape | None:
    """The first boundary file (``extra`` paths first, then the packaged ones) covering every
    code in ``codes``; None when none does."""
    for path in [*(Path(p) for p in extra), *packaged_boundaries()]:
        if not path.exists():
            continue
        feats = read_features(path)
        if codes and codes <= set(feats):
            shape = project({c: feats[c] for c in codes})
            attribution = ""
            try:
                attribution = str(json.loads(path.read_text(encoding="utf-8")).get("attribution", ""))
            except (ValueError, AttributeError):
                attribution = ""
            return MapShape(shape.paths, shape.width, shape.height, attribution)
    return None


def write_simplified(
    source: Path, target: Path, codes: Iterable[str], attribution: str, tolerance: float = 0.005
) -> None:
    """Write a small ``tallyroom-map/1`` file (simplified outer rings, 3 decimals) from GeoJSON."""
    feats = read_features(source)
    out = {
        "format": "tallyroom-map/1",
        "attribution": attribution,
        "features": [
            {
                "code": c,
                "rings": [[[round(x, 3), round(y, 3)] for x, y in simplify(r, tolerance)] for r in feats[c]],
            }
            for c in sorted(codes)
        ],
    }
    target.write_text(json.dumps(out, separators=(",", ":")), encoding="utf-8")


# -- the hemicycle -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seat:
    x: float
    y: float
    party: str


def hemicycle(seats: Sequence[tuple[str, int]], radius: float = 150.0) -> tuple[list[Seat], float, float]:
    """Seat positions on concentric arcs, filled left to right by party (in the given order).

    Returns the seats, the width and the height of the drawing. Rows hold seats in proportion
    to their length, as parliament diagrams do.
    """
    total = sum(n for _, n in seats)
    if total <= 0:
        return [], 2 * radius + 20, radius + 20
    rows = max(1, min(12, math.ceil(math.sqrt(total / 4))))
    inner = radius * 0.4
    radii = [inner + (radius - inner) * (i + 0.5) / rows for i in range(rows)]
    length = sum(radii)
    per_row = [max(1, round(total * r / length)) for r in radii]
    # Fix rounding so that the rows hold exactly `total` seats.
    while sum(per_row) > total:
        per_row[per_row.index(max(per_row))] -= 1
    while sum(per_row) < total:
        per_row[-1] += 1
    spots: list[tuple[float, float, float]] = []
    for r, n in zip(radii, per_row, strict=True):
        for j in range(n):
            angle = math.pi * (1 - (j + 0.5) / n) if n > 1 else math.pi / 2
            spots.append((angle, radius + 10 + r * math.cos(angle), radius + 10 - r * math.sin(angle)))
    spots.sort(key=lambda s: -s[0])
    order = [party for party, n in seats for _ in range(n)]
    out = [Seat(round(x, 1), round(y, 1), p) for (_, x, y), p in zip(spots, order, strict=True)]
    return out, 2 * radius + 20, radius + 20


def seat_radius(total: int, radius: float = 150.0) -> float:
    rows = max(1, min(12, math.ceil(math.sqrt(max(total, 1) / 4))))
    return round(min(9.0, (radius * 0.6) / rows * 0.42), 1)


# -- colours ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shade:
    """One class of a shaded map's scale: values from ``low`` (inclusive; ``None``: no lower
    bound) up to ``high`` (exclusive; ``None``: no upper bound), or exactly ``low`` when the two
    are equal, drawn in ``fill``. A map's key lists its scale's classes."""

    low: int | None
    high: int | None
    fill: str

    def holds(self, value: float) -> bool:
        if self.low is not None and self.low == self.high:
            return value == self.low
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.low, "to": self.high, "fill": self.fill}


#: The colour of an area with no figure yet.
NO_DATA_FILL = "#eeeeee"

#: Turnout in classes ten points wide, light (low) to dark (high): Brewer's sequential blues.
TURNOUT_SCALE = (
    Shade(None, 20, "#eff3ff"),
    Shade(20, 30, "#c6dbef"),
    Shade(30, 40, "#9ecae1"),
    Shade(40, 50, "#6baed6"),
    Shade(50, 60, "#3182bd"),
    Shade(60, None, "#08519c"),
)

#: The share of compared stations whose counts differ: white for none, then sequential oranges
#: two points wide (differences cluster in a few per cent of the stations).
DIFFERENCE_SCALE = (
    Shade(0, 0, "#ffffff"),
    Shade(None, 2, "#fee6ce"),
    Shade(2, 4, "#fdd0a2"),
    Shade(4, 6, "#fdae6b"),
    Shade(6, 8, "#fd8d3c"),
    Shade(8, 10, "#e6550d"),
    Shade(10, None, "#a63603"),
)


def shade(scale: Sequence[Shade], pct: str | None) -> str:
    """The fill of a percentage string on ``scale`` (the first class that holds it; grey when
    there is no figure)."""
    if pct is None:
        return NO_DATA_FILL
    value = min(100.0, max(0.0, float(pct)))  # colour only, never a published number
    return next((s.fill for s in scale if s.holds(value)), NO_DATA_FILL)


def turnout_colour(pct: str | None) -> str:
    """A sequential blue for a turnout percentage string (light = low, dark = high)."""
    return shade(TURNOUT_SCALE, pct)


def text_colour(background: str) -> str:
    """Black or white, whichever contrasts more with a #rrggbb background (WCAG luminance)."""
    try:
        r, g, b = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    except ValueError:
        return "#000000"

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
    return "#000000" if lum > 0.179 else "#ffffff"


def difference_colour(pct: str | None) -> str:
    """A sequential orange for the share of compared stations whose counts differ (white: none;
    grey: no station compared yet)."""
    return shade(DIFFERENCE_SCALE, pct)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float


def histogram_bars(
    counts: Sequence[int], width: float = 480.0, height: float = 160.0, gap: float = 2.0
) -> list[Bar]:
    """Bar geometry for bin counts (linear scale from 0 to the largest count). A bin with any
    station gets at least 2 units of height, so that no occupied bin looks empty; the numbers
    themselves are in the table beside the chart."""
    if not counts:
        return []
    top = max(max(counts), 1)
    step = width / len(counts)
    out = []
    for i, n in enumerate(counts):
        h = 0.0 if n == 0 else max(2.0, height * n / top)
        out.append(Bar(round(i * step + gap / 2, 1), round(height - h, 1), round(step - gap, 1), round(h, 1)))
    return out

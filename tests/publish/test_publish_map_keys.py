"""The shaded maps and their keys: every region is drawn in the colour that the key gives for
its figure, and the key reads in the page's language."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from conftest import Published
from support import published_text
from tallyroom.publish import svg

_ITEM = re.compile(r'<li><span class="sw" style="background:(#[0-9a-f]{6})"></span>([^<]*)</li>')
_REGION = re.compile(r'<path d="[^"]+" fill="(#[0-9a-f]{6})"[^>]*><title>([^<]*)</title>')

#: Each class's label in each language, for the turnout scale (20, 30, … 60).
_LABELS = {
    "en": ("below 20%", "20–30%", "60% and above", "no results yet"),
    "ru": ("ниже 20%", "20–30%", "60% и выше", "результатов пока нет"),
    "ky": ("20%дан төмөн", "20–30%", "60% жана андан жогору", "жыйынтык азырынча жок"),
}


def _holding(scale: tuple[svg.Shade, ...], value: Decimal) -> list[svg.Shade]:
    return [s for s in scale if s.holds(float(value))]


@given(st.integers(0, 10_000))
def test_every_share_falls_in_one_class(hundredths: int) -> None:
    value = Decimal(hundredths) / 100
    pct = f"{value:.2f}"
    turnout = _holding(svg.TURNOUT_SCALE, value)
    assert len(turnout) == 1 and svg.turnout_colour(pct) == turnout[0].fill
    differ = _holding(svg.DIFFERENCE_SCALE, value)
    # Exactly none differs: white, which the class "below 2%" would otherwise take.
    assert len(differ) == (2 if value == 0 else 1)
    assert svg.difference_colour(pct) == differ[0].fill


def test_class_bounds() -> None:
    assert [svg.turnout_colour(p) for p in ("0.00", "19.99", "20.00", "59.99", "60.00", "100.00")] == [
        "#eff3ff",
        "#eff3ff",
        "#c6dbef",
        "#3182bd",
        "#08519c",
        "#08519c",
    ]
    assert [svg.difference_colour(p) for p in ("0.00", "0.01", "9.99", "10.00", "100.00")] == [
        "#ffffff",
        "#fee6ce",
        "#e6550d",
        "#a63603",
        "#a63603",
    ]
    assert svg.turnout_colour(None) == svg.difference_colour(None) == svg.NO_DATA_FILL


def _key_after(html: str, marker: str) -> list[tuple[str, str]]:
    part = html[html.index(marker) :]
    key = part[part.index('<ul class="key">') : part.index("</ul>")]
    return _ITEM.findall(key)


def _svg_after(html: str, marker: str) -> str:
    part = html[html.index(marker) :]
    return part[: part.index("</svg>")]


def _class_of(key: list[tuple[str, str]], figure: str) -> str:
    """The fill of the key's class whose label, as a reader takes it, holds ``figure`` (a
    percentage): "a–b%" from a up to b, "n%" exactly n; a label with one number names the
    classes below the ranges ("below n%") or above them ("n% and above")."""
    value = Decimal(figure.replace(",", "."))
    seen_range = False
    for fill, label in key[:-1]:  # the last is the grey of no figure
        bounds = [Decimal(b) for b in re.findall(r"\d+", label)]
        if "–" in label:
            seen_range = True
            if bounds[0] <= value < bounds[1]:
                return fill
        elif label == f"{bounds[0]}%":
            if value == bounds[0]:
                return fill
        elif (value >= bounds[0]) if seen_range else (value < bounds[0]):
            return fill
    raise AssertionError(f"no class of {key} holds {figure}")


def test_turnout_map_and_its_key(published: Published) -> None:
    for lang, (lowest, second, highest, none) in _LABELS.items():
        html = published_text(published.current / lang / "index.html")
        key = _key_after(html, 'aria-labelledby="map-turnout"')
        assert [label for _, label in key] == [lowest, second, "30–40%", "40–50%", "50–60%", highest, none]
        assert [fill for fill, _ in key] == [s.fill for s in svg.TURNOUT_SCALE] + [svg.NO_DATA_FILL]
        regions = _REGION.findall(_svg_after(html, 'aria-labelledby="map-turnout"'))
        assert len(regions) >= 9
        for fill, title in regions:
            figure = title.rsplit(": ", 1)[1]
            if figure == "—":
                assert fill == svg.NO_DATA_FILL, title
            else:
                assert fill == _class_of(key, figure.rstrip("%")), (lang, title)


def test_difference_map_and_its_key(published: Published) -> None:
    for lang in ("en", "ru", "ky"):
        html = published_text(published.current / lang / "reconcile/party-list/difference.html")
        key = _key_after(html, 'aria-labelledby="rmap-t"')
        assert [fill for fill, _ in key] == [s.fill for s in svg.DIFFERENCE_SCALE] + [svg.NO_DATA_FILL]
        assert key[0][1] == "0%" and key[2][1] == "2–4%"
        regions = _REGION.findall(_svg_after(html, 'aria-labelledby="rmap-t"'))
        assert regions
        for fill, title in regions:
            share = re.search(r"\((\d+[.,]\d\d)%\)$", title)
            if share is None:
                assert fill == svg.NO_DATA_FILL, title
            else:
                assert fill == _class_of(key, share.group(1)), (lang, title)

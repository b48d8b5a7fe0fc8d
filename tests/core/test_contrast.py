"""WCAG 2.x contrast (gateway.core.contrast) and the brand stylesheet made
from it: known ratios from the WCAG documents and tools, and the text colour
chosen for a button in the accent colour."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.contrast import (
    BLACK,
    NORMAL_TEXT,
    WHITE,
    contrast_ratio,
    readable_text_exists,
    relative_luminance,
    text_on,
)
from gateway.look.brand import TEXT, brand_css, link_colour
from gateway.settings import BrandingSettings


@pytest.mark.parametrize(
    ("a", "b", "ratio"),
    [
        (WHITE, BLACK, 21.0),
        (BLACK, BLACK, 1.0),
        ("#777777", WHITE, 4.48),  # the classic grey that just fails AA
        ("#767676", WHITE, 4.54),  # the lightest grey that passes on white
        ("#1a5fb4", WHITE, 6.29),  # the default accent
        ("#ff0000", WHITE, 4.00),
        ("#ff0000", BLACK, 5.25),
        ("#0000ff", WHITE, 8.59),
        ("#ffff00", BLACK, 19.56),
    ],
)
def test_known_ratios(a: str, b: str, ratio: float) -> None:
    assert contrast_ratio(a, b) == pytest.approx(ratio, abs=0.005)
    assert contrast_ratio(b, a) == contrast_ratio(a, b)


@pytest.mark.parametrize(
    ("accent", "text"),
    [
        ("#1a5fb4", WHITE),
        ("#000000", WHITE),
        ("#ffffff", BLACK),
        ("#ffff00", BLACK),
        ("#ff0000", BLACK),  # 5.25 with black, 4.00 with white
        ("#0000ff", WHITE),
        ("#777777", BLACK),
    ],
)
def test_text_on_an_accent_button(accent: str, text: str) -> None:
    assert text_on(accent) == text


@given(st.from_regex(r"#[0-9a-f]{6}", fullmatch=True))
def test_every_colour_has_readable_text(colour: str) -> None:
    """The mid-luminance worst case still gives 4.58:1 with one of the two,
    so no accent colour can make a button unreadable (and no settings
    validator is needed for the button text)."""
    assert readable_text_exists(colour)
    assert contrast_ratio(text_on(colour), colour) >= NORMAL_TEXT
    assert 0.0 <= relative_luminance(colour) <= 1.0


@pytest.mark.parametrize("bad", ["1a5fb4", "#1a5fb", "#1a5fb4ff", "#gggggg", "red", ""])
def test_only_hex_colours(bad: str) -> None:
    with pytest.raises(ValueError, match="#rrggbb"):
        relative_luminance(bad)


@pytest.mark.parametrize(
    ("accent", "link"),
    [("#1a5fb4", "#1a5fb4"), ("#767676", "#767676"), ("#777777", TEXT), ("#ffcc00", TEXT)],
)
def test_links_use_the_accent_only_where_it_reads_on_white(accent: str, link: str) -> None:
    assert link_colour(accent) == link
    css = brand_css(BrandingSettings(accent_color=accent))
    assert f"--accent: {accent};" in css
    assert f"--link: {link};" in css
    assert f"--on-accent: {text_on(accent)};" in css

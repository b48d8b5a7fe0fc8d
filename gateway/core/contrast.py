"""Contrast of colours as WCAG 2.x measures it: relative luminance of an
sRGB colour (WCAG 2.2, "relative luminance") and the contrast ratio of two
(1:1 to 21:1). The branding's accent colour is the background of buttons;
``text_on`` picks the text colour (white or black) that reads best on it,
and ``readable_text_exists`` says whether either reaches a ratio (4.5:1 for
normal text, success criterion 1.4.3).

Pure: colours are ``#rrggbb`` strings (what the settings accept).
"""

from __future__ import annotations

import re

WHITE = "#ffffff"
BLACK = "#000000"
# Success criterion 1.4.3 (Contrast, minimum), normal-size text.
NORMAL_TEXT = 4.5

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def relative_luminance(colour: str) -> float:
    """L = 0.2126 R + 0.7152 G + 0.0722 B of the linearised sRGB channels."""
    if not _HEX.fullmatch(colour):
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    red, green, blue = (_linear(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(a: str, b: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05), the lighter colour's luminance on top."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """White or black, whichever contrasts more with ``background``
    (white on a tie: the usual choice for a coloured button)."""
    if contrast_ratio(WHITE, background) >= contrast_ratio(BLACK, background):
        return WHITE
    return BLACK


def readable_text_exists(background: str, minimum: float = NORMAL_TEXT) -> bool:
    """Whether white or black text on ``background`` reaches ``minimum``."""
    return contrast_ratio(text_on(background), background) >= minimum


def _linear(channel: float) -> float:
    # The sRGB transfer function as WCAG 2.x states it (threshold 0.04045).
    if channel <= 0.04045:
        return channel / 12.92
    return float(((channel + 0.055) / 1.055) ** 2.4)

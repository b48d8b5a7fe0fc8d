"""The business's colours as a tiny stylesheet, ``/look/brand.css``.

The Content-Security-Policy allows no inline style, so the accent colour
from the settings reaches the pages as a stylesheet of its own: three CSS
custom properties that ``style.css`` uses. Which text colour goes on the
accent, and whether the accent itself is dark enough for links on the white
page, is decided by ``gateway.core.contrast`` (WCAG 2.x, 4.5:1).
"""

from __future__ import annotations

import hashlib

from gateway.core.contrast import NORMAL_TEXT, contrast_ratio, text_on
from gateway.settings import BrandingSettings

PAGE_BACKGROUND = "#ffffff"
# The text colour of style.css: links fall back to it (underlined) when the
# accent is too light to read on the page.
TEXT = "#1d1d1f"


def link_colour(accent: str) -> str:
    """The accent for links and focus rings when it reads on the white page
    (>= 4.5:1), else the text colour."""
    return accent if contrast_ratio(accent, PAGE_BACKGROUND) >= NORMAL_TEXT else TEXT


def brand_css(branding: BrandingSettings) -> str:
    accent = branding.accent_color.lower()
    return (
        "/* Generated from the branding settings (gateway/look/brand.py). */\n"
        f":root {{ --accent: {accent}; --on-accent: {text_on(accent)}; "
        f"--link: {link_colour(accent)}; }}\n"
    )


def brand_digest(css: str) -> str:
    return hashlib.sha256(css.encode("utf-8")).hexdigest()[:12]

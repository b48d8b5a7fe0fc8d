"""Rendering a page: the Jinja2 environment of each language (aiohttp-jinja2,
autoescaping on), the security headers every page carries, and the static
files of the look (stylesheet, the one small script).

One environment per language, each with its catalog installed: a request
renders in its own language without touching shared state, however many
requests in other languages run at the same time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

from gateway.look.i18n import LANGUAGES, translations
from gateway.settings import BrandingSettings, Language, Settings

STATIC = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/look/"

_ENVIRONMENTS: dict[Language, web.AppKey[jinja2.Environment]] = {
    language: web.AppKey(f"look_templates_{language}", jinja2.Environment) for language in LANGUAGES
}
_BRANDING = web.AppKey("look_branding", BrandingSettings)
_CSP = web.AppKey("look_csp", str)


def setup_look(
    app: web.Application, settings: Settings, loaders: Mapping[str, jinja2.BaseLoader]
) -> None:
    """Make ``render_page`` work for ``app`` and its sub-applications.

    ``loaders``: each front end's templates under a prefix (``"console"`` ->
    ``console/overview.html``); the look's own are under ``look/``."""
    prefixed = {"look": jinja2.PackageLoader("gateway.look", "templates"), **loaders}
    for language, key in _ENVIRONMENTS.items():
        env = aiohttp_jinja2.setup(
            app,
            app_key=key,
            loader=jinja2.PrefixLoader(prefixed),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        env.globals["language"] = language
        env.globals["asset"] = asset_url
    app[_BRANDING] = settings.branding
    app[_CSP] = content_security_policy(settings.branding)
    app.router.add_static(STATIC_PREFIX, STATIC, name="look-static")


@cache
def asset_url(name: str) -> str:
    """The URL of a static file of the look, with a digest of its content, so
    a browser never keeps an old stylesheet after an upgrade."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}{name}?v={digest}"


def content_security_policy(branding: BrandingSettings) -> str:
    """Nothing but our own stylesheet and script, and the logo's origin for
    images: injected markup could neither run code nor load anything."""
    images = "'self'"
    if branding.logo_url is not None:
        parts = urlsplit(branding.logo_url)
        images += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'none'; style-src 'self'; script-src 'self'; "
        f"img-src {images}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def page_headers(request: web.Request) -> dict[str, str]:
    """The headers of every page (also error pages)."""
    return {
        "Content-Security-Policy": request.config_dict[_CSP],
        # Pages carry credentials in their URL (tokens) or show personal data.
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Robots-Tag": "noindex, nofollow",
    }


def render_page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    language: Language = "en",
    status: int = 200,
) -> web.Response:
    """``template`` rendered in ``language`` with the branding, as a response."""
    values = {"branding": request.config_dict[_BRANDING], **context}
    response = aiohttp_jinja2.render_template(
        template, request, values, status=status, app_key=_ENVIRONMENTS[language]
    )
    response.headers.update(page_headers(request))
    return response

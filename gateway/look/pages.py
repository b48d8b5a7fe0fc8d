"""Rendering a page: the Jinja2 environment of each language (aiohttp-jinja2,
autoescaping on), the security headers every page carries, and the static
files of the look (stylesheet, the one small script).

One environment per language, each with its catalog installed: a request
renders in its own language without touching shared state, however many
requests in other languages run at the same time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.look.brand import brand_css, brand_digest
from gateway.look.i18n import LANGUAGES, translations
from gateway.settings import BrandingSettings, Language, Settings

STATIC = Path(__file__).resolve().parent / "static"
STATIC_PREFIX = "/look/"

_ENVIRONMENTS: dict[Language, web.AppKey[jinja2.Environment]] = {
    language: web.AppKey(f"look_templates_{language}", jinja2.Environment) for language in LANGUAGES
}
_BRANDING = web.AppKey("look_branding", BrandingSettings)
_CSP = web.AppKey("look_csp", str)
BRAND_CSS = "brand.css"


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
    css = brand_css(settings.branding)
    for env_key in _ENVIRONMENTS.values():
        app[env_key].globals["brand_css_url"] = f"{STATIC_PREFIX}{BRAND_CSS}?v={brand_digest(css)}"

    async def serve_brand_css(request: web.Request) -> web.Response:
        return web.Response(
            text=css,
            content_type="text/css",
            charset="utf-8",
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    # Before the static route, which would otherwise claim the name.
    app.router.add_get(f"{STATIC_PREFIX}{BRAND_CSS}", serve_brand_css, name="look-brand")
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


def message_page(
    request: web.Request,
    title: str,
    message: str,
    *,
    language: Language = "en",
    status: int = 200,
) -> web.Response:
    """A page that only says something (mostly an error): ``title`` and
    ``message`` already in ``language``."""
    return render_page(
        request,
        "look/message.html",
        {"title": title, "message": message},
        language=language,
        status=status,
    )


def error_pages(language_of: Callable[[web.Request], Language]) -> Middleware:
    """A middleware for a front end: aiohttp's own errors (an unknown path,
    a method not allowed) become pages in the look, in the language
    ``language_of`` finds for the request; a 3xx passes through."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            language = language_of(request)
            title, message = _http_error_text(exc.status, language)
            response = message_page(request, title, message, language=language, status=exc.status)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
            return response

    return middleware


def _http_error_text(status: int, language: Language) -> tuple[str, str]:
    _ = translations(language).gettext
    if status == 404:
        return _("Page not found"), _(
            "There is no page at this address. Please check that you opened the whole link."
        )
    if status == 405:
        return _("Not possible here"), _("This address cannot be used this way.")
    return _("Request not understood"), _("This request could not be handled.")

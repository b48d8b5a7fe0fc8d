"""Rendering a console page and answering an action: the layout's context
(who is signed in, the CSRF token, the flash message), the redirect after an
action, and the pages for errors the services raise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.look.pages import message_page, render_page

from .. import guard
from ..guard import Flash


async def console_page(
    request: web.Request, template: str, title: str, context: Mapping[str, Any]
) -> web.Response:
    """A signed-in page: ``template`` (under ``console/``) with the layout's
    context and the flash message an action left, which is then cleared."""
    key = await guard.session_key(request)
    holder = web.Response()  # collects the flash cookie's deletion
    note = guard.take_flash(request, key, holder)
    response = render_page(
        request,
        f"console/{template}",
        {"title": title, "flash": note, **guard.page_context(request, key), **context},
    )
    for name, morsel in holder.cookies.items():
        response.cookies[name] = morsel
    return response


async def done(request: web.Request, location: str, note: Flash) -> web.Response:
    """The answer to an action: 303 to ``location`` with ``note`` to show there."""
    response = guard.see_other(location)
    guard.flash(request, response, await guard.session_key(request), note)
    return response


def not_found(request: web.Request, what: str) -> web.Response:
    return message_page(request, "Not found", f"There is no {what}.", status=404)

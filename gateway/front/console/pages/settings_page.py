"""The settings, read-only: every key path and its value (secrets masked),
and how a change is applied (edit the file, then SIGHUP or a restart)."""

from __future__ import annotations

from aiohttp import web

from gateway.web.keys import SETTINGS

from ..wording import settings_rows
from .render import console_page


async def settings_page(request: web.Request) -> web.StreamResponse:
    rows = settings_rows(request.config_dict[SETTINGS])
    return await console_page(request, "settings.html", "Settings", {"rows": rows})

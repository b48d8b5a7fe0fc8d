"""Pages for bookers without a calendar client: accept/decline links and the
.ics download (signed links from the invitation e-mails)."""

from __future__ import annotations

from aiohttp import web


def create_rsvp_app() -> web.Application:
    return web.Application()

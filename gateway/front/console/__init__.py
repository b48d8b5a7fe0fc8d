"""The admin console: server-rendered pages at ``/admin/`` for users with
``admin: true`` (issue 15), and the landing page at ``/``.

- ``sessions`` and ``csrf``: the rules (pure) of the session cookie and of
  forged requests; ``guard`` applies them to requests;
- ``pages``: one module per page or group (account, resources, outbox,
  settings); each action is one call of a service (``AdminActions``,
  ``MirrorAdmin``), followed by a 303 to a page with a flash message;
- ``wording``: how values are put in words (pure);
- templates in ``gateway/front/templates/console/``, in the one look
  (``gateway.look``).

``mount_console(app)`` is all ``gateway.app`` calls.
"""

from __future__ import annotations

import jinja2
from aiohttp import web

from gateway.look.pages import error_pages

from .guard import KEY, KeyHolder, console_guard
from .pages import account, outbox, resources, settings_page

TEMPLATES = {"console": jinja2.PackageLoader("gateway.front", "templates/console")}


def create_console_app() -> web.Application:
    app = web.Application(middlewares=[error_pages(lambda request: "en"), console_guard])
    r = app.router
    r.add_get("/sign-in", account.sign_in_form, name="console_sign_in")
    r.add_post("/sign-in", account.sign_in, name="console_sign_in_post")
    r.add_post("/sign-out", account.sign_out, name="console_sign_out")
    r.add_get("/", resources.overview, name="console_overview")
    r.add_get("/resources/{resource_id}", resources.resource_page, name="console_resource")
    r.add_post("/resources/{resource_id}/google-invitation", resources.invite)
    r.add_get("/resources/{resource_id}/disconnect", resources.disconnect_form)
    r.add_post("/resources/{resource_id}/disconnect", resources.disconnect)
    r.add_post("/bookings/{booking_id}/invitation", resources.resend_invitation)
    r.add_get("/outbox", outbox.outbox_page, name="console_outbox")
    r.add_post("/outbox/{item_id}/retry", outbox.retry)
    r.add_post("/outbox/{item_id}/give-up", outbox.give_up)
    r.add_get("/settings", settings_page.settings_page, name="console_settings")
    return app


def mount_console(app: web.Application) -> None:
    """The console at ``/admin/``, the landing page at ``/`` (GET and HEAD;
    PROPFIND / stays CalDAV's), ``/admin`` redirected to ``/admin/``."""
    app[KEY] = KeyHolder()
    app.router.add_get("/", account.landing, name="landing")
    app.router.add_get("/admin", account.to_console)
    app.add_subapp("/admin/", create_console_app())


__all__ = ["TEMPLATES", "create_console_app", "mount_console"]

"""HTTP endpoints of the bridge, mounted at ``/google/``.

* ``GET /google/connect/{invite}``: starts OAuth consent for the invitation
  (state bound to the invitation and to this browser by a cookie, PKCE);
* ``GET /google/callback``: Google sends the person back with a code; it is
  exchanged for a refresh token (sealed at once) and the person picks one of
  their calendars;
* ``POST /google/choose``: connects the chosen calendar;
* ``POST /google/notify``: Google's push notifications (Calendar API "Push
  notifications"): the channel id and token are checked; unknown or forged
  ones are answered 200 and ignored, so Google does not retry them.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway.core.mirror import LogKind
from gateway.core.mirror_admin import InviteInvalid

from . import pages
from .bridge import GoogleBridge
from .errors import GoogleError
from .oauth import ConsentFailed, consent_url, exchange_code, new_pkce, new_state

log = logging.getLogger("calgateway.google")

GOOGLE_BRIDGE = web.AppKey("google_bridge", GoogleBridge)

STATE_COOKIE = "calgateway_google_state"
WRITABLE = frozenset({"owner", "writer"})
READABLE = WRITABLE | {"reader"}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        # The pages carry one-time secrets (state) and must not be cached or framed.
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _bridge(request: web.Request) -> GoogleBridge:
    return request.config_dict[GOOGLE_BRIDGE]


async def connect(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    try:
        invite = await bridge.admin.open_invite(request.match_info["invite"])
    except InviteInvalid as exc:
        return _html(pages.message("Link not valid", str(exc)), status=410)
    pkce, state = new_pkce(), new_state()
    await bridge.admin.begin_consent(invite, state, pkce.verifier)
    resource = bridge.bookings.resource(invite.resource_id)
    target = consent_url(
        bridge.settings.auth_uri,
        bridge.oauth,
        redirect_uri=bridge.redirect_uri,
        state=state,
        challenge=pkce.challenge,
        login_hint=resource.email,
    )
    response = web.HTTPFound(target)
    # RFC 6749 10.12: the callback must come from the browser that began
    # the consent; the state alone would let a link started elsewhere finish.
    response.set_cookie(
        STATE_COOKIE,
        state,
        path="/google/",
        httponly=True,
        samesite="Lax",
        secure=bridge.public_url.startswith("https://"),
        max_age=3600,
    )
    response.headers["Cache-Control"] = "no-store"
    raise response


def _same_browser(request: web.Request, state: str) -> bool:
    cookie = request.cookies.get(STATE_COOKIE, "")
    return bool(state) and hmac.compare_digest(cookie.encode(), state.encode())


async def callback(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    state = request.query.get("state", "")
    try:
        invite = await bridge.admin.invite_for_state(state)
    except InviteInvalid as exc:
        return _html(pages.message("Link not valid", str(exc)), status=400)
    if not _same_browser(request, state):
        return _html(
            pages.message(
                "Start again",
                "This sign-in was started in another browser; open the invitation link again.",
            ),
            status=400,
        )
    if "error" in request.query:
        await bridge.admin.note(
            invite.resource_id,
            LogKind.INFO,
            f"Google consent not given ({request.query.get('error', '')})",
        )
        return _html(
            pages.message(
                "Not connected",
                "Google access was not granted, so nothing was connected. You can open the "
                "invitation link again to retry.",
            ),
            status=400,
        )
    code = request.query.get("code", "")
    if not code or not invite.code_verifier:
        return _html(pages.message("Start again", "Open the invitation link again."), status=400)
    try:
        refresh = await exchange_code(
            bridge.session,
            bridge.oauth,
            code=code,
            redirect_uri=bridge.redirect_uri,
            verifier=invite.code_verifier,
            timeout_s=bridge.settings.request_timeout,
        )
        calendars = await bridge.google.calendars(refresh)
    except (ConsentFailed, GoogleError) as exc:
        log.warning(
            "google consent failed", extra={"resource": invite.resource_id, "error": str(exc)}
        )
        return _html(pages.message("Not connected", str(exc)), status=502)
    account = next((str(c["id"]) for c in calendars if c.get("primary")), "")
    if not account:
        return _html(
            pages.message("Not connected", "This Google account has no main calendar."), 502
        )
    invite = await bridge.admin.consented(invite, account, bridge.vault.seal(refresh))
    usable = _usable_calendars(bridge, invite.resource_id, calendars)
    if not usable:
        return _html(
            pages.message(
                "No calendar to connect",
                f"{account} has no calendar this gateway may write to.",
            ),
            status=400,
        )
    resource = bridge.bookings.resource(invite.resource_id)
    return _html(pages.choose_calendar(resource.name, account, state, usable, "/google/choose"))


def _usable_calendars(
    bridge: GoogleBridge, resource_id: str, calendars: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    # Writing bookings needs owner or writer access; only reading needs reader.
    allowed = WRITABLE if bridge.admin.policy(resource_id).direction.pushes else READABLE
    return [c for c in calendars if c.get("accessRole") in allowed]


async def choose(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    form = await request.post()
    state = str(form.get("state", ""))
    calendar_id = str(form.get("calendar_id", ""))
    try:
        invite = await bridge.admin.invite_for_state(state)
    except InviteInvalid as exc:
        return _html(pages.message("Link not valid", str(exc)), status=400)
    if not _same_browser(request, state):
        return _html(pages.message("Start again", "Open the invitation link again."), 400)
    if not invite.refresh_token:
        return _html(pages.message("Start again", "Open the invitation link again."), 400)
    refresh = bridge.vault.open(invite.refresh_token)
    try:
        calendars = await bridge.google.calendars(refresh)
    except GoogleError as exc:
        return _html(pages.message("Not connected", str(exc)), status=502)
    usable = _usable_calendars(bridge, invite.resource_id, calendars)
    chosen = next((c for c in usable if c["id"] == calendar_id), None)
    if chosen is None:
        return _html(pages.message("Choose again", "That calendar cannot be used."), 400)
    name = str(chosen.get("summaryOverride") or chosen.get("summary") or calendar_id)
    takeover = await bridge.admin.connect(invite, calendar_id, name)
    resource_id = invite.resource_id
    past = timedelta(days=bridge.settings.import_past_days)
    await bridge.bookings.push_all(resource_id, since=datetime.now(UTC) - past)
    bridge.worker.request_sync(resource_id)
    text = (
        f"Your calendar {name!r} is connected. Your existing appointments are being imported "
        "now; bookings will appear in it shortly."
    )
    if takeover.previous_resource:
        text += (
            f" This Google account was connected to {takeover.previous_resource!r} before; "
            "that connection has ended (one Google account serves one calendar here)."
        )
    response = _html(pages.message("Connected", text))
    response.del_cookie(STATE_COOKIE, path="/google/")
    return response


async def notify(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    channel_id = request.headers.get("X-Goog-Channel-ID", "")
    token = request.headers.get("X-Goog-Channel-Token", "")
    state = request.headers.get("X-Goog-Resource-State", "")
    connection = await bridge.admin.connection_by_channel(channel_id) if channel_id else None
    channel = connection.channel if connection is not None else None
    if (
        connection is None
        or channel is None
        or not hmac.compare_digest(channel.token.encode(), token.encode())
        or request.headers.get("X-Goog-Resource-ID", channel.resource_id) != channel.resource_id
    ):
        log.info("google notification ignored (unknown channel)", extra={"channel": channel_id})
        return web.Response(status=200)
    if state != "sync":  # "sync" only announces a new channel
        bridge.worker.request_sync(connection.resource_id)
    return web.Response(status=200)


def create_google_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/connect/{invite}", connect, name="google-connect")
    app.router.add_get("/callback", callback, name="google-callback")
    app.router.add_post("/choose", choose, name="google-choose")
    app.router.add_post("/notify", notify, name="google-notify")
    return app

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
from datetime import timedelta
from enum import StrEnum
from typing import Any

from aiohttp import web

from gateway.core.mirror import LogKind
from gateway.core.mirror_admin import InviteInvalid
from gateway.look.pages import error_pages
from gateway.web.keys import CLOCK

from . import pages
from .bridge import GoogleBridge
from .client import EventMissing
from .errors import (
    GoogleError,
    GoogleRequestError,
    GoogleUnavailable,
    QuotaExceeded,
    ReconnectNeeded,
    ScopesMissing,
)
from .oauth import (
    CodeRefused,
    ConsentFailed,
    NoRefreshToken,
    TokenEndpointUnavailable,
    consent_url,
    exchange_code,
    new_pkce,
    new_state,
)
from .tokens import TokenKeyMismatch

log = logging.getLogger("calgateway.google")

GOOGLE_BRIDGE = web.AppKey("google_bridge", GoogleBridge)

STATE_COOKIE = "calgateway_google_state"
WRITABLE = frozenset({"owner", "writer"})
READABLE = WRITABLE | {"reader"}


def _html(page: web.Response, status: int = 200) -> web.Response:
    """``page`` (in the look, ``pages``) answered with ``status``; the look's
    headers already keep it out of caches and frames (it carries one-time
    secrets: the state)."""
    page.set_status(status)
    return page


def _bridge(request: web.Request) -> GoogleBridge:
    return request.config_dict[GOOGLE_BRIDGE]


async def connect(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    try:
        invite = await bridge.admin.open_invite(request.match_info["invite"])
    except InviteInvalid as exc:
        return _html(pages.message(request, "Link not valid or expired", str(exc)), status=410)
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


class Step(StrEnum):
    """Where the connect flow failed, which decides how to try again."""

    CALLBACK = "callback"  # the code is spent: only the invitation link starts again
    CHOOSE = "choose"  # the choice form can be sent again while the consent holds


RETRY_AFTER_S = 60
QUOTA_RETRY_AFTER_S = 3600


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def failure_of(error: BaseException, step: Step) -> pages.Failure:
    """The page for a failure of the connect flow (pure; tested as a table).

    4xx when the person has to do something (start again, grant access),
    503 with Retry-After when Google cannot be reached or is out of quota,
    never a 500: nothing the person or Google does is a bug here."""
    again = (
        "open the invitation link again"
        if step is Step.CALLBACK
        else "go back to the calendar choice and send it again"
    )
    if isinstance(error, InviteInvalid):
        return pages.Failure(400, "Link not valid or expired", _sentence(str(error)))
    if isinstance(error, CodeRefused):
        return pages.Failure(
            400,
            "Sign-in expired",
            "Google no longer accepts this sign-in: it was used already (a reloaded page) "
            "or took too long. Nothing was connected; open the invitation link again.",
        )
    if isinstance(error, NoRefreshToken):
        return pages.Failure(400, "Not connected", _sentence(str(error)))
    if isinstance(error, QuotaExceeded):
        return pages.Failure(
            503,
            "Google is busy",
            "Google's request quota of this booking system is used up for now, so nothing "
            f"was connected. Please {again} in an hour; if it keeps happening, tell the "
            "administrator.",
            QUOTA_RETRY_AFTER_S,
        )
    if isinstance(error, (TokenEndpointUnavailable, GoogleUnavailable)):
        return pages.Failure(
            503,
            "Google is not answering",
            f"Google could not be reached just now, so nothing was connected. Please {again} "
            "in a few minutes.",
            RETRY_AFTER_S,
        )
    if isinstance(error, ScopesMissing) or (
        isinstance(error, GoogleRequestError) and error.reason == "insufficientPermissions"
    ):
        return pages.Failure(
            400,
            "Calendar access not granted",
            "Google did not give access to your calendars: on Google's page, allow every "
            "calendar permission this booking system asks for. Open the invitation link again.",
        )
    if isinstance(error, (ReconnectNeeded, TokenKeyMismatch)):
        return pages.Failure(
            400,
            "Start again",
            "The access Google granted can no longer be used: it was withdrawn meanwhile, or "
            "this system's keys changed. Nothing was connected; open the invitation link again.",
        )
    return pages.Failure(
        503,
        "Not connected",
        f"Google did not answer as expected, so nothing was connected. Please {again}; if it "
        "happens again, tell the administrator.",
        RETRY_AFTER_S,
    )


def _failed(request: web.Request, failure: pages.Failure) -> web.Response:
    response = _html(pages.message(request, failure.title, failure.text), failure.status)
    if failure.retry_after is not None:
        response.headers["Retry-After"] = str(failure.retry_after)
    return response


# What the person's browser may bring back from Google instead of a code
# (RFC 6749 4.1.2.1); the two that pass with time get a 503.
_PASSING_CONSENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def _consent_error_page(request: web.Request, error: str) -> web.Response:
    if error == "access_denied":
        return _html(
            pages.message(
                request,
                "Not connected",
                "Google access was not granted, so nothing was connected. You can open the "
                "invitation link again to retry.",
            ),
            status=400,
        )
    if error in _PASSING_CONSENT_ERRORS:
        return _failed(
            request,
            pages.Failure(
                503,
                "Google is not answering",
                "Google could not complete the sign-in just now, so nothing was connected. "
                "Please open the invitation link again in a few minutes.",
                RETRY_AFTER_S,
            ),
        )
    return _html(
        pages.message(
            request,
            "Not connected",
            f"Google did not complete the sign-in ({error}), so nothing was connected. Open "
            "the invitation link again; if it happens again, tell the administrator.",
        ),
        status=400,
    )


async def callback(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    state = request.query.get("state", "")
    try:
        invite = await bridge.admin.invite_for_state(state)
        pages.speak_for(request, invite.resource_id)
    except InviteInvalid as exc:
        return _failed(request, failure_of(exc, Step.CALLBACK))
    if not _same_browser(request, state):
        return _html(
            pages.message(
                request,
                "Start again",
                "This sign-in was started in another browser; open the invitation link again.",
            ),
            status=400,
        )
    if "error" in request.query:
        error = request.query.get("error", "")
        await bridge.admin.note(
            invite.resource_id, LogKind.INFO, f"Google consent not given: {error}"
        )
        return _consent_error_page(request, error)
    code = request.query.get("code", "")
    if not code or not invite.code_verifier:
        return _html(
            pages.message(request, "Start again", "Open the invitation link again."), status=400
        )
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
    except (ConsentFailed, GoogleError, EventMissing) as exc:
        log.warning(
            "google consent failed", extra={"resource": invite.resource_id, "error": str(exc)}
        )
        return _failed(request, failure_of(exc, Step.CALLBACK))
    account = next((str(c["id"]) for c in calendars if c.get("primary")), "")
    if not account:
        return _html(
            pages.message(
                request,
                "Not connected",
                "This Google account has no main calendar. Open the invitation link again and "
                "sign in with another Google account.",
            ),
            400,
        )
    try:
        invite = await bridge.admin.consented(invite, account, bridge.vault.seal(refresh))
    except InviteInvalid as exc:
        return _failed(request, failure_of(exc, Step.CALLBACK))
    usable = _usable_calendars(bridge, invite.resource_id, calendars)
    if not usable:
        return _no_calendar(request, bridge, invite.resource_id, account)
    resource = bridge.bookings.resource(invite.resource_id)
    return pages.choose_calendar(request, resource.name, account, state, usable, "/google/choose")


def _usable_calendars(
    bridge: GoogleBridge, resource_id: str, calendars: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    # Writing bookings needs owner or writer access; only reading needs reader.
    allowed = WRITABLE if bridge.admin.policy(resource_id).direction.pushes else READABLE
    return [c for c in calendars if c.get("accessRole") in allowed]


def _no_calendar(
    request: web.Request, bridge: GoogleBridge, resource_id: str, account: str
) -> web.Response:
    need = (
        "one you may make changes to"
        if bridge.admin.policy(resource_id).direction.pushes
        else "one whose events you may see"
    )
    return _html(
        pages.message(
            request,
            "No calendar to connect",
            f"{account} has no calendar this booking system can use: it needs {need}. Create "
            "or share such a calendar in Google Calendar, or sign in with another account, then "
            "open the invitation link again.",
        ),
        status=400,
    )


def _chosen_unusable(
    bridge: GoogleBridge, resource_id: str, calendar_id: str, calendars: list[dict[str, Any]]
) -> str:
    """Why the chosen calendar cannot be connected, in words."""
    listed = next((c for c in calendars if c.get("id") == calendar_id), None)
    if listed is None:
        return (
            "The calendar you chose is no longer in your Google account: it was deleted or is "
            "no longer shared with you. Choose another one."
        )
    name = str(listed.get("summaryOverride") or listed.get("summary") or calendar_id)
    if bridge.admin.policy(resource_id).direction.pushes:
        return (
            f"You may no longer make changes to events in {name!r}, and bookings are written "
            "to the calendar. Choose another one, or ask its owner for that permission."
        )
    return f"You may no longer see the events in {name!r}. Choose another one."


async def choose(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    form = await request.post()
    state = str(form.get("state", ""))
    calendar_id = str(form.get("calendar_id", ""))
    try:
        invite = await bridge.admin.invite_for_state(state)
        pages.speak_for(request, invite.resource_id)
    except InviteInvalid as exc:
        return _failed(request, failure_of(exc, Step.CHOOSE))
    if not _same_browser(request, state):
        return _html(pages.message(request, "Start again", "Open the invitation link again."), 400)
    if not invite.refresh_token:
        return _html(pages.message(request, "Start again", "Open the invitation link again."), 400)
    try:
        refresh = bridge.vault.open(invite.refresh_token)
        calendars = await bridge.google.calendars(refresh)
    except (GoogleError, TokenKeyMismatch, EventMissing) as exc:
        log.warning(
            "google calendar choice failed",
            extra={"resource": invite.resource_id, "error": str(exc)},
        )
        return _failed(request, failure_of(exc, Step.CHOOSE))
    usable = _usable_calendars(bridge, invite.resource_id, calendars)
    chosen = next((c for c in usable if c["id"] == calendar_id), None)
    if chosen is None:
        # Deleted, unshared or made read-only since the list was shown (or a
        # forged id): the person chooses again from what is there now.
        if not usable:
            return _no_calendar(request, bridge, invite.resource_id, invite.account)
        resource = bridge.bookings.resource(invite.resource_id)
        notice = _chosen_unusable(bridge, invite.resource_id, calendar_id, calendars)
        return pages.choose_calendar(
            request,
            resource.name,
            invite.account,
            state,
            usable,
            "/google/choose",
            notice,
            status=409,
        )
    name = str(chosen.get("summaryOverride") or chosen.get("summary") or calendar_id)
    try:
        takeover = await bridge.admin.connect(invite, calendar_id, name)
    except InviteInvalid as exc:  # sent twice, or the link ran out meanwhile
        return _failed(request, failure_of(exc, Step.CHOOSE))
    resource_id = invite.resource_id
    past = timedelta(days=bridge.settings.import_past_days)
    await bridge.bookings.push_all(resource_id, since=request.config_dict[CLOCK]() - past)
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
    response = _html(pages.message(request, "Connected", text))
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
    # An unknown path or method under /google/ is a page in the look too.
    app = web.Application(middlewares=[error_pages(pages.language_of)])
    app.router.add_get("/connect/{invite}", connect, name="google-connect")
    app.router.add_get("/callback", callback, name="google-callback")
    app.router.add_post("/choose", choose, name="google-choose")
    app.router.add_post("/notify", notify, name="google-notify")
    return app

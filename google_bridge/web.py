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
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any

from aiohttp import web

from gateway.core.mirror import LogKind
from gateway.core.mirror_admin import InviteInvalid, InviteProblem
from gateway.look.i18n import N_
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
        # 410: the link was one of ours and will not work again.
        return _failed(request, _speaking(request, exc, Step.CALLBACK), status=410)
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


# What each unusable invitation link is told; the same whatever step found it.
_INVITE_TEXTS: dict[InviteProblem, str] = {
    InviteProblem.UNKNOWN: N_("This link is not valid; ask for a new invitation."),
    InviteProblem.USED: N_("This link was already used; ask for a new invitation."),
    InviteProblem.EXPIRED: N_("This link has expired; ask for a new invitation."),
    InviteProblem.RESOURCE_GONE: N_(
        "The calendar this link was for no longer exists in this booking system; ask for "
        "a new invitation."
    ),
    InviteProblem.UNFINISHED: N_(
        "The sign-in with Google is not finished yet; open the invitation link again."
    ),
}

# Texts that tell how to try again, which depends on the step (``Step``):
# whole sentences each, so that a translation can order its words freely.
_QUOTA_TEXTS = {
    Step.CALLBACK: N_(
        "Google's request quota of this booking system is used up for now, so nothing was "
        "connected. Please open the invitation link again in an hour; if it keeps happening, "
        "tell the administrator."
    ),
    Step.CHOOSE: N_(
        "Google's request quota of this booking system is used up for now, so nothing was "
        "connected. Please go back to the calendar choice and send it again in an hour; if it "
        "keeps happening, tell the administrator."
    ),
}
_UNREACHABLE_TEXTS = {
    Step.CALLBACK: N_(
        "Google could not be reached just now, so nothing was connected. Please open the "
        "invitation link again in a few minutes."
    ),
    Step.CHOOSE: N_(
        "Google could not be reached just now, so nothing was connected. Please go back to "
        "the calendar choice and send it again in a few minutes."
    ),
}
_UNEXPECTED_TEXTS = {
    Step.CALLBACK: N_(
        "Google did not answer as expected, so nothing was connected. Please open the "
        "invitation link again; if it happens again, tell the administrator."
    ),
    Step.CHOOSE: N_(
        "Google did not answer as expected, so nothing was connected. Please go back to the "
        "calendar choice and send it again; if it happens again, tell the administrator."
    ),
}


def failure_of(error: BaseException, step: Step) -> pages.Failure:
    """The page for a failure of the connect flow (pure; tested as a table).

    4xx when the person has to do something (start again, grant access),
    503 with Retry-After when Google cannot be reached or is out of quota,
    never a 500: nothing the person or Google does is a bug here. Title and
    text are the English source texts; ``pages`` translates them."""
    if isinstance(error, InviteInvalid):
        return pages.Failure(400, N_("Link not valid or expired"), _INVITE_TEXTS[error.problem])
    if isinstance(error, CodeRefused):
        return pages.Failure(
            400,
            N_("Sign-in expired"),
            N_(
                "Google no longer accepts this sign-in: it was used already (a reloaded page) "
                "or took too long. Nothing was connected; open the invitation link again."
            ),
        )
    if isinstance(error, NoRefreshToken):
        return pages.Failure(
            400,
            N_("Not connected"),
            N_(
                "Google sent no lasting access for this booking system. Remove this booking "
                "system's access in your Google account settings (Security, Third-party "
                "access), then open the invitation link again."
            ),
        )
    if isinstance(error, QuotaExceeded):
        return pages.Failure(503, N_("Google is busy"), _QUOTA_TEXTS[step], QUOTA_RETRY_AFTER_S)
    if isinstance(error, (TokenEndpointUnavailable, GoogleUnavailable)):
        return pages.Failure(
            503, N_("Google is not answering"), _UNREACHABLE_TEXTS[step], RETRY_AFTER_S
        )
    if isinstance(error, ScopesMissing) or (
        isinstance(error, GoogleRequestError) and error.reason == "insufficientPermissions"
    ):
        return pages.Failure(
            400,
            N_("Calendar access not granted"),
            N_(
                "Google did not give access to your calendars: on Google's page, allow every "
                "calendar permission this booking system asks for. Open the invitation link "
                "again."
            ),
        )
    if isinstance(error, (ReconnectNeeded, TokenKeyMismatch)):
        return pages.Failure(
            400,
            N_("Start again"),
            N_(
                "The access Google granted can no longer be used: it was withdrawn meanwhile, "
                "or this system's keys changed. Nothing was connected; open the invitation "
                "link again."
            ),
        )
    return pages.Failure(503, N_("Not connected"), _UNEXPECTED_TEXTS[step], RETRY_AFTER_S)


def _failed(
    request: web.Request, failure: pages.Failure, status: int | None = None
) -> web.Response:
    """The page of ``failure`` in the resource's language, if the link named
    one, else in the default language."""
    return _html(pages.failed(request, failure), status or failure.status)


def _speaking(request: web.Request, error: InviteInvalid, step: Step) -> pages.Failure:
    """``failure_of(error, step)``, its page in the language of the link's
    resource when the link was one of ours (an expired link of a German
    resource reads German), else in the default language."""
    if error.resource_id is not None:
        pages.speak_for(request, error.resource_id)
    return failure_of(error, step)


# What the person's browser may bring back from Google instead of a code
# (RFC 6749 4.1.2.1); the two that pass with time get a 503.
_PASSING_CONSENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


def consent_error_failure(error: str) -> pages.Failure:
    """The page for Google's ``error`` instead of a code (pure)."""
    if error == "access_denied":
        return pages.Failure(
            400,
            N_("Not connected"),
            N_(
                "Google access was not granted, so nothing was connected. You can open the "
                "invitation link again to retry."
            ),
        )
    if error in _PASSING_CONSENT_ERRORS:
        return pages.Failure(
            503,
            N_("Google is not answering"),
            N_(
                "Google could not complete the sign-in just now, so nothing was connected. "
                "Please open the invitation link again in a few minutes."
            ),
            RETRY_AFTER_S,
        )
    return pages.Failure(
        400,
        N_("Not connected"),
        N_(
            "Google did not complete the sign-in (%(error)s), so nothing was connected. Open "
            "the invitation link again; if it happens again, tell the administrator."
        ),
        values={"error": error},
    )


# Whatever went wrong with a sign-in this browser did not start or finish.
_START_AGAIN = pages.Failure(400, N_("Start again"), N_("Open the invitation link again."))


async def callback(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    state = request.query.get("state", "")
    try:
        invite = await bridge.admin.invite_for_state(state)
        pages.speak_for(request, invite.resource_id)
    except InviteInvalid as exc:
        return _failed(request, _speaking(request, exc, Step.CALLBACK))
    if not _same_browser(request, state):
        return _failed(
            request,
            pages.Failure(
                400,
                N_("Start again"),
                N_("This sign-in was started in another browser; open the invitation link again."),
            ),
        )
    if "error" in request.query:
        error = request.query.get("error", "")
        await bridge.admin.note(
            invite.resource_id, LogKind.INFO, f"Google consent not given: {error}"
        )
        return _failed(request, consent_error_failure(error))
    code = request.query.get("code", "")
    if not code or not invite.code_verifier:
        return _failed(request, _START_AGAIN)
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
        return _failed(
            request,
            pages.Failure(
                400,
                N_("Not connected"),
                N_(
                    "This Google account has no main calendar. Open the invitation link again "
                    "and sign in with another Google account."
                ),
            ),
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
    text = (
        N_(
            "%(account)s has no calendar this booking system can use: it needs one you may "
            "make changes to. Create or share such a calendar in Google Calendar, or sign in "
            "with another account, then open the invitation link again."
        )
        if bridge.admin.policy(resource_id).direction.pushes
        else N_(
            "%(account)s has no calendar this booking system can use: it needs one whose "
            "events you may see. Create or share such a calendar in Google Calendar, or sign "
            "in with another account, then open the invitation link again."
        )
    )
    failure = pages.Failure(400, N_("No calendar to connect"), text, values={"account": account})
    return _failed(request, failure)


def _chosen_unusable(
    bridge: GoogleBridge, resource_id: str, calendar_id: str, calendars: list[dict[str, Any]]
) -> tuple[str, dict[str, str]]:
    """Why the chosen calendar cannot be connected: the source text and the
    values of its placeholders."""
    listed = next((c for c in calendars if c.get("id") == calendar_id), None)
    if listed is None:
        return N_(
            "The calendar you chose is no longer in your Google account: it was deleted or is "
            "no longer shared with you. Choose another one."
        ), {}
    name = {"calendar": _calendar_name(listed, calendar_id)}
    if bridge.admin.policy(resource_id).direction.pushes:
        return N_(
            "You may no longer make changes to events in \u201c%(calendar)s\u201d, and "
            "bookings are written to the calendar. Choose another one, or ask its owner for "
            "that permission."
        ), name
    return N_(
        "You may no longer see the events in \u201c%(calendar)s\u201d. Choose another one."
    ), name


def _calendar_name(calendar: Mapping[str, Any], calendar_id: str) -> str:
    return str(calendar.get("summaryOverride") or calendar.get("summary") or calendar_id)


async def choose(request: web.Request) -> web.Response:
    bridge = _bridge(request)
    form = await request.post()
    state = str(form.get("state", ""))
    calendar_id = str(form.get("calendar_id", ""))
    try:
        invite = await bridge.admin.invite_for_state(state)
        pages.speak_for(request, invite.resource_id)
    except InviteInvalid as exc:
        return _failed(request, _speaking(request, exc, Step.CHOOSE))
    if not _same_browser(request, state) or not invite.refresh_token:
        return _failed(request, _START_AGAIN)
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
        notice, values = _chosen_unusable(bridge, invite.resource_id, calendar_id, calendars)
        return pages.choose_calendar(
            request,
            resource.name,
            invite.account,
            state,
            usable,
            "/google/choose",
            notice,
            status=409,
            notice_values=values,
        )
    name = _calendar_name(chosen, calendar_id)
    try:
        takeover = await bridge.admin.connect(invite, calendar_id, name)
    except InviteInvalid as exc:  # sent twice, or the link ran out meanwhile
        return _failed(request, failure_of(exc, Step.CHOOSE))
    resource_id = invite.resource_id
    past = timedelta(days=bridge.settings.import_past_days)
    await bridge.bookings.push_all(resource_id, since=request.config_dict[CLOCK]() - past)
    bridge.worker.request_sync(resource_id)
    if takeover.previous_resource:
        text = N_(
            "Your calendar \u201c%(calendar)s\u201d is connected. Your existing appointments "
            "are being imported now; bookings will appear in it shortly. This Google account "
            "was connected to \u201c%(previous)s\u201d before; that connection has ended (one "
            "Google account serves one calendar here)."
        )
    else:
        text = N_(
            "Your calendar \u201c%(calendar)s\u201d is connected. Your existing appointments "
            "are being imported now; bookings will appear in it shortly."
        )
    values = {"calendar": name, "previous": takeover.previous_resource or ""}
    response = pages.message(request, N_("Connected"), text, values=values)
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

"""Pages for bookers without a calendar client: accept/decline links and the
.ics download (signed links from the invitation e-mails and API answers).

No login: the signed token in the URL is the credential (``gateway.links.tokens``).
Two sub-applications, mounted by ``gateway.app``:

* ``create_rsvp_app`` at ``/rsvp/``: ``GET /rsvp/{token}`` shows the booking,
  the booker's current answer and a button for each other answer (the
  link's own first); ``POST /rsvp/{token}`` records the answer. Only the POST
  changes anything: mail scanners, link previews and prefetchers GET every
  link in a message, and GET is safe by definition (RFC 9110 9.2.1), so a
  click alone must not answer for the booker.
* ``create_invites_app`` at ``/invites/``: ``GET /invites/{token}/invite.ics``
  answers the booking's current iTIP message (the URL ``LinkSigner.download``
  makes).

An answer through a link is judged exactly like an e-mailed iTIP REPLY
(``RsvpClaim.as_reply`` and ``BookingService.apply_reply``): a link from an
invitation older than the booking's SEQUENCE is stale (RFC 5546 2.1.5), and
the answer counts as given when the link is clicked (POSTed), so a reply the
booker wrote later wins over it and one written earlier loses
(``gateway.core.answers``). It goes to the booking the token names by id.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.core.answers import supersedes
from gateway.core.errors import NotFound
from gateway.core.invitations import (
    invitation_kind,
    reply_applies,
    same_address,
)
from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, Resource
from gateway.ical import render_itip
from gateway.links.signer import LinkSigner
from gateway.links.tokens import (
    InvalidRsvpToken,
    RsvpClaim,
    sign_rsvp,
    verify_download,
    verify_rsvp,
)
from gateway.mail.imip import when_text
from gateway.web.keys import BOOKINGS, CLOCK, LINKS, REPOSITORY, SETTINGS

log = logging.getLogger("calgateway.front.rsvp")

ICS_FILENAME = "invite.ics"

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}"
    "dt{font-weight:600}dd{margin:0 0 .5rem 0}"
    "button{font-size:1.1rem;padding:.6rem 1.4rem;cursor:pointer}"
    ".note{color:#555;font-size:.9rem}"
)
# The only inline content allowed: this stylesheet, by its hash (CSP Level 2
# hash source), so no injected markup could run script or load anything.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")

_HEADERS = {
    # The token is a credential and the answer a personal page: no cache, no
    # proxy may keep either (RFC 9111 5.2.2.5).
    "Cache-Control": "no-store",
    # No other site may frame the button and trick a click on it.
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": the Fetch standard then sends "Origin: null" with our
    # own form's POST, which the Origin check below would refuse. same-origin
    # still keeps the token in the URL from other sites (the add-to-calendar
    # links).
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
}


@dataclass(frozen=True, slots=True)
class _Wording:
    verb: str  # "you {verb} ..."
    button: str
    state: str  # "your answer: {state}"


_WORDING = {
    PartStat.ACCEPTED: _Wording("accepted", "Yes, I accept", "accepted"),
    PartStat.DECLINED: _Wording("declined", "No, I decline", "declined"),
    PartStat.TENTATIVE: _Wording("tentatively accepted", "Maybe, I might come", "maybe"),
}
_ANSWER_ORDER = (PartStat.ACCEPTED, PartStat.TENTATIVE, PartStat.DECLINED)


class _Page(Exception):
    """Ends a request with an HTML page (an error page, mostly)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.response = _page(status, title, f"<p>{_e(message)}</p>")


def create_rsvp_app() -> web.Application:
    app = web.Application(middlewares=[_page_middleware])
    app.router.add_get("/{token}", show_answer, name="rsvp")
    app.router.add_post("/{token}", give_answer)
    return app


def create_invites_app() -> web.Application:
    app = web.Application(middlewares=[_page_middleware])
    app.router.add_get(f"/{{token}}/{ICS_FILENAME}", download_invite, name="invite")
    return app


# -- accept / decline ------------------------------------------------------------------


async def show_answer(request: web.Request) -> web.Response:
    """The booking, the booker's current answer and buttons to answer: the
    link's own answer first, the others after it (a booker who clicked
    "accept" may still want to decline). Changes nothing (module doc)."""
    claim, booking, resource = await _claimed(request)
    wording = _WORDING[claim.partstat]
    attendee = _attendee(booking, claim)
    now = _now(request)
    applies, why = reply_applies(booking, claim.as_reply(booking.uid, now))
    if not applies or attendee is None or not supersedes(attendee, now):
        body = _details(booking, resource, attendee) + _p(_why_not(claim, booking, why, now))
    elif attendee.partstat is claim.partstat:
        body = (
            _details(booking, resource, attendee)
            + _p(f"Your answer is already recorded: {wording.state}.")
            + _answer_forms(request, claim, attendee)
        )
    else:
        body = _details(booking, resource, attendee) + _answer_forms(request, claim, attendee)
    return _page(200, booking.title, body)


async def give_answer(request: web.Request) -> web.Response:
    """Record the answer the link stands for; safe to repeat."""
    _refuse_cross_site(request)
    claim, booking, resource = await _claimed(request)
    wording = _WORDING[claim.partstat]
    before = _attendee(booking, claim)
    now = _now(request)
    # Routed by the booking id the link names, never by UID: another
    # calendar may hold a copy with the same UID (gateway.core.answers).
    outcome = await request.config_dict[BOOKINGS].apply_reply(
        claim.as_reply(booking.uid, now), via="link", booking_id=claim.booking_id
    )
    current = outcome.booking
    if current is None:  # deleted between the read and the answer
        raise _gone()
    log.info(
        "answer by link",
        extra={
            "booking": current.id,
            "partstat": claim.partstat.value,
            "applied": outcome.applied,
            "reason": outcome.reason,
        },
    )
    attendee = _attendee(current, claim)
    if not outcome.applied:
        # 409: the answer conflicts with the booking as it now is (RFC 9110
        # 15.5.10); the page says what changed.
        body = _details(current, resource, attendee) + _p(
            _why_not(claim, current, outcome.reason, now)
        )
        return _page(409, current.title, body)
    if before is not None and before.partstat is claim.partstat:
        message = f"Your answer is already recorded: {wording.state}."
    else:
        message = f"Thank you, you {wording.verb} \u201c{current.title}\u201d."
    body = _p(message) + _details(current, resource, attendee)
    signer = request.config_dict.get(LINKS)
    if claim.partstat is PartStat.ACCEPTED and signer is not None:
        body += _calendar_links(signer, current)
    if attendee is not None:
        body += _answer_forms(request, claim, attendee)
    return _page(200, current.title, body)


def _answer_forms(request: web.Request, claim: RsvpClaim, attendee: Attendee) -> str:
    """A button for every answer but the one recorded: the link's own posts
    to this very URL (no action attribute, whatever prefix a reverse proxy
    put in front), each other one to its sibling link (same booking,
    attendee and SEQUENCE, signed here: whoever holds one of them is the
    booker), as a relative URL for the same reason."""
    signer = request.config_dict[LINKS]
    forms = []
    for partstat in _ANSWER_ORDER:
        if partstat is attendee.partstat:
            continue
        if partstat is claim.partstat:
            action = ""
        else:
            sibling = sign_rsvp(
                signer.key, claim.booking_id, claim.attendee_email, claim.sequence, partstat
            )
            action = f' action="{_e(sibling)}"'
        forms.append(
            f'<form method="post"{action}><button type="submit">'
            f"{_e(_WORDING[partstat].button)}</button></form>"
        )
    # The link's own answer first: it is what the booker clicked.
    forms.sort(key=lambda form: 'action="' in form)
    return "".join(forms)


async def _claimed(request: web.Request) -> tuple[RsvpClaim, Booking, Resource]:
    """The token's claim, the booking it names and that booking's resource;
    a 404 page when the token is not ours or the booking is gone."""
    signer = request.config_dict.get(LINKS)
    if signer is None:  # no key configured: no link can be valid
        raise _not_valid()
    try:
        claim = verify_rsvp(signer.key, request.match_info["token"])
    except InvalidRsvpToken:
        raise _not_valid() from None
    bookings = request.config_dict[BOOKINGS]
    try:
        booking = await bookings.get(claim.booking_id)
        resource = bookings.resource(booking.resource_id)
    except NotFound:
        raise _gone() from None
    return claim, booking, resource


def _refuse_cross_site(request: web.Request) -> None:
    """Refuse a POST a page of another site made the booker's browser send.

    No CSRF token is needed (the token in the URL is the secret), but a page
    that learnt a link must not answer for the booker. Browsers send Origin
    with every POST (RFC 6454 7, Fetch standard); it must be the origin the
    links point to, ``server.public_url``. A request without Origin comes from
    no browser form, and whoever sends it holds the token anyway."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    own = _origin_of(request.config_dict[SETTINGS].server.public_url)
    if own is None or _origin_of(origin) != own:
        raise _Page(
            403,
            "Answer refused",
            "This answer was sent from another web site and is not recorded. "
            "Open the link from your e-mail to answer.",
        )


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL or serialized origin (RFC 6454 4), with
    the scheme's default port filled in; None for "null" or anything else
    that names no origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _attendee(booking: Booking, claim: RsvpClaim) -> Attendee | None:
    return next((a for a in booking.attendees if same_address(a.email, claim.attendee_email)), None)


def _why_not(claim: RsvpClaim, booking: Booking, reason: str, now: datetime) -> str:
    """Why the answer does not apply, in the booker's words."""
    attendee = _attendee(booking, claim)
    if booking.status is BookingStatus.CANCELLED:
        return "This booking has been cancelled: there is nothing left to answer."
    if claim.sequence < booking.sequence:
        return (
            "This booking has changed since this link was sent, so this answer is no "
            "longer recorded. Please answer with the link in the latest e-mail about it."
        )
    if attendee is None:
        return f"{claim.attendee_email} is no longer invited to this booking."
    if not supersedes(attendee, now):
        return (
            "This answer was not recorded: it has already been superseded by a newer "
            f"answer of yours ({_answer_state(attendee.partstat)})."
        )
    return f"This answer cannot be recorded ({reason})."


def _not_valid() -> _Page:
    return _Page(
        404,
        "Link not valid",
        "This link is not valid. Please check that you opened the whole link from your e-mail.",
    )


def _gone() -> _Page:
    return _Page(404, "Booking not found", "This booking no longer exists.")


# -- .ics download ---------------------------------------------------------------------


async def download_invite(request: web.Request) -> web.Response:
    """The booking's iTIP message as it is now: a REQUEST (RFC 5546 3.2.2) or,
    once cancelled, a CANCEL (3.2.5), with the booking's UID and SEQUENCE, so
    that importing it adds, updates or removes the event like the e-mail
    would."""
    signer = request.config_dict.get(LINKS)
    if signer is None:
        raise _not_valid()
    try:
        booking_id = verify_download(signer.key, request.match_info["token"])
    except InvalidRsvpToken:
        raise _not_valid() from None
    obj = await request.config_dict[REPOSITORY].get_by_id(booking_id)
    if obj is None:
        raise _gone()
    try:
        resource = request.config_dict[BOOKINGS].resource(obj.resource_id)
    except NotFound:
        raise _gone() from None
    mail = request.config_dict[SETTINGS].mail
    # The organizer address answers come back to: the gateway's own when it
    # sends mail, else the resource's (RFC 5546 3.2.3 replies go to ORGANIZER).
    organizer = mail.from_address if mail is not None else resource.email
    kind = invitation_kind(obj.booking)
    text = render_itip(obj, resource, kind, organizer, _now(request))
    return web.Response(
        body=text.encode("utf-8"),
        headers={
            # RFC 6047 2.4: the method parameter repeats the object's METHOD.
            "Content-Type": f"text/calendar; method={kind.value}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{ICS_FILENAME}"',
        },
    )


# -- HTML ------------------------------------------------------------------------------


@web.middleware
async def _page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer, error pages included, gets the same protective headers;
    aiohttp's own errors (404 of an unknown path, 405) become pages too."""
    try:
        response = await handler(request)
    except _Page as page:
        response = page.response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _page(exc.status, exc.reason, _p(exc.reason))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    response.headers.update(_HEADERS)
    return response


def _page(status: int, title: str, body: str) -> web.Response:
    """A whole HTML page; ``title`` is escaped here, ``body`` is markup."""
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{_e(title)}</h1>{body}</main></body></html>\n"
    )
    return web.Response(status=status, text=document, content_type="text/html", charset="utf-8")


def _details(booking: Booking, resource: Resource, attendee: Attendee | None) -> str:
    """What the booking is: when, where, with whom. Shown only to an attendee
    of the booking: a link of someone no longer invited tells nothing new."""
    if attendee is None:
        return ""
    rows = [("When", _when(booking))]
    if booking.location:
        rows.append(("Where", booking.location))
    rows.append(("With", resource.name))
    if booking.status is not BookingStatus.CANCELLED:
        rows.append(("Your answer", _answer_state(attendee.partstat)))
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in rows)
    return f"<dl>{items}</dl>"


def _answer_state(partstat: PartStat) -> str:
    wording = _WORDING.get(partstat)
    return wording.state if wording is not None else "not given yet"


def _calendar_links(signer: LinkSigner, booking: Booking) -> str:
    links = signer.calendar_links(booking)
    entries = (
        ("Google Calendar", links.google),
        ("Outlook.com", links.outlook),
        ("Office 365", links.office365),
        ("Yahoo Calendar", links.yahoo),
        ("Calendar file (.ics)", links.ics),
    )
    items = "".join(
        f'<li><a href="{_e(url)}" rel="noopener noreferrer">{_e(name)}</a></li>'
        for name, url in entries
    )
    return f'<p class="note">Add it to your calendar:</p><ul>{items}</ul>'


def _when(booking: Booking) -> str:
    """The booking's time as the invitation e-mail words it."""
    text = when_text(booking)
    if booking.recurring:
        text += ", the first of a series"
    return text


def _p(text: str) -> str:
    return f"<p>{_e(text)}</p>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _now(request: web.Request) -> datetime:
    return request.config_dict[CLOCK]()

"""Pages for bookers without a calendar client: accept/decline links and the
.ics download (signed links from the invitation e-mails and API answers).

No login: the signed token in the URL is the credential (``gateway.links.tokens``).
Two sub-applications, mounted by ``gateway.app``:

* ``create_rsvp_app`` at ``/rsvp/``: ``GET /rsvp/{token}`` shows the booking
  (in the resource's zone and UTC; ``local-time.js`` adds the browser's),
  the booker's current answer and a form with all three answers, the link's
  own chosen; ``POST /rsvp/{token}`` records the answer the form sends
  (``answer``), or the link's own without one. Whoever holds any of a
  booker's links is that booker, so any answer may be given through any of
  them (same booking, attendee and SEQUENCE). Only the POST
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

Pages are rendered in the look (``gateway.look``) in the language of the
booking's resource; every error (a link not valid, a booking gone, an
unknown path, a method not allowed) is a page in the look too.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.core.answers import supersedes
from gateway.core.errors import NotFound
from gateway.core.invitations import invitation_kind, reply_applies
from gateway.core.model import Attendee, Booking, BookingStatus, PartStat, Resource
from gateway.ical import render_itip
from gateway.links.tokens import (
    InvalidRsvpToken,
    RsvpClaim,
    attendee_of,
    verify_download,
    verify_rsvp,
)
from gateway.look.dates import format_when
from gateway.look.i18n import N_, translator
from gateway.look.pages import error_pages, message_page, render_page
from gateway.settings import Language
from gateway.web.keys import BOOKINGS, CLOCK, LINKS, REPOSITORY, SETTINGS
from gateway.web.origin import same_origin

log = logging.getLogger("calgateway.front.rsvp")

ICS_FILENAME = "invite.ics"

# The order the answers are offered in, and their form values.
ANSWER_ORDER = (PartStat.ACCEPTED, PartStat.TENTATIVE, PartStat.DECLINED)
# When an answer does not apply for a reason the booker cannot act on
# (``_why_not`` words the ones they can).
_NOT_RECORDED = N_(
    "This answer could not be recorded for the booking as it is now. Please answer with "
    "the link in the latest e-mail about it."
)
_LANGUAGE = web.RequestKey("rsvp_language", str)  # the page's, once the booking is known


class _Page(Exception):
    """Ends a request with a page in the look (an error page, mostly)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def create_rsvp_app() -> web.Application:
    app = web.Application(middlewares=[_page_middleware, error_pages(_language_of)])
    app.router.add_get("/{token}", show_answer, name="rsvp")
    app.router.add_post("/{token}", give_answer)
    return app


def create_invites_app() -> web.Application:
    app = web.Application(middlewares=[_page_middleware, error_pages(_language_of)])
    app.router.add_get(f"/{{token}}/{ICS_FILENAME}", download_invite, name="invite")
    return app


# -- accept / decline ------------------------------------------------------------------


async def show_answer(request: web.Request) -> web.Response:
    """The booking, the booker's current answer and the form to answer, the
    link's own answer chosen. Changes nothing (module doc)."""
    claim, booking, resource, attendee = await _claimed(request)
    language = _language_of(request)
    now = _now(request)
    notice = _why_not(claim, booking, attendee, now, language)
    if notice is None and attendee is not None and attendee.partstat is claim.partstat:
        notice = _already(claim.partstat, language)
    return _answer_page(
        request,
        booking,
        resource,
        attendee,
        claim,
        notice,
        answerable=_answerable(claim, booking, attendee, now),
    )


async def give_answer(request: web.Request) -> web.Response:
    """Record the answer the form sends (the link's own without one); safe
    to repeat."""
    _refuse_cross_site(request)
    claim, booking, resource, before = await _claimed(request)
    language = _language_of(request)
    claim = dataclasses.replace(claim, partstat=await _chosen_answer(request, claim, language))
    now = _now(request)
    if before is None:
        # No longer invited: nothing to record, the page says so (409 as below).
        notice = _why_not(claim, booking, None, now, language)
        return _answer_page(request, booking, resource, None, claim, notice, status=409)
    # Routed by the booking id the link names, never by UID: another
    # calendar may hold a copy with the same UID (gateway.core.answers).
    outcome = await request.config_dict[BOOKINGS].apply_reply(
        claim.as_reply(booking.uid, before.email, now), via="link", booking_id=claim.booking_id
    )
    current = outcome.booking
    if current is None:  # deleted between the read and the answer
        raise _gone(language)
    log.info(
        "answer by link",
        extra={
            "booking": current.id,
            "partstat": claim.partstat.value,
            "applied": outcome.applied,
            "reason": outcome.reason,
        },
    )
    attendee = _attendee(request, claim, current)
    if not outcome.applied:
        # 409: the answer conflicts with the booking as it now is (RFC 9110
        # 15.5.10); the page says what changed.
        notice = _why_not(claim, current, attendee, now, language) or translator(language)(
            _NOT_RECORDED
        )
        return _answer_page(request, current, resource, attendee, claim, notice, status=409)
    if before.partstat is claim.partstat:
        notice = _already(claim.partstat, language)
    else:
        notice = _thanks(claim.partstat, current.title, language)
    return _answer_page(
        request,
        current,
        resource,
        attendee,
        claim,
        notice,
        answerable=attendee is not None,
        calendar_links=claim.partstat is PartStat.ACCEPTED,
    )


async def _chosen_answer(request: web.Request, claim: RsvpClaim, language: Language) -> PartStat:
    """The answer the form chose; the link's own when the POST names none."""
    form = await request.post()
    value = form.get("answer")
    if value is None:
        return claim.partstat
    chosen = next((p for p in ANSWER_ORDER if p.value == value), None)
    if chosen is None:
        _ = translator(language)
        raise _Page(400, _("Answer not understood"), _("Please choose one of the answers."))
    return chosen


def _answer_page(
    request: web.Request,
    booking: Booking,
    resource: Resource,
    attendee: Attendee | None,
    claim: RsvpClaim,
    notice: str | None,
    *,
    answerable: bool = False,
    calendar_links: bool = False,
    status: int = 200,
) -> web.Response:
    language = _language_of(request)
    _ = translator(language)
    context: dict[str, Any] = {
        "title": booking.title,
        "notice": notice,
        # Details only for an attendee of the booking: a link of someone no
        # longer invited tells nothing new.
        "booking": _booking_view(booking, resource, attendee, language) if attendee else None,
        "answers": _answer_choices(claim, attendee, language) if answerable and attendee else None,
        "calendar_links": _calendar_links(request, booking) if calendar_links else None,
    }
    return render_page(request, "rsvp/answer.html", context, language=language, status=status)


def _booking_view(
    booking: Booking, resource: Resource, attendee: Attendee, language: Language
) -> dict[str, Any]:
    _ = translator(language)
    when = format_when(booking.start, booking.end, booking.timezone, language)
    if booking.recurring:
        when = _("%(when)s, the first of a series", when=when)
    return {
        "when": when,
        "when_utc": format_when(booking.start, booking.end, "UTC", language),
        "start_utc": _iso_utc(booking.start),
        "end_utc": _iso_utc(booking.end),
        "zone": booking.timezone,
        "location": booking.location,
        "with": resource.name,
        "answer": (
            None
            if booking.status is BookingStatus.CANCELLED
            else _state(attendee.partstat, language)
        ),
    }


def _answer_choices(
    claim: RsvpClaim, attendee: Attendee, language: Language
) -> list[dict[str, Any]]:
    """All three answers; the link's own chosen, the recorded one marked."""
    _ = translator(language)
    labels = {
        PartStat.ACCEPTED: _("Yes, I accept"),
        PartStat.TENTATIVE: _("Maybe, I might come"),
        PartStat.DECLINED: _("No, I decline"),
    }
    return [
        {
            "value": partstat.value,
            "id": f"answer-{partstat.value.lower()}",
            "label": labels[partstat],
            "checked": partstat is claim.partstat,
            "current": partstat is attendee.partstat,
        }
        for partstat in ANSWER_ORDER
    ]


def _calendar_links(request: web.Request, booking: Booking) -> list[tuple[str, str, str]] | None:
    signer = request.config_dict.get(LINKS)
    if signer is None:
        return None
    links = signer.calendar_links(booking)
    _ = translator(_language_of(request))
    return [
        ("link-ics", _("Calendar file (.ics)"), links.ics),
        # Brand names, the same in every language:
        ("link-google", "Google Calendar", links.google),
        ("link-outlook", "Outlook.com", links.outlook),
        ("link-office365", "Office 365", links.office365),
        ("link-yahoo", "Yahoo Calendar", links.yahoo),
    ]


async def _claimed(
    request: web.Request,
) -> tuple[RsvpClaim, Booking, Resource, Attendee | None]:
    """The token's claim, the booking it names, that booking's resource and
    the attendee the claim names (None: no longer invited); a 404 page when
    the token is not ours or the booking is gone."""
    signer = request.config_dict.get(LINKS)
    if signer is None:  # no key configured: no link can be valid
        raise _not_valid(_language_of(request))
    try:
        claim = verify_rsvp(signer.key, request.match_info["token"])
    except InvalidRsvpToken:
        raise _not_valid(_language_of(request)) from None
    bookings = request.config_dict[BOOKINGS]
    try:
        booking = await bookings.get(claim.booking_id)
        resource = bookings.resource(booking.resource_id)
    except NotFound:
        raise _gone(_language_of(request)) from None
    request[_LANGUAGE] = request.config_dict[SETTINGS].language(resource.id)
    return claim, booking, resource, _attendee(request, claim, booking)


def _attendee(request: web.Request, claim: RsvpClaim, booking: Booking) -> Attendee | None:
    return attendee_of(request.config_dict[LINKS].key, claim, booking.attendees)


def _answerable(
    claim: RsvpClaim, booking: Booking, attendee: Attendee | None, now: datetime
) -> bool:
    if attendee is None:
        return False
    applies, _why = reply_applies(booking, claim.as_reply(booking.uid, attendee.email, now))
    return applies and supersedes(attendee, now)


def _refuse_cross_site(request: web.Request) -> None:
    """Refuse a POST a page of another site made the booker's browser send.

    No CSRF token is needed (the token in the URL is the secret), but a page
    that learnt a link must not answer for the booker. Browsers send Origin
    with every POST (RFC 6454 7, Fetch standard); it must be the origin the
    links point to, ``server.public_url``. A request without Origin comes from
    no browser form, and whoever sends it holds the token anyway."""
    own = request.config_dict[SETTINGS].server.public_url
    if not same_origin(request.headers.get("Origin"), [own]):
        _ = translator(_language_of(request))
        raise _Page(
            403,
            _("Answer refused"),
            _(
                "This answer was sent from another web site and is not recorded. "
                "Open the link from your e-mail to answer."
            ),
        )


def _why_not(
    claim: RsvpClaim, booking: Booking, attendee: Attendee | None, now: datetime, language: Language
) -> str | None:
    """Why the answer does not apply, in the booker's words; None when it does."""
    _ = translator(language)
    if booking.status is BookingStatus.CANCELLED:
        return _("This booking has been cancelled: there is nothing left to answer.")
    if claim.sequence < booking.sequence:
        return _(
            "This booking has changed since this link was sent, so this answer is no "
            "longer recorded. Please answer with the link in the latest e-mail about it."
        )
    if attendee is None:
        return _("You are no longer invited to this booking.")
    if not supersedes(attendee, now):
        return _(
            "This answer was not recorded: it has already been superseded by a newer "
            "answer of yours (%(answer)s).",
            answer=_state(attendee.partstat, language),
        )
    applies, reason = reply_applies(booking, claim.as_reply(booking.uid, attendee.email, now))
    if not applies:
        # The core's reason is for the sync log (English, with UIDs and
        # SEQUENCE numbers); the reasons a booker can meet are worded above,
        # and what is left (a link the booking never sent) gets one sentence.
        log.info("answer by link does not apply", extra={"booking": booking.id, "reason": reason})
        return _(_NOT_RECORDED)
    return None


def _state(partstat: PartStat, language: Language) -> str:
    _ = translator(language)
    if partstat is PartStat.ACCEPTED:
        return _("accepted")
    if partstat is PartStat.DECLINED:
        return _("declined")
    if partstat is PartStat.TENTATIVE:
        return _("maybe")
    return _("not given yet")


def _already(partstat: PartStat, language: Language) -> str:
    _ = translator(language)
    return _("Your answer is already recorded: %(answer)s.", answer=_state(partstat, language))


def _thanks(partstat: PartStat, title: str, language: Language) -> str:
    _ = translator(language)
    if partstat is PartStat.ACCEPTED:
        return _("Thank you, you accepted \u201c%(title)s\u201d.", title=title)
    if partstat is PartStat.DECLINED:
        return _("Thank you, you declined \u201c%(title)s\u201d.", title=title)
    return _("Thank you, you tentatively accepted \u201c%(title)s\u201d.", title=title)


def _not_valid(language: Language) -> _Page:
    _ = translator(language)
    return _Page(
        404,
        _("Link not valid or expired"),
        _(
            "This link is not valid. Please check that you opened the whole link from your "
            "e-mail; if the booking has changed, use the link in the latest e-mail about it."
        ),
    )


def _gone(language: Language) -> _Page:
    _ = translator(language)
    return _Page(404, _("Booking not found"), _("This booking no longer exists."))


# -- .ics download ---------------------------------------------------------------------


async def download_invite(request: web.Request) -> web.Response:
    """The booking's iTIP message as it is now: a REQUEST (RFC 5546 3.2.2) or,
    once cancelled, a CANCEL (3.2.5), with the booking's UID and SEQUENCE, so
    that importing it adds, updates or removes the event like the e-mail
    would."""
    signer = request.config_dict.get(LINKS)
    if signer is None:
        raise _not_valid(_language_of(request))
    try:
        booking_id = verify_download(signer.key, request.match_info["token"])
    except InvalidRsvpToken:
        raise _not_valid(_language_of(request)) from None
    obj = await request.config_dict[REPOSITORY].get_by_id(booking_id)
    if obj is None:
        raise _gone(_language_of(request))
    try:
        resource = request.config_dict[BOOKINGS].resource(obj.resource_id)
    except NotFound:
        raise _gone(_language_of(request)) from None
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
            # The link is a credential (module doc): no cache may keep the answer.
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- pages ------------------------------------------------------------------------------


@web.middleware
async def _page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A ``_Page`` raised anywhere becomes its page in the look."""
    try:
        return await handler(request)
    except _Page as page:
        return message_page(
            request, page.title, page.message, language=_language_of(request), status=page.status
        )


def _language_of(request: web.Request) -> Language:
    """The language of the booking's resource once it is known, else the
    default (a link not valid names no resource)."""
    known = request.get(_LANGUAGE)
    settings = request.config_dict[SETTINGS]
    return known if known is not None else settings.language(None)


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now(request: web.Request) -> datetime:
    return request.config_dict[CLOCK]()

"""The words of the notices a resource's owner receives about their Google
connection, in the resource's language: the connect invitation, the
confirmation, and the news that another resource took the Google account.

The core queues what happened (``gateway.core.mirror_admin``: a ``notice``
name and its values, e.g. the link and its expiry); this module words it
when the mail is written, through the catalogs of ``gateway.look.i18n``,
so the core holds no prose and a notice reads in the language the settings
give the resource when it is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from gateway.core.mirror import Notice
from gateway.look.dates import format_moment
from gateway.look.i18n import translations
from gateway.settings import Language


class UnknownNotice(ValueError):
    """A notice name this version does not word (queued by a newer one)."""


def notice_text(
    notice: str, values: Mapping[str, str], name: str, language: Language
) -> tuple[str, str]:
    """(subject, text) of ``notice`` to the resource's owner called ``name``."""
    try:
        writer = _WRITERS[Notice(notice)]
    except ValueError:
        raise UnknownNotice(f"no words for the notice {notice!r}") from None
    return writer(values, name, language)


def _invite(values: Mapping[str, str], name: str, language: Language) -> tuple[str, str]:
    _ = translations(language).gettext
    expires = format_moment(
        datetime.fromisoformat(values["expires"]), values.get("zone", "UTC"), language
    )
    return _("Connect your Google Calendar"), _paragraphs(
        _("Hello %(name)s,") % {"name": name},
        _(
            "please connect your Google Calendar, so that your bookings show up there "
            "and your other appointments are not double-booked:"
        ),
        values["url"],
        _(
            "You will be asked to sign in with Google and to choose a calendar. "
            "The link works once, until %(expires)s."
        )
        % {"expires": expires},
    )


def _connected(values: Mapping[str, str], name: str, language: Language) -> tuple[str, str]:
    _ = translations(language).gettext
    paragraphs = [
        _("Hello %(name)s,") % {"name": name},
        _(
            "your bookings are now synchronised with the Google calendar “%(calendar)s” "
            "of %(account)s."
        )
        % {"calendar": values["calendar"], "account": values["account"]},
    ]
    if values.get("taken_from"):
        paragraphs.append(
            _(
                "This Google account was connected to %(other)s before; that connection "
                "has ended (one Google account serves one calendar here)."
            )
            % {"other": values["taken_from"]}
        )
    return _("Google Calendar connected"), _paragraphs(*paragraphs)


def _taken_over(values: Mapping[str, str], name: str, language: Language) -> tuple[str, str]:
    catalog = translations(language)
    _ = catalog.gettext
    removed = int(values["removed"])
    return _("Your bookings are no longer in Google Calendar"), _paragraphs(
        _("Hello %(name)s,") % {"name": name},
        _(
            "the Google account %(account)s was connected to %(taker)s in the booking "
            "system, and one Google account serves one calendar there."
        )
        % {"account": values["account"], "taker": values["taker"]},
        catalog.ngettext(
            "Your bookings are no longer synchronised with the Google calendar "
            "“%(calendar)s”: the %(count)s event written there for you is being removed "
            "from it. Your bookings themselves are kept.",
            "Your bookings are no longer synchronised with the Google calendar "
            "“%(calendar)s”: the %(count)s events written there for you are being "
            "removed from it. Your bookings themselves are kept.",
            removed,
        )
        % {"calendar": values["calendar"], "count": removed},
        _(
            "To see your bookings in Google Calendar again, ask for a new invitation and "
            "connect another Google account."
        ),
    )


def _paragraphs(*paragraphs: str) -> str:
    return "\n\n".join(paragraphs) + "\n"


_WRITERS: dict[Notice, Callable[[Mapping[str, str], str, Language], tuple[str, str]]] = {
    Notice.GOOGLE_INVITE: _invite,
    Notice.GOOGLE_CONNECTED: _connected,
    Notice.GOOGLE_TAKEN_OVER: _taken_over,
}

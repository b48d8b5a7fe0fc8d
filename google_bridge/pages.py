"""The pages a person sees while connecting a Google calendar, in the look
of every page (``gateway.look``: the business's name, logo and colours) and
in the language of the resource being connected.

Every way the connect flow can end badly is a ``Failure``: a status (4xx
when the person must do something, 503 when Google is away for now), a
title and a text that says what happened and what to do. ``web`` decides
which one applies; this module only renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.look.i18n import translations
from gateway.look.pages import message_page, render_page
from gateway.settings import Language
from gateway.web.keys import SETTINGS

_LANGUAGE = web.RequestKey("google_page_language", str)


@dataclass(frozen=True, slots=True)
class Failure:
    """A connect-flow page that is not a success."""

    status: int
    title: str
    text: str
    retry_after: int | None = None  # seconds, for 503


def speak_for(request: web.Request, resource_id: str) -> None:
    """Write this request's pages in the language of ``resource_id``."""
    request[_LANGUAGE] = request.config_dict[SETTINGS].language(resource_id)


def language_of(request: web.Request) -> Language:
    """The resource's language once known (``speak_for``), else the default."""
    known = request.get(_LANGUAGE)
    return known if known is not None else request.config_dict[SETTINGS].language(None)


def message(request: web.Request, title: str, text: str, status: int = 200) -> web.Response:
    """A page that says ``text``; both are looked up in the catalog of the
    page's language (a text made with values is shown as it is)."""
    language = language_of(request)
    gettext = translations(language).gettext
    return message_page(request, gettext(title), gettext(text), language=language, status=status)


def choose_calendar(
    request: web.Request,
    resource_name: str,
    account: str,
    state: str,
    calendars: Sequence[Mapping[str, Any]],
    action: str,
    notice: str = "",
    status: int = 200,
) -> web.Response:
    """The calendar choice; ``notice`` says why the person chooses again."""
    language = language_of(request)
    options = []
    for index, calendar in enumerate(calendars):
        options.append(
            {
                "id": f"calendar-{index}",
                "value": str(calendar["id"]),
                "label": str(
                    calendar.get("summaryOverride") or calendar.get("summary") or calendar["id"]
                ),
                "primary": bool(calendar.get("primary")),
                "checked": bool(calendar.get("primary")) or index == 0,
            }
        )
    context = {
        "title": translations(language).gettext("Choose a calendar"),
        "resource_name": resource_name,
        "account": account,
        "state": state,
        "calendars": options,
        "action": action,
        "notice": notice,
    }
    return render_page(request, "google/choose.html", context, language=language, status=status)

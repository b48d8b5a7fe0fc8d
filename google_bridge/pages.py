"""The pages a person sees while connecting a Google calendar, in the look
of every page (``gateway.look``: the business's name, logo and colours) and
in the language of the resource being connected.

Every way the connect flow can end badly is a ``Failure``: a status (4xx
when the person must do something, 503 when Google is away for now), a
title and a text that says what happened and what to do. ``web`` decides
which one applies; this module only renders.

Titles and texts are the catalogs' English source texts (marked with
``N_`` where they are chosen), whole sentences with named placeholders;
they are translated here, and only then filled with their values, so that a
text with a calendar's name in it is found in the catalog all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.look.i18n import N_, translate
from gateway.look.pages import message_page, render_page
from gateway.settings import Language
from gateway.web.keys import SETTINGS

_LANGUAGE = web.RequestKey("google_page_language", str)


@dataclass(frozen=True, slots=True)
class Failure:
    """A connect-flow page that is not a success."""

    status: int
    title: str
    text: str  # may name placeholders, filled from ``values`` once translated
    retry_after: int | None = None  # seconds, for 503
    values: Mapping[str, str] = field(default_factory=dict)


def speak_for(request: web.Request, resource_id: str) -> None:
    """Write this request's pages in the language of ``resource_id``."""
    request[_LANGUAGE] = request.config_dict[SETTINGS].language(resource_id)


def language_of(request: web.Request) -> Language:
    """The resource's language once known (``speak_for``), else the default."""
    known = request.get(_LANGUAGE)
    return known if known is not None else request.config_dict[SETTINGS].language(None)


def message(
    request: web.Request,
    title: str,
    text: str,
    status: int = 200,
    values: Mapping[str, str] | None = None,
) -> web.Response:
    """A page that says ``text`` under ``title``, both in the page's
    language; ``text``'s placeholders are filled from ``values``."""
    language = language_of(request)
    return message_page(
        request,
        translate(language, title),
        translate(language, text, values),
        language=language,
        status=status,
    )


def failed(request: web.Request, failure: Failure) -> web.Response:
    """The page of ``failure``, with Retry-After when it says when to try."""
    response = message(request, failure.title, failure.text, failure.status, failure.values)
    if failure.retry_after is not None:
        response.headers["Retry-After"] = str(failure.retry_after)
    return response


def choose_calendar(
    request: web.Request,
    resource_name: str,
    account: str,
    state: str,
    calendars: Sequence[Mapping[str, Any]],
    action: str,
    notice: str = "",
    status: int = 200,
    notice_values: Mapping[str, str] | None = None,
) -> web.Response:
    """The calendar choice; ``notice`` (a source text, its placeholders
    filled from ``notice_values``) says why the person chooses again."""
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
        "title": translate(language, N_("Choose a calendar")),
        "resource_name": resource_name,
        "account": account,
        "state": state,
        "calendars": options,
        "action": action,
        "notice": translate(language, notice, notice_values) if notice else "",
    }
    return render_page(request, "google/choose.html", context, language=language, status=status)

"""The few HTML pages a person sees while connecting a Google calendar.

Every way the connect flow can end badly is a ``Failure``: a status (4xx
when the person must do something, 503 when Google is away for now), a
title and a text that says what happened and what to do. ``web`` decides
which one applies; this module only renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any


@dataclass(frozen=True, slots=True)
class Failure:
    """A connect-flow page that is not a success."""

    status: int
    title: str
    text: str
    retry_after: int | None = None  # seconds, for 503


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5}label{display:block;margin:.4rem 0}button{margin-top:1rem;"
    "padding:.5rem 1.2rem}"
)


def page(title: str, body_html: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body_html}</body></html>"
    )


def message(title: str, text: str) -> str:
    return page(title, f"<p>{escape(text)}</p>")


def choose_calendar(
    resource_name: str,
    account: str,
    state: str,
    calendars: Sequence[Mapping[str, Any]],
    action: str,
    notice: str = "",
) -> str:
    """The calendar choice; ``notice`` says why the person chooses again."""
    options = []
    for index, calendar in enumerate(calendars):
        checked = " checked" if calendar.get("primary") or index == 0 else ""
        label = str(calendar.get("summaryOverride") or calendar.get("summary") or calendar["id"])
        if calendar.get("primary"):
            label += " (main calendar)"
        options.append(
            f'<label><input type="radio" name="calendar_id" value="{escape(str(calendar["id"]))}"'
            f"{checked}> {escape(label)}</label>"
        )
    body = (
        (f'<p role="alert"><strong>{escape(notice)}</strong></p>' if notice else "")
        + f"<p>Signed in as <strong>{escape(account)}</strong>. Which calendar should show the "
        f"bookings of <strong>{escape(resource_name)}</strong>, and block new bookings when "
        "you are busy?</p>"
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="state" value="{escape(state)}">'
        + "".join(options)
        + '<button type="submit">Connect this calendar</button></form>'
    )
    return page("Choose a calendar", body)

"""MKCALENDAR (RFC 4791 5.3.1) and MKCOL: refused, clearly. Calendars are the
resources of the config file, so clients cannot add any."""

from __future__ import annotations

from caldav_backend.dav.errors import DavError

from .names import cal, gw

_WHY = (
    "calendars cannot be created over CalDAV: each one is a resource in the "
    "gateway's config file (resources:), which an administrator edits"
)


def refuse_new_collection(method: str) -> DavError:
    """403 with the precondition a client can act on: for MKCALENDAR,
    CALDAV:calendar-collection-location-ok (RFC 4791 5.3.1.1: no location
    here can take a new calendar). MKCOL (RFC 4918 9.3.1) names no
    precondition for a refused location, so it carries the gateway's own."""
    if method == "MKCALENDAR":
        return DavError(403, _WHY, cal("calendar-collection-location-ok"))
    return DavError(403, _WHY, gw("calendars-come-from-config"))

"""MKCALENDAR (RFC 4791 5.3.1) and MKCOL: refused, clearly. Calendars are the
resources of the config file, so clients cannot add any."""

from __future__ import annotations

from caldav_backend.dav.errors import DavError

from .names import gw


def refuse_new_collection() -> DavError:
    return DavError(
        403,
        "calendars cannot be created over CalDAV: each one is a resource in the "
        "gateway's config file (resources:), which an administrator edits",
        gw("calendars-come-from-config"),
    )

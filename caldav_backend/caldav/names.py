"""Namespaces, element names and URL layout of the CalDAV side.

URLs (DESIGN.md, public surface): ``/dav/`` is the root, principals live at
``/dav/principals/{user}/``, every user's calendar home is ``/dav/calendars/``
(listing just the calendars the config grants them), calendars are
``/dav/calendars/{resource}/`` and objects the names clients give them inside.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote

from caldav_backend.dav.xml import clark, dav

CALDAV_NS = "urn:ietf:params:xml:ns:caldav"
CALENDARSERVER_NS = "http://calendarserver.org/ns/"
APPLE_ICAL_NS = "http://apple.com/ns/ical/"
GATEWAY_NS = "urn:calgateway:"

DAV_ROOT = "/dav/"
PRINCIPALS = "principals"
CALENDARS = "calendars"
# RFC 6638 2.1, 2.2: a principal's scheduling collections, inside it.
SCHEDULE_OUTBOX = "outbox"
SCHEDULE_INBOX = "inbox"


def cal(name: str) -> str:
    return clark(CALDAV_NS, name)


def cs(name: str) -> str:
    return clark(CALENDARSERVER_NS, name)


def apple(name: str) -> str:
    return clark(APPLE_ICAL_NS, name)


def gw(name: str) -> str:
    return clark(GATEWAY_NS, name)


# RFC 3986 pchar minus "/": everything else is percent-encoded in hrefs.
_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"


# Names made only of unreserved and safe characters (nearly all: UIDs) need
# no quoting; one match is cheaper than quote() for each listed object.
_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")


def segment(name: str) -> str:
    if _NEEDS_NO_QUOTING.fullmatch(name) is not None:
        return name
    return quote(name, safe=_SEGMENT_SAFE)


def principals_href() -> str:
    return f"{DAV_ROOT}{PRINCIPALS}/"


# Cached: every node of a listing names its caller's principal and its
# calendar (a PROPFIND Depth 1 of 10,000 objects would quote them 20,000 times);
# the arguments are the config's user names and resource ids, a small set.
@functools.lru_cache(maxsize=256)
def principal_href(user: str) -> str:
    return f"{principals_href()}{segment(user)}/"


def outbox_href(user: str) -> str:
    return f"{principal_href(user)}{SCHEDULE_OUTBOX}/"


def inbox_href(user: str) -> str:
    return f"{principal_href(user)}{SCHEDULE_INBOX}/"


def home_href() -> str:
    return f"{DAV_ROOT}{CALENDARS}/"


@functools.lru_cache(maxsize=256)
def calendar_href(resource_id: str) -> str:
    return f"{home_href()}{segment(resource_id)}/"


def object_href(resource_id: str, name: str) -> str:
    return member_href(calendar_href(resource_id), name)


def member_href(calendar: str, name: str) -> str:
    """The href of the object ``name`` in the calendar at href ``calendar``
    (a listing works the calendar's href out once for all its members)."""
    return f"{calendar}{segment(name)}"


# Properties
RESOURCETYPE = dav("resourcetype")
DISPLAYNAME = dav("displayname")
GETETAG = dav("getetag")
CALENDAR_DATA = cal("calendar-data")
CALENDAR_DESCRIPTION = cal("calendar-description")
CALENDAR_COLOR = apple("calendar-color")
CALENDAR_ORDER = apple("calendar-order")

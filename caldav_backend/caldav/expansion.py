"""Reports that expand recurring objects: the work runs off the event loop,
and an object too large to expand is answered on its own.

* ``off_loop(work)`` runs ``work(stopped)`` in a worker thread, so that
  /healthz and every other request go on being answered while a query
  expands; ``stopped()`` turns true once the request is gone (cancelled),
  and ``work`` stops between two objects. Each object's expansion is bounded
  by the ``limits`` settings, so a thread never outlives its request by more
  than one object's ``limits.expansion_seconds``.
* ``too_large_response`` is the multistatus answer for one object whose
  expansion went past those limits: status 507 (RFC 4918 11.5, what CalDAV
  servers answer for "too much") with CALDAV:max-instances (RFC 4791 5.2.8)
  and the reason; the rest of the calendar answers as usual.

It decides nothing about the limits themselves (``gateway.ical.limits``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

from lxml import etree

from caldav_backend.dav.errors import MESSAGE
from caldav_backend.dav.multistatus import status_line
from caldav_backend.dav.xml import Element, dav, sub
from gateway.core.errors import ExpansionLimit

from .names import cal

T = TypeVar("T")

MAX_INSTANCES = cal("max-instances")


async def off_loop(work: Callable[[Callable[[], bool]], T]) -> T:
    """``work(stopped)`` in a worker thread; ``stopped()`` is true once the
    awaiting request was cancelled (or has finished)."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(work, stop.is_set)
    finally:
        stop.set()


def too_large_response(href: str, error: ExpansionLimit) -> Element:
    """A ``DAV:response`` for one object: 507 with CALDAV:max-instances and
    the reason (RFC 4918 14.24: href, status, error, responsedescription)."""
    response = etree.Element(dav("response"))
    sub(response, dav("href"), href)
    sub(response, dav("status"), status_line(507))
    condition = sub(response, dav("error"))
    sub(condition, MAX_INSTANCES)
    sub(condition, MESSAGE, error.message)
    sub(response, dav("responsedescription"), error.message)
    return response

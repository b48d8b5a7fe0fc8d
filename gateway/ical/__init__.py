"""Booking <-> iCalendar: the only package that knows icalendar.

Three jobs, a module each:

* ``ICalCodec.render`` (``codec``) writes a booking as a stored calendar object
  (RFC 5545, RFC 4791 4.1), updating an earlier object in place so that what
  the gateway does not model (VALARM, X- properties) survives;
* ``ICalCodec.occurrences`` (``codec``) expands recurrences with
  recurring_ical_events;
* ``render_feed`` / ``feed_builder`` (``feed``) build the ICS feed of a
  resource, full or anonymous ("busy"), from all objects or page by page;
* ``ICalQueryEngine`` (``query``) answers CalDAV queries on stored objects:
  filters (``filters``), recurrence instances and time ranges (``expand``),
  expanded or limited calendar-data, free-busy (``freebusy``).

``parse`` validates a client's object, after ``syntax`` has held its raw
text to RFC 5545's grammar.

Helpers: ``timezones`` (VTIMEZONEs from the tz database, zone helpers),
``lines`` (canonical text and content lines, for the feed), ``cache`` (a
bounded LRU mapping), ``common`` (what the codec, the zones and the feed share).
"""

from gateway.ical.codec import ICalCodec
from gateway.ical.common import PRODID
from gateway.ical.feed import FeedBuilder, FeedRenderer, FeedView, feed_builder, render_feed
from gateway.ical.itip import parse_reply, render_itip
from gateway.ical.query import ICalQueryEngine

__all__ = [
    "PRODID",
    "FeedBuilder",
    "FeedRenderer",
    "FeedView",
    "ICalCodec",
    "ICalQueryEngine",
    "feed_builder",
    "parse_reply",
    "render_feed",
    "render_itip",
]

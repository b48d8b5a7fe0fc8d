"""Each parsed calendar gets its own time zones.

icalendar keeps the time zone of every VTIMEZONE it parses whose TZID the
tz database does not know in one process-wide cache, first come first
served, and resolves every later TZID of that name from it. In a server
that parses many clients' objects that is a leak between calendars: a
client whose VTIMEZONE calls +03:00 "Office Time" decides the times of
another client's "Office Time" at +05:00, and a VTIMEZONE oddly named
"W. Europe Standard Time" makes every later Outlook object (which sends the
name alone, meaning Europe/Berlin) unreadable.

Here the cache becomes one dictionary per thread, emptied before each parse
(``fresh_zones``): a parse sees the zones of its own text and the tz
database, nothing else. A parse runs from start to end in one thread
without yielding, so no other parse shares it. Zones of the tz database
are not affected (zoneinfo keeps its own cache).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from datetime import tzinfo

from icalendar.timezone import tzp

# The name-mangled attribute of icalendar.timezone.tzp.TZP holding the cache.
_ATTRIBUTE = "_TZP__tz_cache"


class _PerThreadZones(MutableMapping[str, tzinfo]):
    def __init__(self) -> None:
        self._local = threading.local()

    def _zones(self) -> dict[str, tzinfo]:
        zones: dict[str, tzinfo] | None = getattr(self._local, "zones", None)
        if zones is None:
            zones = self._local.zones = {}
        return zones

    def fresh(self) -> None:
        self._local.zones = {}

    def __getitem__(self, key: str) -> tzinfo:
        return self._zones()[key]

    def __setitem__(self, key: str, value: tzinfo) -> None:
        self._zones()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._zones()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._zones())

    def __len__(self) -> int:
        return len(self._zones())


def _install() -> _PerThreadZones:
    if not hasattr(tzp, _ATTRIBUTE):  # pragma: no cover - an icalendar change
        raise RuntimeError(
            "icalendar's time zone cache moved (icalendar.timezone.tzp); "
            "gateway.ical.zone_cache must follow it"
        )
    zones = _PerThreadZones()
    setattr(tzp, _ATTRIBUTE, zones)
    return zones


_ZONES = _install()


def fresh_zones() -> None:
    """Forget the VTIMEZONEs earlier parses in this thread met: call right
    before parsing a calendar's text."""
    _ZONES.fresh()


def zones_met() -> int:
    """How many zones the parses in this thread cached since the last
    ``fresh_zones``: built from a VTIMEZONE, or looked up by TZID."""
    return len(_ZONES)

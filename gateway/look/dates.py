"""Dates and times as a reader of a given language writes them (Babel, CLDR).

``format_when`` words a span of time in one zone: the weekday and date, the
time range (an en dash between the times), and the zone's name in the
reader's language::

    en  Tuesday, 1 December 2026, 09:00-10:00 (Central European Standard Time)
    de  Dienstag, 1. Dezember 2026, 09:00-10:00 Uhr (Mitteleuropäische Normalzeit)

A span that ends on a later day names both days and times; a span of whole
days in that zone (an all-day booking, ``gateway.core.invitations``) names
its first and last day and says "all day", with no time and no zone (a day
is the same date wherever it is read). ``short=True`` is the form for a
mail's subject: abbreviated date, start time only.

English is written the British way (day before month, 24-hour clock), as the
gateway's mails always were; every other language in its own CLDR locale.
This module decides wording only; which language a reader gets is the
settings' business (``Settings.language``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import (
    format_date,
    format_interval,
    format_skeleton,
    format_time,
    get_timezone_name,
)

from gateway.core.invitations import spans_whole_days
from gateway.look.i18n import translations
from gateway.settings import Language

_RANGE = " \u2013 "  # spaced en dash between two days (CLDR's own interval mark)

# The CLDR locale of a language whose bare code would read oddly: "en" alone
# is American English (month first, 12-hour clock).
_LOCALES: dict[str, str] = {"en": "en_GB"}


def locale_of(language: Language) -> Locale:
    return Locale.parse(_LOCALES.get(language, language))


def format_when(
    start: datetime,
    end: datetime,
    zone: str | ZoneInfo,
    language: Language,
    *,
    short: bool = False,
) -> str:
    """The span ``start`` to ``end`` (aware datetimes) as read in ``zone``
    (an IANA name or a ZoneInfo), written in ``language``."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    locale = locale_of(language)
    if spans_whole_days(start, end, tz):
        first = start.astimezone(tz).date()
        last = end.astimezone(tz).date() - timedelta(days=1)
        return format_days(first, last, language, short=short)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    zone_name = _zone_name(local_start, local_end, tz, locale)
    if short:
        return (
            f"{_day(local_start.date(), locale, True)}, {_time(local_start, locale)} ({zone_name})"
        )
    if local_start.date() == local_end.date():
        hours = format_interval(local_start, local_end, "Hm", tzinfo=tz, locale=locale)
        return f"{_day(local_start.date(), locale, False)}, {hours} ({zone_name})"
    begin = f"{_day(local_start.date(), locale, False)}, {_time(local_start, locale)}"
    finish = f"{_day(local_end.date(), locale, False)}, {_time(local_end, locale)}"
    return f"{begin}{_RANGE}{finish} ({zone_name})"


def format_moment(moment: datetime, zone: str | ZoneInfo, language: Language) -> str:
    """One instant as read in ``zone``, e.g. "Tuesday, 8 December 2026, 09:00
    (Central European Standard Time)"."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    locale = locale_of(language)
    local = moment.astimezone(tz)
    name = get_timezone_name(local, "long", locale=locale)
    return f"{_day(local.date(), locale, False)}, {_time(local, locale)} ({name})"


def format_days(first: date, last: date, language: Language, *, short: bool = False) -> str:
    """Whole days ``first`` to ``last`` (inclusive), e.g. "Tuesday, 1
    December 2026 (all day)"."""
    locale = locale_of(language)
    days = [_day(first, locale, short)]
    if last != first:
        days.append(_day(last, locale, short))
    all_day = translations(language).gettext("all day")
    return f"{_RANGE.join(days)} ({all_day})"


def format_zone(when: datetime, zone: str | ZoneInfo, language: Language) -> str:
    """The name of ``zone`` at the instant ``when`` in ``language``, e.g.
    "Central European Summer Time" / "Mitteleuropäische Sommerzeit"."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return get_timezone_name(when.astimezone(tz), "long", locale=locale_of(language))


def _zone_name(start: datetime, end: datetime, zone: tzinfo, locale: Locale) -> str:
    # A span across a change of clocks is neither summer nor winter time: the
    # zone's generic name ("Central European Time") then.
    name = get_timezone_name(start, "long", locale=locale)
    if get_timezone_name(end, "long", locale=locale) != name:
        return get_timezone_name(zone, "long", zone_variant="generic", locale=locale)
    return name


def _day(day: date, locale: Locale, short: bool) -> str:
    if short:
        return format_skeleton("yMMMEd", day, locale=locale)
    return format_date(day, "full", locale=locale)


def _time(moment: datetime, locale: Locale) -> str:
    return format_time(moment, "short", tzinfo=moment.tzinfo, locale=locale)

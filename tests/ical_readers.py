"""Reading calendar text as client stacks do: with icalendar and with
vobject (the second parser many clients' stacks use). Issue 13 item 3: what
the gateway serves must read in both."""

from __future__ import annotations

import warnings
from typing import Any

import icalendar
import vobject


def read_icalendar(data: str | bytes) -> list[icalendar.Component]:
    """Every calendar of ``data``; raises what icalendar raises."""
    with warnings.catch_warnings():
        # icalendar's guesses at vendor TZIDs are no failure to read.
        warnings.simplefilter("ignore")
        parsed = icalendar.Calendar.from_ical(data, multiple=True)
    return list(parsed)


def read_vobject(data: str | bytes) -> list[Any]:
    """Every component of ``data``, each transformed to native values as
    ``vobject.readComponents`` does by default; raises what vobject raises.

    Not serialised again: vobject has its own bug writing PERIODs."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    # vobject keeps the first VTIMEZONE it meets per TZID for the whole
    # process; objects carry definitions limited to their own years, so let it
    # read each calendar's own.
    getattr(vobject.icalendar, "__tzidMap").clear()
    return list(vobject.readComponents(text))


def assert_readable(data: str | bytes, where: str) -> None:
    """``data`` reads in icalendar and in vobject; the assertion names
    ``where`` it came from and what the parser said."""
    for reader in (read_icalendar, read_vobject):
        try:
            found = reader(data)
        except Exception as exc:
            raise AssertionError(f"{where}: {reader.__name__} fails: {exc!r}") from exc
        assert found, f"{where}: {reader.__name__} finds no calendar"

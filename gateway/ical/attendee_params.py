"""An answer in a stored object's text: the attendee's PARTSTAT, nothing else.

A calendar app's object is stored as the app wrote it (RFC 4791 5.3.2): its
X- properties, alarms, overridden occurrences, line folding and parameter
order. When an answer comes back, the organizer's copy gets the attendee's
PARTSTAT (RFC 5546 3.2.3; RFC 6638 3.2.9 has the server do it); re-rendering
the object would rewrite the rest, so this edits only the ATTENDEE content
lines that name the attendee, in every scheduled component (the master and
each override: an answer without RECURRENCE-ID answers the whole series),
never in a VALARM (an e-mail alarm's ATTENDEE is the alarm's recipient).
The line editing is ``gateway.ical.schedule_status``'s, which writes
SCHEDULE-STATUS the same way.

Not here: whether the answer applies (``gateway.core.answers``).
"""

from __future__ import annotations

from gateway.core.invitations import mailbox

from .lines import _split
from .schedule_status import attendee_mailbox, edit_scheduled, param_name, split_params

_PARTSTAT = "PARTSTAT"


def with_partstat(text: str, address: str, partstat: str) -> str:
    """``text`` with PARTSTAT=``partstat`` on each scheduled ATTENDEE whose
    mailbox is ``address`` (any spelling); the text unchanged when none is
    or all say so already."""
    wanted = mailbox(address)

    def change(name: str, unfolded: str) -> str | None:
        if name != "ATTENDEE":
            return None
        head, value = _split(unfolded)
        if attendee_mailbox(value) != wanted:
            return None
        segments = split_params(head)
        kept = [s for s in segments[1:] if param_name(s) != _PARTSTAT]
        if len(kept) < len(segments) - 1:  # in its place, as the app put it
            spot = next(i for i, s in enumerate(segments[1:]) if param_name(s) == _PARTSTAT)
            kept.insert(spot, f"{_PARTSTAT}={partstat}")
        else:
            kept.append(f"{_PARTSTAT}={partstat}")
        return ";".join([segments[0], *kept]) + ":" + value

    return edit_scheduled(text, change)

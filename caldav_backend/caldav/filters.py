"""Reading the XML of calendar-query filters (RFC 4791 9.7) and of
calendar-data requests (9.6) into the core's query values."""

from __future__ import annotations

from datetime import UTC, datetime

from caldav_backend.dav.errors import DavError
from caldav_backend.dav.xml import Element, child_named, children_named
from gateway.core.query import (
    Collation,
    CompFilter,
    DataRequest,
    MatchType,
    ParamFilter,
    PropFilter,
    TextMatch,
    TimeRange,
)

from .names import cal


def _invalid(message: str) -> DavError:
    return DavError(403, message, cal("valid-filter"))


def parse_utc(value: str, what: str) -> datetime:
    """RFC 4791 9.9: "date with UTC time" values, like 20261201T090000Z."""
    try:
        parsed = datetime.strptime(value.strip(), "%Y%m%dT%H%M%SZ")
    except ValueError:
        raise _invalid(f"{what} {value!r} is not a UTC date-time like 20261201T090000Z") from None
    return parsed.replace(tzinfo=UTC)


def parse_time_range(node: Element) -> TimeRange:
    start = node.get("start")
    end = node.get("end")
    if start is None and end is None:
        raise _invalid("a time-range needs a start or an end attribute (RFC 4791 9.9)")
    try:
        return TimeRange(
            start=parse_utc(start, "time-range start") if start is not None else None,
            end=parse_utc(end, "time-range end") if end is not None else None,
        )
    except ValueError as exc:
        raise _invalid(f"time-range: {exc}") from None


def _name(node: Element) -> str:
    name = node.get("name")
    if not name or not name.strip():
        raise _invalid(f"{node.tag} needs a name attribute")
    return name.strip().upper()


def _text_match(node: Element) -> TextMatch:
    collation = node.get("collation", Collation.ASCII_CASEMAP.value)
    try:
        known = Collation(collation)
    except ValueError:
        raise DavError(
            403,
            f"unsupported collation {collation!r}; use one of "
            + ", ".join(c.value for c in Collation),
            cal("supported-collation"),
        ) from None
    match_type = node.get("match-type", MatchType.CONTAINS.value)
    try:
        kind = MatchType(match_type)
    except ValueError:
        raise _invalid(f"unsupported match-type {match_type!r}") from None
    negate = node.get("negate-condition", "no").strip().lower()
    if negate not in ("yes", "no"):
        raise _invalid("negate-condition must be yes or no")
    return TextMatch(node.text or "", known, negate == "yes", kind)


def _param_filter(node: Element) -> ParamFilter:
    text = child_named(node, cal("text-match"))
    return ParamFilter(
        name=_name(node),
        is_not_defined=child_named(node, cal("is-not-defined")) is not None,
        text_match=_text_match(text) if text is not None else None,
    )


def _prop_filter(node: Element) -> PropFilter:
    time_range = child_named(node, cal("time-range"))
    text = child_named(node, cal("text-match"))
    return PropFilter(
        name=_name(node),
        is_not_defined=child_named(node, cal("is-not-defined")) is not None,
        time_range=parse_time_range(time_range) if time_range is not None else None,
        text_match=_text_match(text) if text is not None else None,
        param_filters=tuple(_param_filter(p) for p in children_named(node, cal("param-filter"))),
    )


def _comp_filter(node: Element) -> CompFilter:
    time_range = child_named(node, cal("time-range"))
    return CompFilter(
        name=_name(node),
        is_not_defined=child_named(node, cal("is-not-defined")) is not None,
        time_range=parse_time_range(time_range) if time_range is not None else None,
        prop_filters=tuple(_prop_filter(p) for p in children_named(node, cal("prop-filter"))),
        comp_filters=tuple(_comp_filter(c) for c in children_named(node, cal("comp-filter"))),
    )


def parse_filter(query: Element) -> CompFilter:
    """The CALDAV:filter of a calendar-query: exactly one VCALENDAR comp-filter."""
    found = child_named(query, cal("filter"))
    if found is None:
        raise _invalid("calendar-query needs a CALDAV:filter (RFC 4791 7.8)")
    comps = children_named(found, cal("comp-filter"))
    if len(comps) != 1:
        raise _invalid("the filter must hold exactly one comp-filter, for VCALENDAR")
    top = _comp_filter(comps[0])
    if top.name != "VCALENDAR":
        raise _invalid(f"the top comp-filter must name VCALENDAR, not {top.name}")
    return top


def parse_data_request(calendar_data: Element | None) -> DataRequest:
    """Options of a requested CALDAV:calendar-data property (RFC 4791 9.6).

    ``comp``/``prop`` selection (9.6.1) is accepted and the whole object
    returned, which 9.6 allows servers to do ("MAY ... return ... more")."""
    if calendar_data is None:
        return DataRequest()
    expand = child_named(calendar_data, cal("expand"))
    limit = child_named(calendar_data, cal("limit-recurrence-set"))
    for option, label in ((expand, "expand"), (limit, "limit-recurrence-set")):
        if option is not None and (option.get("start") is None or option.get("end") is None):
            raise _invalid(f"{label} needs both start and end (RFC 4791 9.6.5, 9.6.6)")
    return DataRequest(
        expand=parse_time_range(expand) if expand is not None else None,
        limit_recurrence_set=parse_time_range(limit) if limit is not None else None,
    )

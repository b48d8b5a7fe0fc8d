"""A small WebDAV client over the test HTTP client, and answer readers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse
from lxml import etree

from tests.conftest import ADMIN_PASSWORD, AppClient, basic

D = "DAV:"
C = "urn:ietf:params:xml:ns:caldav"
CS = "http://calendarserver.org/ns/"
G = "urn:calgateway:"
NS = {"D": D, "C": C, "CS": CS, "G": G, "ICAL": "http://apple.com/ns/ical/"}
ADMIN = basic("admin", ADMIN_PASSWORD)


def event(
    uid: str,
    start: str = "20261201T090000Z",
    end: str = "20261201T100000Z",
    extra: str = "",
    summary: str = "Haircut",
) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//caldav//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n{extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes
    reason: str = ""  # the status line's reason phrase

    def xml(self) -> Any:
        return etree.fromstring(self.body)

    def hrefs(self) -> list[str]:
        return [h.text for h in self.xml().findall("D:response/D:href", NS)]

    def props(self, href: str) -> dict[str, Any]:
        """Found (200) properties of one response, by prefixed name."""
        for response in self.xml().findall("D:response", NS):
            if response.findtext("D:href", namespaces=NS) != href:
                continue
            found: dict[str, Any] = {}
            for propstat in response.findall("D:propstat", NS):
                if " 200 " not in (propstat.findtext("D:status", namespaces=NS) or ""):
                    continue
                for prop in propstat.find("D:prop", NS):
                    qname = etree.QName(prop)
                    prefix = next(p for p, uri in NS.items() if uri == qname.namespace)
                    found[f"{prefix}:{qname.localname}"] = prop
            return found
        raise AssertionError(f"no response for {href} in {self.body!r}")

    def statuses(self) -> dict[str, str]:
        """Status-only responses (like 404 for gone members), by href."""
        return {
            r.findtext("D:href", namespaces=NS): r.findtext("D:status", namespaces=NS)
            for r in self.xml().findall("D:response", NS)
            if r.find("D:status", NS) is not None
        }

    def error(self) -> list[str]:
        """Condition element names of a DAV:error body, and the message."""
        root = self.xml()
        assert etree.QName(root).localname == "error", self.body
        return [etree.QName(child).localname for child in root]

    def message(self) -> str:
        return self.xml().findtext("G:message", namespaces=NS) or ""

    def calendar_data(self) -> dict[str, str]:
        """The found (200) C:calendar-data text of every response, by href."""
        found = {href: self.props(href).get("C:calendar-data") for href in self.hrefs()}
        return {href: data.text or "" for href, data in found.items() if data is not None}


async def answer(response: ClientResponse) -> Answer:
    return Answer(response.status, response.headers, await response.read(), response.reason or "")


async def request(
    client: AppClient,
    method: str,
    path: str,
    body: str | bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    auth: dict[str, str] | None = None,
) -> Answer:
    all_headers = {**(ADMIN if auth is None else auth), **(headers or {})}
    if body is not None and "Content-Type" not in all_headers:
        all_headers["Content-Type"] = "application/xml; charset=utf-8"
    async with client.request(method, path, data=body, headers=all_headers) as response:
        return await answer(response)


def propfind_body(*props: str) -> str:
    inner = "".join(f"<{p}/>" for p in props)
    return (
        f'<D:propfind xmlns:D="DAV:" xmlns:C="{C}" xmlns:CS="{CS}" '
        f'xmlns:ICAL="http://apple.com/ns/ical/"><D:prop>{inner}</D:prop></D:propfind>'
    )


async def propfind(
    client: AppClient, path: str, *props: str, depth: str = "0", **kwargs: Any
) -> Answer:
    return await request(
        client, "PROPFIND", path, propfind_body(*props), headers={"Depth": depth}, **kwargs
    )


async def put(
    client: AppClient, path: str, ics: str, *, headers: dict[str, str] | None = None, **kw: Any
) -> Answer:
    return await request(
        client,
        "PUT",
        path,
        ics.encode("utf-8"),
        headers={"Content-Type": "text/calendar; charset=utf-8", **(headers or {})},
        **kw,
    )


def time_range_query(start: str, end: str, *, extra_props: str = "") -> str:
    return (
        f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{C}">'
        f"<D:prop><D:getetag/>{extra_props}</D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/>'
        "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
    )


def sync_body(token: str, *, limit: int | None = None, data: bool = False) -> str:
    limit_xml = f"<D:limit><D:nresults>{limit}</D:nresults></D:limit>" if limit else ""
    data_xml = "<C:calendar-data/>" if data else ""
    return (
        '<D:sync-collection xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>{limit_xml}"
        f"<D:prop><D:getetag/>{data_xml}</D:prop></D:sync-collection>"
    )


async def sync(
    client: AppClient,
    token: str = "",
    *,
    limit: int | None = None,
    data: bool = False,
    path: str = "/dav/calendars/anna/",
) -> Answer:
    """A sync-collection REPORT (RFC 6578) on ``path``."""
    return await request(client, "REPORT", path, sync_body(token, limit=limit, data=data))


def token_of(answer: Answer) -> str:
    token = answer.xml().findtext("D:sync-token", namespaces=NS)
    assert token
    return token


def multiget_body(*hrefs: str) -> str:
    inner = "".join(f"<D:href>{h}</D:href>" for h in hrefs)
    return (
        f'<C:calendar-multiget xmlns:D="DAV:" xmlns:C="{C}">'
        f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{inner}</C:calendar-multiget>"
    )


async def reports(client: AppClient, path: str = "/dav/calendars/anna/") -> dict[str, Answer]:
    """What every client asks of a calendar, each with calendar-data: a
    PROPFIND Depth 1, a calendar-query over 2020-2029, a sync-collection and a
    calendar-multiget of every member the PROPFIND listed, by name."""
    listing = await propfind(client, path, "D:getetag", depth="1")
    members = [h for h in listing.hrefs() if h != path] if listing.status == 207 else []
    query = time_range_query(
        "20200101T000000Z", "20300101T000000Z", extra_props="<C:calendar-data/>"
    )
    return {
        "propfind": listing,
        "calendar-query": await request(client, "REPORT", path, query, headers={"Depth": "1"}),
        "sync-collection": await sync(client, data=True, path=path),
        "calendar-multiget": await request(
            client, "REPORT", path, multiget_body(*(members or [f"{path}none.ics"]))
        ),
    }

"""principal-property-search and principal-search-property-set (RFC 3744
9.4, 9.5; issue 13 item 5): clients look principals up by name. A caller
sees its own principal only, so that is what a search can find."""

from __future__ import annotations

import pytest

from tests.caldav.dav import ADMIN, NS, request
from tests.conftest import READER_PASSWORD, AppClient, basic

READER = basic("reader", READER_PASSWORD)

PRINCIPALS = "/dav/principals/"


def search(match: str, *, prop: str = "<D:displayname/>", test: str = "") -> str:
    return (
        f'<D:principal-property-search xmlns:D="DAV:" {test}>'
        f"<D:property-search><D:prop>{prop}</D:prop><D:match>{match}</D:match>"
        "</D:property-search>"
        "<D:prop><D:displayname/><D:principal-URL/></D:prop>"
        "</D:principal-property-search>"
    )


@pytest.mark.parametrize(
    ("path", "match", "found"),
    [
        (PRINCIPALS, "adm", ["/dav/principals/admin/"]),
        (PRINCIPALS, "ADMIN", ["/dav/principals/admin/"]),  # caseless
        (PRINCIPALS, "dmi", ["/dav/principals/admin/"]),  # substring
        (PRINCIPALS, "reader", []),  # another user's principal is not the caller's to find
        (PRINCIPALS, "zoë", []),
        ("/dav/principals/admin/", "admin", ["/dav/principals/admin/"]),
    ],
)
async def test_principal_property_search_finds_the_callers_principal_by_name(
    client: AppClient, path: str, match: str, found: list[str]
) -> None:
    answer = await request(client, "REPORT", path, search(match), headers={**ADMIN, "Depth": "0"})
    assert answer.status == 207, answer.body
    hrefs = [r.findtext("D:href", namespaces=NS) for r in answer.xml().findall("D:response", NS)]
    assert hrefs == found
    if found:
        props = answer.props(found[0])
        assert props["D:displayname"].text == "admin"


async def test_a_property_that_cannot_be_searched_matches_nothing(client: AppClient) -> None:
    body = search("admin", prop="<D:getetag/>")
    answer = await request(client, "REPORT", PRINCIPALS, body, headers={**READER, "Depth": "0"})
    assert answer.status == 207
    assert answer.xml().findall("D:response", NS) == []


async def test_anyof_needs_one_search_to_match(client: AppClient) -> None:
    two = (
        '<D:principal-property-search xmlns:D="DAV:" test="anyof">'
        "<D:property-search><D:prop><D:displayname/></D:prop><D:match>nobody</D:match>"
        "</D:property-search>"
        "<D:property-search><D:prop><D:displayname/></D:prop><D:match>read</D:match>"
        "</D:property-search><D:prop><D:displayname/></D:prop>"
        "</D:principal-property-search>"
    )
    answer = await request(client, "REPORT", PRINCIPALS, two, headers={**READER, "Depth": "0"})
    assert [
        r.findtext("D:href", namespaces=NS) for r in answer.xml().findall("D:response", NS)
    ] == ["/dav/principals/reader/"]
    allof = two.replace(' test="anyof"', "")
    answer = await request(client, "REPORT", PRINCIPALS, allof, headers={**READER, "Depth": "0"})
    assert answer.xml().findall("D:response", NS) == []


async def test_a_search_without_property_search_is_a_400(client: AppClient) -> None:
    body = '<D:principal-property-search xmlns:D="DAV:"><D:prop/></D:principal-property-search>'
    answer = await request(client, "REPORT", PRINCIPALS, body, headers={**ADMIN, "Depth": "0"})
    assert answer.status == 400
    assert "property-search" in answer.message()


async def test_principal_search_property_set_names_displayname(client: AppClient) -> None:
    body = '<D:principal-search-property-set xmlns:D="DAV:"/>'
    answer = await request(client, "REPORT", PRINCIPALS, body, headers={**ADMIN, "Depth": "0"})
    assert answer.status == 200
    root = answer.xml()
    assert root.tag == "{DAV:}principal-search-property-set"
    searchable = root.findall("D:principal-search-property", NS)
    assert [p.find("D:prop", NS)[0].tag for p in searchable] == ["{DAV:}displayname"]
    assert searchable[0].findtext("D:description", namespaces=NS) == "Display name"


async def test_principal_reports_on_a_calendar_are_refused_with_the_precondition(
    client: AppClient,
) -> None:
    answer = await request(
        client, "REPORT", "/dav/calendars/anna/", search("admin"), headers={**ADMIN}
    )
    assert answer.status == 403
    assert "supported-report" in answer.error()

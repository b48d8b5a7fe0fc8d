"""Discovery and access: what each user sees of the DAV tree (RFC 4791 6,
RFC 5397, RFC 6764), through the real app over loopback."""

from __future__ import annotations

from tests.caldav.dav import NS, C, D, propfind, request
from tests.conftest import READER_PASSWORD, AppClient, basic

READER = basic("reader", READER_PASSWORD)


async def test_well_known_redirects_to_the_dav_root(client: AppClient) -> None:
    for method in ("GET", "PROPFIND"):
        async with client.request(method, "/.well-known/caldav", allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"] == "/dav/"


async def test_options_advertises_calendar_access_without_credentials(client: AppClient) -> None:
    async with client.options("/dav/calendars/anna/") as resp:
        assert resp.status == 200
        assert [p.strip() for p in resp.headers["DAV"].split(",")] == [
            "1",
            "3",
            "calendar-access",
            "calendar-auto-schedule",
        ]
        assert "REPORT" in resp.headers["Allow"] and "PROPFIND" in resp.headers["Allow"]


async def test_discovery_chain_from_root_to_calendars(client: AppClient) -> None:
    root = await propfind(client, "/dav/", "D:current-user-principal")
    assert root.status == 207
    principal = root.props("/dav/")["D:current-user-principal"].findtext("D:href", namespaces=NS)
    assert principal == "/dav/principals/admin/"

    found = await propfind(client, principal, "C:calendar-home-set", "D:resourcetype")
    props = found.props(principal)
    home = props["C:calendar-home-set"].findtext("D:href", namespaces=NS)
    assert home == "/dav/calendars/"
    assert props["D:resourcetype"].find("D:principal", NS) is not None

    listing = await propfind(client, home, "D:resourcetype", "D:displayname", depth="1")
    calendars = {
        href: listing.props(href)["D:displayname"].text
        for href in listing.hrefs()
        if listing.props(href)["D:resourcetype"].find("C:calendar", NS) is not None
    }
    assert calendars == {
        "/dav/calendars/anna/": "Anna Schmidt",
        "/dav/calendars/room/": "Room 1",
        "/dav/calendars/bob/": "Bob Jones",
    }


async def test_a_user_sees_only_granted_calendars(client: AppClient) -> None:
    listing = await propfind(client, "/dav/calendars/", "D:resourcetype", depth="1", auth=READER)
    assert listing.hrefs() == ["/dav/calendars/", "/dav/calendars/anna/"]
    # Other calendars and principals look exactly like paths that do not exist.
    hidden = await propfind(client, "/dav/calendars/bob/", "D:displayname", auth=READER)
    absent = await propfind(client, "/dav/calendars/nobody/", "D:displayname", auth=READER)
    other = await propfind(client, "/dav/principals/admin/", "D:displayname", auth=READER)
    assert hidden.status == absent.status == other.status == 404
    assert hidden.message().replace("bob", "nobody") == absent.message()
    principals = await propfind(client, "/dav/principals/", "D:displayname", depth="1", auth=READER)
    assert principals.hrefs() == ["/dav/principals/", "/dav/principals/reader/"]


async def test_privileges_follow_the_grant(client: AppClient) -> None:
    def privileges(answer_props: dict[str, object]) -> set[str]:
        element = answer_props["D:current-user-privilege-set"]
        return {p[0].tag.split("}")[1] for p in element.findall("D:privilege", NS)}  # type: ignore[attr-defined]

    admin = await propfind(client, "/dav/calendars/anna/", "D:current-user-privilege-set")
    reader = await propfind(
        client, "/dav/calendars/anna/", "D:current-user-privilege-set", auth=READER
    )
    assert {"read", "write", "write-content", "bind", "unbind"} <= privileges(
        admin.props("/dav/calendars/anna/")
    )
    assert privileges(reader.props("/dav/calendars/anna/")) == {
        "read",
        "read-current-user-privilege-set",
        "read-free-busy",
    }


async def test_calendar_properties(client: AppClient) -> None:
    wanted = (
        "D:displayname",
        "D:resourcetype",
        "D:getetag",
        "CS:getctag",
        "D:sync-token",
        "C:supported-calendar-component-set",
        "C:calendar-timezone",
        "D:supported-report-set",
        "D:owner",
    )
    answer = await propfind(client, "/dav/calendars/bob/", *wanted)
    props = answer.props("/dav/calendars/bob/")
    assert set(props) == set(wanted)
    assert [c.get("name") for c in props["C:supported-calendar-component-set"]] == ["VEVENT"]
    assert "TZID:America/New_York" in props["C:calendar-timezone"].text
    reports = {r.find("D:report", NS)[0].tag for r in props["D:supported-report-set"]}
    assert reports == {
        f"{{{C}}}calendar-query",
        f"{{{C}}}calendar-multiget",
        f"{{{C}}}free-busy-query",
        f"{{{D}}}sync-collection",
    }
    assert props["D:sync-token"].text.startswith("urn:calgateway:sync:bob:")


async def test_unknown_property_is_reported_missing_not_an_error(client: AppClient) -> None:
    body = (
        '<D:propfind xmlns:D="DAV:" xmlns:X="urn:x"><D:prop><D:displayname/><X:nope/>'
        "</D:prop></D:propfind>"
    )
    answer = await request(client, "PROPFIND", "/dav/calendars/anna/", body)
    assert answer.status == 207
    statuses = [s.text for s in answer.xml().iter(f"{{{D}}}status")]
    assert statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found"]


async def test_allprop_and_propname(client: AppClient) -> None:
    allprop = await request(
        client,
        "PROPFIND",
        "/dav/calendars/anna/",
        '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>',
    )
    props = allprop.props("/dav/calendars/anna/")
    assert {"D:displayname", "D:resourcetype", "D:getetag"} <= set(props)
    assert "C:calendar-timezone" not in props  # RFC 4791 5.2: not in allprop
    names = await request(
        client,
        "PROPFIND",
        "/dav/calendars/anna/",
        '<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
    )
    listed = names.props("/dav/calendars/anna/")
    assert "C:calendar-timezone" in listed and listed["C:calendar-timezone"].text is None
    # An empty body means allprop (RFC 4918 9.1).
    empty = await request(client, "PROPFIND", "/dav/calendars/anna/", b"")
    assert set(empty.props("/dav/calendars/anna/")) == set(props)


async def test_depth_infinity_is_refused(client: AppClient) -> None:
    answer = await propfind(client, "/dav/calendars/", "D:displayname", depth="infinity")
    assert answer.status == 403
    assert "propfind-finite-depth" in answer.error()


async def test_proppatch_sets_and_removes_display_properties(client: AppClient) -> None:
    body = (
        '<D:propertyupdate xmlns:D="DAV:" xmlns:ICAL="http://apple.com/ns/ical/">'
        "<D:set><D:prop><D:displayname>Anna (Salon)</D:displayname>"
        "<ICAL:calendar-color>#FF0000FF</ICAL:calendar-color></D:prop></D:set>"
        "</D:propertyupdate>"
    )
    answer = await request(client, "PROPPATCH", "/dav/calendars/anna/", body)
    assert answer.status == 207
    assert "200 OK" in answer.xml().findtext("D:response/D:propstat/D:status", namespaces=NS)
    after = await propfind(client, "/dav/calendars/anna/", "D:displayname", "ICAL:calendar-color")
    props = after.props("/dav/calendars/anna/")
    assert props["D:displayname"].text == "Anna (Salon)"
    assert props["ICAL:calendar-color"].text == "#FF0000FF"

    remove = body.replace("D:set", "D:remove").replace("Anna (Salon)", "")
    await request(client, "PROPPATCH", "/dav/calendars/anna/", remove)
    again = await propfind(client, "/dav/calendars/anna/", "D:displayname", "ICAL:calendar-color")
    assert again.props("/dav/calendars/anna/")["D:displayname"].text == "Anna Schmidt"
    assert "ICAL:calendar-color" not in again.props("/dav/calendars/anna/")


async def test_proppatch_is_all_or_nothing(client: AppClient) -> None:
    body = (
        '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
        "<D:displayname>New name</D:displayname><D:getetag>forged</D:getetag>"
        "</D:prop></D:set></D:propertyupdate>"
    )
    answer = await request(client, "PROPPATCH", "/dav/calendars/anna/", body)
    statuses = {
        ps.find("D:prop", NS)[0].tag.split("}")[1]: ps.findtext("D:status", namespaces=NS)
        for ps in answer.xml().iter(f"{{{D}}}propstat")
    }
    assert statuses == {
        "getetag": "HTTP/1.1 403 Forbidden",
        "displayname": "HTTP/1.1 424 Failed Dependency",
    }
    after = await propfind(client, "/dav/calendars/anna/", "D:displayname")
    assert after.props("/dav/calendars/anna/")["D:displayname"].text == "Anna Schmidt"


async def test_reader_may_not_proppatch(client: AppClient) -> None:
    body = (
        '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname>'
        "</D:prop></D:set></D:propertyupdate>"
    )
    answer = await request(client, "PROPPATCH", "/dav/calendars/anna/", body, auth=READER)
    assert answer.status == 403
    assert "need-privileges" in answer.error()


async def test_mkcalendar_is_refused_with_the_reason(client: AppClient) -> None:
    # RFC 4791 5.3.1.1: no location here can take a new calendar.
    for path in ("/dav/calendars/new/", "/dav/calendars/anna/"):
        answer = await request(client, "MKCALENDAR", path)
        assert answer.status == 403
        assert answer.error()[0] == "calendar-collection-location-ok"
        assert answer.xml().find("C:calendar-collection-location-ok", NS) is not None
        assert "config file" in answer.message()
    mkcol = await request(client, "MKCOL", "/dav/calendars/new/")
    assert mkcol.status == 403
    assert "calendars-come-from-config" in mkcol.error()
    assert "config file" in mkcol.message()


async def test_without_credentials_the_answer_is_401_with_a_challenge(client: AppClient) -> None:
    for auth in ({}, basic("admin", "wrong"), basic("ghost", "x")):
        answer = await propfind(client, "/dav/", "D:displayname", auth=auth)
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic realm=")

"""Hostile or broken requests: XML attacks, oversized bodies, bad XML."""

from __future__ import annotations

from tests.backends import Store
from tests.caldav.dav import event, propfind_body, put, request
from tests.conftest import AppClient
from tests.dbcheck import row_counts

ANNA = "/dav/calendars/anna/"

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol2;</D:displayname></D:prop>'
    "</D:propfind>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>&secret;</D:displayname>'
    "</D:prop></D:set></D:propertyupdate>"
)


async def test_entity_declarations_are_refused(client: AppClient) -> None:
    for method, body in (("PROPFIND", BILLION_LAUGHS), ("PROPPATCH", EXTERNAL_ENTITY)):
        answer = await request(client, method, ANNA, body)
        assert answer.status == 400, method
        assert "document type" in answer.message()
    name = await request(client, "PROPFIND", ANNA, propfind_body("D:displayname"))
    assert "root:" not in name.body.decode()


async def test_malformed_xml_gets_400_naming_the_problem(client: AppClient) -> None:
    for body in ("<D:propfind xmlns:D='DAV:'><D:prop>", "not xml at all", "<a><b></a>"):
        answer = await request(client, "PROPFIND", ANNA, body)
        assert answer.status == 400
        assert "not well-formed" in answer.message()
    wrong_root = await request(client, "PROPFIND", ANNA, "<x/>")
    assert wrong_root.status == 400


async def test_oversized_body_is_refused_and_nothing_is_written(
    client: AppClient, store: Store
) -> None:
    huge = event("big") + " " * 2_000_000  # over server.max_body_bytes (1 MiB)
    answer = await put(client, ANNA + "big.ics", huge)
    assert answer.status == 413
    assert row_counts(store)["objects"] == 0

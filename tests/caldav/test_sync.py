"""sync-collection (RFC 6578) through the real app."""

from __future__ import annotations

from tests.caldav.dav import event, put, request, sync, sync_body, token_of
from tests.conftest import AppClient

ANNA = "/dav/calendars/anna/"


def hour(n: int) -> tuple[str, str]:
    return f"20261201T{n:02d}0000Z", f"20261201T{n:02d}3000Z"


async def test_initial_sync_lists_everything_then_only_changes(client: AppClient) -> None:
    for n in range(3):
        await put(client, f"{ANNA}e{n}.ics", event(f"e{n}", *hour(n + 8)))
    first = await sync(client)
    assert first.status == 207
    assert sorted(first.hrefs()) == [f"{ANNA}e0.ics", f"{ANNA}e1.ics", f"{ANNA}e2.ics"]
    assert all(first.props(h)["D:getetag"].text for h in first.hrefs())
    token = token_of(first)

    nothing = await sync(client, token)
    assert nothing.hrefs() == []
    assert token_of(nothing) == token

    changed = await put(client, f"{ANNA}e1.ics", event("e1", *hour(9), summary="Changed"))
    await put(client, f"{ANNA}new.ics", event("new", *hour(14)))
    await request(client, "DELETE", f"{ANNA}e2.ics")
    delta = await sync(client, token, data=True)
    assert sorted(delta.hrefs()) == [f"{ANNA}e1.ics", f"{ANNA}e2.ics", f"{ANNA}new.ics"]
    assert delta.props(f"{ANNA}e1.ics")["D:getetag"].text == changed.headers["ETag"]
    assert "SUMMARY:Changed" in delta.props(f"{ANNA}e1.ics")["C:calendar-data"].text
    assert delta.statuses() == {f"{ANNA}e2.ics": "HTTP/1.1 404 Not Found"}
    assert token_of(delta) != token
    # The token matches the collection's.
    found = await request(
        client,
        "PROPFIND",
        ANNA,
        '<D:propfind xmlns:D="DAV:"><D:prop><D:sync-token/></D:prop></D:propfind>',
    )
    assert found.props(ANNA)["D:sync-token"].text == token_of(delta)


async def test_one_change_among_many_reports_one_href(client: AppClient) -> None:
    for day in range(1, 29):
        start, end = f"202612{day:02d}T080000Z", f"202612{day:02d}T083000Z"
        await put(client, f"{ANNA}e{day}.ics", event(f"e{day}", start, end))
    token = token_of(await sync(client))
    await put(client, f"{ANNA}e7.ics", event("e7", "20261207T080000Z", "20261207T081500Z"))
    delta = await sync(client, token)
    assert delta.hrefs() == [f"{ANNA}e7.ics"]


async def test_limit_truncates_with_507_and_the_rest_follows(client: AppClient) -> None:
    token = token_of(await sync(client))
    for n in range(5):
        await put(client, f"{ANNA}e{n}.ics", event(f"e{n}", *hour(n + 8)))
    seen: list[str] = []
    for _ in range(5):
        page = await sync(client, token, limit=2)
        token = token_of(page)
        seen.extend(h for h in page.hrefs() if h != ANNA)
        if ANNA not in page.statuses():
            break
        assert page.statuses()[ANNA] == "HTTP/1.1 507 Insufficient Storage"
    assert sorted(seen) == [f"{ANNA}e{n}.ics" for n in range(5)]


async def test_unknown_or_foreign_tokens_are_refused(client: AppClient) -> None:
    await put(client, f"{ANNA}e.ics", event("e"))
    room_token = "urn:calgateway:sync:room:0"
    for token in ("http://example.com/sync/1", "urn:calgateway:sync:anna:99", room_token, "x"):
        answer = await sync(client, token)
        assert answer.status == 403, token
        assert "valid-sync-token" in answer.error()


async def test_sync_level_is_required(client: AppClient) -> None:
    body = sync_body("").replace("<D:sync-level>1</D:sync-level>", "")
    answer = await request(client, "REPORT", ANNA, body)
    assert answer.status == 400

"""Every console page with data, and every action, over real HTTP on both
backends: the overview, a resource page, the outbox with retry and give
up, resending an invitation, the read-only settings; forged and
cross-site POSTs refused; nothing shown to a visitor without a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import AppClient
from tests.console.console import act, act_and_follow, flash_of, page, signed_in, words
from tests.samples import SLOT


def _tomorrow(hour: int) -> str:
    day = datetime.now(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


async def _book(client: AppClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    body = {**SLOT, "start": _tomorrow(9), "end": _tomorrow(10), **changes}
    answer = await client.post("/api/v1/bookings", json=body, headers=headers)
    assert answer.status == 201, await answer.text()
    created: dict[str, Any] = await answer.json()
    return created


async def _outbox_ids(client: AppClient, table: str) -> list[int]:
    text = await (await client.get("/admin/outbox")).text()
    rows = page(text).xpath(f"//table[@id='{table}']/tbody/tr/@id")
    return [int(str(r).removeprefix("item-")) for r in rows]


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/resources/anna", "/admin/outbox", "/admin/settings"]
)
async def test_without_a_session_every_page_leads_to_sign_in(client: AppClient, path: str) -> None:
    answer = await client.get(path, allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"] == f"/admin/sign-in?next={path}"


@pytest.mark.parametrize(
    "path", ["/admin/outbox/1/retry", "/admin/bookings/x/invitation", "/admin/sign-out"]
)
async def test_without_a_session_no_action_runs(client: AppClient, path: str) -> None:
    answer = await act(client, path, "anything")
    assert (answer.status, answer.headers["Location"]) == (303, "/admin/sign-in")


async def test_overview_shows_every_resource_with_its_addresses(client: AppClient) -> None:
    await signed_in(client)
    answer = await client.get("/admin/")
    text = await answer.text()
    doc = page(text)
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for resource in ("anna", "room", "bob"):
        assert doc.get_element_by_id(f"resource-{resource}") is not None
    assert doc.get_element_by_id("caldav-anna").get("value") == (
        "http://gateway.test/dav/calendars/anna/"
    )
    # One address per feed token (two during a rotation), each also busy-only.
    assert doc.get_element_by_id("feed-anna-1").get("value") == (
        "http://gateway.test/feeds/anna.ics?token=anna-feed-token-0123456789abcdef"
    )
    assert (
        doc.get_element_by_id("feed-anna-2-busy")
        .get("value")
        .endswith("token=anna-old-token-0123456789abcdefgh&view=busy")
    )
    assert "rotate a feed address" in words(text)
    # The copy button is for scripts only; without them the address is text.
    assert doc.xpath("//button[@data-copy='feed-anna-1']/@hidden") == [""]
    assert "Google is not configured on this server" in words(text)


async def test_resource_page_lists_upcoming_bookings_and_an_empty_log(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    booked = await _book(client, api_headers)
    await signed_in(client)
    text = await (await client.get("/admin/resources/anna")).text()
    item = page(text).get_element_by_id(f"booking-{booked['id']}")
    shown = " ".join(item.text_content().split())
    assert "Haircut" in shown and "zoe@example.com" in shown
    assert "Nothing in the sync log yet." in words(text)
    unknown = await client.get("/admin/resources/nobody")
    assert unknown.status == 404
    assert "There is no resource 'nobody'." in words(await unknown.text())


async def test_log_filter_keeps_only_the_chosen_kind(client: AppClient) -> None:
    await signed_in(client)
    answer = await client.get("/admin/resources/anna", params={"kind": "conflict"})
    assert "No entries of this kind." in words(await answer.text())
    doc = page(await answer.text())
    assert doc.xpath("//select[@id='kind']/option[@selected]/@value") == ["conflict"]


async def test_outbox_give_up_then_retry(client: AppClient, api_headers: dict[str, str]) -> None:
    # Mail goes to a port where nobody listens: the invitation waits.
    await _book(client, api_headers)
    csrf = await signed_in(client)
    [item] = await _outbox_ids(client, "pending")
    text = await (await client.get("/admin/outbox")).text()
    row = " ".join(page(text).get_element_by_id(f"item-{item}").text_content().split())
    assert "zoe@example.com" in row and "Anna Schmidt" in row

    location, text = await act_and_follow(client, f"/admin/outbox/{item}/give-up", csrf)
    assert location == "/admin/outbox"
    assert "was given up" in flash_of(text)
    assert await _outbox_ids(client, "failed") == [item]
    assert await _outbox_ids(client, "pending") == []
    failed_row = page(text).get_element_by_id(f"item-{item}")
    assert "given up by admin" in failed_row.text_content()

    _, text = await act_and_follow(client, f"/admin/outbox/{item}/retry", csrf)
    assert "will be tried again now" in flash_of(text)
    assert await _outbox_ids(client, "pending") == [item]
    # The flash message is shown once.
    again = await (await client.get("/admin/outbox")).text()
    assert flash_of(again) == ""


async def test_a_refused_action_says_why(client: AppClient, api_headers: dict[str, str]) -> None:
    await _book(client, api_headers)
    csrf = await signed_in(client)
    [item] = await _outbox_ids(client, "pending")
    await act_and_follow(client, f"/admin/outbox/{item}/give-up", csrf)
    _, text = await act_and_follow(client, f"/admin/outbox/{item}/give-up", csrf)
    assert "has failed already" in flash_of(text)
    assert page(text).get_element_by_id("flash").get("role") == "alert"
    missing = await act(client, "/admin/outbox/999999/retry", csrf)
    assert missing.status == 404
    assert "There is no outbox item 999999." in words(await missing.text())


async def test_resend_invitation_queues_it_again(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    booked = await _book(client, api_headers)
    csrf = await signed_in(client)
    before = await _outbox_ids(client, "pending")
    location, text = await act_and_follow(
        client, f"/admin/bookings/{booked['id']}/invitation", csrf
    )
    assert location == "/admin/resources/anna"
    assert "is queued to be sent again" in flash_of(text)
    assert len(await _outbox_ids(client, "pending")) == len(before) + 1


async def test_resend_invitation_of_a_cancelled_booking_is_refused(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    booked = await _book(client, api_headers)
    cancelled = await client.delete(f"/api/v1/bookings/{booked['id']}", headers=api_headers)
    assert cancelled.status == 200
    csrf = await signed_in(client)
    _, text = await act_and_follow(client, f"/admin/bookings/{booked['id']}/invitation", csrf)
    assert "cancelled" in flash_of(text)
    missing = await act(client, "/admin/bookings/no-such-booking/invitation", csrf)
    assert missing.status == 404


async def test_actions_without_token_or_from_another_site_are_refused(
    client: AppClient, api_headers: dict[str, str]
) -> None:
    await _book(client, api_headers)
    csrf = await signed_in(client)
    [item] = await _outbox_ids(client, "pending")
    path = f"/admin/outbox/{item}/give-up"
    for token, origin in ((None, None), ("0" * 64, None), (csrf, "http://evil.example")):
        refused = await act(client, path, token, origin=origin)
        assert refused.status == 403, (token, origin)
        assert "Request refused" in words(await refused.text())
    assert await _outbox_ids(client, "pending") == [item]  # nothing was given up


async def test_settings_are_shown_read_only_without_secrets(client: AppClient) -> None:
    await signed_in(client)
    text = await (await client.get("/admin/settings")).text()
    rows = {
        str(r.xpath("string(td[1])")): str(r.xpath("string(td[2])"))
        for r in page(text).xpath("//table[@id='settings']/tbody/tr")
    }
    assert rows["server.base_url"] == "http://gateway.test"
    assert rows["resources[0].id"] == "anna"
    assert rows["users[0].admin"] == "true"
    assert rows["users[0].password_hash"].startswith("••••")
    assert rows["api_tokens[0].token"].startswith("••••")
    assert "test-api-token" not in text and "argon2" not in text
    assert "SIGHUP" in words(text)
    assert page(text).xpath("//form[@method='post' and not(@id='sign-out')]") == []


async def test_unknown_console_path_is_a_page(client: AppClient) -> None:
    await signed_in(client)
    answer = await client.get("/admin/no-such-page")
    assert answer.status == 404
    assert answer.content_type == "text/html"
    assert "Page not found" in words(await answer.text())

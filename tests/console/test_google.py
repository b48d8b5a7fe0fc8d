"""The console with Google configured, against the fake Google on loopback
(tests/google/harness.py): the Google state as the overview shows it, the
first import's progress bar, warnings in sentences, the connect invitation
(its link shown and mailed) and disconnecting with a confirmation step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient

from gateway.core.mirror import ConnectionStatus, WarningReason
from tests.conftest import AppClient
from tests.console.console import act_and_follow, flash_of, page, signed_in, words
from tests.google.harness import Gateway


@pytest.fixture
async def browser(gateway: Gateway) -> AsyncIterator[AppClient]:
    """A browser of the console on the running gateway (its own cookies)."""
    client: AppClient = TestClient(gateway.server)
    await client.start_server()
    yield client
    await client.session.close()


def _section(text: str, resource: str) -> str:
    found = page(text).get_element_by_id(f"resource-{resource}")
    return " ".join(" ".join(found.itertext()).split())


async def test_overview_shows_the_google_state_of_each_resource(
    gateway: Gateway, browser: AppClient
) -> None:
    await gateway.connect("anna", "anna@gmail.test")
    await signed_in(browser, origin=gateway.url)
    text = await (await browser.get("/admin/")).text()
    anna = _section(text, "anna")
    assert "synced" in anna
    assert "anna@gmail.test" in anna  # the account, and the calendar (its main one)
    assert "Both ways" in anna
    assert "Full details" in anna
    assert "just now" in anna  # last successful sync, and its age
    assert "Waiting in the outbox 0" in anna
    bob = _section(text, "bob")
    assert "not invited" in bob and "Anonymous (only the time" in bob
    assert "Off: nothing is mirrored" in _section(text, "dora")


async def test_first_import_shows_a_progress_bar_and_a_warning_a_sentence(
    gateway: Gateway, browser: AppClient
) -> None:
    await gateway.connect("anna", "anna@gmail.test")
    now = datetime.now(UTC)
    connection = (await gateway.admin.status("anna")).connection
    async with gateway.repo.transaction() as tx:
        await tx.save_connection(
            replace(connection, status=ConnectionStatus.IMPORTING, imported=42)
        )
        bob = (await gateway.admin.status("bob")).connection
        await tx.save_connection(
            replace(
                bob,
                status=ConnectionStatus.WARNING,
                warning=WarningReason.QUOTA,
                paused_until=now.replace(year=now.year + 1),
            )
        )
    await signed_in(browser, origin=gateway.url)
    text = await (await browser.get("/admin/")).text()
    progress = page(text).get_element_by_id("import-anna")
    assert progress.tag == "progress" and progress.text == "42"
    assert "First import from Google running: 42 events so far" in _section(text, "anna")
    assert "daily Calendar API quota" in _section(text, "bob")


async def test_connect_invitation_shows_the_link_and_mails_it(
    gateway: Gateway, browser: AppClient
) -> None:
    csrf = await signed_in(browser, origin=gateway.url)
    location, text = await act_and_follow(
        browser, "/admin/resources/carl/google-invitation", csrf, origin=gateway.url
    )
    assert location == "/admin/resources/carl"
    assert "It was mailed to the resource's address." in flash_of(text)
    link = page(text).get_element_by_id("flash-link").get("value")
    assert link.startswith(f"{gateway.url}/google/connect/")
    await gateway.settle()
    [mailed] = gateway.mail.to("carl@example.com")
    assert link in mailed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "invited" in words(text)
    # The link works: it leads to Google's consent.
    gateway.fake.add_account("carl@gmail.test", time_zone="Europe/Berlin")
    gateway.fake.consent_as("carl@gmail.test")
    async with gateway.http.get(link) as consent:
        assert consent.status == 200


async def test_invitation_for_a_resource_with_direction_off_is_refused(
    gateway: Gateway, browser: AppClient
) -> None:
    csrf = await signed_in(browser, origin=gateway.url)
    _, text = await act_and_follow(
        browser, "/admin/resources/dora/google-invitation", csrf, origin=gateway.url
    )
    assert "No invitation sent" in flash_of(text) and "direction off" in flash_of(text)


async def test_disconnect_asks_first_then_disconnects(gateway: Gateway, browser: AppClient) -> None:
    await gateway.connect("anna", "anna@gmail.test")
    csrf = await signed_in(browser, origin=gateway.url)
    resource = await (await browser.get("/admin/resources/anna")).text()
    confirm_path = page(resource).get_element_by_id("google-disconnect").get("href")
    confirm = await browser.get(confirm_path)
    assert confirm.status == 200
    assert await gateway.status("anna") is ConnectionStatus.SYNCED  # asking changed nothing
    form = page(await confirm.text()).get_element_by_id("confirm-disconnect")
    _, text = await act_and_follow(browser, form.get("action"), csrf, origin=gateway.url)
    assert "Disconnected from Google" in flash_of(text)
    assert await gateway.status("anna") is ConnectionStatus.DISABLED
    log = " ".join(page(text).get_element_by_id("sync-log").text_content().split())
    assert "admin" in log

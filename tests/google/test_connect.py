"""Connecting a resource's Google calendar: invitation, OAuth consent with
PKCE and state, calendar choice, confirmation, takeover."""

from __future__ import annotations

from gateway.core.mirror import ConnectionStatus
from tests.google.harness import Gateway


async def test_invite_consent_choose_and_import(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account("anna.google@example.com", time_zone="Europe/Berlin")
    second = fake.add_calendar("anna.google@example.com", "Work")
    assert await gateway.status("anna") is ConnectionStatus.NOT_INVITED

    page = await gateway.consent("anna", "anna.google@example.com")
    assert await gateway.status("anna") is ConnectionStatus.INVITED
    assert "anna.google@example.com" in page
    assert second in page and "Work" in page

    done = await gateway.choose(page, second)
    assert "connected" in done
    await gateway.settle()
    assert await gateway.status("anna") is ConnectionStatus.SYNCED
    status = await gateway.admin.status("anna")
    assert status.connection.calendar_id == second
    assert status.connection.account == "anna.google@example.com"
    subjects = [str(m["Subject"]) for m in gateway.mail.to("anna@example.com")]
    assert subjects == ["Connect your Google Calendar", "Google Calendar connected"]

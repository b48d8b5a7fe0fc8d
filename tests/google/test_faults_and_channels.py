"""invalid_grant, quota, push notifications and their channels, takeover."""

from __future__ import annotations

import asyncio
import html
from dataclasses import replace

import aiohttp

from gateway.core.mirror import ConnectionStatus, WarningReason, google_event_id
from tests.google.harness import Gateway, at, gtime
from tests.google.test_mirror import ANNA

BOUND = 20.0  # seconds any background wait may take before the test fails


async def test_invalid_grant_warns_and_the_queue_drains_after_reconnect(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    fake.revoke(ANNA)  # the person removed our access in their Google account
    fake.expire_access_tokens()

    booked = [await gateway.book("anna", at(n, 9), at(n, 10), f"B{n}") for n in range(1, 4)]
    await gateway.settle()
    status = await gateway.admin.status("anna")
    assert status.connection.status is ConnectionStatus.WARNING
    assert status.connection.warning is WarningReason.RECONNECT
    assert "reconnect needed" in status.summary
    log = await gateway.admin.log("anna")
    assert [e for e in log if e.kind.value == "warning" and "invalid_grant" in e.message]
    # Nothing dropped: every change still waits in the outbox.
    assert await gateway.repo.pending_outbox() == 3
    ids = {google_event_id(b["id"]) for b in booked}
    assert not ids & {e["id"] for e in fake.events(ANNA)}

    # The person connects again (new invitation, same account): all of it goes.
    await gateway.connect("anna", ANNA)
    assert await gateway.repo.pending_outbox() == 0
    assert ids <= {e["id"] for e in fake.events(ANNA)}
    assert await gateway.status("anna") is ConnectionStatus.SYNCED


async def test_quota_exceeded_pauses_the_resource_and_keeps_its_changes(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    fake.fail_next(1, 403, "quotaExceeded", method="POST")
    booking = await gateway.book("anna", at(5, 9), at(5, 10), "Paused")
    await gateway.settle()
    status = await gateway.admin.status("anna")
    assert status.connection.warning is WarningReason.QUOTA
    assert status.connection.paused_until is not None
    assert await gateway.repo.pending_outbox() == 1
    calls = len(fake.requests)
    await gateway.settle()
    assert len(fake.requests) == calls  # paused: no calls at all

    # Once the pause is over (shortened here) the queued push goes and the
    # warning clears.
    await gateway.admin.warn("anna", WarningReason.QUOTA, "test: pause over", None)
    async with gateway.repo.transaction() as tx:
        await tx.release_outbox("anna")
    await gateway.settle()
    assert google_event_id(booking["id"]) in {e["id"] for e in fake.events(ANNA)}
    assert (await gateway.admin.status("anna")).connection.warning is None


async def synced_into_a_block(gateway: Gateway) -> None:
    """Until a sync (one the test did not run itself) gives Anna a busy
    block, within BOUND. Each pass waits for one more finished sync (a sync
    started before Google's change may finish first and find nothing); the
    count is read before the check, so a sync finishing in between ends the
    wait."""
    worker = gateway.bridge.worker
    async with asyncio.timeout(BOUND):
        while True:
            finished = worker.finished("anna")
            if await gateway.busy_blocks("anna"):
                return
            await worker.wait_finished("anna", finished + 1)


async def test_push_notification_syncs_without_polling(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    (channel,) = fake.channels.values()
    assert channel.address == f"{gateway.url}/google/notify"

    # No settle(): only the notification can make the gateway look (the
    # poll interval is an hour).
    fake.user_insert(ANNA, gtime(at(2, 9), at(2, 10)))
    await fake.notifications_settled()
    await synced_into_a_block(gateway)
    assert len(await gateway.busy_blocks("anna")) == 1
    assert [d.status for d in fake.deliveries if d.state == "exists"][-1] == 200


async def test_a_notification_during_a_sync_of_that_calendar_is_kept(gateway: Gateway) -> None:
    """A notification that arrives while this gateway is syncing that very
    calendar (the running sync may have listed Google before the change) is
    kept and synced when the running sync ends, not dropped until the next
    poll (an hour here)."""
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    await gateway.settle()
    worker = gateway.bridge.worker
    # Holding the worker's lock of Anna's calendar stands in for a sync of it
    # under way: deterministic, where catching a real one mid-way is timing.
    async with worker._lock("anna"):
        fake.user_insert(ANNA, gtime(at(2, 9), at(2, 10)))
        await fake.notifications_settled()
        await worker.run_once()  # a round meanwhile: Anna's calendar is busy
    await synced_into_a_block(gateway)
    assert len(await gateway.busy_blocks("anna")) == 1


async def test_forged_and_unknown_notifications_are_ignored(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    (channel,) = fake.channels.values()
    revision = await gateway.repo.revision("anna")
    fake.user_insert(ANNA, gtime(at(3, 9), at(3, 10)))
    fake.drop_notifications = True  # the real one is lost; only forged ones arrive
    for headers in (
        {"X-Goog-Channel-ID": "no-such-channel", "X-Goog-Resource-State": "exists"},
        {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Token": "forged",
            "X-Goog-Resource-State": "exists",
        },
    ):
        async with gateway.http.post(f"{gateway.url}/google/notify", headers=headers) as reply:
            assert reply.status == 200
    assert await gateway.repo.revision("anna") == revision
    # Polling still finds it (pushes can be lost).
    await gateway.settle()
    assert len(await gateway.busy_blocks("anna")) == 1


async def test_channel_is_renewed_before_expiry_and_stopped_on_disconnect(
    gateway: Gateway,
) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    (old,) = fake.channels.values()
    # Within the renewal margin: the next round opens a new channel and stops the old.
    connection = await gateway.repo.get_connection("anna")
    assert connection.channel is not None
    soon = connection.channel.expires.replace(year=2000)
    async with gateway.repo.transaction() as tx:
        await tx.save_connection(
            replace(connection, channel=replace(connection.channel, expires=soon))
        )
    await gateway.settle()
    (new,) = fake.channels.values()
    assert new.id != old.id

    await gateway.admin.disconnect("anna")
    await gateway.settle()
    assert fake.channels == {}
    assert await gateway.status("anna") is ConnectionStatus.DISABLED


async def test_one_account_one_calendar_takeover(gateway: Gateway) -> None:
    fake = gateway.fake
    shared = "front.desk@example.com"
    await gateway.connect("anna", shared)
    page = await gateway.connect("bob", shared)
    assert "\u201canna\u201d before" in html.unescape(page)
    assert await gateway.status("anna") is ConnectionStatus.DISABLED
    assert await gateway.status("bob") is ConnectionStatus.SYNCED
    anna = await gateway.admin.status("anna")
    assert "bob" in anna.summary
    assert [c.address for c in fake.channels.values()] == [f"{gateway.url}/google/notify"]
    assert len(fake.channels) == 1  # anna's channel was stopped
    mails = [str(m["Subject"]) for m in gateway.mail.to("bob@example.com")]
    assert "Google Calendar connected" in mails
    body = gateway.mail.to("bob@example.com")[-1].get_body(preferencelist=("plain",))
    assert body is not None and "anna" in body.get_content()


async def test_consent_refused_or_started_elsewhere(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account(ANNA)
    fake.consent_as(None)  # the person clicks "Cancel" at Google
    async with gateway.http.get(await gateway.invite_url("anna")) as page:
        assert page.status == 400
        assert "not granted" in await page.text()
    assert await gateway.status("anna") is ConnectionStatus.INVITED

    # A callback without this browser's state cookie is refused (RFC 6749 10.12).
    fake.consent_as(ANNA)
    stranger = aiohttp.ClientSession()
    try:
        async with stranger.get(await gateway.invite_url("anna")) as page:
            assert page.status == 400
            assert "another browser" in await page.text()
    finally:
        await stranger.close()

    # A used or unknown invitation link says so.
    async with gateway.http.get(f"{gateway.url}/google/connect/not-a-real-token") as page:
        assert page.status == 410

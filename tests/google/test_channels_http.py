"""Push notifications with an http:// base_url: Google refuses the channel
(400 push.webhookUrlNotHttps, as the fake does by default), the gateway says
so once in the sync log, syncs by polling, and asks again only after a long
backoff or when the settings change (a reload or restart builds a new keeper).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_google.calendar import FakeGoogle
from gateway.core.mirror import ConnectionStatus, LogKind, WarningReason, google_event_id
from google_bridge.channels import (
    FIRST_BACKOFF,
    MAX_BACKOFF,
    ChannelKeeper,
    WatchVerdict,
    refusal_backoff,
    watch_verdict,
)
from google_bridge.errors import (
    CalendarGone,
    GoogleError,
    GoogleRequestError,
    GoogleUnavailable,
    QuotaExceeded,
    ReconnectNeeded,
)
from google_bridge.tokens import TokenKeyMismatch, new_key
from tests.backends import Store
from tests.google.harness import Gateway, at, gtime, running_gateway
from tests.google.test_mirror import ANNA
from tests.smtp import Recorder

ROUNDS = 6


@pytest.fixture
async def strict_fake() -> AsyncIterator[FakeGoogle]:
    """The fake as Google is: no channel to an http:// address."""
    async with FakeGoogle.running() as google:
        yield google


def watch_calls(fake: FakeGoogle) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path.endswith("/events/watch"))


async def refusal_lines(gateway: Gateway) -> list[str]:
    return [
        e.message
        for e in await gateway.admin.log("anna")
        if e.kind is LogKind.WARNING and "push notifications" in e.message
    ]


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (
            GoogleRequestError(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS"),
            WatchVerdict.REFUSED,
        ),
        (
            GoogleRequestError(401, "push.webhookUrlUnauthorized", "Unauthorized WebHook callback"),
            WatchVerdict.REFUSED,
        ),
        (
            GoogleRequestError(403, "push.webhookUrlUnauthorized", "Unauthorized WebHook callback"),
            WatchVerdict.REFUSED,
        ),
        (GoogleRequestError(400, "invalid", "Invalid channel address"), WatchVerdict.REFUSED),
        (GoogleRequestError(403, "forbidden", "Forbidden"), WatchVerdict.REFUSED),
        (GoogleUnavailable("events.watch: 503 backendError"), WatchVerdict.PASSING),
        (GoogleUnavailable("events.watch: timed out"), WatchVerdict.PASSING),
        (GoogleError("something else"), WatchVerdict.PASSING),
        (ReconnectNeeded("invalid_grant"), WatchVerdict.SYNC),
        (TokenKeyMismatch("no key"), WatchVerdict.SYNC),
        (QuotaExceeded("events.watch: quotaExceeded"), WatchVerdict.SYNC),
        (CalendarGone("calendar 'x' is gone (404)"), WatchVerdict.SYNC),
    ],
)
def test_watch_verdict(error: BaseException, verdict: WatchVerdict) -> None:
    assert watch_verdict(error) is verdict


@pytest.mark.parametrize(
    ("refusals", "wait"),
    [
        (1, timedelta(days=1)),
        (2, timedelta(days=2)),
        (3, timedelta(days=4)),
        (4, timedelta(days=7)),
        (5, timedelta(days=7)),
        (1000, timedelta(days=7)),
    ],
)
def test_refusal_backoff_doubles_from_a_day_to_a_week(refusals: int, wait: timedelta) -> None:
    assert refusal_backoff(refusals) == wait
    assert FIRST_BACKOFF <= refusal_backoff(refusals) <= MAX_BACKOFF


async def test_http_base_url_one_refusal_one_log_line_and_polling_carries_on(
    tmp_path: Path, store: Store, strict_fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    fake = strict_fake
    key = new_key()
    async with running_gateway(tmp_path, store, fake, mail, key=key) as gateway:
        await gateway.connect("anna", ANNA)
        assert await gateway.status("anna") is ConnectionStatus.SYNCED
        for _ in range(ROUNDS):
            await gateway.bridge.worker.sync_now("anna")
        assert watch_calls(fake) == 1
        assert fake.channels == {}

        # The admin reads one sentence: what Google said, what to do, and
        # that polling carries on.
        (line,) = await refusal_lines(gateway)
        assert "WebHook callback must be HTTPS" in line
        assert "server.base_url" in line and "google.push_notifications" in line
        assert "polling" in line and "24 hours" in line
        assert "(" not in line
        assert (await gateway.admin.status("anna")).connection.warning is None

        # Both directions still flow, by polling alone.
        fake.user_insert(ANNA, gtime(at(3, 9), at(3, 10)))
        booking = await gateway.book("anna", at(4, 9), at(4, 10), "Polled")
        await gateway.settle()
        assert len(await gateway.busy_blocks("anna")) == 1
        assert google_event_id(booking["id"]) in {e["id"] for e in fake.events(ANNA)}
        assert watch_calls(fake) == 1
        assert len(await refusal_lines(gateway)) == 1

    # A restart (or a reload after the settings were fixed) asks once more;
    # the same refusal again is not logged a second time by this process.
    async with running_gateway(tmp_path, store, fake, mail, key=key) as gateway:
        gateway.calendars["anna"] = ANNA
        for _ in range(ROUNDS):
            await gateway.bridge.worker.sync_now("anna")
        assert watch_calls(fake) == 2
        assert len(await refusal_lines(gateway)) == 2  # a new process tells once


async def test_refused_channel_is_asked_again_after_the_backoff(
    tmp_path: Path, store: Store, strict_fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    fake = strict_fake
    async with running_gateway(tmp_path, store, fake, mail) as gateway:
        await gateway.connect("anna", ANNA)
        assert watch_calls(fake) == 1
        now = [datetime.now(UTC)]
        bridge = gateway.bridge
        keeper = ChannelKeeper(
            gateway.repo,
            bridge.google,
            bridge.vault,
            address=f"{gateway.url}/google/notify",
            ttl=3600,
            renew_before=timedelta(hours=1),
            clock=lambda: now[0],
        )
        connection = await gateway.repo.get_connection("anna")
        waits = []
        for _ in range(4):
            assert keeper.due(connection)
            with pytest.raises(GoogleRequestError) as refused:
                await keeper.ensure(connection)
            refusal = keeper.refused("anna", refused.value)
            assert refusal.reason == "push.webhookUrlNotHttps"
            waits.append(refusal.retry_at - now[0])
            now[0] += timedelta(hours=23)
            assert not keeper.due(connection)
            now[0] = refusal.retry_at
        assert waits == [timedelta(days=d) for d in (1, 2, 4, 7)]
        assert watch_calls(fake) == 1 + 4

        # Fixed on Google's side (here: the fake now accepts the address):
        # the next try opens a channel, and a later refusal starts over at a day.
        fake.notifier.allow_http = True
        opened = await keeper.ensure(connection)
        assert opened.channel is not None and len(fake.channels) == 1
        again = keeper.refused("anna", refused.value)
        assert (again.first, again.retry_at - now[0]) == (True, timedelta(days=1))


async def test_unverified_domain_401_is_a_refusal_not_a_lost_login(gateway: Gateway) -> None:
    """Google has answered an unverified push domain with 401
    push.webhookUrlUnauthorized; that says nothing about the person's
    access, so no "reconnect needed" (google-auth refreshes and retries a
    401 twice, hence three answers)."""
    fake = gateway.fake
    fake.fail_next(
        3,
        401,
        "push.webhookUrlUnauthorized",
        method="POST",
        message="Unauthorized WebHook callback channel: https://calendar.example.com/google/notify",
    )
    await gateway.connect("anna", ANNA)
    for _ in range(ROUNDS):
        await gateway.bridge.worker.sync_now("anna")
    assert fake.faults.pending == 0 and fake.channels == {}
    status = await gateway.admin.status("anna")
    assert status.connection.status is ConnectionStatus.SYNCED
    assert status.connection.warning is None
    (line,) = await refusal_lines(gateway)
    assert "domain is verified" in line


async def test_channel_renewal_on_a_deleted_calendar_warns_instead_of_failing(
    gateway: Gateway,
) -> None:
    """The watch is the first call of a round once the channel is due: a
    404 there must become "calendar gone" like one from events.list, not an
    error that fails every round without telling the admin."""
    fake = gateway.fake
    fake.add_account(ANNA, time_zone="Europe/Berlin")
    work = fake.add_calendar(ANNA, "Work")
    await gateway.connect("anna", ANNA, work)
    connection = await gateway.repo.get_connection("anna")
    assert connection.channel is not None
    async with gateway.repo.transaction() as tx:
        due = replace(connection.channel, expires=datetime.now(UTC))
        await tx.save_connection(replace(connection, channel=due))
    fake.delete_calendar(work)

    await gateway.bridge.worker.sync_now("anna")
    status = await gateway.admin.status("anna")
    assert status.connection.warning is WarningReason.CALENDAR_GONE

"""What must never happen: duplicates after a 410, losses after a crash, echo
loops, lost changes under faults."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fake_google.calendar import FakeGoogle
from fake_google.errors import (
    BACKEND_500,
    BACKEND_503,
    RATE_LIMIT_403,
    RATE_LIMIT_429,
    USER_RATE_LIMIT_403,
)
from gateway.core.mirror import LinkKind, google_event_id
from gateway.core.service import BookingService
from tests.backends import Store
from tests.google.harness import BERLIN, Gateway, at, gtime, running_gateway
from tests.google.test_mirror import ANNA
from tests.smtp import Recorder


def day(n: int, hour: int) -> dict[str, Any]:
    """Half an hour on day ``n`` from now, as Google's UI writes it."""
    return gtime(at(n, hour), at(n, hour, 30))


async def block_spans(gateway: Gateway, resource: str = "anna") -> list[datetime]:
    return sorted(b.booking.start for b in await gateway.busy_blocks(resource))


def google_spans(fake: FakeGoogle, calendar: str) -> list[datetime]:
    """Starts of the calendar's own (not gateway) events."""
    return sorted(
        datetime.fromisoformat(e["start"]["dateTime"]).replace(tzinfo=BERLIN)
        for e in fake.events(calendar)
        if "calgatewayBookingId" not in str(e.get("extendedProperties"))
    )


async def test_410_full_sync_recovers_without_duplicates(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    kept = [fake.user_insert(ANNA, (day(n, 9))) for n in range(1, 6)]
    await gateway.settle()
    assert len(await block_spans(gateway)) == 5

    # While our token is dead, one event is deleted and one added.
    fake.expire_sync_tokens(ANNA)
    fake.user_delete(ANNA, kept[0]["id"])
    fake.user_insert(ANNA, (day(10, 9)))
    await gateway.settle()

    spans = await block_spans(gateway)
    assert len(spans) == len(set(spans)) == 5  # nothing twice, the deleted one gone
    assert spans == google_spans(fake, ANNA)
    log = [e.message for e in await gateway.admin.log("anna")]
    assert any("410" in m for m in log)


class Crash(Exception):
    """Stands in for the process dying between fetching and committing."""


async def test_crash_between_fetch_and_commit_repeats_safely(
    tmp_path: Path,
    store: Store,
    fake: FakeGoogle,
    mail: tuple[Recorder, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google_bridge.tokens import new_key

    key = new_key()
    async with running_gateway(tmp_path, store, fake, mail, key=key) as gateway:
        await gateway.connect("anna", ANNA)
        # The gateway does not hear of these through a push: a sync the
        # notification started would import them beside the one that
        # crashes here, and commit what this test says nothing committed.
        fake.drop_notifications = True
        for n in range(1, 4):
            fake.user_insert(ANNA, (day(n, 9)))
        token_before = (await gateway.admin.status("anna")).connection.sync_token

        real = BookingService.apply_import

        async def crash(self: BookingService, *args: Any, **kwargs: Any) -> Any:
            raise Crash

        monkeypatch.setattr(BookingService, "apply_import", crash)
        with pytest.raises(Crash):
            await gateway.bridge.sync.run(await gateway.repo.get_connection("anna"))
        monkeypatch.setattr(BookingService, "apply_import", real)
        # Nothing was committed: no block, the old token.
        assert await gateway.busy_blocks("anna") == []
        assert (await gateway.admin.status("anna")).connection.sync_token == token_before
    fake.drop_notifications = False

    # The process starts again on the same database and key.
    async with running_gateway(tmp_path, store, fake, mail, key=key) as gateway:
        gateway.calendars["anna"] = ANNA
        await gateway.settle()
        spans = await block_spans(gateway)
        assert len(spans) == 3
        # Running the same sync again (a second crash-and-retry) changes nothing.
        revision = await gateway.repo.revision("anna")
        connection = await gateway.repo.get_connection("anna")
        await gateway.bridge.sync.run(connection)
        assert await gateway.repo.revision("anna") == revision


async def test_no_echo_loop_after_100_alternating_edits(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    booking = await gateway.book("anna", at(9, 8), at(9, 9), "Standing slot")
    foreign = fake.user_insert(ANNA, {"summary": "Gym", **gtime(at(9, 18), at(9, 19))})
    await gateway.settle()
    writes_before = fake.write_count(ANNA)

    gateway_edits = 0
    for edit in range(100):
        if edit % 2 == 0:
            gateway_edits += 1
            await gateway.api(
                "PATCH",
                f"/bookings/{booking['id']}",
                {"title": f"Standing slot #{edit}"},
                expect=200,
            )
        else:
            moved = at(9, 18, edit % 60)
            fake.user_update(ANNA, foreign["id"], gtime(moved, moved + timedelta(hours=1)))
        await gateway.settle()

    # Exactly one Google write per gateway edit: nothing came back and bounced.
    assert fake.write_count(ANNA) - writes_before == gateway_edits
    assert fake.event(ANNA, google_event_id(booking["id"]))["summary"] == "Standing slot #98"
    (block,) = await gateway.busy_blocks("anna")
    assert block.booking.start == at(9, 18, 99 % 60)
    log = await gateway.admin.log("anna", limit=500)
    assert not [e for e in log if e.kind.value == "conflict"]
    assert await gateway.repo.pending_outbox() == 0
    # A quiet round after all that changes nothing at all.
    revision, writes = await gateway.repo.revision("anna"), fake.write_count(ANNA)
    await gateway.settle()
    assert (await gateway.repo.revision("anna"), fake.write_count(ANNA)) == (revision, writes)


async def test_thirty_percent_faults_still_converge(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", ANNA)
    # Every transient kind Google documents (429, 403 rate limits, 500, 503),
    # on API calls and on token refreshes alike. The daily quota is not among
    # them: it pauses the resource for hours (test_quota_pauses_the_resource).
    fake.faults.kinds = [
        RATE_LIMIT_429,
        USER_RATE_LIMIT_403,
        RATE_LIMIT_403,
        BACKEND_500,
        BACKEND_503,
    ]
    fake.faults.rate = 0.3
    fake.faults.token_rate = 0.3
    fake.expire_access_tokens()
    booked = []
    for n in range(1, 16):
        booked.append(
            await gateway.book(
                "anna",
                at(n, 9),
                at(n, 10),
                f"B{n}",
            )
        )
        fake.user_insert(ANNA, (day(n, 14)))
    for _ in range(10):
        await gateway.settle()
        if (
            await gateway.repo.pending_outbox() == 0
            and len(await gateway.busy_blocks("anna")) == 15
        ):
            break
    fake.faults.clear()
    await gateway.settle()

    assert await gateway.repo.pending_outbox() == 0
    ours = [
        e for e in fake.events(ANNA) if "calgatewayBookingId" in str(e.get("extendedProperties"))
    ]
    assert sorted(e["id"] for e in ours) == sorted(google_event_id(b["id"]) for b in booked)
    assert len(await block_spans(gateway)) == 15
    pushed = await gateway.repo.links("anna", LinkKind.PUSHED)
    assert len(pushed) == 15
    assert len(fake.faults.injected) >= 5  # the faults really happened (seeded)


async def mirrored_booking(gateway: Gateway) -> tuple[Any, str]:
    """Anna connected, one booking written to her Google calendar: the
    booking and its event id."""
    await gateway.connect("anna", ANNA)
    booking = await gateway.book("anna", at(4, 9), at(4, 10), "Balayage")
    await gateway.settle()
    event_id = google_event_id(booking["id"])
    assert gateway.fake.event(ANNA, event_id)["status"] == "confirmed"
    return booking, event_id


async def test_own_event_deleted_in_google_while_the_token_was_dead_is_restored(
    gateway: Gateway,
) -> None:
    """The full listing after a 410 does not show deleted events at all: an
    own event missing from it was deleted in Google, and the gateway's
    booking wins there exactly as when an incremental sync reports it."""
    fake = gateway.fake
    booking, event_id = await mirrored_booking(gateway)

    fake.expire_sync_tokens(ANNA)
    fake.drop_notifications = True
    fake.user_delete(ANNA, event_id)
    fake.drop_notifications = False
    await gateway.settle()

    assert fake.event(ANNA, event_id)["status"] == "confirmed"
    assert fake.event(ANNA, event_id)["summary"] == "Balayage"
    conflicts = [e for e in await gateway.admin.log("anna") if e.kind.value == "conflict"]
    assert [(c.booking_id, c.event_id) for c in conflicts] == [(booking["id"], event_id)]
    assert "deleted in Google Calendar" in conflicts[0].message
    writes = fake.write_count(ANNA)
    await gateway.settle()
    assert fake.write_count(ANNA) == writes  # restored once, then quiet


async def test_a_write_google_took_unrecorded_is_still_removed_with_its_booking(
    gateway: Gateway,
) -> None:
    """Google took the insert, the gateway died before it saved the link:
    the event exists and no link knows it. Cancelling the booking must still
    remove it (its id is the booking's), or Google shows a cancelled
    appointment as busy forever. Found by tests/google/test_reconcile_machine.py."""
    fake = gateway.fake
    booking, event_id = await mirrored_booking(gateway)
    async with gateway.repo.transaction() as tx:  # the link the crash lost
        await tx.delete_link("anna", event_id)

    await gateway.api("DELETE", f"/bookings/{booking['id']}", expect=200)
    await gateway.settle()

    assert fake.event(ANNA, event_id)["status"] == "cancelled"
    assert await gateway.repo.get_link("anna", event_id) is None

"""A second resource connects a Google account another resource had (one
Google account serves one resource): the first resource's owner is told,
its events leave that calendar, and no slot is ever bookable twice."""

from __future__ import annotations

from gateway.core.mirror import ConnectionStatus, google_event_id
from gateway.web.keys import OUTBOX
from tests.google.harness import Gateway, at

SHARED = "front.desk@example.com"


async def test_a_takeover_tells_the_old_owner_and_leaves_nothing_stale(gateway: Gateway) -> None:
    fake = gateway.fake
    await gateway.connect("anna", SHARED)
    kept = await gateway.book("anna", at(3, 9), at(3, 10), "Cut")
    cancelled_later = await gateway.book("anna", at(4, 9), at(4, 10), "Colour")
    await gateway.settle()
    anna_events = [google_event_id(b["id"]) for b in (kept, cancelled_later)]
    assert [fake.event(SHARED, e)["status"] for e in anna_events] == ["confirmed"] * 2

    await gateway.connect("bob", SHARED)
    assert await gateway.status("anna") is ConnectionStatus.DISABLED
    # Anna hears of it at once (the mail is queued with the takeover).
    await gateway.app[OUTBOX].settle()
    (told,) = [m for m in gateway.mail.to("anna@example.com") if "no longer" in str(m["Subject"])]
    text = told.get_body(preferencelist=("plain",))
    assert text is not None
    assert "bob" in text.get_content() and SHARED in text.get_content()

    # Anna's events are gone from the calendar Bob now mirrors; her bookings
    # stay in the gateway.
    await gateway.settle()
    assert [fake.event(SHARED, e)["status"] for e in anna_events] == ["cancelled"] * 2
    assert len(await gateway.repo.list_objects("anna")) == 2
    assert await gateway.busy_blocks("bob") == []
    # Cancelling one of Anna's bookings now writes nothing to Google.
    writes = fake.write_count(SHARED)
    await gateway.api("DELETE", f"/bookings/{cancelled_later['id']}", expect=200)
    await gateway.settle()
    assert fake.write_count(SHARED) == writes


async def test_while_the_old_events_are_still_there_they_block_the_new_resource(
    gateway: Gateway,
) -> None:
    fake = gateway.fake
    await gateway.connect("anna", SHARED)
    booking = await gateway.book("anna", at(5, 9), at(5, 10), "Perm")
    await gateway.settle()

    # Google refuses the removal of Anna's event for now (5xx, retried), so
    # Bob's first import meets it in his calendar: Bob is busy then.
    fake.fail_next(10_000, 503, "backendError", method="DELETE")
    done = await gateway.choose(await gateway.consent("bob", SHARED), SHARED)
    assert "anna" in done
    await gateway.bridge.worker.sync_now("bob")
    (block,) = await gateway.busy_blocks("bob")
    assert (block.booking.start, block.booking.end) == (at(5, 9), at(5, 10))
    refused = await gateway.api(
        "POST",
        "/bookings",
        {
            "resource": "bob",
            "title": "Walk-in",
            "start": at(5, 9).isoformat(),
            "end": at(5, 10).isoformat(),
        },
    )
    assert refused["status"] == 409
    fake.faults.clear()
    await gateway.settle()
    assert fake.event(SHARED, google_event_id(booking["id"]))["status"] == "cancelled"
    assert await gateway.busy_blocks("bob") == []

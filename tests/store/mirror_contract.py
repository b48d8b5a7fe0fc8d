"""The Google mirror's store contract: connections, event links,
invitations, the sync log, outbox release, and that all of it commits or
rolls back with the bookings it belongs to (migration 0003).

Backend test modules subclass ``MirrorStoreContract``, set
``integrity_error`` (the error their driver raises for a broken unique
index) and provide two fixtures, as for ``tests.store.contract``:

* ``open_repo``: an async callable opening a ``MirrorRepository`` on the
  backend's real storage, the *same* storage on every call;
* ``repo``: one repository from it, closed after the test.

Only the ports are used, so every backend passes the same tests. The class
name does not start with ``Test``: pytest collects it through subclasses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import MISSING, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest

from gateway.core.mirror import (
    Channel,
    Connection,
    ConnectionStatus,
    Details,
    EventLink,
    Invite,
    LinkKind,
    LogKind,
    SyncLogEntry,
    WarningReason,
)
from gateway.core.model import OutboxEffect
from gateway.core.outbox_payloads import GooglePushPayload
from gateway.core.ports import MirrorRepository
from tests.store.contract import Boom, make_object

OpenMirrorRepo = Callable[[], Awaitable[MirrorRepository]]


T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
CONNECTED = (ConnectionStatus.IMPORTING, ConnectionStatus.SYNCED, ConnectionStatus.WARNING)
NOT_CONNECTED = (ConnectionStatus.NOT_INVITED, ConnectionStatus.INVITED, ConnectionStatus.DISABLED)


def rich_connection() -> Connection:
    """Every field away from its default, with awkward values."""
    return Connection(
        resource_id="anna",
        status=ConnectionStatus.WARNING,
        account="anna.müller@example.com",
        calendar_id="c_0123abcd@group.calendar.google.com",
        calendar_name="Anna · Termine 📅",
        refresh_token=bytes(range(256)),  # NUL bytes, not UTF-8: a BLOB, kept exactly
        sync_token="CPDAlvWDx70CEPDAlvWDx70CGAU=",
        imported=12345,
        warning=WarningReason.QUOTA,
        warning_text="Google's daily quota is used up; syncing again tomorrow",
        paused_until=datetime(2026, 3, 11, 0, 0, 0, 123456, tzinfo=BERLIN),
        channel=Channel(
            id="chan-7f3a",
            token="channel-secret-token",
            resource_id="ret08u3rv24htgh289g",
            expires=datetime(2026, 3, 17, 9, 30, 1, 5, tzinfo=UTC),
        ),
        connected_at=datetime(2026, 3, 1, 8, 0, 0, 999999, tzinfo=BERLIN),
        last_sync_at=T0,
    )


def connection(
    resource_id: str, status: ConnectionStatus, account: str = "", **kw: Any
) -> Connection:
    return Connection(
        resource_id=resource_id,
        status=status,
        account=account,
        calendar_id=f"{account or resource_id}-cal" if status in CONNECTED else "",
        **kw,
    )


async def save_connections(repo: MirrorRepository, *connections: Connection) -> None:
    async with repo.transaction() as tx:
        for c in connections:
            await tx.save_connection(c)


async def save_links(repo: MirrorRepository, *links: EventLink) -> None:
    async with repo.transaction() as tx:
        for link in links:
            await tx.save_link(link)


# -- event links ------------------------------------------------------------------------

PUSHED = EventLink(
    "anna",
    "6lj30opicgrmaeb1",
    LinkKind.PUSHED,
    booking_id="b1",
    etag='"3391427843112000"',
    details=Details.ANONYMOUS,
    digest="0123456789abcdef0123456789abcdef",
)
SERIES = EventLink(
    "anna",
    "weekly1",
    LinkKind.SERIES,
    etag='"s-1"',
    series_id="weekly1",
    expanded_until=datetime(2026, 9, 6, 9, 0, 0, 250000, tzinfo=BERLIN),
)
INSTANCE_1 = EventLink(
    "anna", "weekly1_20260312T090000Z", LinkKind.IMPORTED, booking_id="i1", series_id="weekly1"
)
INSTANCE_2 = EventLink(
    "anna", "weekly1_20260319T090000Z", LinkKind.IMPORTED, booking_id="i2", series_id="weekly1"
)
SINGLE = EventLink("anna", "dentist", LinkKind.IMPORTED, booking_id="d1", etag='"d"')
BOBS = EventLink("bob", "dentist", LinkKind.IMPORTED, booking_id="bob-d1")


# -- invitations ------------------------------------------------------------------------


def invite(token_hash: str, resource_id: str = "anna", **kw: Any) -> Invite:
    return Invite(
        token_hash=token_hash,
        resource_id=resource_id,
        created=T0,
        expires=T0 + timedelta(days=7),
        **kw,
    )


class MirrorStoreContract:
    # The driver's error for a row that a unique index refuses.
    integrity_error: ClassVar[type[Exception]]

    # -- connections -----------------------------------------------------------------------

    def test_rich_connection_sets_every_field(self) -> None:
        # Guard: a new Connection field must be added to the sample (and the store).
        sample = rich_connection()
        for f in fields(Connection):
            default = f.default if f.default is not MISSING else None
            if f.name in ("resource_id", "status"):
                continue
            assert getattr(sample, f.name) not in (default, "", b"", 0, None), f.name

    async def test_connection_round_trip(self, repo: MirrorRepository) -> None:
        assert await repo.get_connection("anna") is None
        rich = rich_connection()
        await save_connections(repo, rich)
        stored = await repo.get_connection("anna")
        assert stored == rich
        assert stored is not None
        assert stored.refresh_token == bytes(range(256))
        assert stored.channel == rich.channel
        # Times come back as the same instants (in UTC), microseconds intact.
        assert stored.paused_until is not None
        assert stored.paused_until.utcoffset() == timedelta(0)
        assert stored.paused_until.microsecond == 123456

    async def test_connection_with_defaults_round_trips(self, repo: MirrorRepository) -> None:
        plain = Connection("room", ConnectionStatus.NOT_INVITED)
        await save_connections(repo, plain)
        assert await repo.get_connection("room") == plain

    async def test_connection_is_updated_in_place(self, repo: MirrorRepository) -> None:
        rich = rich_connection()
        await save_connections(repo, rich)
        healed = replace(
            rich,
            status=ConnectionStatus.SYNCED,
            warning=None,
            warning_text="",
            paused_until=None,
            channel=None,
            sync_token="next-token",
        )
        await save_connections(repo, healed)
        assert await repo.get_connection("anna") == healed
        assert await repo.connections() == [healed]

    async def test_connections_are_listed_by_resource(self, repo: MirrorRepository) -> None:
        await save_connections(
            repo,
            connection("room", ConnectionStatus.INVITED),
            connection("anna", ConnectionStatus.SYNCED, "anna@example.com"),
            connection("bob", ConnectionStatus.DISABLED, "bob@example.com"),
        )
        assert [c.resource_id for c in await repo.connections()] == ["anna", "bob", "room"]

    async def test_connection_by_channel(self, repo: MirrorRepository) -> None:
        rich = rich_connection()
        await save_connections(repo, rich, connection("bob", ConnectionStatus.SYNCED, "bob@x.org"))
        assert await repo.connection_by_channel("chan-7f3a") == rich
        assert await repo.connection_by_channel("chan-unknown") is None
        # A stopped channel no longer finds the connection (late notifications).
        await save_connections(repo, replace(rich, channel=None))
        assert await repo.connection_by_channel("chan-7f3a") is None

    @pytest.mark.parametrize("status", CONNECTED)
    async def test_connection_by_account_finds_a_connected_resource(
        self, repo: MirrorRepository, status: ConnectionStatus
    ) -> None:
        found = connection("anna", status, "anna@example.com")
        await save_connections(repo, found)
        assert await repo.connection_by_account("anna@example.com") == found
        assert await repo.connection_by_account("other@example.com") is None

    @pytest.mark.parametrize("status", NOT_CONNECTED)
    async def test_connection_by_account_ignores_unconnected_resources(
        self, repo: MirrorRepository, status: ConnectionStatus
    ) -> None:
        await save_connections(repo, connection("anna", status, "anna@example.com"))
        assert await repo.connection_by_account("anna@example.com") is None

    async def test_account_taken_over_by_another_resource(self, repo: MirrorRepository) -> None:
        await save_connections(
            repo,
            connection("anna", ConnectionStatus.DISABLED, "shared@example.com"),
            connection("bob", ConnectionStatus.SYNCED, "shared@example.com"),
        )
        found = await repo.connection_by_account("shared@example.com")
        assert found is not None and found.resource_id == "bob"

    async def test_one_account_cannot_serve_two_connected_resources(
        self, repo: MirrorRepository
    ) -> None:
        await save_connections(repo, connection("anna", ConnectionStatus.SYNCED, "x@example.com"))
        with pytest.raises(self.integrity_error):
            await save_connections(
                repo,
                connection("room", ConnectionStatus.INVITED),
                connection("bob", ConnectionStatus.IMPORTING, "x@example.com"),
            )
        # Nothing of the refused transaction was kept.
        assert await repo.get_connection("room") is None
        assert await repo.get_connection("bob") is None
        assert [c.resource_id for c in await repo.connections()] == ["anna"]

    async def test_links_round_trip_and_filter(self, repo: MirrorRepository) -> None:
        await save_links(repo, PUSHED, SERIES, INSTANCE_1, INSTANCE_2, SINGLE, BOBS)
        for link in (PUSHED, SERIES, INSTANCE_1, SINGLE, BOBS):
            assert await repo.get_link(link.resource_id, link.event_id) == link
        assert await repo.get_link("anna", "nope") is None
        assert await repo.get_link("room", "dentist") is None

        everything = await repo.links("anna")
        assert everything == sorted(
            [PUSHED, SERIES, INSTANCE_1, INSTANCE_2, SINGLE], key=lambda link: link.event_id
        )
        assert await repo.links("anna", LinkKind.PUSHED) == [PUSHED]
        assert await repo.links("anna", LinkKind.SERIES) == [SERIES]
        assert await repo.links("anna", LinkKind.IMPORTED) == [SINGLE, INSTANCE_1, INSTANCE_2]
        assert await repo.links("anna", series_id="weekly1") == [SERIES, INSTANCE_1, INSTANCE_2]
        assert await repo.links("anna", LinkKind.IMPORTED, "weekly1") == [INSTANCE_1, INSTANCE_2]
        assert await repo.links("bob") == [BOBS]
        assert await repo.links("room") == []

    async def test_link_is_replaced_and_deleted(self, repo: MirrorRepository) -> None:
        await save_links(repo, SINGLE, BOBS)
        # A single event turned into a series: same id, new kind.
        turned = EventLink(
            "anna", "dentist", LinkKind.SERIES, etag='"d-2"', series_id="dentist", expanded_until=T0
        )
        await save_links(repo, turned)
        assert await repo.get_link("anna", "dentist") == turned
        async with repo.transaction() as tx:
            await tx.delete_link("anna", "dentist")
            await tx.delete_link("anna", "never-there")  # harmless
        assert await repo.get_link("anna", "dentist") is None
        assert await repo.get_link("bob", "dentist") == BOBS  # another resource's link stays

    async def test_invites_by_hash_and_by_state(self, repo: MirrorRepository) -> None:
        fresh = invite("hash-a")
        other = invite("hash-b", "bob")
        async with repo.transaction() as tx:
            await tx.save_invite(fresh)
            await tx.save_invite(other)
        assert await repo.get_invite("hash-a") == fresh
        assert await repo.get_invite("hash-b") == other
        assert await repo.get_invite("hash-unknown") is None
        # Invitations whose consent has not begun have no state to be found by.
        assert await repo.invite_by_state("") is None

        # Consent begins: state and PKCE verifier are bound to the invitation.
        started = replace(fresh, state="state-123", code_verifier="v" * 86)
        async with repo.transaction() as tx:
            await tx.save_invite(started)
        assert await repo.invite_by_state("state-123") == started
        assert await repo.invite_by_state("state-999") is None

        # The callback: account, sealed refresh token, used.
        used = replace(
            started,
            account="anna@example.com",
            refresh_token=b"\x00sealed\xff",
            used=T0 + timedelta(minutes=3, microseconds=1),
        )
        async with repo.transaction() as tx:
            await tx.save_invite(used)
        assert await repo.get_invite("hash-a") == used
        assert await repo.invite_by_state("state-123") == used
        assert await repo.get_invite("hash-b") == other

    async def test_two_invitations_cannot_share_a_state(self, repo: MirrorRepository) -> None:
        async with repo.transaction() as tx:
            await tx.save_invite(invite("h1", state="same"))
        with pytest.raises(self.integrity_error):
            async with repo.transaction() as tx:
                await tx.save_invite(invite("h2", state="same"))
        assert await repo.get_invite("h2") is None

    async def test_revoking_invitations_stops_the_unused_ones(self, repo: MirrorRepository) -> None:
        done = replace(invite("used"), used=T0, account="a@example.com", refresh_token=b"sealed-a")
        pending = invite("pending", state="s-p", refresh_token=b"sealed-p")
        bobs = invite("bobs", "bob")
        async with repo.transaction() as tx:
            for i in (done, pending, bobs):
                await tx.save_invite(i)
        later = T0 + timedelta(hours=5)
        async with repo.transaction() as tx:
            await tx.revoke_invites("anna", later)
        revoked = await repo.get_invite("pending")
        assert revoked is not None
        assert revoked.used == later
        assert revoked.refresh_token == b""  # no token left lying around
        assert await repo.get_invite("used") == done  # already used: untouched
        assert await repo.get_invite("bobs") == bobs  # another resource's link still works

    # -- sync log ----------------------------------------------------------------------------

    async def test_sync_log_pages_newest_first(self, repo: MirrorRepository) -> None:
        async with repo.transaction() as tx:
            for n in range(7):
                await tx.log(
                    SyncLogEntry(
                        "anna",
                        LogKind.IMPORTED if n % 2 else LogKind.MIRRORED,
                        f"entry {n} · ü",
                        T0 + timedelta(minutes=n),
                        booking_id=f"b{n}",
                        event_id=f"e{n}",
                    )
                )
                await tx.log(SyncLogEntry("bob", LogKind.INFO, f"bob {n}", T0))
        first = await repo.sync_log("anna", limit=3)
        assert [e.message for e in first] == ["entry 6 · ü", "entry 5 · ü", "entry 4 · ü"]
        assert all(e.id > 0 for e in first)
        assert first[0] == SyncLogEntry(
            "anna",
            LogKind.MIRRORED,
            "entry 6 · ü",
            T0 + timedelta(minutes=6),
            booking_id="b6",
            event_id="e6",
            id=first[0].id,
        )
        second = await repo.sync_log("anna", limit=3, before=first[-1].id)
        assert [e.message for e in second] == ["entry 3 · ü", "entry 2 · ü", "entry 1 · ü"]
        third = await repo.sync_log("anna", limit=3, before=second[-1].id)
        assert [e.message for e in third] == ["entry 0 · ü"]
        assert await repo.sync_log("anna", before=third[-1].id) == []
        everything = await repo.sync_log("anna")
        assert everything == first + second + third
        assert len(await repo.sync_log("bob")) == 7
        assert await repo.sync_log("room") == []

    # -- transactions -------------------------------------------------------------------------

    async def test_booking_and_mirror_state_roll_back_together(
        self, repo: MirrorRepository
    ) -> None:
        obj = make_object("g1")
        link = EventLink("anna", "evt1", LinkKind.IMPORTED, booking_id=obj.booking.id)
        with pytest.raises(Boom):
            async with repo.transaction() as tx:
                await tx.save(obj)
                await tx.save_link(link)
                await tx.save_connection(rich_connection())
                await tx.save_invite(invite("h1"))
                await tx.log(SyncLogEntry("anna", LogKind.IMPORTED, "imported 1 event", T0))
                await tx.enqueue(OutboxEffect("anna", obj.booking.id, GooglePushPayload()))
                # The transaction sees its own writes ...
                assert await tx.get_link("anna", "evt1") == link
                assert await tx.get_connection("anna") == rich_connection()
                assert len(await tx.sync_log("anna")) == 1
                # ... nobody else does before it commits.
                assert await repo.get_link("anna", "evt1") is None
                assert await repo.get_connection("anna") is None
                raise Boom
        assert await repo.get_by_uid("anna", "g1") is None
        assert await repo.get_link("anna", "evt1") is None
        assert await repo.get_connection("anna") is None
        assert await repo.get_invite("h1") is None
        assert await repo.sync_log("anna") == []
        assert await repo.pending_outbox() == 0
        assert await repo.revision("anna") == 0

    async def test_booking_and_mirror_state_commit_together(self, repo: MirrorRepository) -> None:
        obj = make_object("g1")
        link = EventLink("anna", "evt1", LinkKind.IMPORTED, booking_id=obj.booking.id)
        async with repo.transaction() as tx:
            await tx.save(obj)
            await tx.save_link(link)
            await tx.save_connection(rich_connection())
            await tx.log(SyncLogEntry("anna", LogKind.IMPORTED, "imported 1 event", T0))
        assert await repo.get_by_uid("anna", "g1") == obj
        assert await repo.get_link("anna", "evt1") == link
        assert await repo.get_connection("anna") == rich_connection()
        assert [e.message for e in await repo.sync_log("anna")] == ["imported 1 event"]

    # -- outbox release -----------------------------------------------------------------------

    async def test_release_outbox_makes_the_resources_deferred_items_due(
        self,
        repo: MirrorRepository,
    ) -> None:
        async with repo.transaction() as tx:
            for resource, booking in (
                ("anna", "a1"),
                ("anna", "a2"),
                ("bob", "b1"),
                ("anna", "a3"),
            ):
                await tx.enqueue(OutboxEffect(resource, booking, GooglePushPayload()))
        items = await repo.claim_outbox(T0, 10, lease=timedelta(minutes=5))
        ids = {item.effect.booking_id: item.id for item in items}
        week = T0 + timedelta(days=7)
        await repo.defer_outbox(ids["a1"], week, "reconnect needed")
        await repo.retry_outbox(ids["a2"], "GoogleUnavailable", week)  # one failed attempt
        await repo.defer_outbox(ids["b1"], week, "reconnect needed")
        await repo.complete_outbox(ids["a3"])
        assert await repo.claim_outbox(T0 + timedelta(hours=1), 10) == []

        async with repo.transaction() as tx:
            await tx.release_outbox("anna")  # anna reconnected
        due = await repo.claim_outbox(T0, 10)
        assert [(i.effect.booking_id, i.attempts) for i in due] == [("a1", 0), ("a2", 1)]
        next_due = await repo.next_outbox_due()
        assert next_due is not None and next_due <= T0
        assert await repo.pending_outbox() == 3  # bob's item still waits, a3 stays done

    async def test_release_outbox_rolls_back_with_its_transaction(
        self, repo: MirrorRepository
    ) -> None:
        async with repo.transaction() as tx:
            await tx.enqueue(OutboxEffect("anna", "a1", GooglePushPayload()))
        (item,) = await repo.claim_outbox(T0, 10)
        await repo.defer_outbox(item.id, T0 + timedelta(days=1), "quota")
        with pytest.raises(Boom):
            async with repo.transaction() as tx:
                await tx.release_outbox("anna")
                raise Boom
        assert await repo.claim_outbox(T0, 10) == []

    # -- restart ------------------------------------------------------------------------------

    async def test_mirror_state_survives_reopening(
        self, repo: MirrorRepository, open_repo: OpenMirrorRepo
    ) -> None:
        try:
            async with repo.transaction() as tx:
                await tx.save_connection(rich_connection())
                await tx.save_link(PUSHED)
                await tx.save_link(SERIES)
                await tx.save_invite(invite("h1", state="s1", code_verifier="v"))
                await tx.log(SyncLogEntry("anna", LogKind.CONFLICT, "kept the booking", T0))
        finally:
            await repo.close()

        reopened = await open_repo()
        try:
            assert await reopened.get_connection("anna") == rich_connection()
            assert await reopened.connection_by_channel("chan-7f3a") == rich_connection()
            assert await reopened.links("anna") == sorted(
                [PUSHED, SERIES], key=lambda x: x.event_id
            )
            assert await reopened.invite_by_state("s1") == invite(
                "h1", state="s1", code_verifier="v"
            )
            (entry,) = await reopened.sync_log("anna")
            assert (entry.kind, entry.message, entry.at) == (
                LogKind.CONFLICT,
                "kept the booking",
                T0,
            )
        finally:
            await reopened.close()

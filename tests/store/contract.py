"""The repository contract: what every ``gateway.core.ports.Repository`` must do.

Backend test modules subclass ``RepositoryContract`` and provide two fixtures:

* ``open_repo``: an async callable opening a repository on the backend's real
  storage (a file, a database); every call opens the *same* storage again, which
  is how "data survives a restart" is tested;
* ``repo``: one repository from ``open_repo``, closed after the test.

The tests use only the port interface, so a PostgreSQL backend reuses them as is.
The class name does not start with ``Test`` so pytest collects it only through
subclasses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from dataclasses import MISSING, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.core.errors import UidConflict
from gateway.core.model import (
    FAR_FUTURE,
    Attendee,
    Booking,
    BookingStatus,
    CalendarObject,
    Change,
    ChangeKind,
    Origin,
    OutboxEffect,
    PartStat,
    TimeSpan,
    etag_for,
)
from gateway.core.outbox_payloads import GooglePushPayload, InvitationPayload, InviteAction
from gateway.core.ports import IdempotencyRecord, Repository
from gateway.core.query import QueriedObject

OpenRepo = Callable[[], Awaitable[Repository]]

DAY = datetime(2026, 3, 10, tzinfo=UTC)
CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


class Boom(Exception):
    """Raised inside a transaction to prove it rolls back."""


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def window(a: float, b: float) -> TimeSpan:
    return TimeSpan(at(a), at(b))


def ics_for(uid: str, extra: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//contract//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def rich_and_tagged() -> tuple[CalendarObject, CalendarObject]:
    """``rich_object()`` and an object in another zone with a schedule tag of
    its own: what the tests of listings compare with point reads."""
    tagged = replace(
        make_object("u2", at(1), at(2), timezone="America/New_York"),
        schedule_tag='"organizer-tag"',
    )
    return rich_object(), tagged


def make_object(
    uid: str = "u1",
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    resource_id: str = "anna",
    span: TimeSpan | None = None,
    ics: str | None = None,
    **booking_fields: Any,
) -> CalendarObject:
    """A calendar object; ``booking_fields`` override Booking fields."""
    start = at(10) if start is None else start
    end = at(11) if end is None else end
    booking = Booking(
        id=f"id-{resource_id}-{uid}",
        resource_id=resource_id,
        uid=uid,
        title=f"Booking {uid}",
        start=start,
        end=end,
        timezone="UTC",
        created=CREATED,
        updated=CREATED,
    )
    booking = replace(booking, **booking_fields)
    return CalendarObject(
        booking=booking,
        ics=ics_for(uid) if ics is None else ics,
        span=TimeSpan(booking.start, booking.end).in_utc() if span is None else span,
    )


def rich_object() -> CalendarObject:
    """Every Booking field away from its default, with unicode and a real zone."""
    start = datetime(2026, 7, 1, 9, 30, tzinfo=BERLIN)
    return make_object(
        "rich-ü@example.com",
        start,
        start + timedelta(minutes=45),
        id="b-ünïcode-1",
        title="Haarschnitt für Zoë 💇",
        timezone="Europe/Berlin",
        created=CREATED,
        updated=CREATED + timedelta(days=3, microseconds=17),
        description="Zeile 1\nZeile 2 — «quoted» ☕",
        location="Straße 5, Köln",
        attendees=(
            Attendee("zoe@example.com", "Zoë Ünal", PartStat.ACCEPTED),
            Attendee("bob@example.com"),
            Attendee("日本@example.jp", "山田", PartStat.TENTATIVE),
        ),
        status=BookingStatus.TENTATIVE,
        transparent=True,
        origin=Origin.CALDAV,
        sequence=7,
        recurring=True,
        ics=ics_for(
            "rich-ü@example.com",
            "SUMMARY:Haarschnitt für Zoë 💇\r\nX-CUSTOM;X-P=1:keep me  \r\n"
            "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n",
        ),
    )


async def uids_in(repo: Repository, span: TimeSpan, **kwargs: Any) -> list[str]:
    return [o.uid for o in await repo.in_span("anna", span, **kwargs)]


async def save(repo: Repository, *objects: CalendarObject) -> int:
    revision = 0
    async with repo.transaction() as tx:
        for obj in objects:
            revision = await tx.save(obj)
    return revision


async def delete(repo: Repository, uid: str, resource_id: str = "anna") -> int:
    async with repo.transaction() as tx:
        return await tx.delete(resource_id, uid)


def effect(n: int, attendee: str = "zoe@example.com", deleted: str = "") -> OutboxEffect:
    """An invitation item for booking b<n> (SEQUENCE n)."""
    payload = InvitationPayload(InviteAction.CREATED, n, attendee, deleted=deleted)
    return OutboxEffect("anna", f"b{n}", payload)


class RepositoryContract:
    # -- empty store -----------------------------------------------------------

    async def test_empty_repository(self, repo: Repository) -> None:
        assert await repo.get_by_id("nope") is None
        assert await repo.get_by_uid("anna", "nope") is None
        assert await repo.revision("anna") == 0
        assert await repo.list_objects("anna") == []
        assert await repo.changes_since("anna", 0) == []
        assert await repo.in_span("anna", window(0, 24)) == []
        assert await repo.pending_outbox() == 0
        assert await repo.claim_outbox(at(0), 10) == []

    # -- objects ---------------------------------------------------------------

    def test_rich_sample_sets_every_booking_field(self) -> None:
        # Guard: a new Booking field must be added to the sample (and the store).
        booking = rich_object().booking
        defaulted = [
            f.name
            for f in fields(Booking)
            if f.default is not MISSING and getattr(booking, f.name) == f.default
        ]
        assert defaulted == []

    async def test_save_round_trips_by_id_and_uid(self, repo: Repository) -> None:
        obj = rich_object()
        assert await save(repo, obj) == 1
        by_id = await repo.get_by_id(obj.booking.id)
        by_uid = await repo.get_by_uid("anna", obj.uid)
        assert by_id == obj
        assert by_uid == obj
        assert by_id is not None
        # Aware datetimes compare by instant only, so check the zone explicitly.
        assert by_id.booking.start.tzinfo == BERLIN
        assert by_id.booking.end.tzinfo == BERLIN
        assert by_id.booking.start.utcoffset() == timedelta(hours=2)
        assert by_id.booking.created.utcoffset() == timedelta(0)
        assert by_id.booking.updated == CREATED + timedelta(days=3, microseconds=17)
        assert by_id.ics == obj.ics  # byte for byte: CRLF, VALARM, trailing blanks
        assert by_id.etag == etag_for(obj.ics)
        assert by_id.span == obj.span

    async def test_schedule_tag_round_trips_apart_from_the_etag(self, repo: Repository) -> None:
        # RFC 6638 3.2.10: after a change the server made, the tag is the
        # ETag of the organizer's last write, no longer the object's own.
        written = make_object("tagged")
        answered = replace(written, ics=written.ics.replace("END:VEVENT", "X-A:1\r\nEND:VEVENT"))
        await save(repo, answered)
        stored = await repo.get_by_href("anna", answered.href)
        assert stored is not None and stored.etag == answered.etag != written.etag
        assert stored.schedule_tag == written.etag
        (entry,) = await repo.list_entries("anna")
        assert entry.schedule_tag == written.etag

    async def test_round_trip_keeps_local_wall_time_across_dst(self, repo: Repository) -> None:
        winter = make_object(
            "w",
            datetime(2026, 1, 15, 9, tzinfo=NEW_YORK),
            datetime(2026, 1, 15, 10, tzinfo=NEW_YORK),
        )
        summer = make_object(
            "s",
            datetime(2026, 7, 15, 9, tzinfo=NEW_YORK),
            datetime(2026, 7, 15, 10, tzinfo=NEW_YORK),
        )
        winter = replace(winter, booking=replace(winter.booking, timezone="America/New_York"))
        summer = replace(summer, booking=replace(summer.booking, timezone="America/New_York"))
        await save(repo, winter, summer)
        for original in (winter, summer):
            loaded = await repo.get_by_uid("anna", original.uid)
            assert loaded == original
            assert loaded is not None
            assert loaded.booking.start.hour == 9
            assert loaded.booking.start.tzinfo == NEW_YORK

    async def test_unbounded_recurring_span_round_trips(self, repo: Repository) -> None:
        obj = make_object("rec", recurring=True, span=TimeSpan(at(10), FAR_FUTURE))
        await save(repo, obj)
        assert await repo.get_by_uid("anna", "rec") == obj

    async def test_save_replaces_by_uid_bumps_revision_and_logs(self, repo: Repository) -> None:
        first = make_object("a")
        assert await save(repo, first) == 1
        assert await save(repo, make_object("b", at(12), at(13))) == 2
        moved = make_object(
            "a", at(14), at(15), title="moved", sequence=1, ics=ics_for("a", "SEQUENCE:1\r\n")
        )
        assert await save(repo, moved) == 3
        assert await repo.revision("anna") == 3
        assert await repo.get_by_id(first.booking.id) == moved
        assert [o.uid for o in await repo.list_objects("anna")] == ["b", "a"]
        assert await repo.in_span("anna", window(10, 11)) == []
        assert await repo.changes_since("anna", 0) == [
            Change(2, "b", ChangeKind.PUT, "b.ics"),
            Change(3, "a", ChangeKind.PUT, "a.ics"),
        ]

    async def test_revisions_are_per_collection(self, repo: Repository) -> None:
        await save(repo, make_object("a"), make_object("b"))
        assert await save(repo, make_object("c", resource_id="bob")) == 1
        assert await repo.revision("anna") == 2
        assert await repo.revision("bob") == 1
        assert await repo.changes_since("bob", 0) == [Change(1, "c", ChangeKind.PUT, "c.ics")]

    async def test_a_uid_is_unique_across_collections(self, repo: Repository) -> None:
        await save(repo, make_object("a"))
        with pytest.raises(UidConflict) as refused:
            await save(repo, make_object("a", resource_id="bob"))
        assert (refused.value.resource_id, refused.value.href) == ("anna", "a.ics")
        assert await repo.revision("bob") == 0
        assert await repo.get_by_uid("bob", "a") is None
        # The holder itself is still saved as usual, and once it is gone the
        # UID is free again.
        assert await save(repo, make_object("a", title="changed")) == 2
        await delete(repo, "a")
        assert await save(repo, make_object("a", resource_id="bob")) == 1

    async def test_with_uid_finds_the_object_in_any_collection(self, repo: Repository) -> None:
        obj = make_object("a", resource_id="bob")
        await save(repo, make_object("b"), obj)
        assert await repo.with_uid("a") == [obj]
        assert await repo.with_uid("nope") == []
        async with repo.transaction() as tx:
            assert await tx.with_uid("b") == [make_object("b")]

    async def test_answer_times_round_trip_and_are_kept_without_a_change(
        self, repo: Repository
    ) -> None:
        answered = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
        obj = make_object(
            "a",
            attendees=(
                Attendee("zoe@example.com", "Zoë", PartStat.ACCEPTED, answered),
                Attendee("bob@example.com"),
            ),
        )
        await save(repo, obj)
        loaded = await repo.get_by_uid("anna", "a")
        assert loaded is not None
        assert [a.answered_at for a in loaded.booking.attendees] == [answered, None]
        later = answered + timedelta(hours=1)
        zoe, bob = obj.booking.attendees
        async with repo.transaction() as tx:
            await tx.keep_answer_times(
                replace(obj.booking, attendees=(replace(zoe, answered_at=later), bob))
            )
        loaded = await repo.get_by_uid("anna", "a")
        assert loaded is not None
        assert [a.answered_at for a in loaded.booking.attendees] == [later, None]
        # Bookkeeping, not a change of the calendar object.
        assert await repo.revision("anna") == 1
        assert await repo.changes_since("anna", 1) == []
        assert loaded.etag == obj.etag

    async def test_one_transaction_may_save_many_each_with_its_own_revision(
        self, repo: Repository
    ) -> None:
        async with repo.transaction() as tx:
            assert await tx.save(make_object("a")) == 1
            assert await tx.save(make_object("b")) == 2
        assert await repo.changes_since("anna", 0) == [
            Change(1, "a", ChangeKind.PUT, "a.ics"),
            Change(2, "b", ChangeKind.PUT, "b.ics"),
        ]

    async def test_booking_id_stays_bound_to_its_object(self, repo: Repository) -> None:
        await save(repo, make_object("a", id="X"))
        with pytest.raises(ValueError, match="X"):
            await save(repo, make_object("b", id="X"))
        with pytest.raises(ValueError, match="Y"):
            await save(repo, make_object("a", id="Y"))
        assert await repo.revision("anna") == 1
        assert await repo.get_by_uid("anna", "b") is None
        assert await repo.get_by_id("Y") is None

    async def test_delete_removes_and_logs(self, repo: Repository) -> None:
        obj = make_object("a")
        await save(repo, obj, make_object("b"))
        assert await delete(repo, "a") == 3
        assert await repo.get_by_uid("anna", "a") is None
        assert await repo.get_by_id(obj.booking.id) is None
        assert await repo.in_span("anna", window(0, 24)) != []  # b is still there
        assert await uids_in(repo, window(0, 24)) == ["b"]
        assert await repo.changes_since("anna", 0) == [
            Change(2, "b", ChangeKind.PUT, "b.ics"),
            Change(3, "a", ChangeKind.DELETE, "a.ics"),
        ]
        assert await repo.changes_since("anna", 2) == [Change(3, "a", ChangeKind.DELETE, "a.ics")]

    async def test_delete_of_missing_object_changes_nothing(self, repo: Repository) -> None:
        await save(repo, make_object("a"))
        assert await delete(repo, "ghost") == 1
        assert await delete(repo, "ghost", resource_id="nobody") == 0
        assert await repo.revision("anna") == 1
        assert await repo.changes_since("anna", 1) == []

    async def test_save_after_delete_brings_object_back(self, repo: Repository) -> None:
        obj = make_object("a")
        await save(repo, obj)
        await delete(repo, "a")
        assert await save(repo, obj) == 3
        assert await repo.get_by_uid("anna", "a") == obj
        assert await repo.changes_since("anna", 0) == [Change(3, "a", ChangeKind.PUT, "a.ics")]
        assert await repo.changes_since("anna", 2) == [Change(3, "a", ChangeKind.PUT, "a.ics")]

    async def test_list_objects_by_span_start_one_resource_only(self, repo: Repository) -> None:
        await save(
            repo,
            make_object("late", at(15), at(16)),
            make_object("early", at(8), at(9)),
            make_object("mid", at(12), at(13)),
            make_object("elsewhere", at(1), at(2), resource_id="bob"),
        )
        assert [o.uid for o in await repo.list_objects("anna")] == ["early", "mid", "late"]
        assert [o.uid for o in await repo.list_objects("bob")] == ["elsewhere"]
        assert await repo.list_objects("nobody") == []

    # -- change log ------------------------------------------------------------

    async def test_changes_since_one_per_href_latest_oldest_first(self, repo: Repository) -> None:
        await save(repo, make_object("a"))  # 1
        await save(repo, make_object("b"))  # 2
        await save(repo, make_object("a", title="again"))  # 3
        await save(repo, make_object("c"))  # 4
        await delete(repo, "b")  # 5
        await save(repo, make_object("d"))  # 6
        await delete(repo, "d")  # 7
        assert await repo.changes_since("anna", 0) == [
            Change(3, "a", ChangeKind.PUT, "a.ics"),
            Change(4, "c", ChangeKind.PUT, "c.ics"),
            Change(5, "b", ChangeKind.DELETE, "b.ics"),
            Change(7, "d", ChangeKind.DELETE, "d.ics"),
        ]
        assert await repo.changes_since("anna", 4) == [
            Change(5, "b", ChangeKind.DELETE, "b.ics"),
            Change(7, "d", ChangeKind.DELETE, "d.ics"),
        ]
        assert await repo.changes_since("anna", 7) == []

    # -- names (hrefs) ------------------------------------------------------------

    async def test_objects_are_found_by_their_name(self, repo: Repository) -> None:
        named = replace(make_object("u:1/odd"), href="client-chosen name.ics")
        await save(repo, named, make_object("plain"))
        assert await repo.get_by_href("anna", "client-chosen name.ics") == named
        assert await repo.get_by_href("anna", "u:1/odd.ics") is None
        assert await repo.get_by_href("bob", "client-chosen name.ics") is None
        assert (await repo.get_by_href("anna", "plain.ics")) == make_object("plain")

    async def test_stored_text_is_what_get_by_href_holds(self, repo: Repository) -> None:
        written = replace(make_object("t", ics=ics_for("t", "SUMMARY:Zoë\r\n")), href="t name.ics")
        await save(repo, written)
        answered = replace(written, ics=written.ics.replace("END:VEVENT", "X-A:1\r\nEND:VEVENT"))
        await save(repo, answered)
        stored = await repo.get_by_href("anna", "t name.ics")
        assert stored is not None
        full = await repo.stored_text("anna", "t name.ics")
        assert full is not None
        assert (full.etag, full.schedule_tag, full.updated, full.ics) == (
            stored.etag,
            stored.schedule_tag,
            stored.booking.updated,
            stored.ics,
        )
        assert full.schedule_tag == written.etag != full.etag
        tags_only = await repo.stored_text("anna", "t name.ics", with_text=False)
        assert tags_only == replace(full, ics=None)
        assert await repo.stored_text("bob", "t name.ics") is None
        assert await repo.stored_text("anna", "t.ics", with_text=False) is None

    async def test_text_with_attendees_is_the_text_of_a_booking_with_attendees(
        self, repo: Repository
    ) -> None:
        invited = replace(
            make_object("i", attendees=(Attendee("zoe@example.com", "Zoë", PartStat.ACCEPTED),)),
            ics=ics_for("i", "ATTENDEE:mailto:zoe@example.com\r\nSUMMARY:Zoë\r\n"),
        )
        alone = make_object("a")
        await save(repo, invited, alone)
        for obj in (invited, alone):
            stored = await repo.get_by_href("anna", obj.href)
            assert stored is not None
            expected = stored.ics if stored.booking.attendees else None
            assert await repo.text_with_attendees("anna", obj.href) == expected
        assert await repo.text_with_attendees("anna", invited.href) == invited.ics
        assert await repo.text_with_attendees("anna", alone.href) is None
        assert await repo.text_with_attendees("bob", invited.href) is None
        assert await repo.text_with_attendees("anna", "missing.ics") is None

    async def test_list_entries_has_names_tags_and_byte_sizes(self, repo: Repository) -> None:
        first = make_object("b", ics=ics_for("b", "SUMMARY:Zoë\r\n"))
        second = replace(make_object("a"), href="x.ics")
        await save(repo, first, second, make_object("other", resource_id="bob"))
        entries = await repo.list_entries("anna")
        assert [(e.href, e.uid, e.etag) for e in entries] == [
            ("b.ics", "b", first.etag),
            ("x.ics", "a", second.etag),
        ]
        assert entries[0].size == len(first.ics.encode("utf-8")) > len(first.ics)
        assert entries[0].updated == CREATED

    async def test_query_candidates_read_objects_as_point_reads_do(self, repo: Repository) -> None:
        # A query reads its own columns (``decode_queried_values``): the same
        # text, ETag, schedule tag, span, zone and times as a read of one object.
        rich, tagged = rich_and_tagged()
        await save(repo, rich, tagged)
        for found in (window(-24, 24 * 400), None):
            candidates = [o async for page in repo.iter_candidates("anna", found) for o in page]
            for obj in (rich, tagged):
                one = await repo.get_by_uid("anna", obj.uid)
                assert one is not None
                read = next(o for o in candidates if o.uid == obj.uid)
                assert read == QueriedObject.of(one) == QueriedObject.of(obj)
                assert read.etag == etag_for(obj.ics)
                assert read.schedule_tag == one.schedule_tag

    async def test_listed_sizes_follow_the_text_through_every_rewrite(
        self, repo: Repository
    ) -> None:
        # The listings read a size stored with the text: it must be the size
        # of the text GET answers after each change the server makes to it.
        async def sizes() -> dict[str, tuple[int, int]]:
            listed = [e async for page in repo.iter_entries("anna") for e in page]
            assert {e.href: e.size for e in listed} == {
                e.href: e.size for e in await repo.list_entries("anna")
            }
            found = {}
            for entry in listed:
                obj = await repo.get_by_href("anna", entry.href)
                assert obj is not None
                found[entry.href] = (entry.size, len(obj.ics.encode("utf-8")))
            return found

        zoe = make_object("z", ics=ics_for("z", "SUMMARY:Zoë 💇\r\n"))
        await save(repo, zoe, make_object("plain"))
        assert await sizes() == {
            "z.ics": (len(zoe.ics.encode()),) * 2,
            "plain.ics": (len(ics_for("plain").encode()),) * 2,
        }
        stored = await repo.get_by_uid("anna", "z")
        assert stored is not None
        # An answer written into the text, then a shorter text.
        answer = "ATTENDEE;PARTSTAT=ACCEPTED;CN=Zoë:mailto:zoe@example.com\r\nEND:VEVENT"
        answered = replace(stored, ics=stored.ics.replace("END:VEVENT", answer))
        await save(repo, answered)
        assert (await sizes())["z.ics"] == (len(answered.ics.encode()),) * 2
        await save(repo, replace(answered, ics=ics_for("z")))
        assert (await sizes())["z.ics"] == (len(ics_for("z").encode()),) * 2

    async def test_get_many_returns_the_named_objects_of_one_collection(
        self, repo: Repository
    ) -> None:
        objects = [make_object(f"u{n}") for n in range(1200)]
        # Another collection's objects: one of a name anna also has, one of
        # a name only bob has (a UID is unique).
        await save(
            repo,
            *objects,
            replace(make_object("b-u2", resource_id="bob"), href="u2.ics"),
            replace(make_object("b-only", resource_id="bob"), href="only-bob.ics"),
        )
        wanted = [f"u{n}.ics" for n in range(0, 1200, 2)] + ["missing.ics", "u0.ics"]
        found = await repo.get_many("anna", [*wanted, "only-bob.ics"])
        assert sorted(o.href for o in found) == sorted(f"u{n}.ics" for n in range(0, 1200, 2))
        assert sorted(o.uid for o in found) == sorted(f"u{n}" for n in range(0, 1200, 2))
        assert await repo.get_many("anna", []) == []

    # -- whole calendars in pages ----------------------------------------------------

    async def test_iter_entries_gives_every_entry_once_by_name_in_bounded_pages(
        self, repo: Repository
    ) -> None:
        await save(repo, *(make_object(f"u{n:04d}") for n in range(1200)))
        await save(repo, replace(make_object("b-u0001", resource_id="bob"), href="u0001.ics"))
        pages = [page async for page in repo.iter_entries("anna")]
        assert len(pages) > 1, "1,200 objects should not come in one page"
        assert max(len(page) for page in pages) <= 500
        listed = [entry for page in pages for entry in page]
        assert [e.href for e in listed] == [f"u{n:04d}.ics" for n in range(1200)]
        by_name = {e.href: e for e in await repo.list_entries("anna")}
        assert listed == [by_name[e.href] for e in listed]
        assert [page async for page in repo.iter_entries("nobody")] == []

    async def test_iter_objects_gives_whole_objects_by_name(self, repo: Repository) -> None:
        objects = [
            make_object(f"u{n:04d}", ics=ics_for(f"u{n:04d}", "X-N:1\r\n")) for n in range(700)
        ]
        await save(repo, *reversed(objects))
        listed = [obj async for page in repo.iter_objects("anna") for obj in page]
        assert listed == objects

    async def test_listings_read_objects_as_point_reads_do(self, repo: Repository) -> None:
        # Listings decode rows their own way (``decode_listed_object``): the
        # same values, zones, attendees and ETags as a read of one object.
        rich, tagged = rich_and_tagged()
        await save(repo, rich, tagged)
        listed = [obj async for page in repo.iter_objects("anna") for obj in page]
        named = await repo.get_many("anna", [rich.href, tagged.href])
        for obj in (rich, tagged):
            one = await repo.get_by_uid("anna", obj.uid)
            assert one is not None
            # get_many reads them as a report answers them (no booking).
            assert next(o for o in named if o.uid == obj.uid) == QueriedObject.of(one)
            read = next(o for o in listed if o.uid == obj.uid)
            assert read == one == obj
            assert read.etag == etag_for(obj.ics)
            assert read.schedule_tag == one.schedule_tag
            assert read.booking.start.tzinfo == one.booking.start.tzinfo
            assert read.booking.attendees == obj.booking.attendees
            assert read.booking.status is obj.booking.status
            assert read.booking.origin is obj.booking.origin

    async def test_query_candidates_are_what_in_span_finds_in_pages(self, repo: Repository) -> None:
        objects = [make_object(f"u{n:04d}", at(n), at(n + 0.5)) for n in range(1200)]
        await save(repo, *objects, make_object("elsewhere", at(3), at(4), resource_id="bob"))
        wide, narrow = window(-1, 2000), window(10, 20.25)
        for span in (wide, narrow):
            pages = [page async for page in repo.iter_candidates("anna", span)]
            assert all(len(page) <= 500 for page in pages)
            assert [o for page in pages for o in page] == [
                QueriedObject.of(o) for o in await repo.in_span("anna", span)
            ]
        every = [o async for page in repo.iter_candidates("anna", None) for o in page]
        assert every == [QueriedObject.of(o) for o in objects]  # by name
        assert [page async for page in repo.iter_candidates("nobody", None)] == []
        assert len(await repo.in_span("anna", wide)) == 1200
        assert [o.uid for o in await repo.in_span("anna", narrow)] == [
            f"u{n:04d}" for n in range(10, 21)
        ]

    async def test_a_listing_in_pages_is_one_snapshot(self, repo: Repository) -> None:
        """Writes that land between two pages do not show up half-way: a
        client must not get an object twice nor miss one that did not change."""
        await save(repo, *(make_object(f"u{n:04d}") for n in range(1000)))
        pages = repo.iter_entries("anna")
        async with aclosing(pages):
            first = await anext(pages)
            await delete(repo, "u0999")  # not read yet
            await save(repo, make_object("u1500"))  # sorts after everything read
            await save(
                repo, make_object("u0000", ics=ics_for("u0000", "X-CHANGED:1\r\n"))
            )  # read already
            rest = [entry async for page in pages for entry in page]
        names = [e.href for e in [*first, *rest]]
        assert names == [f"u{n:04d}.ics" for n in range(1000)]
        after = [e.href async for page in repo.iter_entries("anna") for e in page]
        assert "u0999.ics" not in after and "u1500.ics" in after

    async def test_listings_stopped_early_give_their_connection_back(
        self, repo: Repository
    ) -> None:
        await save(repo, *(make_object(f"u{n:04d}") for n in range(600)))
        for _ in range(12):  # more than any sensible pool of connections
            pages = repo.iter_entries("anna")
            async with aclosing(pages):
                await anext(pages)
        async with asyncio.timeout(10):
            complete = [e async for page in repo.iter_entries("anna") for e in page]
        assert len(complete) == 600

    async def test_several_listings_can_be_open_at_once(self, repo: Repository) -> None:
        """Slow clients each hold a listing open; a handful of them must not
        keep the next one waiting."""
        await save(repo, *(make_object(f"u{n:04d}") for n in range(600)))
        async with AsyncExitStack() as stack:
            listings = [
                await stack.enter_async_context(aclosing(repo.iter_entries("anna")))
                for _ in range(8)
            ]
            async with asyncio.timeout(10):
                firsts = [await anext(listing) for listing in listings]
            # Every listing got its first (full) page.
            assert all(len(first) == len(firsts[0]) > 0 for first in firsts)

    async def test_a_renamed_object_logs_the_old_name_as_deleted(self, repo: Repository) -> None:
        await save(repo, make_object("a"))  # 1
        await save(repo, replace(make_object("a"), href="renamed.ics"))  # 2 delete, 3 put
        assert await repo.get_by_href("anna", "a.ics") is None
        assert await repo.changes_since("anna", 1) == [
            Change(2, "a", ChangeKind.DELETE, "a.ics"),
            Change(3, "a", ChangeKind.PUT, "renamed.ics"),
        ]
        assert await repo.revision("anna") == 3
        assert (await repo.get_by_uid("anna", "a")) is not None

    async def test_delete_logs_the_name_the_object_had(self, repo: Repository) -> None:
        await save(repo, replace(make_object("a"), href="chosen.ics"))
        await delete(repo, "a")
        assert await repo.changes_since("anna", 1) == [
            Change(2, "a", ChangeKind.DELETE, "chosen.ics")
        ]

    async def test_collection_properties_set_replace_and_remove(self, repo: Repository) -> None:
        assert await repo.collection_properties("anna") == {}
        await repo.set_collection_properties("anna", {"{DAV:}displayname": "Anna", "{x}c": "#f00"})
        await repo.set_collection_properties("anna", {"{x}c": None, "{DAV:}displayname": "A."})
        assert await repo.collection_properties("anna") == {"{DAV:}displayname": "A."}
        assert await repo.collection_properties("bob") == {}
        # Setting properties is not a change of the calendar's contents.
        assert await repo.revision("anna") == 0

    async def test_changes_since_refuses_a_future_token(self, repo: Repository) -> None:
        assert await repo.changes_since("anna", 1) is None
        await save(repo, make_object("a"))
        assert await repo.changes_since("anna", 1) == []
        assert await repo.changes_since("anna", 2) is None
        assert await repo.changes_since("anna", -1) is None
        assert await repo.changes_since("bob", 1) is None

    # -- time-range index ------------------------------------------------------

    @pytest.mark.parametrize(
        ("a", "b", "hit"),
        [
            (11, 12, False),  # touches the end: half-open, no overlap
            (9, 10, False),  # touches the start
            (10 + 59 / 60, 12, True),  # last minute
            (9, 10 + 1 / 60, True),  # first minute
            (10.25, 10.5, True),  # inside
            (9, 12, True),  # around
            (10, 11, True),  # identical
            (0, 9, False),
            (12, 24, False),
        ],
    )
    async def test_in_span_overlap_is_half_open(
        self, repo: Repository, a: float, b: float, hit: bool
    ) -> None:
        await save(repo, make_object("x", at(10), at(11)))
        assert await uids_in(repo, window(a, b)) == (["x"] if hit else [])

    async def test_in_span_is_exact_to_the_second(self, repo: Repository) -> None:
        # Epoch seconds near 1.8e9 are far coarser than one second as 32-bit
        # floats; an approximate index must still give exact answers.
        await save(repo, make_object("x", at(10), at(10) + timedelta(seconds=3)))
        end = at(10) + timedelta(seconds=3)
        assert await uids_in(repo, TimeSpan(end, end + timedelta(seconds=1))) == []
        assert await uids_in(repo, TimeSpan(end - timedelta(seconds=1), end)) == ["x"]
        start = at(10)
        assert await uids_in(repo, TimeSpan(start - timedelta(seconds=1), start)) == []
        assert await uids_in(repo, TimeSpan(start, start + timedelta(seconds=1))) == ["x"]

    @pytest.mark.parametrize(
        ("a", "b", "hit"),
        [
            (10, 11, True),  # starts at the window start (RFC 4791 9.9)
            (9.5, 10.5, True),
            (9, 10, False),  # at the window end: excluded
            (10.5, 11, False),
        ],
    )
    async def test_in_span_instantaneous_object(
        self, repo: Repository, a: float, b: float, hit: bool
    ) -> None:
        await save(repo, make_object("point", at(10), at(10)))
        assert await uids_in(repo, window(a, b)) == (["point"] if hit else [])

    async def test_in_span_recurring_object_ending_with_an_instant(self, repo: Repository) -> None:
        # A series of instants: its span ends at the last one, which a window
        # starting there holds (RFC 4791 9.9); the caller expands it exactly.
        await save(repo, make_object("rec", recurring=True, span=TimeSpan(at(10), at(12))))
        await save(repo, make_object("single", at(10), at(12)))
        assert await uids_in(repo, window(12, 13)) == ["rec"]
        assert await uids_in(repo, window(12.5, 13)) == []

    async def test_in_span_unbounded_recurring_object(self, repo: Repository) -> None:
        await save(repo, make_object("rec", recurring=True, span=TimeSpan(at(10), FAR_FUTURE)))
        years_later = TimeSpan(at(10) + timedelta(days=3650), at(11) + timedelta(days=3650))
        last_year = TimeSpan(datetime(9999, 6, 1, tzinfo=UTC), datetime(9999, 6, 8, tzinfo=UTC))
        assert await uids_in(repo, window(10, 11)) == ["rec"]
        assert await uids_in(repo, years_later) == ["rec"]
        assert await uids_in(repo, last_year) == ["rec"]
        assert await uids_in(repo, window(0, 10)) == []

    async def test_in_span_blocking_only(self, repo: Repository) -> None:
        await save(
            repo,
            make_object("confirmed", at(10), at(11)),
            make_object("tentative", at(10), at(11), status=BookingStatus.TENTATIVE),
            make_object("cancelled", at(10), at(11), status=BookingStatus.CANCELLED),
            make_object("transparent", at(10), at(11), transparent=True),
        )
        assert sorted(await uids_in(repo, window(9, 12))) == [
            "cancelled",
            "confirmed",
            "tentative",
            "transparent",
        ]
        blocking = await uids_in(repo, window(9, 12), blocking_only=True)
        assert sorted(blocking) == ["confirmed", "tentative"]

    async def test_in_span_keeps_to_its_resource_and_orders_by_start(
        self, repo: Repository
    ) -> None:
        await save(
            repo,
            make_object("b", at(12), at(13)),
            make_object("a", at(9), at(10.5)),
            make_object("other", at(9), at(13), resource_id="bob"),
        )
        assert await uids_in(repo, window(0, 24)) == ["a", "b"]
        assert [o.uid for o in await repo.in_span("bob", window(0, 24))] == ["other"]
        assert await repo.in_span("nobody", window(0, 24)) == []

    async def test_in_span_window_in_any_zone(self, repo: Repository) -> None:
        await save(repo, make_object("x", at(10), at(11)))  # 11:00-12:00 in Berlin (CET)
        berlin = TimeSpan(
            datetime(2026, 3, 10, 12, tzinfo=BERLIN), datetime(2026, 3, 10, 13, tzinfo=BERLIN)
        )
        assert await uids_in(repo, berlin) == []
        berlin = TimeSpan(
            datetime(2026, 3, 10, 11, tzinfo=BERLIN), datetime(2026, 3, 10, 12, tzinfo=BERLIN)
        )
        assert await uids_in(repo, berlin) == ["x"]

    async def test_in_span_follows_moves_and_deletes(self, repo: Repository) -> None:
        await save(repo, make_object("x", at(10), at(11)))
        await save(repo, make_object("x", at(14), at(15)))
        assert await uids_in(repo, window(10, 11)) == []
        assert await uids_in(repo, window(14, 15)) == ["x"]
        await delete(repo, "x")
        assert await uids_in(repo, window(0, 24)) == []

    # -- transactions ----------------------------------------------------------

    async def test_reads_in_a_transaction_see_its_writes_others_do_not(
        self, repo: Repository
    ) -> None:
        obj = make_object("a")
        async with repo.transaction() as tx:
            await tx.save(obj)
            assert await tx.get_by_uid("anna", "a") == obj
            assert await tx.get_by_id(obj.booking.id) == obj
            assert [o.uid for o in await tx.in_span("anna", window(0, 24))] == ["a"]
            # Outside readers see only committed data (and are not blocked).
            assert await repo.get_by_uid("anna", "a") is None
            assert await repo.revision("anna") == 0
        assert await repo.get_by_uid("anna", "a") == obj

    async def test_exception_rolls_back_everything(self, repo: Repository) -> None:
        kept = make_object("kept")
        await save(repo, kept)
        with pytest.raises(Boom):
            async with repo.transaction() as tx:
                await tx.save(make_object("new"))
                await tx.save(make_object("kept", at(15), at(16)))
                await tx.delete("anna", "kept")
                await tx.enqueue(effect(1))
                await tx.remember_idempotency("key", IdempotencyRecord("fp", "b1"))
                raise Boom
        assert await repo.get_by_uid("anna", "new") is None
        assert await repo.get_by_uid("anna", "kept") == kept
        assert await repo.revision("anna") == 1
        assert await repo.changes_since("anna", 1) == []
        assert await repo.pending_outbox() == 0
        assert await repo.claim_outbox(at(0), 10) == []
        async with repo.transaction() as tx:
            assert await tx.idempotency("key") is None
        # The failed transaction released the store: the next one commits.
        assert await save(repo, make_object("after")) == 2

    async def test_cancelled_transaction_rolls_back(self, repo: Repository) -> None:
        saved = asyncio.Event()

        async def stuck() -> None:
            async with repo.transaction() as tx:
                await tx.save(make_object("a"))
                saved.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(stuck())
        await saved.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await repo.get_by_uid("anna", "a") is None
        assert await save(repo, make_object("b")) == 1

    async def test_concurrent_transactions_serialise(self, repo: Repository) -> None:
        # Each task reads, yields to the others, then writes what it read: if two
        # transactions interleaved, two would see the same count and collide.
        async def book() -> None:
            async with repo.transaction() as tx:
                seen = await tx.in_span("anna", window(0, 24))
                await asyncio.sleep(0)  # let the other tasks run here
                await tx.save(make_object(f"slot{len(seen)}", at(len(seen)), at(len(seen) + 1)))

        await asyncio.gather(*(book() for _ in range(6)))
        assert [o.uid for o in await repo.list_objects("anna")] == [f"slot{i}" for i in range(6)]
        assert await repo.revision("anna") == 6

    async def test_check_then_insert_lets_only_one_booking_win(self, repo: Repository) -> None:
        async def try_book(n: int) -> bool:
            async with repo.transaction() as tx:
                if await tx.in_span("anna", window(10, 11), blocking_only=True):
                    return False
                await asyncio.sleep(0)  # let the other tasks run here
                await tx.save(make_object(f"try{n}", at(10), at(11)))
                return True

        results = await asyncio.gather(*(try_book(n) for n in range(5)))
        assert sorted(results) == [False] * 4 + [True]
        assert len(await repo.in_span("anna", window(10, 11))) == 1

    # -- outbox ----------------------------------------------------------------

    async def test_outbox_claims_due_items_oldest_first(self, repo: Repository) -> None:
        for n in range(3):
            async with repo.transaction() as tx:
                await tx.enqueue(effect(n, "zoë@example.com", deleted="Grüße ✉\r\n"))
        assert await repo.pending_outbox() == 3
        before = datetime.now(UTC) - timedelta(seconds=1)
        items = await repo.claim_outbox(datetime.now(UTC), 10)
        assert [i.effect for i in items] == [
            effect(n, "zoë@example.com", deleted="Grüße ✉\r\n") for n in range(3)
        ]
        assert [i.id for i in items] == sorted(i.id for i in items)
        assert len({i.id for i in items}) == 3
        assert all(i.attempts == 0 for i in items)
        assert all(i.created.tzinfo is not None and i.created >= before for i in items)
        assert [i.id for i in await repo.claim_outbox(datetime.now(UTC), 2)] == [
            i.id for i in items[:2]
        ]
        # Claiming marks nothing: the same items come back until completed.
        assert await repo.claim_outbox(datetime.now(UTC), 10) == items

    async def test_new_outbox_items_are_due_whatever_the_worker_clock(
        self, repo: Repository
    ) -> None:
        async with repo.transaction() as tx:
            await tx.enqueue(effect(1))
        assert len(await repo.claim_outbox(datetime(2000, 1, 1, tzinfo=UTC), 10)) == 1

    async def test_outbox_retry_and_complete(self, repo: Repository) -> None:
        async with repo.transaction() as tx:
            for n in range(3):
                await tx.enqueue(effect(n))
        now = datetime.now(UTC)
        first, second, third = await repo.claim_outbox(now, 10)
        later = now + timedelta(hours=1)
        # A zone other than UTC must compare by instant.
        await repo.retry_outbox(first.id, "smtp down", later.astimezone(NEW_YORK))
        assert [i.id for i in await repo.claim_outbox(now, 10)] == [second.id, third.id]
        assert [i.id for i in await repo.claim_outbox(later - timedelta(seconds=1), 10)] == [
            second.id,
            third.id,
        ]
        due = await repo.claim_outbox(later, 10)
        assert [i.id for i in due] == [first.id, second.id, third.id]  # still oldest first
        assert due[0].attempts == 1
        await repo.retry_outbox(first.id, "still down", later)
        assert (await repo.claim_outbox(later, 1))[0].attempts == 2

        await repo.complete_outbox(second.id)
        await repo.complete_outbox(second.id)  # completing twice is harmless
        assert await repo.pending_outbox() == 2
        assert [i.id for i in await repo.claim_outbox(later, 10)] == [first.id, third.id]
        await repo.complete_outbox(first.id)
        await repo.complete_outbox(third.id)
        assert await repo.pending_outbox() == 0
        assert await repo.claim_outbox(later + timedelta(days=1), 10) == []

    # -- outbox, as the admin acts on it (OutboxAdmin) ---------------------------

    async def test_outbox_records_list_undone_oldest_first_and_failed_newest_first(
        self, repo: Repository
    ) -> None:
        async with repo.transaction() as tx:
            for n in range(5):
                await tx.enqueue(effect(n))
        ids = [r.id for r in await repo.outbox_records("pending", 10)]
        assert len(ids) == 5 and ids == sorted(ids)
        await repo.complete_outbox(ids[0])
        await repo.fail_outbox(ids[1], "first failure")
        await repo.fail_outbox(ids[2], "second failure")
        assert [r.id for r in await repo.outbox_records("pending", 10)] == ids[3:]
        failed = await repo.outbox_records("failed", 10)
        assert [r.id for r in failed] == [ids[2], ids[1]]
        assert [r.last_error for r in failed] == ["second failure", "first failure"]
        assert all(r.done and r.failed_at is not None for r in failed)
        both = await repo.outbox_records(None, 10)
        assert [r.id for r in both] == [ids[3], ids[4], ids[2], ids[1]]
        assert [r.id for r in await repo.outbox_records(None, 3)] == [ids[3], ids[4], ids[2]]
        assert [r.id for r in await repo.outbox_records("pending", 1)] == [ids[3]]
        done = await repo.outbox_record(ids[0])
        assert done is not None and done.done and done.failed_at is None
        async with repo.transaction() as tx:
            await tx.enqueue(OutboxEffect("bob", "b9", GooglePushPayload()))
        assert [r.effect.resource_id for r in await repo.outbox_records(None, 10, ["bob"])] == [
            "bob"
        ]
        assert len(await repo.outbox_records(None, 10, ["anna", "bob"])) == 5
        assert await repo.outbox_records(None, 10, []) == []
        assert await repo.outbox_record(ids[-1] + 1000) is None

    async def test_outbox_record_has_what_the_admin_reads(self, repo: Repository) -> None:
        async with repo.transaction() as tx:
            await tx.enqueue(effect(1, attendee="ana@example.com"))
        (item,) = await repo.claim_outbox(datetime.now(UTC), 10)
        later = datetime.now(UTC) + timedelta(hours=1)
        await repo.retry_outbox(item.id, "smtp down", later)
        record = await repo.outbox_record(item.id)
        assert record is not None
        assert record.effect == effect(1, attendee="ana@example.com")
        assert (record.attempts, record.last_error, record.sending) == (1, "smtp down", False)
        assert record.next_attempt == later
        assert record.created == item.created
        assert not record.done and record.failed_at is None
        await repo.mark_outbox_sending(item.id)
        record = await repo.outbox_record(item.id)
        assert record is not None and record.sending

    async def test_reopen_makes_an_item_due_now_and_brings_a_failed_one_back(
        self, repo: Repository
    ) -> None:
        async with repo.transaction() as tx:
            for n in range(3):
                await tx.enqueue(effect(n))
        now = datetime.now(UTC)
        waiting, failed, done = await repo.claim_outbox(now, 10)
        await repo.retry_outbox(waiting.id, "smtp down", now + timedelta(days=1))
        await repo.fail_outbox(failed.id, "mailbox refused")
        await repo.complete_outbox(done.id)
        assert await repo.claim_outbox(now, 10) == []
        closed = await repo.outbox_record(failed.id)
        assert closed is not None and closed.attempts == 1  # the attempt that failed for good

        reopened = await repo.reopen_outbox(waiting.id, now)
        assert reopened is not None and reopened.next_attempt == now
        back = await repo.reopen_outbox(failed.id, now)
        assert back is not None
        assert (back.done, back.failed_at, back.attempts) == (False, None, 1)
        assert back.last_error == "mailbox refused"  # kept for the admin
        assert [i.id for i in await repo.claim_outbox(now, 10)] == [waiting.id, failed.id]
        assert await repo.reopen_outbox(done.id, now) is None
        assert await repo.reopen_outbox(done.id + 1000, now) is None
        assert await repo.pending_outbox() == 2

    async def test_reopen_keeps_a_lease_a_worker_holds(self, repo: Repository) -> None:
        async with repo.transaction() as tx:
            await tx.enqueue(effect(1))
        now = datetime.now(UTC)
        assert len(await repo.claim_outbox(now, 10, lease=timedelta(minutes=5))) == 1
        assert await repo.reopen_outbox((await repo.outbox_records("pending", 1))[0].id, now)
        assert await repo.claim_outbox(now, 10) == []  # still the worker's

    async def test_give_up_closes_an_undone_item_unless_it_is_sending(
        self, repo: Repository
    ) -> None:
        async with repo.transaction() as tx:
            for n in range(3):
                await tx.enqueue(effect(n))
        now = datetime.now(UTC)
        waiting, sending, done = await repo.claim_outbox(now, 10)
        await repo.mark_outbox_sending(sending.id)
        await repo.complete_outbox(done.id)

        closed = await repo.give_up_outbox(waiting.id, "given up by admin")
        assert closed is not None and closed.done and closed.failed_at is not None
        assert closed.last_error == "given up by admin"
        assert await repo.give_up_outbox(waiting.id, "again") is None
        assert await repo.give_up_outbox(sending.id, "given up by admin") is None
        assert await repo.give_up_outbox(done.id, "given up by admin") is None
        assert [i.id for i in await repo.claim_outbox(now, 10)] == [sending.id]
        assert [f.id for f in await repo.failed_outbox(10)] == [waiting.id]
        # A worker's late verdict does not undo the admin's.
        await repo.complete_outbox(waiting.id)
        record = await repo.outbox_record(waiting.id)
        assert record is not None and record.failed_at is not None

    # -- server secrets ----------------------------------------------------------

    async def test_server_secret_is_made_once_and_kept(
        self, repo: Repository, open_repo: OpenRepo
    ) -> None:
        first = await repo.server_secret("console-session")
        assert isinstance(first, bytes) and len(first) == 32
        assert await repo.server_secret("console-session") == first
        other = await repo.server_secret("other")
        assert len(other) == 32 and other != first
        again = await open_repo()
        try:
            assert await again.server_secret("console-session") == first
        finally:
            await again.close()

    async def test_concurrent_first_calls_get_the_same_secret(
        self, repo: Repository, open_repo: OpenRepo
    ) -> None:
        # Two repositories on one database: two processes (replicas) starting.
        second = await open_repo()
        try:
            got = await asyncio.gather(
                *(r.server_secret("console-session") for r in (repo, second, repo, second))
            )
        finally:
            await second.close()
        assert len(set(got)) == 1

    # -- idempotency -----------------------------------------------------------

    async def test_idempotency_round_trip(self, repo: Repository) -> None:
        record = IdempotencyRecord("fingerprint-ü", "booking-1")
        async with repo.transaction() as tx:
            assert await tx.idempotency("key-1") is None
            await tx.remember_idempotency("key-1", record)
            assert await tx.idempotency("key-1") == record
        async with repo.transaction() as tx:
            assert await tx.idempotency("key-1") == record
            assert await tx.idempotency("key-2") is None

    async def test_idempotency_key_is_never_overwritten(self, repo: Repository) -> None:
        record = IdempotencyRecord("fp-1", "booking-1")
        async with repo.transaction() as tx:
            await tx.remember_idempotency("key", record)
        with pytest.raises(Exception):  # noqa: B017 - each backend has its own error
            async with repo.transaction() as tx:
                await tx.remember_idempotency("key", IdempotencyRecord("fp-2", "booking-2"))
        async with repo.transaction() as tx:
            assert await tx.idempotency("key") == record

    # -- durability ------------------------------------------------------------

    async def test_data_survives_reopening(self, repo: Repository, open_repo: OpenRepo) -> None:
        obj = rich_object()
        async with repo.transaction() as tx:
            await tx.save(obj)
            await tx.save(make_object("gone"))
            await tx.delete("anna", "gone")
            await tx.enqueue(effect(1))
            await tx.remember_idempotency("key", IdempotencyRecord("fp", obj.booking.id))
        await repo.close()
        await repo.close()  # closing twice is harmless

        again = await open_repo()
        try:
            assert await again.get_by_id(obj.booking.id) == obj
            assert await again.revision("anna") == 3
            assert await again.changes_since("anna", 0) == [
                Change(1, obj.uid, ChangeKind.PUT, obj.href),
                Change(3, "gone", ChangeKind.DELETE, "gone.ics"),
            ]
            assert [i.effect for i in await again.claim_outbox(datetime.now(UTC), 10)] == [
                effect(1)
            ]
            async with again.transaction() as tx:
                assert await tx.idempotency("key") == IdempotencyRecord("fp", obj.booking.id)
            assert await save(again, make_object("next")) == 4
        finally:
            await again.close()

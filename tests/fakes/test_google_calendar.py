"""The fake Google proven through the real clients: googleapiclient (in threads, it is
blocking), google-auth for tokens, and aiohttp for the consent redirect and webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientSession, web
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.errors import HttpError

from fake_google.calendar import ALL_FAULTS, RATE_LIMIT_429, FakeGoogle, Fault, Faults

ANNA = "anna@example.com"
BOB = "bob@example.com"
REDIRECT = "http://127.0.0.1:8080/google/callback"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGoogle]:
    async with FakeGoogle.running(allow_http_webhooks=True) as google:  # loopback receivers
        google.add_account(ANNA, time_zone="Europe/Berlin")
        google.add_account(BOB)
        yield google


async def run(request: Any) -> Any:
    return await asyncio.to_thread(request.execute)


async def http_error(request: Any) -> HttpError:
    with pytest.raises(HttpError) as caught:
        await run(request)
    return caught.value


def reason(error: HttpError) -> str:
    details = error.error_details
    assert isinstance(details, list), error.content
    return str(details[0]["reason"])


def timed(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


# --- OAuth ------------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def consent(
    http: ClientSession, fake: FakeGoogle, challenge: str, **overrides: str
) -> tuple[int, str]:
    params = {
        "client_id": fake.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "https://www.googleapis.com/auth/calendar openid email",
        "state": "st-42",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
        "login_hint": ANNA,
        **overrides,
    }
    params = {k: v for k, v in params.items() if v != ""}
    async with http.get(fake.auth_uri, params=params, allow_redirects=False) as response:
        text = await response.text()
        return response.status, response.headers.get("Location", text)


async def exchange(http: ClientSession, fake: FakeGoogle, **form: str) -> tuple[int, Any]:
    data = {
        "grant_type": "authorization_code",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "redirect_uri": REDIRECT,
        **form,
    }
    async with http.post(fake.token_uri, data=data) as response:
        return response.status, await response.json()


async def test_consent_flow_with_pkce_and_state(fake: FakeGoogle) -> None:
    fake.consent_as(ANNA)
    verifier, challenge = pkce_pair()
    async with ClientSession() as http:
        status, location = await consent(http, fake, challenge)
        assert status == 302
        assert location.startswith(REDIRECT + "?")
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == ["st-42"]
        code = query["code"][0]

        # A wrong verifier is refused and does not use the code up.
        status, body = await exchange(http, fake, code=code, code_verifier=verifier + "x")
        assert (status, body["error"]) == (400, "invalid_grant")
        assert body["error_description"] == "Invalid code verifier."
        status, body = await exchange(http, fake, code=code)
        assert (status, body["error_description"]) == (400, "Missing code verifier.")
        status, body = await exchange(
            http, fake, code=code, code_verifier=verifier, redirect_uri=REDIRECT + "/other"
        )
        assert (status, body["error"]) == (400, "redirect_uri_mismatch")

        status, tokens = await exchange(http, fake, code=code, code_verifier=verifier)
        assert status == 200
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] > 0
        assert "https://www.googleapis.com/auth/calendar" in tokens["scope"].split()
        assert tokens["refresh_token"] and tokens["access_token"]

        # A code works once; replaying it revokes what it granted (RFC 6749 4.1.2).
        status, body = await exchange(http, fake, code=code, code_verifier=verifier)
        assert (status, body["error"]) == (400, "invalid_grant")
        status, body = await exchange(
            http, fake, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
        )
        assert (status, body["error"]) == (400, "invalid_grant")

        # The user says no: the error comes back through the redirect, state echoed.
        fake.consent_as(None)
        status, location = await consent(http, fake, challenge)
        assert status == 302
        assert parse_qs(urlsplit(location).query) == {
            "error": ["access_denied"],
            "state": ["st-42"],
        }

        # A new grant; then online access, or offline again without prompt=consent,
        # gives no refresh token.
        fake.consent_as(ANNA)
        status, location = await consent(http, fake, challenge)
        code = parse_qs(urlsplit(location).query)["code"][0]
        status, tokens = await exchange(http, fake, code=code, code_verifier=verifier)
        assert tokens["refresh_token"]
        for overrides in ({"access_type": "online"}, {"prompt": ""}):
            status, location = await consent(http, fake, challenge, **overrides)
            code = parse_qs(urlsplit(location).query)["code"][0]
            status, again = await exchange(http, fake, code=code, code_verifier=verifier)
            assert status == 200 and "refresh_token" not in again, overrides

        # Client authentication may also be HTTP Basic; a wrong secret is 401.
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        }
        for secret, expected in ((fake.client_secret, 200), ("wrong", 401)):
            basic = base64.b64encode(f"{fake.client_id}:{secret}".encode()).decode()
            headers = {"Authorization": f"Basic {basic}"}
            async with http.post(fake.token_uri, data=form, headers=headers) as response:
                assert response.status == expected

        # Bad requests get Google's error page naming the parameter.
        status, page = await consent(http, fake, challenge, redirect_uri="")
        assert status == 400 and "redirect_uri" in page
        status, page = await consent(http, fake, challenge, response_type="token")
        assert status == 400 and "response_type" in page
        status, page = await consent(http, fake, challenge, code_challenge_method="S512")
        assert status == 400 and "code_challenge_method" in page
        status, page = await consent(http, fake, challenge, client_id="someone-else")
        assert status == 401 and "client_id" in page

    # The tokens from the flow drive the real client.
    creds = Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=tokens["refresh_token"],
        token_uri=fake.token_uri,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
    )
    calendar = await run(fake.service(credentials=creds).calendars().get(calendarId="primary"))
    assert calendar["id"] == ANNA


async def test_refresh_after_expiry_and_invalid_grant_after_revoke(fake: FakeGoogle) -> None:
    service = fake.service(ANNA)
    await run(service.calendarList().list())
    assert fake.token_requests == ["refresh_token"]

    # Expired access tokens answer 401 and google-auth refreshes on its own.
    fake.expire_access_tokens()
    await run(service.calendarList().list())
    assert fake.token_requests == ["refresh_token", "refresh_token"]

    fake.revoke(ANNA)
    with pytest.raises(RefreshError) as caught:
        await run(service.calendarList().list())
    assert "invalid_grant" in str(caught.value)
    assert "Token has been expired or revoked." in str(caught.value)


async def test_api_needs_a_valid_bearer_token(fake: FakeGoogle) -> None:
    url = fake.api_endpoint + "users/me/calendarList"
    async with ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 401
            error = (await response.json())["error"]
            assert error["errors"][0]["reason"] == "required"
        async with http.get(url, headers={"Authorization": "Bearer nope"}) as response:
            assert response.status == 401
            assert "invalid_token" in response.headers["WWW-Authenticate"]
            error = (await response.json())["error"]
            assert error["code"] == 401
            assert error["errors"][0] == {
                "domain": "global",
                "reason": "authError",
                "message": "Invalid Credentials",
                "locationType": "header",
                "location": "Authorization",
            }
    # A token without a calendar scope may not read events.
    readonly = fake.service(
        credentials=Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=fake.issue_refresh_token(ANNA, ["openid"]),
            token_uri=fake.token_uri,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
        )
    )
    error = await http_error(readonly.events().list(calendarId="primary"))
    assert (error.status_code, reason(error)) == (403, "insufficientPermissions")


# --- calendars ----------------------------------------------------------------------------------


async def test_calendar_list_paging_roles_and_sharing(fake: FakeGoogle) -> None:
    work = fake.add_calendar(ANNA, "Work")
    holidays = fake.add_calendar(ANNA, "Holidays", access_role="reader")
    service = fake.service(ANNA)

    first = await run(service.calendarList().list(maxResults=2))
    assert len(first["items"]) == 2 and "nextSyncToken" not in first
    second = await run(service.calendarList().list(maxResults=2, pageToken=first["nextPageToken"]))
    assert "nextPageToken" not in second and second["nextSyncToken"]
    entries = {e["id"]: e for e in first["items"] + second["items"]}
    assert set(entries) == {ANNA, work, holidays}
    assert entries[ANNA]["primary"] is True and "primary" not in entries[work]
    assert entries[holidays]["accessRole"] == "reader"
    assert entries[work]["kind"] == "calendar#calendarListEntry"
    assert entries[work]["timeZone"] == "Europe/Berlin"
    writable = await run(service.calendarList().list(minAccessRole="writer"))
    assert {e["id"] for e in writable["items"]} == {ANNA, work}

    # Readers may not write; strangers do not see the calendar at all.
    body = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    error = await http_error(service.events().insert(calendarId=holidays, body=body))
    assert (error.status_code, reason(error)) == (403, "requiredAccessLevel")
    error = await http_error(fake.service(BOB).events().list(calendarId=work))
    assert (error.status_code, reason(error)) == (404, "notFound")
    fake.share_calendar(work, BOB, "writer")
    await run(fake.service(BOB).events().insert(calendarId=work, body=body))
    assert fake.write_count(work) == 1


# --- events ------------------------------------------------------------------------------------


async def test_insert_get_update_patch_delete(fake: FakeGoogle) -> None:
    service = fake.service(ANNA)
    events = service.events()
    body = timed(
        "Haircut",
        "2030-03-01T09:00:00+01:00",
        "2030-03-01T10:00:00+01:00",
        id="booking0001",
        attendees=[{"email": "zoe@example.com", "displayName": "Zoë"}, {"email": ANNA}],
        extendedProperties={"private": {"booking": "b-1"}},
    )
    created = await run(events.insert(calendarId="primary", body=body, sendUpdates="none"))
    assert created["id"] == "booking0001"
    assert created["kind"] == "calendar#event"
    assert created["status"] == "confirmed"
    assert created["iCalUID"] == "booking0001@google.com"
    assert created["sequence"] == 0
    assert created["eventType"] == "default"
    assert created["etag"].startswith('"') and created["etag"].endswith('"')
    assert created["updated"].endswith("Z") and len(created["updated"]) == 24
    assert created["organizer"] == {"email": ANNA, "self": True}
    assert created["attendees"][0]["responseStatus"] == "needsAction"
    assert created["attendees"][1]["self"] is True

    fetched = await run(events.get(calendarId=ANNA, eventId="booking0001"))
    assert fetched["etag"] == created["etag"]

    # If-Match with a stale etag: 412, nothing written.
    stale = events.update(
        calendarId="primary", eventId="booking0001", body={**body, "summary": "Other"}
    )
    stale.headers["If-Match"] = '"123"'
    error = await http_error(stale)
    assert (error.status_code, reason(error)) == (412, "conditionNotMet")

    moved = {**body, "start": {"dateTime": "2030-03-01T11:00:00+01:00"}}
    moved["end"] = {"dateTime": "2030-03-01T12:00:00+01:00"}
    update = events.update(calendarId="primary", eventId="booking0001", body=moved)
    update.headers["If-Match"] = created["etag"]
    updated = await run(update)
    assert updated["etag"] != created["etag"]
    assert updated["updated"] > created["updated"]
    assert updated["sequence"] == 1  # rescheduled
    assert updated["start"] == {"dateTime": "2030-03-01T11:00:00+01:00"}

    patch = events.patch(calendarId="primary", eventId="booking0001", body={"location": "Shop"})
    patch.headers["If-Match"] = updated["etag"]
    patched = await run(patch)
    assert patched["location"] == "Shop" and patched["summary"] == "Haircut"

    # A full update replaces: fields left out are cleared.
    replaced = await run(events.update(calendarId="primary", eventId="booking0001", body=moved))
    assert "location" not in replaced

    stale_delete = events.delete(calendarId="primary", eventId="booking0001")
    stale_delete.headers["If-Match"] = created["etag"]
    error = await http_error(stale_delete)
    assert (error.status_code, reason(error)) == (412, "conditionNotMet")
    delete = events.delete(calendarId="primary", eventId="booking0001")
    delete.headers["If-Match"] = replaced["etag"]
    assert await run(delete) == ""
    gone = await run(events.get(calendarId="primary", eventId="booking0001"))
    assert gone["status"] == "cancelled"
    error = await http_error(events.delete(calendarId="primary", eventId="booking0001"))
    assert (error.status_code, reason(error)) == (410, "deleted")
    error = await http_error(events.insert(calendarId="primary", body=body))
    assert (error.status_code, reason(error)) == (409, "duplicate")

    # Writing a cancelled event back with status confirmed restores it.
    restored = await run(
        events.patch(calendarId="primary", eventId="booking0001", body={"status": "confirmed"})
    )
    assert restored["status"] == "confirmed"
    assert fake.write_count(ANNA) == 6  # insert, update, patch, update, delete, patch

    error = await http_error(events.get(calendarId="primary", eventId="nosuchevent"))
    assert (error.status_code, reason(error)) == (404, "notFound")


async def test_insert_validation(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    good = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    cases = [
        ({**good, "id": "UPPER_case"}, "invalid", "Invalid resource id value."),
        ({**good, "id": "wxyz1"}, "invalid", "Invalid resource id value."),  # w-z not base32hex
        ({**good, "id": "abc"}, "invalid", "Invalid resource id value."),
        ({"summary": "x", "start": good["start"]}, "required", "Missing end time."),
        (
            timed("x", "2030-01-01T10:00:00Z", "2030-01-01T09:00:00Z"),
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            {**good, "recurrence": ["RRULE:FREQ=DAILY"]},
            "required",
            "Missing time zone definition for start time.",
        ),
        ({**good, "status": "maybe"}, "invalid", "Invalid value for: status"),
    ]
    for body, expected_reason, message in cases:
        error = await http_error(events.insert(calendarId="primary", body=body))
        assert (error.status_code, reason(error), error.reason) == (400, expected_reason, message)
    assert fake.events(ANNA) == []


async def test_import_updates_by_ical_uid(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    body = timed("Imported", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    error = await http_error(events.import_(calendarId="primary", body=body))
    assert (error.status_code, reason(error)) == (400, "required")
    body["iCalUID"] = "uid-1@gateway.test"
    body["organizer"] = {"email": "shop@example.com", "displayName": "Shop"}
    first = await run(events.import_(calendarId="primary", body=body))
    assert first["organizer"] == {"email": "shop@example.com", "displayName": "Shop"}
    second = await run(
        events.import_(calendarId="primary", body={**body, "summary": "Imported again"})
    )
    assert second["id"] == first["id"] and second["summary"] == "Imported again"
    assert [e["summary"] for e in fake.events(ANNA)] == ["Imported again"]
    found = await run(events.list(calendarId="primary", iCalUID="uid-1@gateway.test"))
    assert [e["id"] for e in found["items"]] == [first["id"]]


# --- listing and sync ---------------------------------------------------------------------------


async def list_all(events: Any, **params: Any) -> tuple[list[dict[str, Any]], str, int]:
    items: list[dict[str, Any]] = []
    pages = 0
    token = None
    while True:
        page = await run(events.list(calendarId="primary", pageToken=token, **params))
        pages += 1
        items.extend(page["items"])
        token = page.get("nextPageToken")
        if token is None:
            return items, page["nextSyncToken"], pages
        assert "nextSyncToken" not in page


async def test_full_and_incremental_sync(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    ids = []
    for hour in range(10, 15):
        body = timed(f"b{hour}", f"2030-01-01T{hour}:00:00Z", f"2030-01-01T{hour}:30:00Z")
        ids.append((await run(events.insert(calendarId="primary", body=body)))["id"])
    await run(events.delete(calendarId="primary", eventId=ids[0]))

    # A full list leaves cancelled events out; pages stay consistent while events change.
    first = await run(events.list(calendarId="primary", maxResults=2))
    assert [e["id"] for e in first["items"]] == ids[1:3]
    assert "nextSyncToken" not in first
    fake.user_update(ANNA, ids[4], {"summary": "changed in the Google UI"})
    fake.user_insert(ANNA, timed("late", "2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z"))
    rest = await run(
        events.list(calendarId="primary", maxResults=2, pageToken=first["nextPageToken"])
    )
    assert [e["id"] for e in rest["items"]] == ids[3:5]
    assert rest["items"][1]["summary"] == "b14"  # as of the first page
    sync_token = rest["nextSyncToken"]

    # Incremental: everything changed since, deleted events included.
    await run(events.delete(calendarId="primary", eventId=ids[1]))
    changes, sync_token, pages = await list_all(events, syncToken=sync_token, maxResults=1)
    assert pages == 3
    by_id = {e["id"]: e for e in changes}
    assert by_id[ids[4]]["summary"] == "changed in the Google UI"
    assert by_id[ids[1]]["status"] == "cancelled"
    assert set(by_id[ids[1]]) <= {"kind", "etag", "id", "status", "updated"}
    assert len(by_id) == 3  # the UI edit, the UI insert, the delete
    nothing, _, _ = await list_all(events, syncToken=sync_token)
    assert nothing == []

    shown, _, _ = await list_all(events, showDeleted=True)
    assert {e["id"] for e in shown if e["status"] == "cancelled"} == {ids[0], ids[1]}

    windowed, _, _ = await list_all(
        events, timeMin="2030-01-01T12:00:00Z", timeMax="2030-01-01T14:00:00Z", q="b12"
    )
    assert [e["summary"] for e in windowed] == ["b12"]

    for param, value in [
        ("timeMin", "2030-01-01T00:00:00Z"),
        ("timeMax", "2030-01-01T00:00:00Z"),
        ("updatedMin", "2030-01-01T00:00:00Z"),
        ("q", "b"),
        ("iCalUID", "x"),
        ("orderBy", "updated"),
        ("privateExtendedProperty", "k=v"),
        ("sharedExtendedProperty", "k=v"),
    ]:
        error = await http_error(
            events.list(calendarId="primary", syncToken=sync_token, **{param: value})
        )
        assert (error.status_code, reason(error)) == (400, "invalid"), param

    fake.expire_sync_tokens(ANNA)
    error = await http_error(events.list(calendarId="primary", syncToken=sync_token))
    assert error.status_code == 410
    assert error.error_details[0]["reason"] == "fullSyncRequired"
    assert error.error_details[0]["domain"] == "calendar"
    error = await http_error(events.list(calendarId="primary", syncToken="made-up"))
    assert (error.status_code, reason(error)) == (410, "fullSyncRequired")


async def test_extended_property_filters_and_partial_response(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    for n in range(3):
        body = timed(f"e{n}", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
        body["extendedProperties"] = {"private": {"resource": "anna", "n": str(n)}}
        await run(events.insert(calendarId="primary", body=body))
    page = await run(
        events.list(
            calendarId="primary",
            privateExtendedProperty=["resource=anna", "n=1"],
            fields="items(id,summary),nextSyncToken",
        )
    )
    assert set(page) == {"items", "nextSyncToken"}
    assert [set(e) for e in page["items"]] == [{"id", "summary"}]
    assert page["items"][0]["summary"] == "e1"
    error = await http_error(events.list(calendarId="primary", orderBy="startTime"))
    assert (error.status_code, reason(error)) == (400, "invalid")


async def test_recurring_series_instances_and_exceptions(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    # Weekly at 10:00 Berlin across the end of DST (2030-10-27).
    body = {
        "summary": "Weekly",
        "start": {"dateTime": "2030-10-15T10:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-10-15T11:00:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    }
    master = await run(events.insert(calendarId="primary", body=body))
    instances = (await run(events.instances(calendarId="primary", eventId=master["id"])))["items"]
    assert [i["id"] for i in instances] == [
        f"{master['id']}_20301015T080000Z",
        f"{master['id']}_20301022T080000Z",
        f"{master['id']}_20301029T090000Z",  # wall clock kept across DST
        f"{master['id']}_20301105T090000Z",
    ]
    assert all(i["recurringEventId"] == master["id"] for i in instances)
    assert instances[2]["originalStartTime"] == {
        "dateTime": "2030-10-29T10:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    second, third = instances[1]["id"], instances[2]["id"]
    await run(events.patch(calendarId="primary", eventId=second, body={"summary": "Moved"}))
    await run(events.delete(calendarId="primary", eventId=third))

    after = (await run(events.instances(calendarId="primary", eventId=master["id"])))["items"]
    assert [i["summary"] for i in after] == ["Weekly", "Moved", "Weekly"]
    with_deleted = await run(
        events.instances(calendarId="primary", eventId=master["id"], showDeleted=True)
    )
    cancelled = [i for i in with_deleted["items"] if i["status"] == "cancelled"]
    assert [i["id"] for i in cancelled] == [third]
    assert cancelled[0]["recurringEventId"] == master["id"]
    assert "originalStartTime" in cancelled[0]
    window = await run(
        events.instances(
            calendarId="primary",
            eventId=master["id"],
            timeMin="2030-10-20T00:00:00Z",
            timeMax="2030-11-01T00:00:00Z",
        )
    )
    assert [i["id"] for i in window["items"]] == [second]

    single = await run(events.list(calendarId="primary", singleEvents=True, orderBy="startTime"))
    assert [i["summary"] for i in single["items"]] == ["Weekly", "Moved", "Weekly"]
    # Without singleEvents: the series, its modified instance and (per the reference)
    # its cancelled instance too.
    series = await run(events.list(calendarId="primary"))
    assert [(i["id"], i["status"]) for i in series["items"]] == [
        (master["id"], "confirmed"),
        (second, "confirmed"),
        (third, "cancelled"),
    ]
    assert series["items"][0]["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4"]
    assert (await run(events.get(calendarId="primary", eventId=instances[3]["id"])))["start"] == {
        "dateTime": "2030-11-05T10:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }


async def test_all_day_series_and_bare_endpoint(fake: FakeGoogle) -> None:
    # api_endpoint=base_url + "/" makes googleapiclient drop /calendar/v3; both work.
    creds = fake.credentials(ANNA)
    from googleapiclient.discovery import build

    service = build(
        "calendar",
        "v3",
        static_discovery=True,
        credentials=creds,
        client_options={"api_endpoint": fake.base_url + "/"},
    )
    events = service.events()
    body = {
        "summary": "Holiday",
        "start": {"date": "2030-12-30"},
        "end": {"date": "2030-12-31"},
        "recurrence": ["RRULE:FREQ=DAILY;UNTIL=20310101", "EXDATE;VALUE=DATE:20301231"],
    }
    master = await run(events.insert(calendarId="primary", body=body))
    items = (await run(events.instances(calendarId="primary", eventId=master["id"])))["items"]
    assert [(i["id"], i["start"], i["end"]) for i in items] == [
        (f"{master['id']}_20301230", {"date": "2030-12-30"}, {"date": "2030-12-31"}),
        (f"{master['id']}_20310101", {"date": "2031-01-01"}, {"date": "2031-01-02"}),
    ]
    assert items[1]["originalStartTime"] == {"date": "2031-01-01"}
    assert (
        fake.requests[-1].path == f"/calendar/v3/calendars/primary/events/{master['id']}/instances"
    )
    error = await http_error(events.get(calendarId="primary", eventId=f"{master['id']}_20301231"))
    assert error.status_code == 404  # excluded by EXDATE


async def test_batch_with_outer_authorization_only(fake: FakeGoogle) -> None:
    access = fake.issue_access_token(ANNA)
    body = json.dumps(timed("raw", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z"))
    multipart = (
        "--xyz\r\nContent-Type: application/http\r\nContent-ID: <item1>\r\n\r\n"
        "POST /calendar/v3/calendars/primary/events HTTP/1.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}\r\n"
        "--xyz\r\nContent-Type: application/http\r\nContent-ID: <item2>\r\n\r\n"
        "GET /calendar/v3/calendars/nobody%40example.com/events HTTP/1.1\r\n\r\n"
        "--xyz--\r\n"
    )
    headers = {
        "Authorization": f"Bearer {access}",
        "Content-Type": "multipart/mixed; boundary=xyz",
    }
    async with (
        ClientSession() as http,
        http.post(fake.batch_uri, data=multipart, headers=headers) as response,
    ):
        assert response.status == 200
        assert response.content_type == "multipart/mixed"
        text = await response.text()
    assert "Content-ID: <response-item1>" in text and "Content-ID: <response-item2>" in text
    assert "HTTP/1.1 200 OK" in text and "HTTP/1.1 404 Not Found" in text
    assert [e["summary"] for e in fake.events(ANNA)] == ["raw"]


# --- push notifications -------------------------------------------------------------------------


class Receiver:
    """A webhook on loopback that records what Google's pushes carry."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self._arrived = asyncio.Condition()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        async with self._arrived:
            self.received.append(dict(request.headers))
            self._arrived.notify_all()
        return web.Response(status=200)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/google/notify", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/google/notify"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_watch_notifications_and_stop(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    async with Receiver() as receiver:
        channel = await run(
            events.watch(
                calendarId="primary",
                body={
                    "id": "chan-1",
                    "type": "web_hook",
                    "address": receiver.url,
                    "token": "secret-token",
                    "params": {"ttl": "3600"},
                },
            )
        )
        assert channel["kind"] == "api#channel" and channel["id"] == "chan-1"
        assert channel["token"] == "secret-token"
        expiration = int(channel["expiration"])
        assert 3590_000 < expiration - time.time() * 1000 <= 3600_000
        assert "chan-1" in fake.channels

        await receiver.wait_for(1)
        sync = receiver.received[0]
        assert sync["X-Goog-Resource-State"] == "sync"
        assert sync["X-Goog-Message-Number"] == "1"
        assert sync["X-Goog-Channel-ID"] == "chan-1"
        assert sync["X-Goog-Channel-Token"] == "secret-token"
        assert sync["X-Goog-Resource-ID"] == channel["resourceId"]
        assert sync["X-Goog-Resource-URI"] == channel["resourceUri"]
        assert sync["X-Goog-Channel-Expiration"].endswith(" GMT")
        assert receiver.bodies[0] == b""

        body = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
        await run(events.insert(calendarId="primary", body=body))
        await receiver.wait_for(2)
        assert receiver.received[1]["X-Goog-Resource-State"] == "exists"
        assert receiver.received[1]["X-Goog-Message-Number"] == "2"

        # A user edit in the UI notifies the same way; a lost push leaves a gap.
        fake.drop_notifications = True
        fake.user_insert(ANNA, body)
        fake.drop_notifications = False
        fake.user_insert(ANNA, body)
        await receiver.wait_for(3)
        assert receiver.received[2]["X-Goog-Message-Number"] == "4"
        assert [d.dropped for d in fake.deliveries] == [False, False, True, False]
        await fake.notifications_settled()
        assert [d.status for d in fake.deliveries] == [200, 200, None, 200]

        # A second channel without a token, on another calendar: no token header, and
        # changes elsewhere do not reach it.
        work = fake.add_calendar(ANNA, "Work")
        other = await run(
            events.watch(
                calendarId=work, body={"id": "chan-2", "type": "web_hook", "address": receiver.url}
            )
        )
        await receiver.wait_for(4)
        assert "X-Goog-Channel-Token" not in receiver.received[3]
        assert other["resourceId"] != channel["resourceId"]
        error = await http_error(
            events.watch(
                calendarId=work, body={"id": "chan-2", "type": "web_hook", "address": receiver.url}
            )
        )
        assert error.status_code == 400

        # channels.stop ends deliveries; unknown channels are 404.
        stop = fake.service(ANNA).channels().stop
        await run(stop(body={"id": "chan-1", "resourceId": channel["resourceId"]}))
        error = await http_error(stop(body={"id": "chan-1", "resourceId": channel["resourceId"]}))
        assert (error.status_code, reason(error)) == (404, "notFound")
        fake.expire_channel("chan-2")
        assert fake.channels == {}
        fake.user_insert(ANNA, body)
        fake.user_insert(work, body)
        await fake.notifications_settled()
        assert len(receiver.received) == 4


async def test_watch_to_an_http_address_is_refused_like_google_does() -> None:
    """Google's "Push notifications" guide: the receiving URL must use HTTPS; Google answers
    400 push.webhookUrlNotHttps. Only tests that opt in get a channel on http."""
    async with FakeGoogle.running() as strict:
        strict.add_account(ANNA)
        events = strict.service(ANNA).events()
        body = {"id": "c", "type": "web_hook", "address": "http://calendar.example.com/notify"}
        error = await http_error(events.watch(calendarId="primary", body=body))
        assert (error.status_code, reason(error)) == (400, "push.webhookUrlNotHttps")
        assert error.reason == "WebHook callback must be HTTPS"
        assert strict.channels == {}
        https = {**body, "address": "https://calendar.example.com/notify"}
        assert (await run(events.watch(calendarId="primary", body=https)))["id"] == "c"


async def test_failing_webhook_never_fails_the_api_call(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    await run(
        events.watch(
            calendarId="primary",
            body={"id": "c", "type": "web_hook", "address": "http://127.0.0.1:9/unreachable"},
        )
    )
    body = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    await run(events.insert(calendarId="primary", body=body))
    await fake.notifications_settled()
    assert [d.state for d in fake.deliveries] == ["sync", "exists"]
    assert all(d.status is None and d.error for d in fake.deliveries)


# --- batch ------------------------------------------------------------------------------------


async def test_batch_with_one_failing_part(fake: FakeGoogle) -> None:
    service = fake.service(ANNA)
    await run(service.calendarList().list())  # get an access token first
    results: dict[str, Any] = {}

    def callback(request_id: str, response: Any, exception: HttpError | None) -> None:
        results[request_id] = exception if exception is not None else response

    batch = fake.new_batch(callback)
    body = timed("batched", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    batch.add(service.events().insert(calendarId="primary", body=body), request_id="a")
    batch.add(service.events().get(calendarId="primary", eventId="missing"), request_id="b")
    batch.add(
        service.events().insert(calendarId="primary", body={**body, "summary": "Zoë's"}),
        request_id="c",
    )
    await asyncio.to_thread(batch.execute)

    assert results["a"]["summary"] == "batched"
    assert results["c"]["summary"] == "Zoë's"
    assert isinstance(results["b"], HttpError)
    assert (results["b"].status_code, reason(results["b"])) == (404, "notFound")
    assert sorted(e["summary"] for e in fake.events(ANNA)) == ["Zoë's", "batched"]
    assert fake.batch_count == 1 and fake.write_count(ANNA) == 2

    # Parts whose access token expired get 401, and the client refreshes and resends.
    fake.expire_access_tokens()
    again: dict[str, Any] = {}
    batch = fake.new_batch(lambda rid, resp, exc: again.update({rid: exc or resp}))
    batch.add(service.events().list(calendarId="primary"), request_id="list")
    await asyncio.to_thread(batch.execute)
    assert len(again["list"]["items"]) == 2


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ALL_FAULTS, ids=lambda f: f"{f.status}-{f.reason}")
async def test_each_fault_surfaces_and_changes_nothing(fake: FakeGoogle, fault: Fault) -> None:
    events = fake.service(ANNA).events()
    await run(events.list(calendarId="primary"))  # token refresh is not an API call
    fake.fail_next(1, fault.status, fault.reason)
    body = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z", id="faulted01")
    error = await http_error(events.insert(calendarId="primary", body=body))
    assert error.status_code == fault.status
    assert error.error_details[0] == {
        "domain": fault.domain,
        "reason": fault.reason,
        "message": fault.message,
    }
    assert fake.events(ANNA) == [] and fake.write_count(ANNA) == 0
    await run(events.insert(calendarId="primary", body=body))  # the retry goes through
    assert [e["id"] for e in fake.events(ANNA)] == ["faulted01"]


async def test_random_faults_are_seeded_and_targeted(fake: FakeGoogle) -> None:
    def draws(seed: int) -> list[str | None]:
        faults = Faults(seed)
        faults.rate = 0.3
        picks = [faults.take("api", "GET") for _ in range(40)]
        return [f.reason if f else None for f in picks]

    assert draws(7) == draws(7)
    assert 0 < sum(d is not None for d in draws(7)) < 40

    events = fake.service(ANNA).events()
    await run(events.list(calendarId="primary"))
    fake.faults.rate = 1.0
    fake.faults.kinds = [RATE_LIMIT_429]
    error = await http_error(events.list(calendarId="primary"))
    assert (error.status_code, reason(error)) == (429, "rateLimitExceeded")
    fake.faults.rate = 0.0

    # Queued faults can aim at one method, or at the token endpoint.
    fake.fail_next(1, 500, "backendError", method="POST")
    await run(events.list(calendarId="primary"))
    body = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    assert (await http_error(events.insert(calendarId="primary", body=body))).status_code == 500
    fake.fail_next(1, 503, "backendError", target="token")
    refresh_token = fake.issue_refresh_token(ANNA)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
    }
    async with ClientSession() as http:
        async with http.post(fake.token_uri, data=form) as response:
            assert response.status == 503
        async with http.post(fake.token_uri, data=form) as response:
            assert response.status == 200

    fake.latency = 0.05
    started = time.monotonic()
    await run(events.list(calendarId="primary"))
    assert time.monotonic() - started >= 0.05


async def test_request_log_counts_calls(fake: FakeGoogle) -> None:
    events = fake.service(ANNA).events()
    body = timed("x", "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    created = await run(events.insert(calendarId="primary", body=body))
    await run(events.list(calendarId="primary", showDeleted=True))
    fake.user_delete(ANNA, created["id"])
    assert [(r.method, r.path, r.account) for r in fake.requests] == [
        ("POST", "/calendar/v3/calendars/primary/events", ANNA),
        ("GET", "/calendar/v3/calendars/primary/events", ANNA),
    ]
    assert fake.requests[1].query["showDeleted"] == "true"
    assert fake.write_count(ANNA) == 1  # the user's delete is not an API write
    assert fake.event(ANNA, created["id"])["status"] == "cancelled"
    assert fake.events(ANNA) == [] and len(fake.events(ANNA, include_cancelled=True)) == 1
    with pytest.raises(KeyError):
        fake.event(ANNA, "unknown")


def test_fault_kinds_match_googles_error_guide() -> None:
    assert {(f.status, f.reason, f.domain) for f in ALL_FAULTS} == {
        (429, "rateLimitExceeded", "usageLimits"),
        (403, "userRateLimitExceeded", "usageLimits"),
        (403, "rateLimitExceeded", "usageLimits"),
        (403, "quotaExceeded", "usageLimits"),
        (403, "dailyLimitExceeded", "usageLimits"),
        (500, "backendError", "global"),
        (503, "backendError", "global"),
    }
    assert json.loads(json.dumps(ALL_FAULTS[0].error().body()))["error"]["code"] == 429

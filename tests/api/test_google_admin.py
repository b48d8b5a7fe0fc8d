"""The Google mirror's admin API (invite, status, sync log, disconnect)
through the real app over a YAML file with a google section.

None of these endpoints calls Google, so no fake Google runs: the Google
URLs point at a closed loopback port, and the consent redirect is checked
without following it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import load_settings
from google_bridge.tokens import new_key
from tests.backends import Store
from tests.conftest import basic, settings_yaml

Client = TestClient[Any, Any]

AUTH_URI = "http://accounts.google.test/o/oauth2/v2/auth"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, nothing may be called


def google_yaml(
    db: Path | str, *, mail: bool = False, smtp_port: int = 9, outbox_poll: float = 5.0
) -> str:
    """The shared test settings plus a google section (and, if asked, a
    mail section); the room's own google: turns its direction off."""
    text = settings_yaml(db, mail=False).replace(
        "    email: room1@example.com\n",
        '    email: room1@example.com\n    google: {direction: "off"}\n',
    )
    text += f"""\
google:
  client_id: test-client.apps.googleusercontent.com
  client_secret: test-client-secret
  token_keys: [{new_key()}]
  api_endpoint: {CLOSED}/
  auth_uri: {AUTH_URI}
  token_uri: {CLOSED}/token
  push_notifications: false
  invite_ttl_hours: 24
"""
    if mail:
        # By default nothing listens on the SMTP port: the mail stays in the
        # outbox, where a test can read it, and its one failed attempt is
        # retried only in an hour.
        text += f"""\
mail:
  smtp_host: 127.0.0.1
  smtp_port: {smtp_port}
  security: none
  from_address: bookings@gateway.test
outbox:
  poll_interval: {outbox_poll}
  initial_retry_delay: 3600
"""
    return text


MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def google_client(
    tmp_path: Path,
    store: Store,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> MakeClient:
    async def make(*, mail: bool = False) -> Client:
        path = tmp_path / "google.yaml"
        path.write_text(google_yaml(store.url, mail=mail), encoding="utf-8")
        return await aiohttp_client(create_app(load_settings(path)))

    return make


async def invite(client: Client, resource: str, headers: dict[str, str]) -> Any:
    resp = await client.post(f"/api/v1/resources/{resource}/google/invite", headers=headers)
    return resp.status, await resp.json()


async def status_of(client: Client, resource: str, headers: dict[str, str]) -> Any:
    resp = await client.get("/api/v1/sync/status", headers=headers)
    assert resp.status == 200
    return next(r for r in (await resp.json())["resources"] if r["resource"] == resource)


async def test_invite_gives_a_working_connect_link_and_marks_the_resource_invited(
    google_client: MakeClient, api_headers: dict[str, str]
) -> None:
    client = await google_client()
    before = await status_of(client, "anna", api_headers)
    assert before["status"] == "not_invited"

    status, body = await invite(client, "anna", api_headers)
    assert status == 201, body
    assert set(body) == {"resource", "url", "expires", "mailed"}
    assert body["resource"] == "anna"
    assert body["mailed"] is False  # no mail section: the admin hands the link over
    assert body["url"].startswith("http://gateway.test/google/connect/")
    expires = datetime.fromisoformat(body["expires"])
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)

    # The link is the real thing: it starts Google's consent for Anna.
    resp = await client.get(urlsplit(body["url"]).path, allow_redirects=False)
    assert resp.status == 302
    target = urlsplit(resp.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == AUTH_URI
    query = parse_qs(target.query)
    assert query["redirect_uri"] == ["http://gateway.test/google/callback"]
    assert query["login_hint"] == ["anna@example.com"]

    after = await status_of(client, "anna", api_headers)
    assert after == {
        "resource": "anna",
        "direction": "two_way",
        "details": "full",
        "status": "invited",
        "summary": "invited",
        "account": None,
        "calendar": None,
        "imported": 0,
        "warning": None,
        "last_sync": None,
        "last_sync_age_seconds": None,
        "connected_at": None,
    }


async def test_each_invitation_is_a_new_one_time_link(
    google_client: MakeClient, api_headers: dict[str, str]
) -> None:
    client = await google_client()
    _, first = await invite(client, "anna", api_headers)
    _, second = await invite(client, "anna", api_headers)
    assert first["url"] != second["url"]
    for body in (first, second):
        resp = await client.get(urlsplit(body["url"]).path, allow_redirects=False)
        assert resp.status == 302
    forged = await client.get("/google/connect/not-a-real-invitation", allow_redirects=False)
    assert forged.status == 410


async def test_invite_with_mail_queues_the_link_for_the_resource(
    google_client: MakeClient, api_headers: dict[str, str], store: Store
) -> None:
    client = await google_client(mail=True)
    status, body = await invite(client, "anna", api_headers)
    assert status == 201, body
    assert body["mailed"] is True
    rows = store.rows("SELECT payload FROM outbox WHERE kind = 'mail'")
    assert len(rows) == 1
    mail = json.loads(rows[0]["payload"])
    assert mail["to"] == "anna@example.com"
    # Worded when sent, in the resource's language (gateway.mail.notice_texts).
    assert (mail["notice"], mail["values"]["url"]) == ("google_invite", body["url"])


async def test_readers_may_not_invite_and_hidden_resources_are_not_found(
    google_client: MakeClient, reader_headers: dict[str, str]
) -> None:
    client = await google_client()
    status, problem = await invite(client, "anna", reader_headers)  # granted read only
    assert status == 403
    assert problem["detail"] == "read-only access to resource 'anna'"
    hidden, _ = await invite(client, "bob", reader_headers)  # not granted at all
    unknown, _ = await invite(client, "nobody", reader_headers)
    assert hidden == unknown == 404
    # Nothing happened to Anna.
    assert (await status_of(client, "anna", reader_headers))["status"] == "not_invited"


async def test_unknown_resource_is_404(
    google_client: MakeClient, api_headers: dict[str, str]
) -> None:
    client = await google_client()
    status, problem = await invite(client, "nobody", api_headers)
    assert status == 404
    assert problem["status"] == 404
    log = await client.get("/api/v1/resources/nobody/sync/log", headers=api_headers)
    assert log.status == 404
    gone = await client.delete("/api/v1/resources/nobody/google", headers=api_headers)
    assert gone.status == 404


async def test_without_google_invite_is_a_409_that_says_why(
    client: Client, api_headers: dict[str, str]
) -> None:
    resp = await client.post("/api/v1/resources/anna/google/invite", headers=api_headers)
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["title"] == "Google mirror disabled"
    assert "Google is not configured" in problem["detail"]
    # Status still answers: every resource is off.
    listed = await client.get("/api/v1/sync/status", headers=api_headers)
    resources = (await listed.json())["resources"]
    assert {r["resource"]: r["direction"] for r in resources} == {
        "anna": "off",
        "room": "off",
        "bob": "off",
    }


async def test_direction_off_is_a_409_naming_the_resource(
    google_client: MakeClient, api_headers: dict[str, str]
) -> None:
    client = await google_client()
    status, problem = await invite(client, "room", api_headers)
    assert status == 409
    assert "'room'" in problem["detail"] and "direction off" in problem["detail"]
    room = await status_of(client, "room", api_headers)
    assert (room["direction"], room["status"]) == ("off", "not_invited")
    assert room["summary"].startswith("off")


async def test_status_lists_only_what_the_caller_may_see(
    google_client: MakeClient, api_headers: dict[str, str], reader_headers: dict[str, str]
) -> None:
    client = await google_client()
    everything = await client.get("/api/v1/sync/status", headers=api_headers)
    assert [r["resource"] for r in (await everything.json())["resources"]] == [
        "anna",
        "room",
        "bob",
    ]
    mine = await client.get("/api/v1/sync/status", headers=reader_headers)
    assert [r["resource"] for r in (await mine.json())["resources"]] == ["anna"]
    anonymous = await client.get("/api/v1/sync/status")
    assert anonymous.status == 401


async def test_sync_log_lists_the_invitation_newest_first_in_pages(
    google_client: MakeClient, api_headers: dict[str, str], reader_headers: dict[str, str]
) -> None:
    client = await google_client()
    for _ in range(3):
        assert (await invite(client, "anna", api_headers))[0] == 201

    resp = await client.get("/api/v1/resources/anna/sync/log", headers=reader_headers)
    assert resp.status == 200  # reading the log needs read access only
    page = await resp.json()
    assert page["next_before"] is None
    entries = page["entries"]
    assert len(entries) == 3
    assert [e["message"] for e in entries] == ["invitation to connect Google created"] * 3
    assert entries[0]["kind"] == "info"
    assert entries[0]["booking_id"] is None and entries[0]["event_id"] is None
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, reverse=True)
    datetime.fromisoformat(entries[0]["at"])

    seen: list[int] = []
    params: dict[str, int] = {"limit": 2}
    while True:
        resp = await client.get(
            "/api/v1/resources/anna/sync/log", params=params, headers=api_headers
        )
        body = await resp.json()
        seen += [e["id"] for e in body["entries"]]
        if body["next_before"] is None:
            break
        params["before"] = body["next_before"]
    assert seen == ids

    other = await client.get("/api/v1/resources/bob/sync/log", headers=api_headers)
    assert (await other.json()) == {"entries": [], "next_before": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("before=0", "before"),
        ("before=-5", "before"),
        ("before=abc", "before"),
    ],
)
async def test_sync_log_refuses_bad_paging_values(
    google_client: MakeClient, api_headers: dict[str, str], query: str, field: str
) -> None:
    client = await google_client()
    resp = await client.get(f"/api/v1/resources/anna/sync/log?{query}", headers=api_headers)
    assert resp.status == 400
    problem = await resp.json()
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_sync_log_accepts_the_limits(
    google_client: MakeClient, api_headers: dict[str, str]
) -> None:
    client = await google_client()
    for query in ("limit=1", "limit=500", "before=1"):
        resp = await client.get(f"/api/v1/resources/anna/sync/log?{query}", headers=api_headers)
        assert resp.status == 200, query


async def test_disconnect_needs_write_access_and_disables(
    google_client: MakeClient,
    api_headers: dict[str, str],
    reader_headers: dict[str, str],
) -> None:
    client = await google_client()
    assert (await invite(client, "anna", api_headers))[0] == 201

    refused = await client.delete("/api/v1/resources/anna/google", headers=reader_headers)
    assert refused.status == 403
    hidden = await client.delete("/api/v1/resources/bob/google", headers=reader_headers)
    assert hidden.status == 404
    assert (await status_of(client, "anna", api_headers))["status"] == "invited"

    resp = await client.delete(
        "/api/v1/resources/anna/google", headers=basic("admin", "admin-secret-pw")
    )
    assert resp.status == 204
    assert await resp.read() == b""
    anna = await status_of(client, "anna", api_headers)
    assert anna["status"] == "disabled"
    assert "by the admin" in anna["summary"]
    log = await client.get("/api/v1/resources/anna/sync/log?limit=1", headers=api_headers)
    assert (await log.json())["entries"][0]["message"] == "disconnected: by the admin"

    # Again, and for a resource never invited: nothing to do, still 204.
    for resource in ("anna", "bob"):
        again = await client.delete(f"/api/v1/resources/{resource}/google", headers=api_headers)
        assert again.status == 204
    assert (await status_of(client, "bob", api_headers))["status"] == "not_invited"

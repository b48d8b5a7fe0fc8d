"""Who may see and change what, through the real app."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import READER_PASSWORD, basic
from tests.samples import SLOT

Client = TestClient[Any, Any]


async def test_no_or_wrong_credentials_get_401_with_a_challenge(client: Client) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        basic("admin", "wrong password"),
        basic("nobody", "whatever"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Digest abc"},
    ):
        resp = await client.get("/api/v1/resources", headers=headers)
        assert resp.status == 401, headers
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
        assert (await resp.json())["status"] == 401


async def test_basic_auth_user_with_full_access(
    client: Client, admin_basic: dict[str, str]
) -> None:
    resp = await client.get("/api/v1/resources", headers=admin_basic)
    assert resp.status == 200
    body = await resp.json()
    assert [r["id"] for r in body["resources"]] == ["anna", "room", "bob"]
    assert all(r["writable"] for r in body["resources"])
    assert body["resources"][1]["timezone"] == "UTC"  # the default fills in


async def test_read_only_user_sees_only_granted_resources(client: Client) -> None:
    headers = basic("reader", READER_PASSWORD)
    body = await (await client.get("/api/v1/resources", headers=headers)).json()
    assert body["resources"] == [
        {"id": "anna", "name": "Anna Schmidt", "timezone": "Europe/Berlin", "writable": False}
    ]
    # A resource the caller may not see looks exactly like one that does not exist.
    hidden = await client.get("/api/v1/resources/bob", headers=headers)
    missing = await client.get("/api/v1/resources/ghost", headers=headers)
    assert hidden.status == missing.status == 404
    assert "bob" not in (await missing.text())


async def test_read_only_token_cannot_book(
    client: Client, reader_headers: dict[str, str], api_headers: dict[str, str]
) -> None:
    resp = await client.post("/api/v1/bookings", json=SLOT, headers=reader_headers)
    assert resp.status == 403
    hidden = await client.post(
        "/api/v1/bookings", json={**SLOT, "resource": "bob"}, headers=reader_headers
    )
    assert hidden.status == 422
    assert (await hidden.json())["errors"][0]["field"] == "resource"

    created = await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)
    url = f"/api/v1/bookings/{(await created.json())['id']}"
    assert (await client.get(url, headers=reader_headers)).status == 200
    assert (await client.delete(url, headers=reader_headers)).status == 403
    assert (await client.patch(url, json={"title": "x"}, headers=reader_headers)).status == 403

    bob = await client.post(
        "/api/v1/bookings", json={**SLOT, "resource": "bob"}, headers=api_headers
    )
    bob_url = f"/api/v1/bookings/{(await bob.json())['id']}"
    assert (await client.get(bob_url, headers=reader_headers)).status == 404


async def test_bookings_without_a_resource_are_those_of_every_resource_the_caller_sees(
    client: Client, reader_headers: dict[str, str], api_headers: dict[str, str]
) -> None:
    """GET /api/v1/bookings without ``resource``: the API token sees Anna's
    and Bob's, the reader (Anna only) only Anna's; by start."""
    window = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}
    early = {**SLOT, "resource": "bob", "start": "2026-12-01T07:00:00+01:00"}
    early["end"] = "2026-12-01T08:00:00+01:00"
    bob = await (await client.post("/api/v1/bookings", json=early, headers=api_headers)).json()
    anna = await (await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)).json()

    async def listed(headers: dict[str, str]) -> list[str]:
        resp = await client.get("/api/v1/bookings", params=window, headers=headers)
        assert resp.status == 200, await resp.text()
        return [b["id"] for b in (await resp.json())["bookings"]]

    assert await listed(api_headers) == [bob["id"], anna["id"]]
    assert await listed(reader_headers) == [anna["id"]]

"""The OpenAPI document describes the routes the app really serves."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def test_openapi_is_public_and_documents_every_route(
    client: Client, app: web.Application
) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    api = next(
        r._app
        for r in app.router.resources()
        if getattr(r, "_app", None) and r.canonical == "/api/v1"
    )
    served = set()
    for route in api.router.routes():
        if route.method == "HEAD" or route.name == "openapi":
            continue
        path = re.sub(r"^/api/v1", "", route.resource.canonical)
        served.add((route.method, path))
    assert served == documented

    schemas = doc["components"]["schemas"]
    for ops in doc["paths"].values():
        for op in ops.values():
            for answer in op["responses"].values():
                for media in answer.get("content", {}).values():
                    ref = media["schema"]["$ref"].rsplit("/", 1)[-1]
                    assert ref in schemas
    assert set(schemas["BookingCreate"]["required"]) == {"resource", "start", "end", "title"}


async def test_openapi_documents_the_google_admin_endpoints(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]

    def answers(path: str, method: str) -> dict[str, Any]:
        responses: dict[str, Any] = paths[path][method]["responses"]
        return responses

    def schema_of(answer: dict[str, Any]) -> str:
        (media,) = answer["content"].values()
        ref: str = media["schema"]["$ref"]
        return ref.rsplit("/", 1)[-1]

    invite = answers("/resources/{resource_id}/google/invite", "post")
    assert set(invite) == {"201", "401", "403", "404", "409"}
    assert schema_of(invite["201"]) == "GoogleInviteOut"
    assert set(schemas["GoogleInviteOut"]["required"]) == {"resource", "url", "expires", "mailed"}

    disconnect = answers("/resources/{resource_id}/google", "delete")
    assert set(disconnect) == {"204", "401", "403", "404"}
    assert "content" not in disconnect["204"]

    status = answers("/sync/status", "get")
    assert schema_of(status["200"]) == "SyncStatusList"
    assert set(schemas["SyncStatusOut"]["required"]) == {
        "resource",
        "direction",
        "details",
        "status",
        "summary",
        "account",
        "calendar",
        "imported",
        "warning",
        "last_sync",
        "last_sync_age_seconds",
        "connected_at",
    }
    assert schemas["ConnectionStatus"]["enum"] == [
        "not_invited",
        "invited",
        "importing",
        "synced",
        "warning",
        "disabled",
    ]

    log = paths["/resources/{resource_id}/sync/log"]["get"]
    assert set(log["responses"]) == {"200", "400", "401", "404"}
    assert schema_of(log["responses"]["200"]) == "SyncLog"
    limit = next(p for p in log["parameters"] if p["name"] == "limit")
    assert (limit["required"], limit["schema"]["minimum"], limit["schema"]["maximum"]) == (
        False,
        1,
        500,
    )
    assert set(schemas["SyncLogEntryOut"]["required"]) == {
        "id",
        "at",
        "kind",
        "message",
        "booking_id",
        "event_id",
    }
    for answer in (*invite.values(), *log["responses"].values()):
        if answer.get("content", {}).get("application/problem+json"):
            assert schema_of(answer) == "Problem"


async def test_openapi_documents_inbound_replies_and_booking_links(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]

    itip = paths["/itip"]["post"]
    assert set(itip["requestBody"]["content"]) == {"text/calendar", "message/rfc822"}
    assert set(itip["responses"]) == {"200", "400", "401", "403", "413", "415"}
    (ok,) = itip["responses"]["200"]["content"].values()
    assert ok["schema"]["$ref"].rsplit("/", 1)[-1] == "ReplyResults"
    assert set(schemas["ReplyResult"]["required"]) == {
        "uid",
        "attendee",
        "partstat",
        "applied",
        "reason",
    }

    booking = schemas["BookingOut"]
    assert "links" in booking["required"]
    # links is nullable: a CalendarLinksOut or null (no link key, or cancelled).
    variants = booking["properties"]["links"]["anyOf"]
    assert {"$ref": "#/components/schemas/CalendarLinksOut"} in variants
    assert {"type": "null"} in variants
    assert set(schemas["CalendarLinksOut"]["required"]) == {
        "google",
        "outlook",
        "office365",
        "yahoo",
        "ics",
    }

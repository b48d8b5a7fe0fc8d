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

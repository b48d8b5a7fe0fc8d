"""Health, metrics and request logs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp.test_utils import TestClient

from gateway.core.model import OutboxEffect
from gateway.core.outbox_payloads import GooglePushPayload
from gateway.settings import load_settings
from gateway.web.health import WRITE_CHECK
from gateway.web.keys import REPOSITORY
from gateway.web.observability import metrics_access
from tests.conftest import ADMIN_PASSWORD, ClientWith, basic, settings_yaml
from tests.samples import SLOT

Client = TestClient[Any, Any]
METRICS_TOKEN = "metrics-scraper-token-0123456789"


@pytest.fixture
async def public_metrics(client_with: ClientWith) -> Client:
    return await client_with("  metrics: public\n")


async def queue_stuck_item(client: Client) -> None:
    """An outbox item no handler takes (a Google push, and Google is not
    configured here): it is retried (with backoff) and never done, so it
    stays pending whatever the workers do meanwhile."""
    async with client.app[REPOSITORY].transaction() as tx:
        await tx.enqueue(OutboxEffect("anna", "x", GooglePushPayload()))


async def test_healthz_reports_database_and_outbox(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {
        "status": "ok",
        "database": "ok",
        "storage": "ok",
        "outbox_pending": 0,
        "outbox_sending": 0,
        "outbox_failed": 0,
    }
    await queue_stuck_item(client)
    assert (await (await client.get("/healthz")).json())["outbox_pending"] == 1


async def test_metrics_count_requests_by_route_template(
    public_metrics: Client, api_headers: dict[str, str]
) -> None:
    client = public_metrics
    created = await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)
    booking_id = (await created.json())["id"]
    await queue_stuck_item(client)
    await client.get(f"/api/v1/bookings/{booking_id}", headers=api_headers)
    await client.post("/api/v1/bookings", json=SLOT, headers=api_headers)  # 409
    await client.get("/feeds/anna.ics", params={"token": "anna-feed-token-0123456789abcdef"})

    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    assert (
        'calgateway_http_requests_total{method="GET",route="/api/v1/bookings/{booking_id}",'
        'status="200"} 1.0' in text
    )
    assert 'calgateway_booking_changes_total{action="created"} 1.0' in text
    assert "calgateway_booking_conflicts_total 1.0" in text
    pending = await client.app[REPOSITORY].pending_outbox()
    assert pending >= 1  # at least the stuck item
    assert f"calgateway_outbox_pending {float(pending)}" in text
    assert booking_id not in text
    assert "anna-feed-token" not in text


async def test_dav_requests_are_counted_by_route_template(public_metrics: Client) -> None:
    client = public_metrics
    auth = basic("admin", ADMIN_PASSWORD)
    await client.request("PROPFIND", "/dav/calendars/anna/", headers={**auth, "Depth": "0"})
    await client.request("MOVE", "/dav/calendars/anna/x.ics", headers=auth)
    text = await (await client.get("/metrics")).text()
    assert (
        'calgateway_http_requests_total{method="PROPFIND",route="/dav/{path}",status="207"} 1.0'
        in text
    )
    assert 'method="MOVE",route="/dav/{path}",status="405"' in text
    assert "x.ics" not in text and "anna" not in text


async def test_metrics_are_off_by_default(client: Client) -> None:
    """The scrape lists every route and its traffic: nobody sees it unless
    the operator opens it (server.metrics)."""
    resp = await client.get("/metrics")
    assert resp.status == 404
    assert "calgateway_" not in await resp.text()
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    assert (await client.get("/metrics", headers=bearer)).status == 404


async def test_metrics_behind_a_token(client_with: ClientWith) -> None:
    client = await client_with(f"  metrics: token\n  metrics_token: {METRICS_TOKEN}\n")
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Bearer {METRICS_TOKEN}x"},
        {"Authorization": f"Basic {METRICS_TOKEN}"},
        {"Authorization": "Bearer "},
        basic("admin", ADMIN_PASSWORD),  # a CalDAV user is not a scraper
    ):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status == 401, headers
        assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
        assert "calgateway_" not in await refused.text()
    for scheme in ("Bearer", "bearer"):
        scraped = await client.get(
            "/metrics", headers={"Authorization": f"{scheme} {METRICS_TOKEN}"}
        )
        assert scraped.status == 200
        assert "calgateway_http_requests_total" in await scraped.text()


async def test_public_metrics_need_no_credentials(public_metrics: Client) -> None:
    await public_metrics.get("/healthz")
    resp = await public_metrics.get("/metrics")
    assert resp.status == 200
    assert 'route="/healthz"' in await resp.text()


def test_metrics_token_is_required_for_token_access(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(settings_yaml(tmp_path / "b.sqlite3", server="  metrics: token\n"))
    with pytest.raises(Exception, match="metrics_token"):
        load_settings(config)


@pytest.mark.parametrize(
    ("setting", "token", "authorization", "access"),
    [
        ("off", None, None, "hidden"),
        ("off", METRICS_TOKEN, f"Bearer {METRICS_TOKEN}", "hidden"),
        ("public", None, None, "allow"),
        ("public", METRICS_TOKEN, "Bearer wrong", "allow"),
        ("token", METRICS_TOKEN, f"Bearer {METRICS_TOKEN}", "allow"),
        ("token", METRICS_TOKEN, f"  BEARER   {METRICS_TOKEN}  ", "allow"),
        ("token", METRICS_TOKEN, None, "unauthorized"),
        ("token", METRICS_TOKEN, "", "unauthorized"),
        ("token", METRICS_TOKEN, "Bearer", "unauthorized"),
        ("token", METRICS_TOKEN, f"Bearer {METRICS_TOKEN[:-1]}", "unauthorized"),
        ("token", METRICS_TOKEN, f"Token {METRICS_TOKEN}", "unauthorized"),
        ("token", None, f"Bearer {METRICS_TOKEN}", "hidden"),  # settings refuse this
    ],
)
def test_who_may_read_metrics(
    setting: Literal["off", "token", "public"],
    token: str | None,
    authorization: str | None,
    access: str,
) -> None:
    assert metrics_access(setting, token, authorization) == access


async def test_concurrent_health_checks_share_one_write_probe(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many monitors polling /healthz at once cost the database writer one
    probe, not one each (booking writes wait behind every probe)."""
    repository, check = client.app[REPOSITORY], client.app[WRITE_CHECK]
    probe, storage = repository.check_writable, check.storage
    all_waiting, release = asyncio.Event(), asyncio.Event()
    callers = probes = 0

    async def counted_storage(repo: Any) -> str:
        nonlocal callers
        callers += 1
        if callers == 20:
            all_waiting.set()
        return await storage(repo)

    async def held_probe() -> None:
        nonlocal probes
        probes += 1
        await release.wait()
        await probe()

    monkeypatch.setattr(check, "storage", counted_storage)
    monkeypatch.setattr(repository, "check_writable", held_probe)
    answers = [asyncio.ensure_future(client.get("/healthz")) for _ in range(20)]
    async with asyncio.timeout(10):
        await all_waiting.wait()
        release.set()
        statuses = [(await a).status for a in answers]
    assert statuses == [200] * 20
    assert probes == 1

"""Structured logs (one JSON line per request), Prometheus metrics, and who
may read them."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .forwarded import CLIENT_ADDRESS

ACCESS_LOGGER = logging.getLogger("calgateway.access")

# The *_created series double the scrape size and no dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to grep, easy for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _JSON.encode(entry)


# One encoder for every line (``json.dumps`` with options builds a new one per call).
_JSON = json.JSONEncoder(default=str, ensure_ascii=False)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """For people: the message followed by its fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        if not fields:
            return line
        head, newline, trace = line.partition("\n")
        return f"{head} {fields}{newline}{trace}"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    # Neither formatter shows the caller's file and line, thread or process,
    # so a record need not look them up (walking the stack for the caller is
    # the largest part of making a record, done once per request for the
    # access log; the logging docs' "Optimization" section names these).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def route_label(request: web.BaseRequest) -> str:
    """The matched route's template (``/api/v1/bookings/{id}``), never the raw
    path: raw paths would leak ids into metrics and explode label cardinality."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", None)
    return canonical if isinstance(canonical, str) else "unmatched"


class AccessLogger(AbstractAccessLogger):
    """Logs method, path (without the query string: feed tokens live there),
    route, status and duration."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "route": route_label(request),
                "status": response.status,
                "duration_ms": round(time * 1000, 2),
                # Behind a trusted proxy, the client it forwarded for.
                "remote": request.get(CLIENT_ADDRESS, request.remote),
                "bytes": response.body_length,
            },
        )


class Metrics:
    """The gateway's Prometheus metrics, in a registry of their own per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "calgateway_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "calgateway_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=self.registry,
        )
        self.bookings = Counter(
            "calgateway_booking_changes",
            "Booking changes committed through the API",
            ["action"],
            registry=self.registry,
        )
        self.conflicts = Counter(
            "calgateway_booking_conflicts",
            "Bookings refused because the time was taken",
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "calgateway_outbox_pending",
            "Side effects (invitations, Google pushes) waiting to run",
            registry=self.registry,
        )
        # gateway.web.admission: what the gate did with each heavy request.
        self.heavy = Counter(
            "calgateway_heavy_requests",
            "Heavy requests (calendar listings, reports, feed renders) by outcome: "
            "admitted (given a slot), queued (had to wait first), refused (503), "
            "abandoned (the client left while it waited)",
            ["outcome"],
            registry=self.registry,
        )
        self.heavy_running = Gauge(
            "calgateway_heavy_running",
            "Heavy requests being worked on now",
            registry=self.registry,
        )
        self.heavy_waiting = Gauge(
            "calgateway_heavy_waiting",
            "Heavy requests waiting for a turn now",
            registry=self.registry,
        )
        # gateway.core.freshness: bookings look at Google first past
        # google.freshness_seconds. Only connected calendars synced at least
        # once have a value.
        self.google_sync_age = Gauge(
            "calgateway_google_sync_age_seconds",
            "Seconds since the last successful sync of each resource's Google calendar",
            ["resource"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_middleware(metrics: Metrics) -> Middleware:
    # The labelled series each request lands in, found once per label set:
    # ``labels()`` checks and locks on every call. One entry per series the
    # registry itself holds: as many as the label sets seen (route
    # templates and statuses are few; the method is the token the client
    # sent, so a client inventing methods grows both alike).
    counted: dict[tuple[str, str, int], Counter] = {}
    timed: dict[tuple[str, str], Histogram] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            method, route = request.method, route_label(request)
            key = (method, route, status)
            count = counted.get(key)
            if count is None:
                count = counted[key] = metrics.requests.labels(method, route, str(status))
            count.inc()
            duration = timed.get(key[:2])
            if duration is None:
                duration = timed[key[:2]] = metrics.duration.labels(method, route)
            duration.observe(time.perf_counter() - started)

    return middleware


METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

MetricsAccess = Literal["allow", "hidden", "unauthorized"]


def metrics_access(
    setting: Literal["off", "token", "public"], token: str | None, authorization: str | None
) -> MetricsAccess:
    """Who may read ``/metrics`` (``server.metrics``): nobody ("hidden", a 404
    like any unknown path: the scrape lists every route and its traffic),
    the holder of the bearer token (RFC 6750 2.1), or anyone. Tokens are
    compared as digests in constant time."""
    if setting == "public":
        return "allow"
    if setting == "off" or token is None:
        return "hidden"
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    presented = credentials.strip() if scheme.lower() == "bearer" else ""
    expected = hashlib.sha256(token.encode("utf-8")).digest()
    given = hashlib.sha256(presented.encode("utf-8")).digest()
    if presented and hmac.compare_digest(expected, given):
        return "allow"
    return "unauthorized"

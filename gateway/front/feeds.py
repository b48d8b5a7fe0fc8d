"""ICS feeds: ``GET/HEAD /feeds/{resource}.ics?token=…[&view=busy]``.

A sub-application; the composition root mounts it at ``/feeds/`` and sets
``FEED_SOURCE`` and ``FEED_RESOURCES`` on the parent app (handlers read them
through ``request.config_dict``).

The secret token is the only credential, so an unknown resource and a wrong
token answer alike, tokens are compared in constant time, and no token is
ever logged. Bodies are cached per resource and view under an ETag made of
the collection revision, so an unchanged calendar is rendered once and
revalidated with 304. The cache keeps each body gzipped, as most subscribers
take it: a tenth of the memory, compressed once (part by part, never the
whole body at once) instead of on every request, and unpacked for those that
do not accept gzip. Rendering a changed feed is heavy work: it waits for a
slot of the admission gate (``gateway.web.admission``), after the token is
checked, so a stranger cannot take one; a cached body or a 304 does not wait.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import logging
import time
import zlib
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol, TypeGuard

from aiohttp import web
from aiohttp.helpers import ETAG_ANY

from gateway.core.model import CalendarObject, Resource
from gateway.ical import PRODID, FeedView, feed_builder
from gateway.web.admission import heavy_work
from gateway.web.responses import ReleasingResponse

__all__ = [
    "FEED_RESOURCES",
    "FEED_SOURCE",
    "FeedResource",
    "FeedSource",
    "create_feeds_app",
]

log = logging.getLogger(__name__)


class FeedSource(Protocol):
    """What a feed reads from storage (the repository satisfies it)."""

    async def revision(self, resource_id: str) -> int: ...

    def iter_objects(self, resource_id: str) -> AsyncGenerator[list[CalendarObject]]:
        """Every object, in pages, from one snapshot."""
        ...


@dataclass(frozen=True, slots=True)
class FeedResource:
    """A resource and the tokens that open its feed (several during rotation)."""

    resource: Resource
    tokens: tuple[str, ...]


FEED_SOURCE: web.AppKey[FeedSource] = web.AppKey("feed_source")
FEED_RESOURCES: web.AppKey[Mapping[str, FeedResource]] = web.AppKey("feed_resources")

CONTENT_TYPE = "text/calendar"
# Subscribers must ask every time; the ETag makes asking cheap (RFC 9111 5.2.2).
CACHE_CONTROL = "private, max-age=0, must-revalidate"
BAD_VIEW = "view must be 'full' or 'busy'"

# Pages with more objects than this are rendered in a worker thread, so that
# a cold render of a big calendar does not hold up every other request (the
# store's pages hold up to 100).
_THREAD_THRESHOLD = 20
# Gzipped bodies at least this big (about 64 KiB unpacked) are unpacked in a
# worker thread, for the few subscribers that do not accept gzip.
_THREAD_GUNZIP = 8 * 1024
# zlib's default level, what aiohttp's ``enable_compression`` used.
_GZIP_LEVEL = 6
# Bump when the rendering changes, so that cached copies stop matching.
_FORMAT = "2"
# Compared against when a resource has no tokens, so that the answer takes
# about as long as for a wrong token.
_NO_TOKEN = b"\x00" * 32


@dataclass(slots=True)
class _Rendered:
    etag: str
    gzipped: bytes


@dataclass(slots=True)
class _FeedCache:
    """The last body per (resource, view); a few entries per resource."""

    bodies: dict[tuple[str, str], _Rendered] = field(default_factory=dict)
    locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, key: tuple[str, str]) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())


_FEED_CACHE = web.AppKey("feed_cache", _FeedCache)


def create_feeds_app() -> web.Application:
    app = web.Application()
    app[_FEED_CACHE] = _FeedCache()
    # add_get also answers HEAD with the same headers and no body.
    app.router.add_get("/{resource}.ics", _feed, name="feed")
    return app


def _is_view(value: str) -> TypeGuard[FeedView]:
    return value in ("full", "busy")


def _authorised(entry: FeedResource | None, token: str) -> bool:
    given = token.encode("utf-8")
    tokens = [t.encode("utf-8") for t in entry.tokens] if entry is not None else []
    if not tokens:
        hmac.compare_digest(_NO_TOKEN, given)
        return False
    # Every token is compared, whichever matches, so timing tells nothing.
    matches = [hmac.compare_digest(t, given) for t in tokens]
    return any(matches)


def _etag(resource: Resource, revision: int, view: str) -> str:
    """Strong ETag (RFC 9110 8.8.3): the revision says the objects are the same,
    the view and the hash of the resource's settings that appear in the feed
    (name, zone) say they are shown the same way."""
    settings = "\x00".join((_FORMAT, PRODID, resource.id, resource.name, resource.timezone))
    digest = hashlib.sha256(settings.encode("utf-8")).hexdigest()[:12]
    return f'"{revision}-{view}-{digest}"'


def _not_modified(request: web.Request, etag: str) -> bool:
    """If-None-Match (RFC 9110 13.1.2): weak comparison, "*" matches any."""
    candidates = request.if_none_match
    if not candidates:
        return False
    value = etag.strip('"')
    return any(c.value == ETAG_ANY or c.value == value for c in candidates)


def _accepts_gzip(request: web.Request) -> bool:
    """Whether Accept-Encoding (RFC 9110 12.5.3) allows gzip, q=0 meaning no."""
    accepted: dict[str, float] = {}
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding:
            accepted[coding.strip().lower()] = quality
    quality = accepted.get("gzip", accepted.get("x-gzip", accepted.get("*", 0.0)))
    return quality > 0


async def _feed(request: web.Request) -> web.StreamResponse:
    resource_id = request.match_info["resource"]
    entry = request.config_dict[FEED_RESOURCES].get(resource_id)
    if not _authorised(entry, request.query.get("token", "")) or entry is None:
        # Same answer for "no such resource" and "wrong token": the URL must
        # not tell which resources exist.
        raise web.HTTPNotFound()
    view = request.query.get("view", "full")
    if not _is_view(view):
        raise web.HTTPBadRequest(text=BAD_VIEW)

    source = request.config_dict[FEED_SOURCE]
    revision = await source.revision(resource_id)
    etag = _etag(entry.resource, revision, view)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if _not_modified(request, etag):
        return web.Response(status=304, headers=headers)

    etag, gzipped = await _body(request, source, entry.resource, view, revision)
    headers["ETag"] = etag
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        body = gzipped
    elif len(gzipped) >= _THREAD_GUNZIP:
        body = await asyncio.to_thread(gzip.decompress, gzipped)
    else:
        body = gzip.decompress(gzipped)
    return ReleasingResponse(body=body, headers=headers, content_type=CONTENT_TYPE, charset="utf-8")


_CONSISTENT_READ_TRIES = 5


async def _body(
    request: web.Request, source: FeedSource, resource: Resource, view: FeedView, revision: int
) -> tuple[str, bytes]:
    """The feed body, gzipped, and its ETag, from the cache or freshly
    rendered; a render is heavy work and waits for a slot
    (``gateway.web.admission``)."""
    cache = request.app[_FEED_CACHE]
    key = (resource.id, view)
    cached = cache.bodies.get(key)
    if cached is not None and cached.etag == _etag(resource, revision, view):
        return cached.etag, cached.gzipped
    async with heavy_work(request), cache.lock(key):  # one render for concurrent requests
        for _ in range(_CONSISTENT_READ_TRIES):
            etag = _etag(resource, revision, view)
            cached = cache.bodies.get(key)
            if cached is not None and cached.etag == etag:
                return etag, cached.gzipped
            started = time.perf_counter()
            # Page by page: only the rendered fragments are kept, never every
            # object of a big calendar at once.
            builder = feed_builder(resource, view)
            pages = source.iter_objects(resource.id)
            async with aclosing(pages):
                async for page in pages:
                    if len(page) > _THREAD_THRESHOLD:
                        await asyncio.to_thread(builder.add, page)
                    else:
                        builder.add(page)
            # The revision and the objects are two reads. Revisions only grow
            # and every commit bumps one, so an unchanged revision after the
            # objects were read proves they are exactly that revision's: the
            # strong ETag then names one body only.
            latest = await source.revision(resource.id)
            consistent = latest == revision
            if consistent:
                break
            revision = latest
        # Gzipped part by part: the whole body is never in memory at once.
        if builder.count > _THREAD_THRESHOLD:
            gzipped, size = await asyncio.to_thread(_gzip, builder.parts())
        else:
            gzipped, size = _gzip(builder.parts())
        log.info(
            "feed rendered",
            extra={
                "resource": resource.id,
                "view": view,
                "objects": builder.count,
                "bytes": size,
                "render_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        # Under writes on every try the last read still makes a current body,
        # but one its ETag does not pin down: send it, do not cache it.
        if consistent:
            cache.bodies[key] = _Rendered(etag, gzipped)
        return etag, gzipped


def _gzip(parts: Iterable[bytes]) -> tuple[bytes, int]:
    """``parts`` one after the other as one gzip member (RFC 1952), and their
    length unpacked."""
    packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    packed: list[bytes] = []
    size = 0
    for part in parts:
        size += len(part)
        packed.append(packer.compress(part))
    packed.append(packer.flush())
    return b"".join(packed), size

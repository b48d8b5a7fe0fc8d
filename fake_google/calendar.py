"""An aiohttp fake of the Google Calendar API v3 and Google's OAuth 2.0 endpoints.

It follows Google's documented semantics closely enough to run the real
google-api-python-client against it: sync tokens and 410 ``fullSyncRequired``,
etags and 412, 409 duplicate ids, cancelled events in incremental lists, recurring
events and their instances, watch channels and push notifications, batch requests,
token refresh and ``invalid_grant``, and injectable faults. Typical use::

    async with FakeGoogle.running() as fake:
        fake.add_account("anna@example.com")
        service = fake.service("anna@example.com")  # googleapiclient, blocking
        page = await asyncio.to_thread(service.events().list(calendarId="primary").execute)

googleapiclient is synchronous (httplib2), so call it from a thread while the event
loop serves the fake. Every state change happens on the event loop thread.

Known differences from Google: webhook addresses may be plain HTTP when a test
asks for it (``allow_http_webhooks``; Google, like the fake by default, answers
400 ``push.webhookUrlNotHttps``); the consent page never renders; no id_token;
freeBusyReader reads events like reader; ``timeZone``/``maxAttendees`` list
parameters are ignored; calendarList ``syncToken`` returns the whole list;
events.move/quickAdd and the calendars/acl/settings write methods answer 501
``notImplemented``; series expand to at most 730 instances.

Module layout: errors (error bodies, faults), events (event fields, times,
recurrence, query parameters), store (state and semantics), oauth
(consent/token/revoke), push (channels, deliveries), batch (multipart batch).
This module is the HTTP surface and test controls.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from aiohttp import web

from fake_google.batch import parse_batch, render_batch, response_content_id
from fake_google.errors import (
    ALL_FAULTS,
    BACKEND_500,
    BACKEND_503,
    DAILY_LIMIT_403,
    QUOTA_EXCEEDED_403,
    RATE_LIMIT_403,
    RATE_LIMIT_429,
    USER_RATE_LIMIT_403,
    Fault,
    Faults,
    FaultTarget,
    GoogleApiError,
    fault_for,
    invalid,
    not_found,
    not_implemented,
    writer_access_required,
)
from fake_google.events import (
    Json,
    ListParams,
    apply_fields,
    parse_fields,
    parse_json_body,
    query_max_results,
    query_one,
)
from fake_google.oauth import (
    ANY_CALENDAR,
    CALENDAR,
    CALENDAR_READONLY,
    CALENDARLIST_READ,
    CALENDARS_READ,
    DEFAULT_SCOPES,
    EVENTS,
    EVENTS_READ,
    EVENTS_WRITE,
    AccessGrant,
    OAuthProvider,
)
from fake_google.push import Channel, Delivery, Notifier, now_ms
from fake_google.store import ACCESS_ROLES, WRITE_ROLES, Account, Calendar, Store

__all__ = [
    "ALL_FAULTS",
    "BACKEND_500",
    "BACKEND_503",
    "CALENDAR",
    "CALENDAR_READONLY",
    "DAILY_LIMIT_403",
    "DEFAULT_SCOPES",
    "EVENTS",
    "QUOTA_EXCEEDED_403",
    "RATE_LIMIT_403",
    "RATE_LIMIT_429",
    "USER_RATE_LIMIT_403",
    "Account",
    "Channel",
    "Delivery",
    "FakeGoogle",
    "Fault",
    "Faults",
    "RecordedRequest",
]

DEFAULT_CLIENT_ID = "fake-client-id.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "fake-client-secret"  # noqa: S105 - the fake's, public
# Query parameters that do not change a list's result (for page-token checks).
_PAGING_NEUTRAL = frozenset(
    {"pageToken", "maxResults", "alt", "fields", "prettyPrint", "quotaUser"}
)
_JSON = "application/json; charset=UTF-8"


class RecordedRequest(NamedTuple):
    """One API call as the fake saw it (batch parts count one each)."""

    method: str
    path: str  # decoded, always starting /calendar/v3/
    query: dict[str, str]  # last value of each parameter
    account: str | None  # the authenticated account, None when authentication failed


@dataclass
class _Snapshot:
    # A list result frozen at its first page, so later pages stay consistent while
    # events change (their changes show up in the next incremental sync).
    items: list[Json]
    sync_token: str | None
    signature: tuple[Any, ...]
    id: str = ""


Reply = tuple[int, dict[str, str], bytes]
Routed = tuple[int, Json | None, str | None]  # status, JSON, calendar written (or None)


def _json_reply(status: int, body: Json, headers: Mapping[str, str] | None = None) -> Reply:
    out = {"Content-Type": _JSON, **(headers or {})}
    return status, out, json.dumps(body, ensure_ascii=False).encode("utf-8")


def _error_reply(exc: GoogleApiError) -> Reply:
    return _json_reply(exc.status, exc.body(), exc.headers)


class FakeGoogle:
    """Google Calendar v3 + OAuth 2.0 on loopback; see the module docstring."""

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uris: Iterable[str] | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_http_webhooks: bool = False,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self._listen_port = port  # 0: the kernel picks one (tests); fixed for the demo
        self.store = Store()
        self.store.on_change = self._on_change
        self.faults = Faults(seed)
        self.oauth = OAuthProvider(
            self.store,
            self.faults,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=frozenset(redirect_uris) if redirect_uris is not None else None,
        )
        self.notifier = Notifier()
        self.notifier.allow_http = allow_http_webhooks
        self.latency = 0.0
        self.requests: list[RecordedRequest] = []
        self.batch_count = 0
        self._writes: Counter[str] = Counter()
        # Successful inserts (insert and import) per (calendar, event id): a
        # retried insert that meets its own event (409) does not count.
        self.inserts: Counter[tuple[str, str]] = Counter()
        # events.list calls per calendar: made, open right now, most open at once.
        self.lists: Counter[str] = Counter()
        self.lists_open: Counter[str] = Counter()
        self.most_lists_open: Counter[str] = Counter()
        self._snapshots: dict[str, _Snapshot] = {}
        self._runner: web.AppRunner | None = None
        self.port = port

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, **kwargs: Any) -> AsyncIterator[FakeGoogle]:
        fake = cls(**kwargs)
        await fake.start()
        try:
            yield fake
        finally:
            await fake.close()

    async def start(self) -> None:
        @web.middleware
        async def latency(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            listed = _listed_calendar(request)
            if listed is not None:
                self.lists[listed] += 1
                self.lists_open[listed] += 1
                self.most_lists_open[listed] = max(
                    self.most_lists_open[listed], self.lists_open[listed]
                )
            try:
                if self.latency > 0:
                    await asyncio.sleep(self.latency)  # injected latency, the feature itself
                return await handler(request)
            finally:
                if listed is not None:
                    self.lists_open[listed] -= 1

        app = web.Application(middlewares=[latency], client_max_size=16 * 1024 * 1024)
        app.router.add_get("/o/oauth2/auth", self.oauth.authorize)
        app.router.add_get("/o/oauth2/v2/auth", self.oauth.authorize)
        app.router.add_post("/token", self.oauth.token)
        app.router.add_post("/revoke", self.oauth.revoke)
        app.router.add_post("/batch/calendar/v3", self._handle_batch)
        app.router.add_post("/batch", self._handle_batch)
        # Google's paths live under /calendar/v3/; the bare ones serve clients built
        # with api_endpoint=base_url + "/" (googleapiclient then drops servicePath).
        for prefix in ("/calendar/v3/{tail:.*}", "/calendars/{tail:.*}", "/users/me/{tail:.*}"):
            app.router.add_route("*", prefix, self._handle_api)
        app.router.add_post("/channels/stop", self._handle_api)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._listen_port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        await self.notifier.start()

    async def close(self) -> None:
        await self.notifier.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_endpoint(self) -> str:
        """``client_options={"api_endpoint": ...}`` value equivalent to Google's."""
        return f"{self.base_url}/calendar/v3/"

    @property
    def batch_uri(self) -> str:
        # googleapiclient builds the batch URI from the discovery rootUrl and ignores
        # api_endpoint, so batch requests need this passed explicitly.
        return f"{self.base_url}/batch/calendar/v3"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    @property
    def revoke_uri(self) -> str:
        return f"{self.base_url}/revoke"

    # --- HTTP surface -------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        body = await request.read()
        query = {k: request.query.getall(k) for k in dict.fromkeys(request.query.keys())}
        status, headers, payload = self._call(
            request.method, request.rel_url.raw_path, query, request.headers, body, None
        )
        return web.Response(status=status, headers=headers, body=payload)

    async def _handle_batch(self, request: web.Request) -> web.Response:
        self.batch_count += 1
        content_type = request.headers.get("Content-Type", "")
        try:
            if not content_type.lower().startswith("multipart/mixed"):
                raise GoogleApiError(400, "badRequest", "Batch requests must be multipart/mixed.")
            parts = parse_batch(await request.read(), content_type)
        except GoogleApiError as exc:
            status, headers, payload = _error_reply(exc)
            return web.Response(status=status, headers=headers, body=payload)
        outer_auth = request.headers.get("Authorization")
        answers = []
        for index, part in enumerate(parts):
            # Each part runs through the same code as a direct call: same auth, faults,
            # validation and request log.
            status, headers, payload = self._call(
                part.method, part.path, part.query, part.headers, part.body, outer_auth
            )
            answers.append((response_content_id(part.content_id, index), status, headers, payload))
        body, boundary = render_batch(answers)
        return web.Response(
            body=body, headers={"Content-Type": f"multipart/mixed; boundary={boundary}"}
        )

    def _call(
        self,
        method: str,
        raw_path: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        outer_auth: str | None,
    ) -> Reply:
        tail = raw_path.split("?", 1)[0]
        tail = tail.removeprefix("/calendar/v3")
        segments = [unquote(s) for s in tail.strip("/").split("/")]
        path = "/calendar/v3/" + "/".join(segments)
        account: str | None = None
        try:
            grant = self.oauth.authenticate(headers.get("Authorization") or outer_auth)
            account = grant.email
            fault = self.faults.take("api", method)
            if fault is not None:
                raise fault.error()  # before any handler: a faulted call changes nothing
            fields = query_one(query, "fields")
            selection = parse_fields(fields) if fields else None
            status, result, written = self._route(
                method.upper(), segments, query, headers, body, grant
            )
        except GoogleApiError as exc:
            return _error_reply(exc)
        finally:
            self.requests.append(
                RecordedRequest(method.upper(), path, {k: v[-1] for k, v in query.items()}, account)
            )
        if written is not None:
            self._writes[written] += 1
        if result is None:
            return status, {}, b""
        result = apply_fields(result, selection)
        extra = {"ETag": result["etag"]} if isinstance(result.get("etag"), str) else {}
        return _json_reply(status, result, extra)

    def _route(
        self,
        method: str,
        segs: list[str],
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        grant: AccessGrant,
    ) -> Routed:
        n = len(segs)
        if segs[:3] == ["users", "me", "calendarList"] and method == "GET" and n in (3, 4):
            self.oauth.require(grant, CALENDARLIST_READ)
            account = self.store.accounts[grant.email]
            if n == 3:
                return 200, self._calendar_list(account, query), None
            calendar, _ = self.store.resolve(grant.email, segs[3])
            return 200, self.store.calendar_list_entry(account, calendar), None
        if segs == ["channels", "stop"] and method == "POST":
            self.oauth.require(grant, ANY_CALENDAR)
            self.notifier.stop(parse_json_body(body), grant.email)
            return 204, None, None
        if n < 2 or segs[0] != "calendars":
            raise not_implemented(method, "/calendar/v3/" + "/".join(segs))
        rest = segs[2:]
        if not rest and method == "GET":
            self.oauth.require(grant, CALENDARS_READ)
            calendar, _ = self.store.resolve(grant.email, segs[1])
            return 200, self.store.calendar_resource(calendar), None
        if not rest or rest[0] != "events" or len(rest) > 3:
            raise not_implemented(method, "/calendar/v3/" + "/".join(segs))
        reading = method == "GET" or rest[1:] == ["watch"]
        self.oauth.require(grant, EVENTS_READ if reading else EVENTS_WRITE)
        calendar, role = self.store.resolve(grant.email, segs[1])
        if not reading and role not in WRITE_ROLES:
            raise writer_access_required()
        if_match = headers.get("If-Match")
        if len(rest) == 1 and method == "GET":
            return 200, self._list(calendar, role, query), None
        if len(rest) == 1 and method == "POST":
            _check_write_params(query)
            event = self.store.insert(calendar, parse_json_body(body), grant.email)
            self.inserts[(calendar.id, str(event["id"]))] += 1
            return 200, event, calendar.id
        if rest[1:] == ["import"] and method == "POST":
            _check_write_params(query)
            body_json = parse_json_body(body)
            event = self.store.insert(calendar, body_json, grant.email, import_mode=True)
            self.inserts[(calendar.id, str(event["id"]))] += 1
            return 200, event, calendar.id
        if rest[1:] == ["watch"] and method == "POST":
            resource_uri = f"{self.api_endpoint}calendars/{quote(segs[1], safe='')}/events?alt=json"
            channel = self.notifier.watch(
                parse_json_body(body),
                calendar_id=calendar.id,
                resource_id=calendar.resource_id,
                resource_uri=resource_uri,
                account=grant.email,
            )
            return 200, channel.to_json(), None
        if len(rest) == 3 and rest[2] == "instances" and method == "GET":
            return 200, self._instances(calendar, role, rest[1], query), None
        if len(rest) != 2:
            raise not_implemented(method, "/calendar/v3/" + "/".join(segs))
        event_id = rest[1]
        if method == "GET":
            event = self.store.get(calendar, event_id)
            if headers.get("If-None-Match") == event.get("etag"):
                return 304, None, None
            return 200, event, None
        if method in ("PUT", "PATCH"):
            _check_write_params(query)
            event = self.store.update(
                calendar,
                event_id,
                parse_json_body(body),
                patch=method == "PATCH",
                if_match=if_match,
            )
            return 200, event, calendar.id
        if method == "DELETE":
            _check_write_params(query)
            self.store.delete(calendar, event_id, if_match=if_match)
            return 204, None, calendar.id
        raise not_implemented(method, "/calendar/v3/" + "/".join(segs))

    # --- lists and paging ---------------------------------------------------------------

    def _page(
        self,
        query: dict[str, list[str]],
        signature: tuple[Any, ...],
        build: Callable[[], _Snapshot],
    ) -> tuple[_Snapshot, int]:
        token = query_one(query, "pageToken")
        if token is None:
            snapshot = build()
            snapshot.id = secrets.token_urlsafe(9)
            self._snapshots[snapshot.id] = snapshot
            return snapshot, 0
        try:
            snapshot_id, _, offset = (
                base64.urlsafe_b64decode(token.encode()).decode().partition(":")
            )
            snapshot = self._snapshots[snapshot_id]
            start = int(offset)
            if not 0 <= start <= len(snapshot.items):
                raise ValueError(offset)
        except (ValueError, KeyError, UnicodeDecodeError):
            raise invalid("Invalid page token value.", "pageToken") from None
        # "perform exactly the same list query ... and append pageToken" (sync guide).
        if snapshot.signature != signature:
            raise invalid("The page token does not belong to this query.", "pageToken")
        return snapshot, start

    @staticmethod
    def _page_token(snapshot: _Snapshot, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{snapshot.id}:{offset}".encode()).decode()

    @staticmethod
    def _signature(kind: str, calendar_id: str, query: dict[str, list[str]]) -> tuple[Any, ...]:
        items = sorted((k, tuple(v)) for k, v in query.items() if k not in _PAGING_NEUTRAL)
        return (kind, calendar_id, tuple(items))

    def _envelope(self, calendar: Calendar, role: str, items: list[Json]) -> Json:
        return {
            "kind": "calendar#events",
            "etag": calendar.etag.rstrip('"') + str(self.store.seq) + '"',
            "summary": calendar.summary,
            "description": "",
            "updated": calendar.updated,
            "timeZone": calendar.time_zone,
            "accessRole": role,
            "defaultReminders": [],
            "items": items,
        }

    def _list(self, calendar: Calendar, role: str, query: dict[str, list[str]]) -> Json:
        params = ListParams.parse(query)

        def build() -> _Snapshot:
            since = None
            if params.sync_token is not None:
                since = self.store.sync_seq(calendar, params.sync_token)
            items = self.store.list_events(calendar, params, since)
            token = self.store.issue_sync_token(calendar, self.store.seq)
            return _Snapshot(items, token, signature)

        signature = self._signature("events", calendar.id, query)
        snapshot, offset = self._page(query, signature, build)
        end = offset + params.max_results
        body = self._envelope(calendar, role, snapshot.items[offset:end])
        # The sync guide: nextSyncToken is "present only on the very last page".
        if end < len(snapshot.items):
            body["nextPageToken"] = self._page_token(snapshot, end)
        else:
            body["nextSyncToken"] = snapshot.sync_token
        return body

    def _instances(
        self, calendar: Calendar, role: str, event_id: str, query: dict[str, list[str]]
    ) -> Json:
        params = ListParams.parse(query, instances=True)
        signature = self._signature(f"instances/{event_id}", calendar.id, query)
        snapshot, offset = self._page(
            query,
            signature,
            lambda: _Snapshot(self.store.instances(calendar, event_id, params), None, signature),
        )
        end = offset + params.max_results
        body = self._envelope(calendar, role, snapshot.items[offset:end])
        if end < len(snapshot.items):
            body["nextPageToken"] = self._page_token(snapshot, end)
        return body

    def _calendar_list(self, account: Account, query: dict[str, list[str]]) -> Json:
        max_results = query_max_results(query, 100, 250)
        min_role = query_one(query, "minAccessRole") or ACCESS_ROLES[-1]
        if min_role not in ACCESS_ROLES:
            raise invalid(f"Invalid value for minAccessRole: {min_role}", "minAccessRole")
        signature = self._signature("calendarList", account.email, query)

        def build() -> _Snapshot:
            entries = [
                self.store.calendar_list_entry(account, self.store.calendars[cid])
                for cid, role in account.calendars.items()
                if ACCESS_ROLES.index(role) <= ACCESS_ROLES.index(min_role)
            ]
            return _Snapshot(entries, "CL" + secrets.token_urlsafe(12), signature)

        snapshot, offset = self._page(query, signature, build)
        end = offset + max_results
        body: Json = {
            "kind": "calendar#calendarList",
            "etag": f'"{self.store.seq}"',
            "items": snapshot.items[offset:end],
        }
        if end < len(snapshot.items):
            body["nextPageToken"] = self._page_token(snapshot, end)
        else:
            body["nextSyncToken"] = snapshot.sync_token
        return body

    def _on_change(self, calendar: Calendar) -> None:
        self.notifier.changed(calendar.id)

    # --- test controls: accounts and OAuth ----------------------------------------------

    def add_account(self, email: str, *, time_zone: str = "UTC") -> Account:
        """A Google account with a primary calendar whose id is ``email``."""
        return self.store.add_account(email, time_zone)

    def add_calendar(
        self,
        email: str,
        summary: str,
        access_role: str = "owner",
        *,
        time_zone: str | None = None,
        calendar_id: str | None = None,
    ) -> str:
        """A secondary calendar on ``email``'s calendar list; returns its id."""
        return self.store.add_calendar(
            email, summary, access_role, time_zone=time_zone, calendar_id=calendar_id
        ).id

    def share_calendar(self, calendar_id: str, email: str, access_role: str = "reader") -> None:
        self.store.share(calendar_id, email, access_role)

    def unshare_calendar(self, calendar_id: str, email: str) -> None:
        self.store.unshare(calendar_id, email)

    def delete_calendar(self, calendar_id: str) -> None:
        """The owner deletes a secondary calendar in Google's UI."""
        self.store.delete_calendar(calendar_id)

    def consent_as(self, email: str | None, *, scopes: Iterable[str] | None = None) -> None:
        """Who clicks "Allow" on the consent page (None: the user denies).

        ``scopes`` restricts what is granted (the user unticked the others).
        """
        self.oauth.consent_as(email, frozenset(scopes) if scopes is not None else None)

    def issue_refresh_token(self, email: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> str:
        return self.oauth.issue_refresh_token(email, frozenset(scopes))

    def issue_access_token(self, email: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> str:
        """A valid access token (3599 s) without going through /token."""
        return self.oauth.issue_access_token(email, frozenset(scopes))

    def revoke(self, email: str) -> None:
        """The user removes the app's access: refresh and access tokens die."""
        self.oauth.revoke_account(email)

    def expire_access_tokens(self) -> None:
        """Current access tokens answer 401; clients must refresh."""
        self.oauth.expire_access_tokens()

    @property
    def token_requests(self) -> list[str]:
        return self.oauth.token_requests

    def credentials(self, email: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> Any:
        """google.oauth2 Credentials holding a fresh refresh token (no access token yet)."""
        from google.oauth2.credentials import Credentials

        return Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=self.issue_refresh_token(email, scopes),
            token_uri=self.token_uri,
            client_id=self.client_id,
            client_secret=self.client_secret,
        )

    def service(self, email: str | None = None, *, credentials: Any = None) -> Any:
        """A real googleapiclient Calendar v3 service pointed at the fake."""
        from googleapiclient.discovery import build

        if credentials is None:
            if email is None:
                raise ValueError("service() needs an email or credentials")
            credentials = self.credentials(email)
        return build(
            "calendar",
            "v3",
            static_discovery=True,
            cache_discovery=False,
            credentials=credentials,
            client_options={"api_endpoint": self.api_endpoint},
        )

    def new_batch(self, callback: Callable[..., Any] | None = None) -> Any:
        """A BatchHttpRequest aimed at the fake (see ``batch_uri``)."""
        from googleapiclient.http import BatchHttpRequest

        return BatchHttpRequest(callback=callback, batch_uri=self.batch_uri)

    # --- test controls: faults and sync -------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        reason: str = "backendError",
        *,
        target: FaultTarget = "api",
        method: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next ``count`` API calls (of ``method``, if given) fail like this."""
        self.faults.queue(fault_for(status, reason, message), count, target=target, method=method)

    def expire_sync_tokens(self, calendar_id: str) -> None:
        """Every sync token issued for the calendar now answers 410 fullSyncRequired."""
        self.store.expire_sync_tokens(self.store.calendars[calendar_id])

    # --- test controls: push ------------------------------------------------------------

    @property
    def channels(self) -> dict[str, Channel]:
        """Active channels (not stopped, not expired) by channel id."""
        return self.notifier.channels

    @property
    def deliveries(self) -> list[Delivery]:
        return self.notifier.deliveries

    @property
    def drop_notifications(self) -> bool:
        return self.notifier.drop

    @drop_notifications.setter
    def drop_notifications(self, value: bool) -> None:
        self.notifier.drop = value

    async def notifications_settled(self, max_wait: float = 5.0) -> None:
        """Wait until queued deliveries are done; TimeoutError after ``max_wait`` s."""
        await self.notifier.settled(max_wait)

    def expire_channel(self, channel_id: str) -> None:
        self.notifier.all_channels[channel_id].expiration_ms = now_ms() - 1

    # --- test controls: the user in Google's UI -----------------------------------------

    def _calendar(self, calendar_id: str) -> Calendar:
        try:
            return self.store.calendars[calendar_id]
        except KeyError:
            raise not_found() from None

    def user_insert(self, calendar_id: str, body: Json) -> Json:
        calendar = self._calendar(calendar_id)
        return self.store.insert(calendar, body, calendar.actor())

    def user_update(self, calendar_id: str, event_id: str, changes: Json) -> Json:
        """Patch semantics: only the given fields change (instance ids work too)."""
        return self.store.update(self._calendar(calendar_id), event_id, changes, patch=True)

    def user_delete(self, calendar_id: str, event_id: str) -> None:
        self.store.delete(self._calendar(calendar_id), event_id)

    def events(self, calendar_id: str, include_cancelled: bool = False) -> list[Json]:
        """Stored events (series masters, single events, exceptions), not expanded."""
        return self.store.raw_events(self._calendar(calendar_id), include_cancelled)

    def event(self, calendar_id: str, event_id: str) -> Json:
        """One event as events.get returns it (cancelled ones too); KeyError if none."""
        try:
            return self.store.get(self._calendar(calendar_id), event_id)
        except GoogleApiError:
            raise KeyError(event_id) from None

    def write_count(self, calendar_id: str) -> int:
        """Successful API writes (insert, import, update, patch, delete) on a calendar."""
        return self._writes[calendar_id]


def _listed_calendar(request: web.Request) -> str | None:
    """The calendar id of an events.list call (GET .../calendars/{id}/events)."""
    if request.method != "GET":
        return None
    segments = [unquote(s) for s in request.rel_url.raw_path.split("?", 1)[0].split("/") if s]
    if segments[:2] == ["calendar", "v3"]:
        segments = segments[2:]
    if len(segments) == 3 and segments[0] == "calendars" and segments[2] == "events":
        return segments[1]
    return None


def _check_write_params(query: dict[str, list[str]]) -> None:
    send_updates = query_one(query, "sendUpdates")
    if send_updates is not None and send_updates not in ("all", "externalOnly", "none"):
        raise invalid(f"Invalid value for sendUpdates: {send_updates}", "sendUpdates")

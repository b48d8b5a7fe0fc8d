"""Calendar API v3 through google-api-python-client, from asyncio.

The library is synchronous (httplib2), so each call runs in a worker thread
with an ``httplib2.Http`` of its own (those are not thread-safe) wrapped in
google-auth's ``AuthorizedHttp``, which refreshes the access token from the
refresh token when needed. The API description is the discovery document
shipped inside the package (``static_discovery=True``: no network fetch at
start-up) and the endpoint comes from the settings (``client_options``), so
tests and Google-compatible services can stand in for Google.

Retries (Calendar API "Handle API errors"): 429, 403 ``rateLimitExceeded`` /
``userRateLimitExceeded``, 5xx and network failures are retried with
exponential backoff and full jitter (tenacity), up to ``retry.attempts``
tries; what still fails becomes ``GoogleUnavailable`` and the caller retries
later (the outbox, the next poll). 403 ``quotaExceeded`` is the daily quota:
no quick retry (``QuotaExceeded``). ``invalid_grant`` on refresh means only a
reconnect helps (``ReconnectNeeded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from .errors import (
    CalendarGone,
    GoogleRequestError,
    GoogleUnavailable,
    QuotaExceeded,
    ReconnectNeeded,
    ScopesMissing,
    SyncTokenExpired,
)

log = logging.getLogger("calgateway.google")

# Calendar list (to choose a calendar) and events of the chosen calendar.
SCOPES = (
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    "https://www.googleapis.com/auth/calendar.events",
)
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})
MAX_PAGE = 2500  # events.list maxResults upper bound


@dataclass(frozen=True, slots=True)
class OAuthClient:
    client_id: str
    client_secret: str
    token_uri: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    initial_delay: float = 1.0
    max_delay: float = 60.0


class EventMissing(Exception):
    """404 for an event (or 410 for one already deleted)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"event not found ({status})")
        self.status = status


class EtagMismatch(Exception):
    """412: the event changed since the etag we sent (If-Match)."""


class DuplicateEvent(Exception):
    """409: an event with this id exists (perhaps deleted)."""


class _Retryable(Exception):
    def __init__(self, cause: BaseException, what: str) -> None:
        super().__init__(what)
        self.cause = cause


def _reason(error: HttpError) -> str:
    try:
        data = json.loads(error.content.decode("utf-8"))
        errors = data["error"].get("errors") or []
        if errors:
            return str(errors[0].get("reason", ""))
        return str(data["error"].get("status", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def _refresh_detail(error: RefreshError) -> str:
    """google-auth's words for a refused refresh, without the repr of the
    token endpoint's answer that ``str(error)`` adds (its args are a tuple
    of the message and the response body)."""
    first = error.args[0] if error.args else ""
    return first if isinstance(first, str) and first else type(error).__name__


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, _Retryable)


class GoogleCalendar:
    """One process-wide client; every call names the connection's
    credentials (a sealed refresh token is opened by the caller)."""

    def __init__(
        self,
        api_endpoint: str,
        oauth: OAuthClient,
        *,
        retry: RetryPolicy,
        timeout: float,
    ) -> None:
        self._oauth = oauth
        self._retry = retry
        self._timeout = timeout
        # The service object only builds requests; each execute gets its own
        # http, so sharing it between threads is safe.
        self._service = build(
            "calendar",
            "v3",
            static_discovery=True,
            http=httplib2.Http(timeout=timeout),
            client_options={"api_endpoint": api_endpoint},
            cache_discovery=False,
        )
        self._credentials: dict[str, Credentials] = {}
        self._lock = threading.Lock()
        self.calls = 0

    # -- plumbing ------------------------------------------------------------------

    def _creds(self, refresh_token: str) -> Credentials:
        # Keyed by a digest, not the token: access tokens are reused between
        # calls (no refresh per request) without keeping the secret as a key.
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        with self._lock:
            creds = self._credentials.get(key)
            if creds is None:
                creds = Credentials(  # type: ignore[no-untyped-call]
                    token=None,
                    refresh_token=refresh_token,
                    token_uri=self._oauth.token_uri,
                    client_id=self._oauth.client_id,
                    client_secret=self._oauth.client_secret,
                    scopes=list(SCOPES),
                )
                self._credentials[key] = creds
            return creds

    def forget(self, refresh_token: str) -> None:
        key = hashlib.sha256(refresh_token.encode()).hexdigest()
        with self._lock:
            self._credentials.pop(key, None)

    def _execute(
        self, refresh_token: str, make: Callable[[Any], Any], headers: Mapping[str, str]
    ) -> Any:
        http = google_auth_httplib2.AuthorizedHttp(
            self._creds(refresh_token), http=httplib2.Http(timeout=self._timeout)
        )
        request = make(self._service)
        request.headers.update(headers)
        self.calls += 1
        return request.execute(http=http)

    async def _call(
        self,
        refresh_token: str,
        make: Callable[[Any], Any],
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_retryable),
            wait=wait_random_exponential(
                multiplier=self._retry.initial_delay, max=self._retry.max_delay
            ),
            stop=stop_after_attempt(self._retry.attempts),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(refresh_token, make, what, headers or {})
        except _Retryable as exc:
            raise GoogleUnavailable(f"{what}: {exc.cause}") from exc.cause
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        refresh_token: str,
        make: Callable[[Any], Any],
        what: str,
        headers: Mapping[str, str],
    ) -> Any:
        try:
            return await asyncio.to_thread(self._execute, refresh_token, make, headers)
        except HttpError as error:
            raise self._classify(error, what) from error
        except RefreshError as error:
            if "invalid_scope" in str(error):
                raise ScopesMissing(
                    f"Google granted fewer permissions than asked: {_refresh_detail(error)}"
                ) from error
            if "invalid_grant" in str(error):
                raise ReconnectNeeded(
                    f"Google refused the refresh token: {_refresh_detail(error)}"
                ) from error
            # Other refresh failures (the token endpoint down) pass with time.
            raise _Retryable(error, what) from error
        except (TimeoutError, TransportError, httplib2.HttpLib2Error, OSError) as error:
            raise _Retryable(error, what) from error

    def _classify(self, error: HttpError, what: str) -> Exception:
        status = error.status_code
        reason = _reason(error)
        if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
            log.info(
                "google call retried", extra={"call": what, "status": status, "reason": reason}
            )
            return _Retryable(error, f"{status} {reason}")
        if reason.startswith("push."):
            # events.watch refused the address (push.webhookUrlNotHttps,
            # push.webhookUrlUnauthorized, with 400, 401 or 403): the
            # request is wrong, not the credentials.
            return GoogleRequestError(status, reason, str(error.reason))
        if status == 403 and reason in QUOTA_REASONS:
            return QuotaExceeded(f"Google answered 403 {reason} to {what}")
        if status == 410 and reason == "fullSyncRequired":
            return SyncTokenExpired(what)
        if status in (404, 410):
            return EventMissing(status)
        if status == 412:
            return EtagMismatch(what)
        if status == 409:
            return DuplicateEvent(what)
        if status == 401:
            return ReconnectNeeded(f"Google answered 401 to {what}: {error.reason}")
        return GoogleRequestError(status, reason, error.reason)

    # -- calls -----------------------------------------------------------------------

    async def calendars(self, refresh_token: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page: str | None = None
        while True:

            def make(service: Any, token: str | None = page) -> Any:
                return service.calendarList().list(pageToken=token, maxResults=250)

            answer = await self._call(refresh_token, make, what="calendarList.list")
            found.extend(answer.get("items", []))
            page = answer.get("nextPageToken")
            if not page:
                return found

    async def list_events(
        self,
        refresh_token: str,
        calendar_id: str,
        *,
        sync_token: str | None,
        page_token: str | None,
    ) -> dict[str, Any]:
        """One page of events.list: incremental with a sync token, else full.
        Recurring events come as one master (singleEvents=false) plus their
        changed or cancelled instances; the bridge expands masters itself."""
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "maxResults": MAX_PAGE,
            "singleEvents": False,
            "pageToken": page_token,
        }
        if sync_token:
            params["syncToken"] = sync_token
        else:
            params["showDeleted"] = False
        try:
            return dict(
                await self._call(
                    refresh_token, lambda s: s.events().list(**params), what="events.list"
                )
            )
        except EventMissing as missing:
            raise CalendarGone(
                f"Google answered {missing.status} for calendar {calendar_id}"
            ) from None

    async def instances(
        self,
        refresh_token: str,
        calendar_id: str,
        event_id: str,
        time_min: datetime,
        time_max: datetime,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every instance of a recurring event in [time_min, time_max), cancelled
        ones included, and the calendar's time zone (for all-day instances)."""
        found: list[dict[str, Any]] = []
        page: str | None = None
        while True:

            def make(service: Any, token: str | None = page) -> Any:
                return service.events().instances(
                    calendarId=calendar_id,
                    eventId=event_id,
                    timeMin=time_min.isoformat(),
                    timeMax=time_max.isoformat(),
                    showDeleted=True,
                    maxResults=MAX_PAGE,
                    pageToken=token,
                )

            answer = await self._call(refresh_token, make, what="events.instances")
            found.extend(answer.get("items", []))
            page = answer.get("nextPageToken")
            if not page:
                return found, str(answer.get("timeZone") or "")

    async def get_event(
        self, refresh_token: str, calendar_id: str, event_id: str
    ) -> dict[str, Any]:
        return dict(
            await self._call(
                refresh_token,
                lambda s: s.events().get(calendarId=calendar_id, eventId=event_id),
                what="events.get",
            )
        )

    async def insert_event(
        self,
        refresh_token: str,
        calendar_id: str,
        body: Mapping[str, Any],
        *,
        send_updates: str = "none",
    ) -> dict[str, Any]:
        """``send_updates``: "all" lets Google e-mail the guests; "none" by
        default, because the gateway sends its own invitations."""
        return dict(
            await self._call(
                refresh_token,
                lambda s: s.events().insert(
                    calendarId=calendar_id, body=dict(body), sendUpdates=send_updates
                ),
                what="events.insert",
            )
        )

    async def import_event(
        self, refresh_token: str, calendar_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A private copy of an event (by iCalUID): importing the same iCalUID
        again updates the copy (Events: import)."""
        return dict(
            await self._call(
                refresh_token,
                lambda s: s.events().import_(calendarId=calendar_id, body=dict(body)),
                what="events.import",
            )
        )

    async def update_event(
        self,
        refresh_token: str,
        calendar_id: str,
        event_id: str,
        body: Mapping[str, Any],
        *,
        if_match: str | None,
        send_updates: str = "none",
    ) -> dict[str, Any]:
        return dict(
            await self._call(
                refresh_token,
                lambda s: s.events().update(
                    calendarId=calendar_id,
                    eventId=event_id,
                    body=dict(body),
                    sendUpdates=send_updates,
                ),
                what="events.update",
                headers={"If-Match": if_match} if if_match else None,
            )
        )

    async def delete_event(
        self, refresh_token: str, calendar_id: str, event_id: str, *, send_updates: str = "none"
    ) -> None:
        await self._call(
            refresh_token,
            lambda s: s.events().delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates
            ),
            what="events.delete",
        )

    async def watch(
        self,
        refresh_token: str,
        calendar_id: str,
        *,
        channel_id: str,
        token: str,
        address: str,
        ttl: int,
    ) -> dict[str, Any]:
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(ttl)},
        }
        try:
            return dict(
                await self._call(
                    refresh_token,
                    lambda s: s.events().watch(calendarId=calendar_id, body=body),
                    what="events.watch",
                )
            )
        except EventMissing as missing:
            raise CalendarGone(
                f"Google answered {missing.status} for calendar {calendar_id}"
            ) from None

    async def stop_channel(self, refresh_token: str, channel_id: str, resource_id: str) -> None:
        # 404: already expired or stopped, which is what we wanted.
        with contextlib.suppress(EventMissing):
            await self._call(
                refresh_token,
                lambda s: s.channels().stop(body={"id": channel_id, "resourceId": resource_id}),
                what="channels.stop",
            )

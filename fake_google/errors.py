"""Errors of the fake Google Calendar API, in Google's JSON shape, and fault injection.

The error body is the one documented in "Handle API errors"
(https://developers.google.com/calendar/api/guides/errors)::

    {"error": {"errors": [{"domain": ..., "reason": ..., "message": ...}],
               "code": N, "message": ...}}

googleapiclient's retry logic reads ``error.errors[0].reason`` (it retries 403
``rateLimitExceeded``/``userRateLimitExceeded`` and 429), so the shape matters.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

Json = dict[str, Any]
FaultTarget = Literal["api", "token"]


class GoogleApiError(Exception):
    """An API error answered as Google answers it (status, reason, domain, message)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location_type: str | None = None,
        location: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location_type = location_type
        self.location = location
        self.headers = dict(headers or {})

    def body(self) -> Json:
        item: Json = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location_type is not None:
            item["locationType"] = self.location_type
            item["location"] = self.location
        return {"error": {"errors": [item], "code": self.status, "message": self.message}}


# The errors below carry the reasons and messages of Google's error guide and of what
# the Calendar API answers in practice; the guide is the source where it lists one.


def not_found() -> GoogleApiError:
    return GoogleApiError(404, "notFound", "Not Found")


def deleted() -> GoogleApiError:
    # events.delete of an event that is already cancelled.
    return GoogleApiError(410, "deleted", "Resource has been deleted")


def duplicate() -> GoogleApiError:
    # Guide, "409: The requested identifier already exists".
    return GoogleApiError(409, "duplicate", "The requested identifier already exists.")


def condition_not_met() -> GoogleApiError:
    # Guide, "412: Precondition Failed" (If-Match with a stale etag).
    return GoogleApiError(
        412,
        "conditionNotMet",
        "Precondition Failed",
        location_type="header",
        location="If-Match",
    )


def full_sync_required() -> GoogleApiError:
    # Guide, "410: Gone": sync token no longer valid; the client must wipe and re-sync.
    return GoogleApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location_type="parameter",
        location="syncToken",
    )


def invalid(message: str, location: str | None = None) -> GoogleApiError:
    return GoogleApiError(
        400,
        "invalid",
        message,
        location_type="parameter" if location else None,
        location=location,
    )


def required(message: str, location: str | None = None) -> GoogleApiError:
    return GoogleApiError(
        400,
        "required",
        message,
        location_type="parameter" if location else None,
        location=location,
    )


def bad_request(location: str | None = None) -> GoogleApiError:
    # What Google answers for a malformed timestamp parameter.
    return GoogleApiError(
        400,
        "badRequest",
        "Bad Request",
        location_type="parameter" if location else None,
        location=location,
    )


def time_range_empty(location: str | None = None) -> GoogleApiError:
    # Guide, "400: Bad Request" example.
    return GoogleApiError(
        400,
        "timeRangeEmpty",
        "The specified time range is empty.",
        domain="calendar",
        location_type="parameter" if location else None,
        location=location,
    )


def parse_error() -> GoogleApiError:
    return GoogleApiError(400, "parseError", "Parse Error")


def writer_access_required() -> GoogleApiError:
    # Guide, "403: Forbidden for non-organizer" family: writing to a calendar the
    # account may only read.
    return GoogleApiError(
        403,
        "requiredAccessLevel",
        "You need to have writer access to this calendar.",
        domain="calendar",
    )


def insufficient_scopes() -> GoogleApiError:
    return GoogleApiError(
        403, "insufficientPermissions", "Request had insufficient authentication scopes."
    )


_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}


def login_required() -> GoogleApiError:
    # No Authorization header at all: Google answers reason "required".
    return GoogleApiError(
        401,
        "required",
        "Login Required.",
        location_type="header",
        location="Authorization",
        headers=_BEARER_CHALLENGE,
    )


def invalid_credentials() -> GoogleApiError:
    # Guide, "401: Invalid Credentials" (expired, revoked or unknown access token).
    return GoogleApiError(
        401,
        "authError",
        "Invalid Credentials",
        location_type="header",
        location="Authorization",
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        },
    )


def not_implemented(method: str, path: str) -> GoogleApiError:
    # Not a Google error: the fake says plainly that it lacks a method.
    return GoogleApiError(
        501, "notImplemented", f"The fake Google does not implement {method} {path}", domain="fake"
    )


# --- fault injection -------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One injectable failure: answered instead of running the request."""

    status: int
    reason: str
    domain: str
    message: str

    def error(self) -> GoogleApiError:
        return GoogleApiError(self.status, self.reason, self.message, domain=self.domain)

    def oauth_body(self) -> Json:
        # The token endpoint speaks RFC 6749 error JSON, not the API's error shape.
        error = "internal_failure" if self.status >= 500 else "rate_limit_exceeded"
        return {"error": error, "error_description": self.message}


# The rate-limit and quota errors of the guide's 403/429 sections, and its 500/503.
RATE_LIMIT_429 = Fault(429, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded")
USER_RATE_LIMIT_403 = Fault(403, "userRateLimitExceeded", "usageLimits", "User Rate Limit Exceeded")
RATE_LIMIT_403 = Fault(403, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded")
QUOTA_EXCEEDED_403 = Fault(403, "quotaExceeded", "usageLimits", "Calendar usage limits exceeded.")
DAILY_LIMIT_403 = Fault(403, "dailyLimitExceeded", "usageLimits", "Daily Limit Exceeded")
BACKEND_500 = Fault(500, "backendError", "global", "Backend Error")
BACKEND_503 = Fault(503, "backendError", "global", "Backend Error")

ALL_FAULTS: tuple[Fault, ...] = (
    RATE_LIMIT_429,
    USER_RATE_LIMIT_403,
    RATE_LIMIT_403,
    QUOTA_EXCEEDED_403,
    DAILY_LIMIT_403,
    BACKEND_500,
    BACKEND_503,
)

# Domain and message for a reason given to fail_next(); unknown reasons get "global".
_KNOWN_REASONS: dict[str, tuple[str, str]] = {
    "rateLimitExceeded": ("usageLimits", "Rate Limit Exceeded"),
    "userRateLimitExceeded": ("usageLimits", "User Rate Limit Exceeded"),
    "quotaExceeded": ("usageLimits", "Calendar usage limits exceeded."),
    "dailyLimitExceeded": ("usageLimits", "Daily Limit Exceeded"),
    "backendError": ("global", "Backend Error"),
    "fullSyncRequired": ("calendar", "Sync token is no longer valid, a full sync is required."),
    "notFound": ("global", "Not Found"),
    "forbidden": ("global", "Forbidden"),
    "authError": ("global", "Invalid Credentials"),
    "conditionNotMet": ("global", "Precondition Failed"),
    "deleted": ("global", "Resource has been deleted"),
    "duplicate": ("global", "The requested identifier already exists."),
}


def fault_for(status: int, reason: str, message: str | None = None) -> Fault:
    domain, known_message = _KNOWN_REASONS.get(reason, ("global", reason))
    return Fault(status, reason, domain, message or known_message)


@dataclass
class _Queued:
    fault: Fault
    target: FaultTarget
    method: str | None


class Faults:
    """Deterministic fault injection (seeded), drawn once per API call.

    ``rate`` is the probability that an API call fails with one of ``kinds``;
    ``token_rate`` the same for POST /token. ``queue()`` (FakeGoogle.fail_next)
    puts exact faults ahead of the random ones. A faulted request runs no handler,
    so it changes no state.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rate = 0.0
        self.token_rate = 0.0
        self.kinds: list[Fault] = list(ALL_FAULTS)
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._queued: deque[_Queued] = deque()
        self.injected: list[Fault] = []

    def reseed(self, seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets

    def queue(
        self,
        fault: Fault,
        count: int = 1,
        *,
        target: FaultTarget = "api",
        method: str | None = None,
    ) -> None:
        for _ in range(count):
            self._queued.append(_Queued(fault, target, method.upper() if method else None))

    def clear(self) -> None:
        self._queued.clear()
        self.rate = 0.0
        self.token_rate = 0.0

    @property
    def pending(self) -> int:
        return len(self._queued)

    def take(self, target: FaultTarget, method: str) -> Fault | None:
        for queued in self._queued:
            if queued.target == target and queued.method in (None, method.upper()):
                self._queued.remove(queued)
                self.injected.append(queued.fault)
                return queued.fault
        rate = self.rate if target == "api" else self.token_rate
        # Draw only when a rate is set, so adding calls elsewhere does not shift the
        # sequence of a test that never enabled random faults.
        if rate > 0 and self.kinds and self._rng.random() < rate:
            fault = self._rng.choice(self.kinds)
            self.injected.append(fault)
            return fault
        return None

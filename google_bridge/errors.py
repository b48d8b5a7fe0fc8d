"""How a call to Google can fail, as the bridge tells the cases apart."""

from __future__ import annotations


class GoogleError(Exception):
    """Base of the bridge's errors."""


class ReconnectNeeded(GoogleError):
    """The refresh token no longer works (``invalid_grant``: revoked, expired,
    password changed): only the person can fix it by connecting again."""


class ScopesMissing(ReconnectNeeded):
    """The person granted fewer permissions than the gateway asks for (they
    unticked some on Google's consent page): Google refuses to refresh the
    token for the scopes asked (``invalid_scope``). A new consent with every
    permission ticked fixes it."""


class QuotaExceeded(GoogleError):
    """Google's daily quota (``quotaExceeded`` / ``dailyLimitExceeded``):
    retrying within minutes cannot help; the resource pauses."""


class GoogleUnavailable(GoogleError):
    """Rate limits or server errors that outlasted the retries: try later."""


class SyncTokenExpired(GoogleError):
    """410 ``fullSyncRequired``: the sync token is no longer valid."""


class CalendarGone(GoogleError):
    """The connected calendar is gone or no longer shared (404/403 forbidden)."""


class GoogleRequestError(GoogleError):
    """Google refused the request itself (4xx other than the above)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Google answered {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

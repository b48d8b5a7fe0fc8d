"""The sections about the services the gateway talks to: outgoing and
incoming mail, the Google Calendar mirror, the outbox that retries both,
and how bookers are invited."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from .fields import (
    Details,
    Direction,
    FernetKey,
    Float,
    HttpUrl,
    Int,
    InvitationPath,
    Section,
    SmtpSecurity,
    WhenStale,
    check_email,
    check_link_key,
    check_not_blank,
)


class ImapSettings(Section):
    """The mailbox of ``mail.from_address``, polled for bookers' answers."""

    host: Annotated[str, AfterValidator(check_not_blank)]
    port: Annotated[Int, Field(ge=1, le=65535)] = 993
    # tls: TLS from the first byte (port 993); starttls: upgraded (port 143).
    security: SmtpSecurity = "tls"
    username: Annotated[str, AfterValidator(check_not_blank)]
    password: SecretStr
    folder: str = "INBOX"
    # Handled messages are moved here (else only marked seen).
    processed_folder: str | None = None
    poll_interval: Annotated[Float, Field(gt=0)] = 60.0
    timeout: Annotated[Float, Field(gt=0)] = 30.0


class MailSettings(Section):
    """Outgoing mail (SMTP): invitations and the Google-connect e-mails."""

    smtp_host: Annotated[str, AfterValidator(check_not_blank)] = "localhost"
    smtp_port: Annotated[Int, Field(ge=1, le=65535)] = 587
    # starttls: plain connection upgraded with STARTTLS (port 587); tls: TLS
    # from the first byte (port 465); none: no encryption (a local relay only).
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    # The address the gateway owns: sender of every message, ORGANIZER of
    # invitations, where replies go.
    from_address: Annotated[str, AfterValidator(check_email)]
    from_name: str = "Bookings"
    timeout: Annotated[Float, Field(gt=0)] = 30.0
    # Seconds to wait for the server's answer to the end of a message's data
    # (RFC 5321 4.5.3.2.6 allows 10 minutes): a slow final acknowledgement
    # must not make the message count as failed and be sent again.
    data_timeout: Annotated[Float, Field(gt=0)] = 60.0
    imap: ImapSettings | None = None

    @model_validator(mode="after")
    def _credentials_together(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        return self


class RetrySettings(Section):
    """Retries of one call to a remote service, with jittered exponential backoff."""

    attempts: Annotated[Int, Field(ge=1, le=20)] = 5
    initial_delay: Annotated[Float, Field(gt=0)] = 1.0
    max_delay: Annotated[Float, Field(gt=0)] = 60.0


class OutboxSettings(Section):
    """The queue of side effects (Google pushes, e-mails) and its retries."""

    poll_interval: Annotated[Float, Field(gt=0)] = 5.0
    initial_retry_delay: Annotated[Float, Field(gt=0)] = 5.0
    max_retry_delay: Annotated[Float, Field(gt=0)] = 3600.0
    batch_size: Annotated[Int, Field(ge=1, le=1000)] = 50


class GoogleMirrorSettings(Section):
    """Per-resource overrides of the mirror mode."""

    direction: Direction | None = None
    details: Details | None = None
    when_stale: WhenStale | None = None


class GoogleSettings(Section):
    """The Google Calendar mirror (OAuth client, endpoints, defaults)."""

    client_id: Annotated[str, AfterValidator(check_not_blank)]
    client_secret: SecretStr
    # Refresh tokens are stored encrypted with the first key; later keys still
    # decrypt (key rotation: put the new key first, keep the old one a while).
    token_keys: Annotated[tuple[FernetKey, ...], Field(min_length=1)]
    direction: Direction = "two_way"
    details: Details = "full"
    # The Calendar API base, service path included (googleapiclient's
    # client_options api_endpoint replaces rootUrl + servicePath).
    api_endpoint: HttpUrl = "https://www.googleapis.com/calendar/v3/"
    auth_uri: HttpUrl = "https://accounts.google.com/o/oauth2/v2/auth"
    token_uri: HttpUrl = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
    # Push notifications (events.watch) need a public https base_url with a
    # valid certificate; polling runs in any case, because pushes can be lost.
    push_notifications: bool = True
    poll_interval: Annotated[Float, Field(gt=0)] = 300.0
    channel_ttl: Annotated[Int, Field(ge=60)] = 604800
    # Renew a watch channel when less than this many seconds remain.
    channel_renew_before: Annotated[Int, Field(ge=1)] = 86400
    # Recurring Google events become busy blocks from import_past_days ago to
    # import_horizon_days ahead (an endless series has no last occurrence).
    import_past_days: Annotated[Int, Field(ge=0)] = 30
    import_horizon_days: Annotated[Int, Field(ge=1, le=3660)] = 365
    invite_ttl_hours: Annotated[Int, Field(ge=1)] = 72
    # After Google answers quotaExceeded, pause the resource this long.
    quota_pause: Annotated[Float, Field(gt=0)] = 3600.0
    request_timeout: Annotated[Float, Field(gt=0)] = 30.0
    retry: RetrySettings = Field(default_factory=RetrySettings)
    # Before a booking claims time on a resource that imports from Google,
    # its calendar is synced first when the last sync is older than this
    # many seconds (0: never), waiting at most freshness_deadline seconds;
    # if Google cannot be asked in time, when_stale decides.
    freshness_seconds: Annotated[Float, Field(ge=0)] = 30.0
    freshness_deadline: Annotated[Float, Field(gt=0, le=60)] = 2.0
    when_stale: WhenStale = "accept"

    @field_validator("token_keys", mode="before")
    @classmethod
    def _one_key(cls, value: object) -> object:
        # "token_keys: ${KEY}" (one key, not a list) is the common case.
        return [value] if isinstance(value, str) else value


class InvitationSettings(Section):
    """How bookers hear about their bookings (needs the mail section)."""

    # Signs the accept/decline links and the .ics download links in the
    # e-mails and API answers. Changing it breaks the links already sent.
    link_key: Annotated[SecretStr, AfterValidator(check_link_key)] | None = None
    # email: iMIP e-mails. google: where the resource's Google calendar is
    # connected (full details, mirrored to Google), the booker is a guest of
    # the Google event and Google sends the invitation. google_import: a
    # booker whose own Google calendar is connected here (a colleague booking
    # a room) gets a copy imported into it. E-mail remains the fallback.
    via: InvitationPath = "email"


class ResourceInvitationSettings(Section):
    via: InvitationPath | None = None

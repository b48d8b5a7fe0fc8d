"""One YAML file -> validated, frozen settings.

Admins edit a single file, so every mistake should be reported at once and
point at a line, like a compiler does: the file is read with ruamel.yaml's
round-trip loader (which remembers the line of every key and item) and checked
with pydantic (which reports every failing field, not just the first). Each
pydantic error location is mapped back to the line of that key.

Secrets need not live in the file: any string value may say ``${NAME}`` or
``${NAME:-default}`` and is filled from the environment before validation.

``config/README.md`` documents every key; keep it in step with this module.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import os
import re
import secrets
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

Access = Literal["read", "read-write"]
ALL_RESOURCES = "*"
DEFAULT_STORAGE_URL = "sqlite:///calgateway.sqlite3"

# A key path as pydantic reports it: ("resources", 1, "timezone").
Loc = tuple[str | int, ...]

# Set in the validation context by the loader, which has already checked
# cross-references on the raw data (with line numbers); the model validator
# then skips its own copy of those checks so nothing is reported twice.
_CROSS_CHECKED = "calgateway_cross_checked"
_BASE_DIR = "calgateway_base_dir"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a settings file."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.path and self.line is not None:
            return f"{self.path} (line {self.line}): {self.message}"
        if self.path:
            return f"{self.path}: {self.message}"
        if self.line is not None:
            return f"line {self.line}: {self.message}"
        return self.message


class SettingsError(Exception):
    """A settings file that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        # Passing both to Exception keeps the error picklable (args rebuild it).
        super().__init__(source, list(issues))
        self.source = source
        self.issues: list[ConfigIssue] = list(issues)

    def __str__(self) -> str:
        lines = []
        for issue in self.issues:
            # "file:line: path: message", the shape editors and CI logs can jump to.
            where = self.source if issue.line is None else f"{self.source}:{issue.line}"
            what = f"{issue.path}: {issue.message}" if issue.path else issue.message
            lines.append(f"{where}: {what}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- field rules

_USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_RESOURCE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# 22 url-safe characters carry 132 bits: what secrets.token_urlsafe(16) gives.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PASSWORD_HASH_PREFIXES = ("$argon2", "$2b$", "$2a$", "$2y$")
# Files in a zoneinfo directory that load but are not zone names an admin means.
_NOT_ZONES = frozenset({"localtime", "posixrules"})


def _reject_bool(value: object) -> object:
    # pydantic's lax mode reads true as 1; "port: true" is surely a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    return value


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=256)
def _is_timezone(name: str) -> bool:
    # The exact-name check matters on case-insensitive file systems, where
    # ZoneInfo("europe/berlin") loads but is no name other programs know.
    if name in _NOT_ZONES or name not in _zone_names():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _check_timezone(name: str) -> str:
    if not _is_timezone(name):
        raise ValueError(f"unknown IANA timezone {name!r}")
    return name


def _check_token(token: SecretStr) -> SecretStr:
    # The message never repeats the value: it is a secret.
    if not _TOKEN.fullmatch(token.get_secret_value()):
        raise ValueError(
            "a token needs at least 22 characters of A-Z a-z 0-9 _ - (128 random bits); "
            "run `calgateway new-token` to make one"
        )
    return token


def _check_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        raise ValueError("a name needs 1 to 64 characters of A-Z a-z 0-9 . _ @ -")
    return name


def _check_password_hash(value: str) -> str:
    if not value.startswith(_PASSWORD_HASH_PREFIXES):
        raise ValueError(
            "must be an argon2 or bcrypt hash (starting with $argon2 or $2b$), not a password; "
            "run `calgateway hash-password` and paste its output"
        )
    return value


def _check_resource_id(value: str) -> str:
    if not _RESOURCE_ID.fullmatch(value):
        raise ValueError(
            "a resource id needs 1 to 63 characters of a-z 0-9 _ - starting with a letter "
            "or digit (it appears in URLs)"
        )
    return value


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Int = Annotated[int, BeforeValidator(_reject_bool)]
Float = Annotated[float, BeforeValidator(_reject_bool)]
Timezone = Annotated[str, AfterValidator(_check_timezone)]
Token = Annotated[SecretStr, AfterValidator(_check_token)]
PrincipalName = Annotated[str, AfterValidator(_check_user_name)]
Grants = dict[str, Access]


def _all_access() -> dict[str, Access]:
    return {ALL_RESOURCES: "read-write"}


# --------------------------------------------------------------------------- models


class _Section(BaseModel):
    # Frozen: settings are shared by every request and never change at run time.
    # extra="forbid": a misspelt key must be an error, not a silently ignored default.
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    host: Annotated[str, AfterValidator(_check_not_blank)] = "127.0.0.1"
    port: Annotated[Int, Field(ge=0, le=65535)] = 8080
    base_url: str | None = None
    max_body_bytes: Annotated[Int, Field(ge=1024)] = 1_048_576
    # A whole calendar file sent to the import API (years of appointments).
    max_import_bytes: Annotated[Int, Field(ge=1024)] = 33_554_432
    log_format: Literal["json", "text"] = "json"
    shutdown_timeout: Annotated[Float, Field(gt=0)] = 10.0
    # Connection deadlines (408 or a closed socket when they pass): a client
    # that trickles its request head or body, or sits idle, must not hold a
    # socket and a file descriptor for ever (slowloris).
    head_timeout: Annotated[Float, Field(gt=0)] = 10.0
    body_timeout: Annotated[Float, Field(gt=0)] = 60.0
    keepalive_timeout: Annotated[Float, Field(gt=0)] = 60.0
    # Connections open at once, in all and from one client address (0: no
    # per-address cap, for a reverse proxy that is the only client).
    max_connections: Annotated[Int, Field(ge=1)] = 1000
    max_connections_per_address: Annotated[Int, Field(ge=0)] = 64
    # Heavy requests (whole-calendar PROPFIND, REPORTs, feeds) run at most this
    # many at once; up to heavy_queue more wait, beyond that 503 + Retry-After.
    heavy_requests: Annotated[Int, Field(ge=1)] = 4
    heavy_queue: Annotated[Int, Field(ge=0)] = 64
    # Seconds a queued heavy request waits at most before its 503.
    heavy_queue_timeout: Annotated[Float, Field(gt=0)] = 30.0
    # /metrics: off (404), token (Authorization: Bearer metrics_token) or public.
    metrics: Literal["off", "token", "public"] = "off"
    metrics_token: Token | None = None
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR
    # networks): behind one, every client would otherwise share its address.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an IP address or network (like 10.0.0.0/8)"
                ) from None
        return values

    @model_validator(mode="after")
    def _metrics_token_when_needed(self) -> Self:
        if self.metrics == "token" and self.metrics_token is None:
            raise ValueError("metrics: token needs metrics_token (run `calgateway new-token`)")
        return self

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        # Empty means "not set", so "${CALGATEWAY_BASE_URL:-}" can leave it out.
        if value is None or not value.strip():
            return None
        absolute = "must be an absolute http:// or https:// URL, like https://calendar.example.com"
        try:
            parts = urlsplit(value)
            hostname = parts.hostname
            _ = parts.port  # raises on a port that is not a number in 0-65535
        except ValueError:
            raise ValueError(absolute) from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise ValueError(absolute)
        if parts.query or parts.fragment:
            raise ValueError("must not have a query (?) or fragment (#)")
        # Stripped so that f"{base_url}/feeds/..." never yields a double slash.
        return value.rstrip("/")

    @property
    def public_url(self) -> str:
        """Where clients reach the server: ``base_url`` or one made from host and port."""
        if self.base_url:
            return self.base_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def _sqlite_file(url: str) -> str:
    """The file part of a ``sqlite:///`` URL, as written (relative or absolute)."""
    rest = url.partition("://")[2]
    if not rest.startswith("/"):
        raise ValueError(
            "a sqlite URL has no host: write sqlite:///relative/path or sqlite:////absolute/path"
        )
    path = rest[1:]
    if "?" in path:
        raise ValueError("query parameters are not supported in a sqlite URL")
    if not path or path == ":memory:" or path.endswith("/"):
        raise ValueError("needs a database file, like sqlite:///calgateway.sqlite3")
    return path


def _check_postgres_url(url: str) -> None:
    """A ``postgresql://user@host:port/dbname`` URL without a password: one
    in the settings file would sit in backups and bug reports."""
    parts = urlsplit(url)
    if parts.password is not None:
        raise ValueError(
            "must not hold the password: name an environment variable in "
            "storage.password_env or a file in storage.password_file"
        )
    if not parts.hostname:
        raise ValueError("needs a host, like postgresql://calgateway@db.example:5432/calgateway")
    if not parts.path.strip("/"):
        raise ValueError("needs a database name, like postgresql://calgateway@db:5432/calgateway")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        raise ValueError("the port must be a number, like :5432") from None


def storage_backend(url: str) -> Literal["sqlite", "postgresql"]:
    """Which store a ``storage.url`` names; ValueError with the reason."""
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise ValueError(
            "must be a URL like sqlite:///calgateway.sqlite3 or "
            "postgresql://calgateway@db.example:5432/calgateway"
        )
    scheme = scheme.lower()
    if scheme == "sqlite":
        _sqlite_file(url)
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        _check_postgres_url(url)
        return "postgresql"
    # Only the scheme is echoed: other database URLs often carry a password.
    raise ValueError(f"unsupported scheme {scheme!r}: use sqlite:/// or postgresql://")


class StorageSettings(_Section):
    url: str = DEFAULT_STORAGE_URL
    # PostgreSQL's password: the name of an environment variable holding it,
    # or a file holding it (relative to the settings file); never in the URL.
    # Neither: libpq's own sources (PGPASSWORD, ~/.pgpass) or no password.
    password_env: str | None = None
    password_file: str | None = None
    # Resolved once at load time against the settings file's directory, so that
    # the server finds the same file whatever its working directory.
    _sqlite_path: Path | None = PrivateAttr(default=None)
    _password_path: Path | None = PrivateAttr(default=None)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        storage_backend(value)
        return value

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> Self:
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get(_BASE_DIR)
        base_dir = Path(base) if base is not None else Path.cwd()
        if self.backend == "sqlite":
            if self.password_env is not None or self.password_file is not None:
                raise ValueError("password_env and password_file are for postgresql:// only")
            path = Path(_sqlite_file(self.url))
            self._sqlite_path = (path if path.is_absolute() else base_dir / path).resolve()
            return self
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("give password_env or password_file, not both")
        if self.password_env is not None and not self.password_env.strip():
            raise ValueError("password_env must name an environment variable")
        if self.password_file is not None:
            file = Path(self.password_file)
            self._password_path = (file if file.is_absolute() else base_dir / file).resolve()
        return self

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return storage_backend(self.url)

    @property
    def sqlite_path(self) -> Path:
        """The absolute path of the SQLite database file (sqlite:/// only)."""
        if self._sqlite_path is None:
            raise ValueError(f"storage.url is not a sqlite:/// URL: {self.describe()}")
        return self._sqlite_path

    @property
    def password_path(self) -> Path | None:
        """The absolute path of ``password_file``, if one is given."""
        return self._password_path

    def describe(self) -> str:
        """The store for messages and logs: never a password."""
        if self.backend == "sqlite":
            return str(self.sqlite_path)
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"postgresql://{parts.hostname}{port}{parts.path}"


class LimitsSettings(_Section):
    """What one calendar object may make the server do (RFC 4791 5.3.2.1
    max-instances, valid-calendar-data): a booking calendar never needs a
    rule that fires every second, and one object must not stall everyone."""

    # Instances of one object looked at per query, and at most accepted in a
    # series bounded by COUNT/UNTIL.
    max_instances: Annotated[Int, Field(ge=1)] = 10_000
    # A rule more often than daily (SECONDLY, MINUTELY, HOURLY) is refused
    # unless COUNT or UNTIL bound it to at most this many occurrences.
    max_sub_daily_occurrences: Annotated[Int, Field(ge=0)] = 1000
    # Overridden instances (RECURRENCE-ID) in one object.
    max_overrides: Annotated[Int, Field(ge=0)] = 1000
    # Candidates one expansion may walk (every step of the rule, kept or not),
    # and the seconds it may take, before the query answers with an error.
    max_expansion_steps: Annotated[Int, Field(ge=1)] = 200_000
    expansion_seconds: Annotated[Float, Field(gt=0)] = 2.0


class AuthSettings(_Section):
    """Password guessing: backoff per client address and per user name,
    answered with 429 and Retry-After before any hash is computed."""

    # Wrong passwords allowed in `failure_window` seconds before a lockout.
    max_failures_per_address: Annotated[Int, Field(ge=1)] = 10
    max_failures_per_user: Annotated[Int, Field(ge=1)] = 10
    failure_window: Annotated[Float, Field(gt=0)] = 300.0
    # The first lockout lasts this long, each further one twice as long.
    lockout_seconds: Annotated[Float, Field(gt=0)] = 30.0
    max_lockout_seconds: Annotated[Float, Field(gt=0)] = 900.0
    # Password checks waiting for a worker; beyond this, 429 + Retry-After to
    # an address already holding places, 503 + Retry-After to others.
    check_queue: Annotated[Int, Field(ge=1)] = 32


# The languages the booker pages and invitation mails are written in: one
# gettext catalog each under gateway/look/locales (English is the source).
Language = Literal["en", "de"]


class DefaultSettings(_Section):
    timezone: Timezone = "UTC"
    # The language of every resource's booker pages and mails, unless the
    # resource sets its own.
    language: Language = "en"


class UserSettings(_Section):
    name: PrincipalName
    password_hash: Annotated[str, AfterValidator(_check_password_hash)]
    access: Grants
    # May sign in to the admin console at / (every resource, every action).
    admin: bool = False


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _check_colour(value: str) -> str:
    if not _HEX_COLOUR.fullmatch(value):
        raise ValueError(f"{value!r} is not a colour like #1a5fb4 (# and six hex digits)")
    return value.lower()


class BrandingSettings(_Section):
    """How the pages a booker or a resource owner opens look: the business's
    name, an optional logo and the accent colour of buttons and links."""

    name: Annotated[str, AfterValidator(_check_not_blank)] = "Bookings"
    logo_url: HttpUrl | None = None
    accent_color: Annotated[str, AfterValidator(_check_colour)] = "#1a5fb4"


class ApiTokenSettings(_Section):
    name: PrincipalName
    token: Token
    access: Grants = Field(default_factory=_all_access)


Direction = Literal["off", "to_google", "from_google", "two_way"]
Details = Literal["full", "anonymous"]
# What a booking does when Google cannot be asked in time (gateway.core.freshness).
WhenStale = Literal["accept", "refuse"]
SmtpSecurity = Literal["starttls", "tls", "none"]


def _check_fernet_key(key: SecretStr) -> SecretStr:
    # A Fernet key is 32 bytes in url-safe base64 (44 characters with padding).
    # Checked here so a bad key fails at start-up, not at the first connect.
    raw = key.get_secret_value().strip()
    try:
        decoded = base64.urlsafe_b64decode(raw.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        decoded = b""
    if len(decoded) != 32:
        raise ValueError(
            "a token key is 32 random bytes in url-safe base64 (44 characters); "
            "run `calgateway google new-key` to make one"
        )
    return key


FernetKey = Annotated[SecretStr, AfterValidator(_check_fernet_key)]


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


class ImapSettings(_Section):
    """The mailbox of ``mail.from_address``, polled for bookers' answers."""

    host: Annotated[str, AfterValidator(_check_not_blank)]
    port: Annotated[Int, Field(ge=1, le=65535)] = 993
    # tls: TLS from the first byte (port 993); starttls: upgraded (port 143).
    security: SmtpSecurity = "tls"
    username: Annotated[str, AfterValidator(_check_not_blank)]
    password: SecretStr
    folder: str = "INBOX"
    # Handled messages are moved here (else only marked seen).
    processed_folder: str | None = None
    poll_interval: Annotated[Float, Field(gt=0)] = 60.0
    timeout: Annotated[Float, Field(gt=0)] = 30.0


class MailSettings(_Section):
    """Outgoing mail (SMTP): invitations and the Google-connect e-mails."""

    smtp_host: Annotated[str, AfterValidator(_check_not_blank)] = "localhost"
    smtp_port: Annotated[Int, Field(ge=1, le=65535)] = 587
    # starttls: plain connection upgraded with STARTTLS (port 587); tls: TLS
    # from the first byte (port 465); none: no encryption (a local relay only).
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    # The address the gateway owns: sender of every message, ORGANIZER of
    # invitations, where replies go.
    from_address: Annotated[str, AfterValidator(_check_email)]
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


class RetrySettings(_Section):
    """Retries of one call to a remote service, with jittered exponential backoff."""

    attempts: Annotated[Int, Field(ge=1, le=20)] = 5
    initial_delay: Annotated[Float, Field(gt=0)] = 1.0
    max_delay: Annotated[Float, Field(gt=0)] = 60.0


class OutboxSettings(_Section):
    """The queue of side effects (Google pushes, e-mails) and its retries."""

    poll_interval: Annotated[Float, Field(gt=0)] = 5.0
    initial_retry_delay: Annotated[Float, Field(gt=0)] = 5.0
    max_retry_delay: Annotated[Float, Field(gt=0)] = 3600.0
    batch_size: Annotated[Int, Field(ge=1, le=1000)] = 50


class GoogleMirrorSettings(_Section):
    """Per-resource overrides of the mirror mode."""

    direction: Direction | None = None
    details: Details | None = None
    when_stale: WhenStale | None = None


class GoogleSettings(_Section):
    """The Google Calendar mirror (OAuth client, endpoints, defaults)."""

    client_id: Annotated[str, AfterValidator(_check_not_blank)]
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


InvitationPath = Literal["email", "google", "google_import"]


def _check_link_key(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value().encode("utf-8")) < 32:
        # RFC 2104 3: a key shorter than the hash output weakens the MAC.
        raise ValueError(
            "needs at least 32 characters of random text; run `calgateway new-token` to make one"
        )
    return key


class InvitationSettings(_Section):
    """How bookers hear about their bookings (needs the mail section)."""

    # Signs the accept/decline links and the .ics download links in the
    # e-mails and API answers. Changing it breaks the links already sent.
    link_key: Annotated[SecretStr, AfterValidator(_check_link_key)] | None = None
    # email: iMIP e-mails. google: where the resource's Google calendar is
    # connected (full details, mirrored to Google), the booker is a guest of
    # the Google event and Google sends the invitation. google_import: a
    # booker whose own Google calendar is connected here (a colleague booking
    # a room) gets a copy imported into it. E-mail remains the fallback.
    via: InvitationPath = "email"


class ResourceInvitationSettings(_Section):
    via: InvitationPath | None = None


class ResourceSettings(_Section):
    id: Annotated[str, AfterValidator(_check_resource_id)]
    name: Annotated[str, AfterValidator(_check_not_blank)]
    email: Annotated[str, AfterValidator(_check_email)]
    # Required here, but optional in YAML: Settings fills it from defaults.timezone.
    timezone: Timezone
    feed_tokens: tuple[Token, ...] = ()
    google: GoogleMirrorSettings | None = None
    invitations: ResourceInvitationSettings | None = None
    # The language of this resource's booker pages and mails (else defaults.language).
    language: Language | None = None

    @field_validator("feed_tokens", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        # "feed_tokens:" with every entry commented out reads as null: no feed.
        return () if value is None else value


class Settings(_Section):
    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    defaults: DefaultSettings = Field(default_factory=DefaultSettings)
    users: tuple[UserSettings, ...] = ()
    api_tokens: tuple[ApiTokenSettings, ...] = ()
    resources: Annotated[tuple[ResourceSettings, ...], Field(min_length=1)]
    mail: MailSettings | None = None
    google: GoogleSettings | None = None
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    invitations: InvitationSettings = Field(default_factory=InvitationSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    branding: BrandingSettings = Field(default_factory=BrandingSettings)

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        # A section whose keys are all commented out reads as null: use the defaults.
        for section in (
            "server",
            "storage",
            "defaults",
            "users",
            "api_tokens",
            "outbox",
            "invitations",
            "limits",
            "auth",
            "branding",
        ):
            if section in data and data[section] is None:
                del data[section]
        # Present, so StorageSettings is validated with the context (the base directory).
        data.setdefault("storage", {})
        resources = data.get("resources")
        if isinstance(resources, list | tuple):
            timezone = _default_timezone(data.get("defaults"))
            data["resources"] = [
                {**r, "timezone": timezone} if isinstance(r, Mapping) and "timezone" not in r else r
                for r in resources
            ]
        return data

    @model_validator(mode="after")
    def _check_references(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, dict) and info.context.get(_CROSS_CHECKED):
            return self
        problems = _cross_check(self._plain())
        if problems:
            raise ValueError("; ".join(f"{_format_loc(loc)}: {msg}" for loc, msg in problems))
        return self

    def _plain(self) -> dict[str, Any]:
        return {
            "resources": [
                {"id": r.id, "feed_tokens": [t.get_secret_value() for t in r.feed_tokens]}
                for r in self.resources
            ],
            "users": [{"name": u.name, "access": u.access} for u in self.users],
            "api_tokens": [
                {"name": t.name, "token": t.token.get_secret_value(), "access": t.access}
                for t in self.api_tokens
            ],
        }

    @model_validator(mode="after")
    def _google_overrides_need_google(self) -> Self:
        if self.google is None:
            overridden = [r.id for r in self.resources if r.google is not None]
            if overridden:
                raise ValueError(
                    f"resources {', '.join(overridden)} set google: but the top-level "
                    "google section is missing"
                )
        return self

    def invitation_path(self, resource_id: str) -> InvitationPath:
        """How the resource's bookers are invited: its own choice, else the default."""
        resource = self.resource(resource_id)
        own = resource.invitations if resource is not None else None
        return (own.via if own is not None else None) or self.invitations.via

    def mirror_mode(self, resource_id: str) -> tuple[Direction, Details]:
        """The Google mirror direction and detail level of a resource: its own
        override, else the google section's default; "off" without Google."""
        resource = self.resource(resource_id)
        if self.google is None or resource is None:
            return "off", "full"
        own = resource.google or GoogleMirrorSettings()
        return own.direction or self.google.direction, own.details or self.google.details

    def when_stale(self, resource_id: str) -> WhenStale:
        """What a booking of the resource does when its busy time from Google
        cannot be brought up to date: its own choice, else the google
        section's ("accept" without Google, where nothing is imported)."""
        resource = self.resource(resource_id)
        if self.google is None or resource is None:
            return "accept"
        own = resource.google.when_stale if resource.google is not None else None
        return own or self.google.when_stale

    def language(self, resource_id: str | None) -> Language:
        """The language of a resource's booker pages and mails: its own
        choice, else defaults.language (also for no resource)."""
        resource = self.resource(resource_id) if resource_id is not None else None
        own = resource.language if resource is not None else None
        return own or self.defaults.language

    def resource(self, resource_id: str) -> ResourceSettings | None:
        """The resource with this id, or None."""
        for r in self.resources:
            if r.id == resource_id:
                return r
        return None


def _default_timezone(defaults: object) -> str:
    if isinstance(defaults, DefaultSettings):
        return defaults.timezone
    value = defaults.get("timezone", "UTC") if isinstance(defaults, Mapping) else "UTC"
    # An invalid default is reported at defaults.timezone; a stand-in here keeps
    # it from being reported again at every resource that inherits it.
    return value if isinstance(value, str) and _is_timezone(value) else "UTC"


def new_token() -> str:
    """A random secret for ``feed_tokens`` or ``api_tokens`` (256 bits)."""
    return secrets.token_urlsafe(32)


# --------------------------------------------------------------------------- cross-references


def _entries(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(value, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _cross_check(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Rules that span entries: unique ids, names and tokens; grants naming real resources.

    Works on plain data (the loader passes the raw YAML, so these problems are
    reported together with field errors); anything of the wrong type is left to
    field validation.
    """
    problems: list[tuple[Loc, str]] = []

    def unique(section: str, key: str, what: str) -> dict[str, Loc]:
        seen: dict[str, Loc] = {}
        for i, entry in _entries(data.get(section)):
            value = entry.get(key)
            if not isinstance(value, str):
                continue
            if value in seen:
                first = _format_loc(seen[value])
                problems.append(
                    ((section, i, key), f"duplicate {what} {value!r} (first at {first})")
                )
            else:
                seen[value] = (section, i, key)
        return seen

    resource_ids = unique("resources", "id", "resource id")
    unique("users", "name", "user name")
    # Token names scope per-caller state such as idempotency keys.
    unique("api_tokens", "name", "API token name")

    known = ", ".join(sorted(resource_ids))
    for section in ("users", "api_tokens"):
        for i, entry in _entries(data.get(section)):
            access = entry.get("access")
            if not isinstance(access, Mapping):
                continue
            for key in access:
                if isinstance(key, str) and key != ALL_RESOURCES and key not in resource_ids:
                    problems.append(
                        (
                            (section, i, "access", key),
                            f"unknown resource {key!r} (resources: {known}; '*' means all)",
                        )
                    )

    # Every secret must be unique: a feed token (it travels in URLs) that is also
    # an API token would leak write access, and a shared feed token would open
    # two calendars with one URL.
    tokens: dict[str, Loc] = {}

    def claim(token: object, loc: Loc) -> None:
        if not isinstance(token, str):
            return
        if token in tokens:
            first = _format_loc(tokens[token])
            problems.append((loc, f"this token is already used at {first}; tokens must be unique"))
        else:
            tokens[token] = loc

    for i, entry in _entries(data.get("api_tokens")):
        claim(entry.get("token"), ("api_tokens", i, "token"))
    for i, entry in _entries(data.get("resources")):
        feed_tokens = entry.get("feed_tokens")
        if isinstance(feed_tokens, list | tuple):
            for j, token in enumerate(feed_tokens):
                claim(token, ("resources", i, "feed_tokens", j))
    return problems


# --------------------------------------------------------------------------- loading


def load_settings(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate a settings file; relative paths in it are relative to its directory."""
    file = Path(path)
    source = str(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise SettingsError(source, [ConfigIssue("", None, "file not found")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(source, [ConfigIssue("", None, f"cannot read: {reason}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"not UTF-8 text (byte {exc.start})"
        raise SettingsError(source, [ConfigIssue("", line, message)]) from None
    return parse_settings(text, source=source, base_dir=file.parent, environ=environ)


def parse_settings(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate settings given as YAML text; raises SettingsError listing every problem."""
    document = _parse_yaml(text, source)
    reader = _Reader(os.environ if environ is None else environ)
    if document is None:
        # An empty file: report what is missing rather than a type error.
        data: object = {}
    else:
        data = reader.plain(document, ())
    if not isinstance(data, dict):
        issue = ConfigIssue("", reader.lines.get(()), _wrong_type("a mapping of sections", data))
        raise SettingsError(source, [issue])

    issues = list(reader.issues)
    for where, message in _cross_check(data):
        issues.append(ConfigIssue(_format_loc(where), reader.line(where), message))

    context = {
        _BASE_DIR: (base_dir if base_dir is not None else Path.cwd()).resolve(),
        _CROSS_CHECKED: True,
    }
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for error in errors:
            loc: Loc = tuple(error["loc"])
            # pydantic counts only the entries that validated, so a list whose
            # every entry is wrong is also called "too short": say only what is wrong.
            if error["type"] == "too_short" and any(
                len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc
                for other in errors
            ):
                continue
            # A value already reported as an unset variable would only repeat it.
            if any(loc[: len(bad)] == bad for bad in reader.env_locs):
                continue
            issues.append(_issue_from_pydantic(loc, error, reader))
    if issues or settings is None:
        # Stable sort: issues on one line keep the order they were found in.
        issues.sort(key=lambda i: (i.line is None, i.line or 0))
        raise SettingsError(source, issues)
    return settings


def _parse_yaml(text: str, source: str) -> Any:
    yaml = YAML(typ="rt")
    # The default already, but the check matters: a second "port:" silently winning
    # is exactly the kind of mistake this loader exists to catch.
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        raise SettingsError(source, [_yaml_issue(exc)]) from None
    except YAMLError as exc:
        message = f"invalid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        raise SettingsError(source, [ConfigIssue("", None, message)]) from None


_DUPLICATE = re.compile(r'found duplicate key "(.*)" with value')


def _yaml_issue(exc: MarkedYAMLError) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = exc.problem or ""
    duplicate = _DUPLICATE.search(problem)
    if duplicate:
        # ruamel's text repeats both values (secrets, perhaps) and a help URL.
        return ConfigIssue("", line, f"duplicate key {duplicate.group(1)!r}")
    message = f"invalid YAML: {problem}" if problem else "invalid YAML"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} on line {exc.context_mark.line + 1})"
    if "alias" in problem:
        # The likely cause in this file: an unquoted "*" (all resources) in access.
        message += '; a bare * starts a YAML alias: write "*" in quotes'
    return ConfigIssue("", line, message)


_ENV_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


class _Reader:
    """Turns ruamel's nodes into plain Python values, noting the line of every key
    and item and filling ``${NAME}`` references from the environment."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.lines: dict[Loc, int] = {}
        self.issues: list[ConfigIssue] = []
        self.env_locs: list[Loc] = []

    def line(self, loc: Loc) -> int | None:
        # A key that is missing has no line of its own: use the nearest enclosing one.
        for end in range(len(loc), -1, -1):
            found = self.lines.get(loc[:end])
            if found is not None:
                return found
        return None

    def _note(self, loc: Loc, line: int | None) -> None:
        if line is not None:
            self.lines[loc] = line

    def plain(self, node: Any, loc: Loc) -> Any:
        if loc == ():
            self.lines[()] = _node_line(node) or 1
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for key, value in node.items():
                plain_key = self._scalar(key)
                child: Loc = (*loc, plain_key) if isinstance(plain_key, str | int) else loc
                self._note(child, _key_line(node, key))
                out[plain_key] = self.plain(value, child)
            return out
        if isinstance(node, list):
            items = []
            for index, value in enumerate(node):
                child = (*loc, index)
                self._note(child, _item_line(node, index))
                items.append(self.plain(value, child))
            return items
        if isinstance(node, str):
            return self._substitute(str(node), loc)
        return self._scalar(node)

    @staticmethod
    def _scalar(value: Any) -> Any:
        # ruamel's round-trip types subclass int/float/str (ScalarBoolean even
        # subclasses int); plain types keep pydantic's type checks exact.
        if isinstance(value, ScalarBoolean | bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, str):
            return str(value)
        return value

    def _substitute(self, text: str, loc: Loc) -> str:
        if "${" not in text:
            return text
        problems: list[str] = []

        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            body = match.group(1)
            if body is None:
                problems.append("unclosed '${' (write '$${' for a literal '${')")
                return whole
            ref = _ENV_BODY.fullmatch(body)
            if ref is None:
                problems.append(
                    f"invalid environment reference {whole!r}: use ${{NAME}} or ${{NAME:-default}}"
                )
                return whole
            name, default = ref.group(1), ref.group(2)
            value = self.environ.get(name)
            if default is not None:
                # Shell semantics: the default also replaces a variable set to "".
                return value if value else default
            if value is None:
                problems.append(f"environment variable {name} is not set")
                return ""
            return value

        result = _ENV_REF.sub(replace, text)
        if problems:
            self.env_locs.append(loc)
            for problem in problems:
                self.issues.append(ConfigIssue(_format_loc(loc), self.line(loc), problem))
        return result


def _node_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    line = getattr(lc, "line", None)
    return line + 1 if isinstance(line, int) else None


def _key_line(node: Any, key: Any) -> int | None:
    try:
        line, _column = node.lc.key(key)
    except (AttributeError, KeyError, TypeError):
        # Keys merged in with "<<:" have no position of their own in this mapping.
        return _node_line(node)
    return int(line) + 1


def _item_line(node: Any, index: int) -> int | None:
    try:
        line, _column = node.lc.item(index)
    except (AttributeError, KeyError, TypeError, IndexError):
        return _node_line(node)
    return int(line) + 1


# --------------------------------------------------------------------------- messages


def _format_loc(loc: Loc) -> str:
    """("resources", 1, "timezone") -> "resources[1].timezone"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue  # pydantic's marker for "the key itself": the path already names it
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _kind(value: object) -> str:
    # Names the kind of value only: the value itself may be a secret.
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def _wrong_type(expected: str, value: object) -> str:
    return f"expected {expected}, got {_kind(value)}"


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "float_type": "a number",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "tuple_type": "a list",
    "list_type": "a list",
}


def _allowed_keys(loc: Loc) -> list[str] | None:
    """The keys the model at ``loc`` accepts, found by walking the annotations."""
    tp: Any = Settings
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) is tuple and isinstance(part, int):
            tp = get_args(tp)[0]
        else:
            return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    message = f"unknown key {key!r}"
    allowed = _allowed_keys(loc[:-1])
    if allowed:
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            return f"{message}; did you mean {close[0]!r}?"
        return f"{message} (allowed: {', '.join(allowed)})"
    return message


def _too_short(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    count = ctx.get("min_length", 1)
    return f"needs at least {count} {'entry' if count == 1 else 'entries'}"


_MESSAGES: dict[str, Callable[[Loc, Mapping[str, Any]], str]] = {
    "missing": lambda loc, _e: f"missing required key {str(loc[-1])!r}",
    "extra_forbidden": lambda loc, _e: _unknown_key(loc),
    "too_short": lambda _loc, e: _too_short(e),
}


def _issue_from_pydantic(loc: Loc, error: Mapping[str, Any], reader: _Reader) -> ConfigIssue:
    kind = str(error["type"])
    ctx = error.get("ctx") or {}
    if kind in _MESSAGES:
        message = _MESSAGES[kind](loc, error)
    elif kind == "value_error" and "error" in ctx:
        message = str(ctx["error"])
    elif kind in _EXPECTED:
        message = _wrong_type(_EXPECTED[kind], error.get("input"))
    elif kind == "literal_error":
        message = f"expected {ctx.get('expected', 'one of the listed values')}"
        value = error.get("input")
        # Only choices (access levels, log format) are literals: safe to echo.
        if isinstance(value, str):
            message += f", got {value!r}"
    else:
        # pydantic's own wording, phrased like the rest ("must be at most 65535").
        message = re.sub(r"^Input should", "must", str(error["msg"]))
    if loc and loc[-1] == "[key]":
        message = f"invalid key: {message}"
    return ConfigIssue(_format_loc(loc), reader.line(loc), message)

"""The sections about serving: listening and limits (``server``), the
store (``storage``), what one calendar object may cost (``limits``),
password guessing (``auth``), defaults, users and API tokens, the look of
the pages (``branding``) and the demo switch (``demo``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .fields import (
    BASE_DIR,
    Float,
    Grants,
    HttpUrl,
    Int,
    Language,
    PrincipalName,
    Section,
    Timezone,
    Token,
    all_access,
    check_colour,
    check_not_blank,
    check_password_hash,
)

DEFAULT_STORAGE_URL = "sqlite:///calgateway.sqlite3"


class ServerSettings(Section):
    host: Annotated[str, AfterValidator(check_not_blank)] = "127.0.0.1"
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


class StorageSettings(Section):
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
        base = context.get(BASE_DIR)
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


class LimitsSettings(Section):
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


class AuthSettings(Section):
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


class DefaultSettings(Section):
    timezone: Timezone = "UTC"
    # The language of every resource's booker pages and mails, unless the
    # resource sets its own.
    language: Language = "en"
    # CalDAV writes organized by the resource invite their attendees (RFC 6638).
    implicit_scheduling: bool = True
    # A CalDAV write inviting a resource's address books the resource.
    accept_invitations: bool = False


class UserSettings(Section):
    name: PrincipalName
    password_hash: Annotated[str, AfterValidator(check_password_hash)]
    access: Grants
    # May sign in to the admin console at / (every resource, every action).
    admin: bool = False


class BrandingSettings(Section):
    """How the pages a booker or a resource owner opens look: the business's
    name, an optional logo and the accent colour of buttons and links."""

    name: Annotated[str, AfterValidator(check_not_blank)] = "Bookings"
    logo_url: HttpUrl | None = None
    accent_color: Annotated[str, AfterValidator(check_colour)] = "#1a5fb4"


class ApiTokenSettings(Section):
    name: PrincipalName
    token: Token
    access: Grants = Field(default_factory=all_access)


class DemoSettings(Section):
    """A demo installation: never in production."""

    # Start the project's fake Google Calendar on loopback with the server,
    # so the Google connect flow can be clicked through without credentials.
    # The google section's endpoints must then point at it.
    fake_google: bool = False

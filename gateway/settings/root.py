"""The whole settings file (``Settings``): its sections, the resources,
the rules that span entries (unique ids and tokens, grants naming real
resources), and the per-resource choices made from defaults and overrides."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from .errors import Loc, format_loc
from .fields import (
    ALL_RESOURCES,
    CROSS_CHECKED,
    Details,
    Direction,
    InvitationPath,
    Language,
    Section,
    Timezone,
    Token,
    WhenStale,
    check_email,
    check_not_blank,
    check_resource_id,
    is_timezone,
)
from .server import (
    ApiTokenSettings,
    AuthSettings,
    BrandingSettings,
    DefaultSettings,
    DemoSettings,
    LimitsSettings,
    ServerSettings,
    StorageSettings,
    UserSettings,
)
from .services import (
    GoogleMirrorSettings,
    GoogleSettings,
    InvitationSettings,
    MailSettings,
    OutboxSettings,
    ResourceInvitationSettings,
)


class ResourceSettings(Section):
    id: Annotated[str, AfterValidator(check_resource_id)]
    name: Annotated[str, AfterValidator(check_not_blank)]
    email: Annotated[str, AfterValidator(check_email)]
    # Required here, but optional in YAML: Settings fills it from defaults.timezone.
    timezone: Timezone
    feed_tokens: tuple[Token, ...] = ()
    google: GoogleMirrorSettings | None = None
    invitations: ResourceInvitationSettings | None = None
    # The language of this resource's booker pages and mails (else defaults.language).
    language: Language | None = None
    # Whether CalDAV writes invite attendees (else defaults.implicit_scheduling).
    implicit_scheduling: bool | None = None
    # Whether invitations to its address book it (else defaults.accept_invitations).
    accept_invitations: bool | None = None

    @field_validator("feed_tokens", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        # "feed_tokens:" with every entry commented out reads as null: no feed.
        return () if value is None else value


class Settings(Section):
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
    demo: DemoSettings = Field(default_factory=DemoSettings)

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
            "demo",
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
        if isinstance(info.context, dict) and info.context.get(CROSS_CHECKED):
            return self
        problems = cross_check(self._plain())
        if problems:
            raise ValueError("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in problems))
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

    def implicit_scheduling(self, resource_id: str) -> bool:
        """Whether a CalDAV write organized by the resource invites its
        attendees (RFC 6638): its own choice, else the default's."""
        resource = self.resource(resource_id)
        own = resource.implicit_scheduling if resource is not None else None
        return self.defaults.implicit_scheduling if own is None else own

    def accept_invitations(self, resource_id: str) -> bool:
        """Whether a CalDAV write inviting the resource's address books it
        (``gateway.core.resource_invitations``): its own choice, else the
        default's (off)."""
        resource = self.resource(resource_id)
        own = resource.accept_invitations if resource is not None else None
        return self.defaults.accept_invitations if own is None else own

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
    return value if isinstance(value, str) and is_timezone(value) else "UTC"


def new_token() -> str:
    """A random secret for ``feed_tokens`` or ``api_tokens`` (256 bits)."""
    return secrets.token_urlsafe(32)


# --------------------------------------------------------------------------- cross-references


def _entries(value: object) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(value, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def cross_check(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
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
                first = format_loc(seen[value])
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
            first = format_loc(tokens[token])
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

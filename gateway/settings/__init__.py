"""One YAML file -> validated, frozen settings.

Admins edit a single file, so every mistake should be reported at once and
point at a line, like a compiler does: the file is read with ruamel.yaml's
round-trip loader (which remembers the line of every key and item) and checked
with pydantic (which reports every failing field, not just the first). Each
pydantic error location is mapped back to the line of that key.

Secrets need not live in the file: any string value may say ``${NAME}`` or
``${NAME:-default}`` and is filled from the environment before validation.

The package, by job: ``fields`` (rules for single values), ``server`` and
``services`` (the section models), ``root`` (the whole file and the rules
spanning entries), ``loading`` (YAML, environment, line numbers),
``errors`` (what is reported), ``docs`` (config/README.md's key tables,
made from the models).
"""

from .errors import ConfigIssue, SettingsError
from .fields import ALL_RESOURCES, Access, Details, Direction, InvitationPath, Language, WhenStale
from .loading import load_settings, parse_settings
from .root import ResourceSettings, Settings, new_token
from .server import (
    DEFAULT_STORAGE_URL,
    ApiTokenSettings,
    AuthSettings,
    BrandingSettings,
    DefaultSettings,
    DemoSettings,
    LimitsSettings,
    ServerSettings,
    StorageSettings,
    UserSettings,
    storage_backend,
)
from .services import (
    GoogleMirrorSettings,
    GoogleSettings,
    ImapSettings,
    InvitationSettings,
    MailSettings,
    OutboxSettings,
    ResourceInvitationSettings,
    RetrySettings,
)

__all__ = [
    "ALL_RESOURCES",
    "DEFAULT_STORAGE_URL",
    "Access",
    "ApiTokenSettings",
    "AuthSettings",
    "BrandingSettings",
    "ConfigIssue",
    "DefaultSettings",
    "DemoSettings",
    "Details",
    "Direction",
    "GoogleMirrorSettings",
    "GoogleSettings",
    "ImapSettings",
    "InvitationPath",
    "InvitationSettings",
    "Language",
    "LimitsSettings",
    "MailSettings",
    "OutboxSettings",
    "ResourceInvitationSettings",
    "ResourceSettings",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "StorageSettings",
    "UserSettings",
    "WhenStale",
    "load_settings",
    "new_token",
    "parse_settings",
    "storage_backend",
]

"""The rules single values follow (names, ids, tokens, time zones, URLs,
colours, keys), as annotated types the section models use, and the base
of every section model."""

from __future__ import annotations

import base64
import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr

Access = Literal["read", "read-write"]
ALL_RESOURCES = "*"

# Set in the validation context by the loader, which has already checked
# cross-references on the raw data (with line numbers); the model validator
# then skips its own copy of those checks so nothing is reported twice.
CROSS_CHECKED = "calgateway_cross_checked"
BASE_DIR = "calgateway_base_dir"

_USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_RESOURCE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# 22 url-safe characters carry 132 bits: what secrets.token_urlsafe(16) gives.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PASSWORD_HASH_PREFIXES = ("$argon2", "$2b$", "$2a$", "$2y$")
# Files in a zoneinfo directory that load but are not zone names an admin means.
_NOT_ZONES = frozenset({"localtime", "posixrules"})


def reject_bool(value: object) -> object:
    # pydantic's lax mode reads true as 1; "port: true" is surely a mistake.
    if isinstance(value, bool):
        raise ValueError("expected a number, got true/false")
    return value


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@lru_cache(maxsize=256)
def is_timezone(name: str) -> bool:
    # The exact-name check matters on case-insensitive file systems, where
    # ZoneInfo("europe/berlin") loads but is no name other programs know.
    if name in _NOT_ZONES or name not in _zone_names():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def check_timezone(name: str) -> str:
    if not is_timezone(name):
        raise ValueError(f"unknown IANA timezone {name!r}")
    return name


def check_token(token: SecretStr) -> SecretStr:
    # The message never repeats the value: it is a secret.
    if not _TOKEN.fullmatch(token.get_secret_value()):
        raise ValueError(
            "a token needs at least 22 characters of A-Z a-z 0-9 _ - (128 random bits); "
            "run `calgateway new-token` to make one"
        )
    return token


def check_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name):
        raise ValueError("a name needs 1 to 64 characters of A-Z a-z 0-9 . _ @ -")
    return name


def check_password_hash(value: str) -> str:
    if not value.startswith(_PASSWORD_HASH_PREFIXES):
        raise ValueError(
            "must be an argon2 or bcrypt hash (starting with $argon2 or $2b$), not a password; "
            "run `calgateway hash-password` and paste its output"
        )
    return value


def check_resource_id(value: str) -> str:
    if not _RESOURCE_ID.fullmatch(value):
        raise ValueError(
            "a resource id needs 1 to 63 characters of a-z 0-9 _ - starting with a letter "
            "or digit (it appears in URLs)"
        )
    return value


def check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def check_not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Int = Annotated[int, BeforeValidator(reject_bool)]
Float = Annotated[float, BeforeValidator(reject_bool)]
Timezone = Annotated[str, AfterValidator(check_timezone)]
Token = Annotated[SecretStr, AfterValidator(check_token)]
PrincipalName = Annotated[str, AfterValidator(check_user_name)]
Grants = dict[str, Access]


def all_access() -> dict[str, Access]:
    return {ALL_RESOURCES: "read-write"}


class Section(BaseModel):
    # Frozen: settings are shared by every request and never change at run time.
    # extra="forbid": a misspelt key must be an error, not a silently ignored default.
    model_config = ConfigDict(frozen=True, extra="forbid")


# gettext catalog each under gateway/look/locales (English is the source).
Language = Literal["en", "de"]

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def check_colour(value: str) -> str:
    if not _HEX_COLOUR.fullmatch(value):
        raise ValueError(f"{value!r} is not a colour like #1a5fb4 (# and six hex digits)")
    return value.lower()


Direction = Literal["off", "to_google", "from_google", "two_way"]
Details = Literal["full", "anonymous"]
# What a booking does when Google cannot be asked in time (gateway.core.freshness).
WhenStale = Literal["accept", "refuse"]
SmtpSecurity = Literal["starttls", "tls", "none"]


def check_fernet_key(key: SecretStr) -> SecretStr:
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


FernetKey = Annotated[SecretStr, AfterValidator(check_fernet_key)]


def check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]


InvitationPath = Literal["email", "google", "google_import"]


def check_link_key(key: SecretStr) -> SecretStr:
    if len(key.get_secret_value().encode("utf-8")) < 32:
        # RFC 2104 3: a key shorter than the hash output weakens the MAC.
        raise ValueError(
            "needs at least 32 characters of random text; run `calgateway new-token` to make one"
        )
    return key

"""gateway.settings: YAML -> validated, frozen settings, every problem with key path and line."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from gateway.settings import (
    ConfigIssue,
    ResourceSettings,
    Settings,
    SettingsError,
    load_settings,
    new_token,
    parse_settings,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example.yaml"

TOKEN_A = "token-a-0123456789abcdefgh"
TOKEN_B = "token-b-0123456789abcdefgh"
ARGON2 = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

# A valid resource, to append where a test is about another section. Lines in the
# tests' YAML are counted by hand, so each test keeps this at the end.
RESOURCE = """\
resources:
  - id: anna
    name: Anna
    email: anna@example.com
"""


def issues(text: str, environ: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(text, environ=environ or {})
    return caught.value.issues


def only_issue(text: str, environ: dict[str, str] | None = None) -> ConfigIssue:
    found = issues(text, environ)
    assert len(found) == 1, found
    return found[0]


def parse(
    text: str, environ: dict[str, str] | None = None, base_dir: Path | None = None
) -> Settings:
    return parse_settings(text, environ=environ or {}, base_dir=base_dir)


# --------------------------------------------------------------------------- the example


def test_example_loads() -> None:
    settings = load_settings(EXAMPLE, environ={})
    assert [r.id for r in settings.resources] == ["anna", "ben", "room-1"]
    timezones = {r.id: r.timezone for r in settings.resources}
    assert timezones == {
        "anna": "Europe/Berlin",
        "ben": "America/New_York",
        "room-1": settings.defaults.timezone,
    }
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.public_url == "http://127.0.0.1:8080"
    assert settings.storage.sqlite_path == REPO / "var" / "demo.sqlite3"


def test_example_credentials_are_the_documented_demo_ones() -> None:
    settings = load_settings(EXAMPLE, environ={})
    users = {u.name: u for u in settings.users}
    assert PasswordHasher().verify(users["admin"].password_hash, "demo-password")
    assert users["admin"].access == {"*": "read-write"}
    assert users["frontdesk"].access == {"room-1": "read"}
    (token,) = settings.api_tokens
    assert token.name == "booking-frontend"
    assert token.token.get_secret_value() == "demo-api-token-change-me-0123456789"
    assert token.access == {"*": "read-write"}
    anna = settings.resource("anna")
    assert anna is not None
    assert [t.get_secret_value() for t in anna.feed_tokens] == ["demo-feed-anna-0123456789abcdef"]


# --------------------------------------------------------------------------- defaults


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    settings = parse(RESOURCE, base_dir=tmp_path)
    server = settings.server
    assert (server.host, server.port, server.base_url) == ("127.0.0.1", 8080, None)
    assert server.max_body_bytes == 1_048_576
    assert server.log_format == "json"
    assert server.shutdown_timeout == 10.0
    assert server.public_url == "http://127.0.0.1:8080"
    assert settings.storage.url == "sqlite:///calgateway.sqlite3"
    assert settings.storage.sqlite_path == tmp_path.resolve() / "calgateway.sqlite3"
    assert settings.defaults.timezone == "UTC"
    assert settings.users == ()
    assert settings.api_tokens == ()
    (anna,) = settings.resources
    assert anna.timezone == "UTC"
    assert anna.feed_tokens == ()


def test_sections_left_empty_mean_their_defaults(tmp_path: Path) -> None:
    text = "server:\nstorage:\ndefaults:\nusers:\napi_tokens:\n" + RESOURCE
    settings = parse(text, base_dir=tmp_path)
    assert settings.server.port == 8080
    assert settings.storage.sqlite_path == tmp_path.resolve() / "calgateway.sqlite3"
    assert settings.users == ()


def test_empty_feed_tokens_mean_no_feed() -> None:
    settings = parse(RESOURCE + "    feed_tokens:\n")
    assert settings.resources[0].feed_tokens == ()


def test_settings_are_frozen() -> None:
    settings = parse(RESOURCE)
    with pytest.raises(ValidationError):
        settings.server.port = 1
    with pytest.raises(ValidationError):
        settings.resources = ()


def test_resource_lookup() -> None:
    settings = parse(RESOURCE)
    found = settings.resource("anna")
    assert found is not None
    assert found.name == "Anna"
    assert settings.resource("nobody") is None


# --------------------------------------------------------------------------- server


@pytest.mark.parametrize(
    ("line", "key", "message"),
    [
        ("port: 65536", "port", "less than or equal to 65535"),
        ("port: -1", "port", "greater than or equal to 0"),
        ("port: true", "port", "expected a number"),
        ("port: eighty", "port", "integer"),
        ("host: ''", "host", "must not be empty"),
        ("base_url: calendar.example.com", "base_url", "absolute http:// or https:// URL"),
        ("base_url: ftp://calendar.example.com", "base_url", "absolute http:// or https:// URL"),
        ("base_url: https://example.com/?x=1", "base_url", "query"),
        ("base_url: 'http://[::1'", "base_url", "absolute http:// or https:// URL"),
        ("base_url: 'http://example.com:99999'", "base_url", "absolute http:// or https:// URL"),
        ("max_body_bytes: 1023", "max_body_bytes", "greater than or equal to 1024"),
        ("log_format: xml", "log_format", "expected 'json' or 'text', got 'xml'"),
        ("shutdown_timeout: 0", "shutdown_timeout", "greater than 0"),
        ("shutdown_timeout: soon", "shutdown_timeout", "number"),
    ],
)
def test_server_rules(line: str, key: str, message: str) -> None:
    issue = only_issue(f"server:\n  # the line below is line 3\n  {line}\n" + RESOURCE)
    assert issue.path == f"server.{key}"
    assert issue.line == 3
    assert message in issue.message


def test_port_zero_is_allowed() -> None:
    assert parse("server:\n  port: 0\n" + RESOURCE).server.port == 0


def test_base_url_loses_its_trailing_slash_and_becomes_the_public_url() -> None:
    settings = parse("server:\n  base_url: https://cal.example.com/gw/\n" + RESOURCE)
    assert settings.server.base_url == "https://cal.example.com/gw"
    assert settings.server.public_url == "https://cal.example.com/gw"


def test_public_url_brackets_an_ipv6_host() -> None:
    settings = parse("server:\n  host: '::1'\n  port: 9000\n" + RESOURCE)
    assert settings.server.public_url == "http://[::1]:9000"


# --------------------------------------------------------------------------- storage


def test_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "gateway.yaml"
    config.parent.mkdir()
    config.write_text("storage:\n  url: sqlite:///../data/gw.sqlite3\n" + RESOURCE)
    settings = load_settings(config, environ={})
    assert settings.storage.sqlite_path == tmp_path.resolve() / "data" / "gw.sqlite3"
    assert settings.storage.sqlite_path.is_absolute()


def test_relative_sqlite_path_with_parse_settings_uses_base_dir(tmp_path: Path) -> None:
    settings = parse("storage:\n  url: sqlite:///gw.sqlite3\n" + RESOURCE, base_dir=tmp_path)
    assert settings.storage.sqlite_path == tmp_path.resolve() / "gw.sqlite3"


def test_absolute_sqlite_path(tmp_path: Path) -> None:
    target = tmp_path.resolve() / "abs.sqlite3"
    settings = parse(
        f"storage:\n  url: sqlite:///{target}\n" + RESOURCE, base_dir=tmp_path / "elsewhere"
    )
    assert settings.storage.url == f"sqlite:////{str(target).lstrip('/')}"
    assert settings.storage.sqlite_path == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://user:secret@db/calendar", "must not hold the password"),
        ("postgres://user:secret@db:5432/calendar", "storage.password_env"),
        ("postgresql:///calendar", "needs a host"),
        ("postgresql://user@db:5432", "needs a database name"),
        ("postgresql://user@db:port/calendar", "the port must be a number"),
        ("mysql://user:secret@db/calendar", "unsupported scheme 'mysql'"),
        ("sqlite://host/gw.sqlite3", "has no host"),
        ("sqlite:///", "needs a database file"),
        ("sqlite:///:memory:", "needs a database file"),
        ("sqlite:///gw.sqlite3?mode=ro", "query"),
        ("gw.sqlite3", "must be a URL"),
    ],
)
def test_storage_url_rules(url: str, message: str) -> None:
    issue = only_issue(f"storage:\n  url: '{url}'\n" + RESOURCE)
    assert issue.path == "storage.url"
    assert issue.line == 2
    assert message in issue.message
    assert "secret" not in issue.message


@pytest.mark.parametrize(
    ("storage", "path", "message"),
    [
        (
            "  url: sqlite:///gw.sqlite3\n  password_env: PGPASS\n",
            "storage",
            "password_env and password_file are for postgresql:// only",
        ),
        (
            "  url: postgresql://gw@db/cal\n  password_env: A\n  password_file: b\n",
            "storage",
            "not both",
        ),
        ("  url: postgresql://gw@db/cal\n  password_env: ' '\n", "storage", "must name"),
    ],
)
def test_storage_password_rules(storage: str, path: str, message: str) -> None:
    issue = only_issue("storage:\n" + storage + RESOURCE)
    assert issue.path == path
    assert message in issue.message


def test_a_postgresql_store_is_described_without_secrets(tmp_path: Path) -> None:
    settings = parse(
        "storage:\n  url: postgres://calgateway@db.example:5433/bookings\n"
        "  password_file: secrets/pg\n" + RESOURCE,
        base_dir=tmp_path,
    )
    assert settings.storage.backend == "postgresql"
    assert settings.storage.describe() == "postgresql://db.example:5433/bookings"
    assert settings.storage.password_path == (tmp_path / "secrets" / "pg").resolve()
    with pytest.raises(ValueError, match="not a sqlite:/// URL"):
        settings.storage.sqlite_path  # noqa: B018


# --------------------------------------------------------------------------- timezones


def test_unknown_default_timezone() -> None:
    issue = only_issue("defaults:\n  timezone: Mars/Olympus\n" + RESOURCE)
    assert issue.path == "defaults.timezone"
    assert issue.line == 2
    assert issue.message == "unknown IANA timezone 'Mars/Olympus'"


def test_unknown_resource_timezone() -> None:
    issue = only_issue(RESOURCE + "    timezone: Europe/Berln\n")
    assert issue.path == "resources[0].timezone"
    assert issue.line == 5
    assert str(issue) == "resources[0].timezone (line 5): unknown IANA timezone 'Europe/Berln'"


@pytest.mark.parametrize("name", ["europe/berlin", "+01:00", "localtime", "../etc/passwd", ""])
def test_timezone_must_be_an_exact_iana_name(name: str) -> None:
    issue = only_issue(RESOURCE + f"    timezone: '{name}'\n")
    assert issue.path == "resources[0].timezone"


def test_resource_timezone_defaults_to_defaults_timezone() -> None:
    text = (
        "defaults:\n"
        "  timezone: America/New_York\n"
        "resources:\n"
        "  - {id: room, name: Room, email: room@example.com}\n"
        "  - {id: anna, name: Anna, email: anna@example.com, timezone: Europe/Berlin}\n"
    )
    settings = parse(text)
    assert [r.timezone for r in settings.resources] == ["America/New_York", "Europe/Berlin"]


def test_a_bad_default_timezone_is_reported_once_not_per_resource() -> None:
    text = (
        "defaults:\n"
        "  timezone: Nowhere/Land\n"
        "resources:\n"
        "  - {id: room, name: Room, email: room@example.com}\n"
        "  - {id: hall, name: Hall, email: hall@example.com}\n"
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("defaults.timezone", 2)


# --------------------------------------------------------------------------- users


USERS = f"""\
users:
  - name: admin
    password_hash: "{ARGON2}"
    access: {{"*": read-write}}
"""


def test_users_load() -> None:
    (user,) = parse(USERS + RESOURCE).users
    assert user.name == "admin"
    assert user.password_hash == ARGON2
    assert user.access == {"*": "read-write"}


@pytest.mark.parametrize("name", ["has space", "", "x" * 65, "Zoë"])
def test_user_name_pattern(name: str) -> None:
    text = f'users:\n  - name: "{name}"\n    password_hash: "{ARGON2}"\n    access: {{}}\n'
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("users[0].name", 2)
    assert "1 to 64 characters" in issue.message


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$", "$2y$"])
def test_bcrypt_hashes_are_accepted(prefix: str) -> None:
    text = f'users:\n  - name: a.b@c_d-e\n    password_hash: "{prefix}12$abc"\n    access: {{}}\n'
    assert parse(text + RESOURCE).users[0].password_hash.startswith(prefix)


def test_password_hash_must_be_a_hash() -> None:
    text = "users:\n  - name: admin\n    password_hash: hunter22\n    access: {}\n"
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("users[0].password_hash", 3)
    assert "calgateway hash-password" in issue.message
    assert "hunter22" not in issue.message


def test_user_access_is_required_reported_at_the_entry() -> None:
    text = f'users:\n  - name: admin\n    password_hash: "{ARGON2}"\n'
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("users[0].access", 2)
    assert issue.message == "missing required key 'access'"


def test_access_naming_an_unknown_resource_is_reported_at_that_key() -> None:
    text = (
        "users:\n"
        "  - name: admin\n"
        f'    password_hash: "{ARGON2}"\n'
        "    access:\n"
        "      anna: read\n"
        "      bob: read-write\n"
    )
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("users[0].access.bob", 6)
    assert "unknown resource 'bob'" in issue.message


def test_access_level_must_be_read_or_read_write() -> None:
    text = (
        f'users:\n  - name: admin\n    password_hash: "{ARGON2}"\n    access:\n      anna: write\n'
    )
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("users[0].access.anna", 5)
    assert issue.message == "expected 'read' or 'read-write', got 'write'"


def test_duplicate_user_names_are_reported_at_the_duplicate() -> None:
    text = USERS + f'  - name: admin\n    password_hash: "{ARGON2}"\n    access: {{}}\n'
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("users[1].name", 5)
    assert "duplicate user name 'admin'" in issue.message


# --------------------------------------------------------------------------- API tokens


def test_api_token_defaults_to_full_access() -> None:
    (token,) = parse(f"api_tokens:\n  - name: front\n    token: {TOKEN_A}\n" + RESOURCE).api_tokens
    assert token.token.get_secret_value() == TOKEN_A
    assert token.access == {"*": "read-write"}
    assert TOKEN_A not in repr(token)


@pytest.mark.parametrize("value", ["short-token", "has a space 0123456789abcdef", "x" * 21 + "!"])
def test_api_token_rules(value: str) -> None:
    issue = only_issue(f"api_tokens:\n  - name: front\n    token: '{value}'\n" + RESOURCE)
    assert (issue.path, issue.line) == ("api_tokens[0].token", 3)
    assert "calgateway new-token" in issue.message
    assert value not in issue.message


def test_api_token_values_are_unique() -> None:
    text = (
        f"api_tokens:\n  - name: one\n    token: {TOKEN_A}\n  - name: two\n    token: {TOKEN_A}\n"
    )
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("api_tokens[1].token", 5)
    assert "already used at api_tokens[0].token" in issue.message
    assert TOKEN_A not in issue.message


def test_api_token_names_are_unique() -> None:
    text = (
        f"api_tokens:\n  - name: one\n    token: {TOKEN_A}\n  - name: one\n    token: {TOKEN_B}\n"
    )
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("api_tokens[1].name", 4)


def test_api_token_access_naming_an_unknown_resource() -> None:
    text = f"api_tokens:\n  - name: one\n    token: {TOKEN_A}\n    access: {{ghost: read}}\n"
    issue = only_issue(text + RESOURCE)
    assert (issue.path, issue.line) == ("api_tokens[0].access.ghost", 4)


# --------------------------------------------------------------------------- resources


def test_resources_are_required() -> None:
    issue = only_issue("server:\n  port: 8080\n")
    assert (issue.path, issue.line) == ("resources", 1)
    assert issue.message == "missing required key 'resources'"


def test_resources_must_not_be_empty() -> None:
    issue = only_issue("server:\n  port: 8080\nresources: []\n")
    assert (issue.path, issue.line) == ("resources", 3)
    assert "at least 1" in issue.message


@pytest.mark.parametrize("value", ["Anna", "-anna", "anna.b", "a" * 64, "anna/x", "ä"])
def test_resource_id_pattern(value: str) -> None:
    issue = only_issue(f"resources:\n  - id: '{value}'\n    name: A\n    email: a@example.com\n")
    assert (issue.path, issue.line) == ("resources[0].id", 2)


def test_resource_id_may_be_63_characters() -> None:
    text = f"resources:\n  - id: {'a' * 63}\n    name: A\n    email: a@example.com\n"
    assert parse(text).resources[0].id == "a" * 63


def test_duplicate_resource_id_is_reported_at_the_duplicate() -> None:
    text = RESOURCE + "  - id: anna\n    name: Other Anna\n    email: other@example.com\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("resources[1].id", 5)
    assert "duplicate resource id 'anna'" in issue.message


def test_resource_name_must_not_be_empty() -> None:
    issue = only_issue("resources:\n  - id: anna\n    name: '  '\n    email: a@example.com\n")
    assert (issue.path, issue.line) == ("resources[0].name", 3)


@pytest.mark.parametrize("value", ["anna", "anna@@example.com", "an na@example.com", "a@b@c", "@x"])
def test_resource_email_check(value: str) -> None:
    issue = only_issue(f"resources:\n  - id: anna\n    name: Anna\n    email: '{value}'\n")
    assert (issue.path, issue.line) == ("resources[0].email", 4)


def test_feed_tokens_follow_the_token_rules() -> None:
    text = RESOURCE + f"    feed_tokens:\n      - {TOKEN_A}\n      - too-short\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("resources[0].feed_tokens[1]", 7)
    assert "calgateway new-token" in issue.message


def test_several_feed_tokens_allow_rotation() -> None:
    text = RESOURCE + f"    feed_tokens: [{TOKEN_A}, {TOKEN_B}]\n"
    tokens = parse(text).resources[0].feed_tokens
    assert [t.get_secret_value() for t in tokens] == [TOKEN_A, TOKEN_B]


def test_feed_tokens_are_unique_across_resources() -> None:
    text = (
        RESOURCE
        + f"    feed_tokens: [{TOKEN_A}]\n"
        + f"  - id: bob\n    name: Bob\n    email: bob@example.com\n    feed_tokens: [{TOKEN_A}]\n"
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("resources[1].feed_tokens[0]", 9)
    assert "already used at resources[0].feed_tokens[0]" in issue.message


def test_a_feed_token_may_not_also_be_an_api_token() -> None:
    text = f"api_tokens:\n  - name: one\n    token: {TOKEN_A}\n" + RESOURCE
    issue = only_issue(text + f"    feed_tokens: [{TOKEN_A}]\n")
    assert (issue.path, issue.line) == ("resources[0].feed_tokens[0]", 8)


# --------------------------------------------------------------------------- unknown keys


def test_unknown_key_at_nested_level() -> None:
    issue = only_issue(RESOURCE + "    colour: red\n")
    assert (issue.path, issue.line) == ("resources[0].colour", 5)
    assert issue.message.startswith("unknown key 'colour'")
    assert "feed_tokens" in issue.message  # lists what is allowed


def test_unknown_key_suggests_a_close_match() -> None:
    text = f'users:\n  - name: admin\n    password_hash: "{ARGON2}"\n    acess: {{}}\n'
    found = issues(text + RESOURCE)
    by_path = {i.path: i for i in found}
    assert by_path["users[0].acess"].line == 4
    assert "did you mean 'access'?" in by_path["users[0].acess"].message
    assert by_path["users[0].access"].line == 2  # the missing key: the entry's line


def test_unknown_top_level_key() -> None:
    issue = only_issue(RESOURCE + "sever:\n  port: 1\n")
    assert (issue.path, issue.line) == ("sever", 5)
    assert "did you mean 'server'?" in issue.message


def test_wrong_type_names_the_kind_not_the_value() -> None:
    issue = only_issue("server: [1, 2]\n" + RESOURCE)
    assert (issue.path, issue.line) == ("server", 1)
    assert issue.message == "expected a mapping (key: value lines), got a list"


# --------------------------------------------------------------------------- many at once


def test_all_errors_are_reported_at_once_in_line_order() -> None:
    text = (
        "server:\n"  # 1
        "  port: 99999\n"  # 2
        "  log_format: xml\n"  # 3
        "storage:\n"  # 4
        "  url: mysql://db/x\n"  # 5
        "resources:\n"  # 6
        "  - id: Anna\n"  # 7
        "    name: Anna\n"  # 8
        "    email: nope\n"  # 9
        "    timezone: Europe/Berln\n"  # 10
        "    colour: red\n"  # 11
        "  - id: bob\n"  # 12
    )
    found = [(i.path, i.line) for i in issues(text)]
    assert found == [
        ("server.port", 2),
        ("server.log_format", 3),
        ("storage.url", 5),
        ("resources[0].id", 7),
        ("resources[0].email", 9),
        ("resources[0].timezone", 10),
        ("resources[0].colour", 11),
        ("resources[1].name", 12),
        ("resources[1].email", 12),
    ]


def test_error_text_is_compiler_style() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings("server:\n  port: 99999\n" + RESOURCE, source="gw.yaml", environ={})
    assert str(caught.value) == "gw.yaml:2: server.port: must be less than or equal to 65535"
    assert caught.value.source == "gw.yaml"
    assert "pydantic" not in str(caught.value)


def test_settings_error_survives_pickling() -> None:
    error = SettingsError("gw.yaml", [ConfigIssue("server.port", 2, "bad")])
    copy = pickle.loads(pickle.dumps(error))
    assert copy.issues == error.issues
    assert str(copy) == str(error)


def test_config_issue_text_without_line_or_path() -> None:
    assert str(ConfigIssue("server.port", None, "bad")) == "server.port: bad"
    assert str(ConfigIssue("", 3, "bad")) == "line 3: bad"
    assert str(SettingsError("f.yaml", [ConfigIssue("", None, "gone")])) == "f.yaml: gone"


# --------------------------------------------------------------------------- environment


def test_env_substitution() -> None:
    text = (
        "server:\n"
        "  port: ${PORT}\n"
        '  base_url: "https://${HOST}/cal"\n'
        "api_tokens:\n"
        "  - name: front\n"
        '    token: "${CALGATEWAY_API_TOKEN}"\n' + RESOURCE
    )
    env = {"PORT": "9090", "HOST": "cal.example.com", "CALGATEWAY_API_TOKEN": TOKEN_A}
    settings = parse(text, env)
    assert settings.server.port == 9090
    assert settings.server.base_url == "https://cal.example.com/cal"
    assert settings.api_tokens[0].token.get_secret_value() == TOKEN_A


def test_missing_env_var_is_reported_once_at_the_key() -> None:
    text = 'api_tokens:\n  - name: front\n    token: "${CALGATEWAY_API_TOKEN}"\n' + RESOURCE
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("api_tokens[0].token", 3)
    assert issue.message == "environment variable CALGATEWAY_API_TOKEN is not set"


def test_env_default_syntax() -> None:
    text = 'server:\n  host: "${HOST:-0.0.0.0}"\n  port: "${PORT:-8081}"\n' + RESOURCE
    assert parse(text).server.host == "0.0.0.0"
    assert parse(text).server.port == 8081
    assert parse(text, {"HOST": "10.0.0.1"}).server.host == "10.0.0.1"
    # As in the shell, ":-" also replaces a variable that is set but empty.
    assert parse(text, {"HOST": ""}).server.host == "0.0.0.0"


def test_empty_env_default_leaves_base_url_unset() -> None:
    assert parse('server:\n  base_url: "${BASE_URL:-}"\n' + RESOURCE).server.base_url is None


def test_env_var_set_to_empty_without_default_is_empty() -> None:
    issue = only_issue('server:\n  host: "${HOST}"\n' + RESOURCE, {"HOST": ""})
    assert (issue.path, issue.message) == ("server.host", "must not be empty")


def test_literal_dollar_brace() -> None:
    text = RESOURCE.replace("name: Anna", 'name: "Anna $${not a var}"')
    assert parse(text).resources[0].name == "Anna ${not a var}"


@pytest.mark.parametrize("value", ["${1BAD}", "${}", "${UNCLOSED", "${A-b}"])
def test_malformed_env_reference(value: str) -> None:
    issue = only_issue(RESOURCE.replace("name: Anna", f'name: "{value}"'))
    assert (issue.path, issue.line) == ("resources[0].name", 3)


def test_load_settings_reads_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALGATEWAY_TEST_FEED", TOKEN_B)
    config = tmp_path / "gw.yaml"
    config.write_text(RESOURCE + '    feed_tokens: ["${CALGATEWAY_TEST_FEED}"]\n')
    settings = load_settings(config)
    assert settings.resources[0].feed_tokens[0].get_secret_value() == TOKEN_B


def test_secrets_from_env_never_appear_in_errors() -> None:
    text = 'api_tokens:\n  - name: front\n    token: "${TOKEN}"\n' + RESOURCE
    with pytest.raises(SettingsError) as caught:
        parse_settings(text, environ={"TOKEN": "s3cr3t!"})
    assert "s3cr3t" not in str(caught.value)


# --------------------------------------------------------------------------- YAML and files


def test_duplicate_yaml_key_is_an_error_at_its_line() -> None:
    issue = only_issue("server:\n  port: 8080\n  host: 0.0.0.0\n  port: 8081\n" + RESOURCE)
    assert issue.line == 4
    assert issue.message == "duplicate key 'port'"


def test_yaml_syntax_error_names_its_line() -> None:
    issue = only_issue("server:\n  port: 8080\n  host: [127.0.0.1\nresources: []\n")
    assert issue.line == 4
    assert issue.message.startswith("invalid YAML")
    assert "http" not in issue.message  # no help URLs


def test_unquoted_star_gets_a_hint() -> None:
    text = RESOURCE + "users:\n  - name: x\n    password_hash: '$2b$x'\n    access: {*: read}\n"
    issue = only_issue(text)
    assert issue.line == 8
    assert 'write "*" in quotes' in issue.message


def test_anchors_and_merge_keys_work() -> None:
    text = (
        "resources:\n"
        "  - &staff\n"
        "    id: anna\n"
        "    name: Anna\n"
        "    email: staff@example.com\n"
        "    timezone: Europe/Berlin\n"
        "  - <<: *staff\n"
        "    id: bob\n"
        "    name: Bob\n"
        "    colour: red\n"
    )
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("resources[1].colour", 10)
    fixed = parse(text.replace("    colour: red\n", ""))
    assert [(r.id, r.email, r.timezone) for r in fixed.resources] == [
        ("anna", "staff@example.com", "Europe/Berlin"),
        ("bob", "staff@example.com", "Europe/Berlin"),
    ]


def test_tab_indentation_is_a_syntax_error() -> None:
    issue = only_issue("server:\n\tport: 8080\n")
    assert issue.line == 2


def test_top_level_must_be_a_mapping() -> None:
    issue = only_issue("- anna\n- bob\n")
    assert issue.line == 1
    assert issue.message == "expected a mapping of sections, got a list"


def test_empty_file_reports_the_missing_resources() -> None:
    issue = only_issue("# nothing yet\n")
    assert (issue.path, issue.message) == ("resources", "missing required key 'resources'")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SettingsError) as caught:
        load_settings(missing)
    assert caught.value.source == str(missing)
    assert caught.value.issues == [ConfigIssue("", None, "file not found")]
    assert str(caught.value) == f"{missing}: file not found"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path)
    (issue,) = caught.value.issues
    assert issue.message.startswith("cannot read")


def test_file_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_bytes(b"server:\n  host: caf\xe9\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    (issue,) = caught.value.issues
    assert issue.line == 2
    assert "UTF-8" in issue.message


def test_load_settings_names_the_file_in_errors(tmp_path: Path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("server:\n  port: 99999\n" + RESOURCE)
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ={})
    assert str(caught.value).startswith(f"{config}:2: server.port: ")


# --------------------------------------------------------------------------- in code


def test_settings_built_in_code_are_checked_too() -> None:
    anna = ResourceSettings(id="anna", name="Anna", email="a@example.com", timezone="UTC")
    assert Settings(resources=(anna,)).resource("anna") == anna
    with pytest.raises(ValidationError, match="duplicate resource id 'anna'"):
        Settings(resources=(anna, anna))


def test_new_token_is_random_and_valid() -> None:
    first, second = new_token(), new_token()
    assert first != second
    assert len(first) >= 43
    text = RESOURCE + f"    feed_tokens: [{first}]\n"
    assert parse(text).resources[0].feed_tokens[0].get_secret_value() == first

"""config/README.md's key tables are what the settings models say.

The tables are generated (``make docs``, gateway/settings/docs.py) from the
models' fields, types, constraints and defaults, with the meanings from
gateway/settings/meanings.py; this test fails when the README was not
regenerated after a change to either. Once, when the tables were kept by
hand, the README said ``google.api_endpoint`` defaulted to
``https://www.googleapis.com/`` while the code used ``.../calendar/v3/``
(googleapiclient's ``api_endpoint`` replaces rootUrl and servicePath, so the
shorter one would not work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from gateway.settings import GoogleSettings
from gateway.settings.docs import (
    README,
    TABLES,
    Table,
    default_cell,
    documented,
    problems,
    rewrite,
    table_lines,
    type_cell,
)
from gateway.settings.fields import Float, HttpUrl, Int, Timezone, Token

RUN = "config/README.md is out of step with the settings models: run `make docs`"


def test_the_readme_is_where_the_tables_are_generated() -> None:
    assert Path(__file__).resolve().parent.parent / "config" / "README.md" == README


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.title)
def test_readme_table_is_what_the_models_generate(table: Table) -> None:
    text = README.read_text(encoding="utf-8")
    assert documented(text, table) == table_lines(table), f"{table.title}: {RUN}"


def test_every_key_has_a_meaning_and_every_section_a_table() -> None:
    assert problems() == []


def test_rewriting_keeps_the_prose_and_changes_nothing_twice() -> None:
    server = next(table for table in TABLES if table.path == "server")
    others = "\n".join(table.marker for table in TABLES if table is not server)
    text = (
        f"# Title\n\n{server.marker}\n\nProse before.\n\n"
        "| Key | Type | Default | Meaning |\n| --- | --- | --- | --- |\n| `stale` | x | y | z |\n"
        "\nProse after, with | a bar.\n\n```yaml\nserver: {}\n```\n\n"
        f"## Next\n\n{others}\n"
    )
    new = rewrite(text)
    assert rewrite(new) == new
    assert "`stale`" not in new
    assert "\n".join(table_lines(server)) in new
    for prose in ("Prose before.\n\n| Key", "|\n\nProse after, with | a bar.\n\n```yaml\n"):
        assert prose in new


class _Example(BaseModel):
    port: Annotated[Int, Field(ge=0, le=65535)] = 8080
    size: Annotated[Int, Field(ge=1024)] = 1_048_576
    wait: Annotated[Float, Field(gt=0)] = 10.0
    deadline: Annotated[Float, Field(gt=0, le=60)] = 2.0
    mode: Literal["off", "token", "public"] = "off"
    level: Literal["full", "anonymous"] | None = None
    push: bool = True
    zone: Timezone = "UTC"
    token: Token | None = None
    tokens: tuple[Token, ...] = ()
    endpoint: HttpUrl = "https://example.com/v3/"
    grants: dict[str, Literal["read", "read-write"]] = Field(
        default_factory=lambda: {"*": "read-write"}
    )
    keys: Annotated[tuple[str, ...], Field(min_length=1)]
    google: GoogleSettings | None = None


@pytest.mark.parametrize(
    ("name", "type_shown", "default_shown"),
    [
        ("port", "integer 0-65535", "`8080`"),
        ("size", "integer >= 1024", "`1048576`"),
        ("wait", "number > 0", "`10.0`"),
        ("deadline", "number > 0 and <= 60", "`2.0`"),
        ("mode", "`off`, `token` or `public`", "`off`"),
        ("level", "`full`, `anonymous` or null", "null"),
        ("push", "boolean", "`true`"),
        ("zone", "IANA timezone name", "`UTC`"),
        ("token", "secret token or null", "null"),
        ("tokens", "list of secret tokens", "`[]`"),
        ("endpoint", "http(s) URL", "`https://example.com/v3/`"),
        ("grants", "mapping of strings to `read` or `read-write`", '`{"*": read-write}`'),
        ("keys", "list of strings", "**required**, at least one"),
        ("google", "mapping or absent", "absent"),
    ],
)
def test_type_and_default_in_words(name: str, type_shown: str, default_shown: str) -> None:
    field = _Example.model_fields[name]
    assert type_cell(field) == type_shown
    assert default_cell(Table("## x", _Example, "example"), name, field) == default_shown


def test_api_endpoint_default_is_what_googleapiclient_needs() -> None:
    """With client_options api_endpoint, googleapiclient uses it as the whole
    base URL (rootUrl + servicePath of the discovery document)."""
    from googleapiclient.discovery import build

    service = build(
        "calendar",
        "v3",
        static_discovery=True,
        developerKey="unused",
        client_options={"api_endpoint": str(GoogleSettings.model_fields["api_endpoint"].default)},
    )
    request = service.events().list(calendarId="primary")
    assert request.uri.startswith("https://www.googleapis.com/calendar/v3/calendars/primary/events")

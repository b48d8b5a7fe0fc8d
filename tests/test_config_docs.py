"""config/README.md states the defaults the settings models really have.

The key tables are read from the README (the first table after a section's
heading, or after a line naming a sub-table) and each row's Default cell is
compared with the pydantic field: its first `code` value must be the
model's default, and "**required**" must mean the field has none. Once the
README said ``google.api_endpoint`` defaulted to ``https://www.googleapis.com/``
while the code used ``.../calendar/v3/`` (googleapiclient's ``api_endpoint``
replaces rootUrl and servicePath, so the shorter one would not work).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gateway.settings import GoogleSettings, RetrySettings

README = Path(__file__).resolve().parent.parent / "config" / "README.md"
_ROW = re.compile(r"^\| `([a-z_]+)` \| [^|]* \| ([^|]*) \|")


def documented_defaults(after: str) -> dict[str, str]:
    """Key -> Default cell of the first table following the line ``after``."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(after)
    rows: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if rows and not line.startswith("|"):
            break
        match = _ROW.match(line)
        if match:
            rows[match[1]] = match[2].strip()
    assert rows, f"no key table after {after!r} in {README}"
    return rows


def shown(value: object) -> str:
    """A default as YAML would write it, the way the README shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@pytest.mark.parametrize(
    ("heading", "model"),
    [("## `google`", GoogleSettings), ("`retry`:", RetrySettings)],
)
def test_documented_defaults_are_the_code_defaults(heading: str, model: type[BaseModel]) -> None:
    documented = documented_defaults(heading)
    assert set(documented) == set(model.model_fields), "keys documented vs keys in the model"
    for key, cell in documented.items():
        field = model.model_fields[key]
        if "**required**" in cell:
            assert field.is_required(), f"{key} is documented as required but has a default"
            continue
        if field.default is PydanticUndefined:  # a default_factory: a nested section
            assert field.default_factory is not None, key
            continue
        code = re.search(r"`([^`]*)`", cell)
        assert code is not None, f"{key}: no `default` in {cell!r}"
        assert code[1] == shown(field.default), f"{key}: README says {code[1]}"


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

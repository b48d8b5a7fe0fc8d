"""config/README.md's key tables, made from the settings models.

Each table (``| Key | Type | Default | Meaning |``) belongs to one section
model and stands after one line of the README (its heading, or a line like
``retry`` followed by a colon). Its rows follow the model's fields in order:

- Key: the field's name.
- Type: from the annotation and its constraints (``integer 0-65535``,
  ``number > 0``, a ``Literal`` as its values, ``X | None`` as ``... or
  null``, a tuple as ``list of ...``, the project's annotated types by the
  validator that makes them: see ``_VALIDATED``).
- Default: the default as YAML writes it (``true``, ``null``, ``[]``),
  ``**required**`` when there is none, ``from `key``` for a key that takes
  another key's value when left out, plus a note from ``meanings``.
- Meaning: ``meanings.MEANINGS``, the one place the texts live.

``python -m gateway.settings.docs`` (``make docs``) rewrites the tables in
place and leaves every other line of the README as it is;
tests/test_config_docs.py fails when the README and the models disagree.
This module decides and renders; only ``main`` touches files.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AfterValidator, BaseModel, SecretStr
from pydantic.fields import FieldInfo

from .fields import (
    check_colour,
    check_email,
    check_fernet_key,
    check_http_url,
    check_link_key,
    check_not_blank,
    check_password_hash,
    check_resource_id,
    check_timezone,
    check_token,
    check_user_name,
)
from .meanings import DEFAULT_NOTES, INHERITS, MEANINGS
from .root import ResourceSettings, Settings
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
    ImapSettings,
    InvitationSettings,
    MailSettings,
    OutboxSettings,
    ResourceInvitationSettings,
    RetrySettings,
)

README = Path(__file__).resolve().parents[2] / "config" / "README.md"
HEADER = "| Key | Type | Default | Meaning |"
RULE = "| --- | --- | --- | --- |"


@dataclass(frozen=True)
class Table:
    """One key table: the README line it follows, its model, its keys' path."""

    marker: str
    model: type[BaseModel]
    # "server", "resources[].google"; "" for the top level.
    path: str

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    @property
    def title(self) -> str:
        return self.path or "top level"


TABLES: tuple[Table, ...] = (
    Table("## Top level", Settings, ""),
    Table("## `server`", ServerSettings, "server"),
    Table("## `storage`", StorageSettings, "storage"),
    Table("## `defaults`", DefaultSettings, "defaults"),
    Table("## `users[]`", UserSettings, "users[]"),
    Table("## `api_tokens[]`", ApiTokenSettings, "api_tokens[]"),
    Table("## `resources[]`", ResourceSettings, "resources[]"),
    Table("### `resources[].google`", GoogleMirrorSettings, "resources[].google"),
    Table("### `resources[].invitations`", ResourceInvitationSettings, "resources[].invitations"),
    Table("## `mail`", MailSettings, "mail"),
    Table("### `mail.imap`", ImapSettings, "mail.imap"),
    Table("## `google`", GoogleSettings, "google"),
    Table("`retry`:", RetrySettings, "google.retry"),
    Table("## `invitations`", InvitationSettings, "invitations"),
    Table("## `outbox`", OutboxSettings, "outbox"),
    Table("## `limits`", LimitsSettings, "limits"),
    Table("## `auth`", AuthSettings, "auth"),
    Table("## `branding`", BrandingSettings, "branding"),
    Table("## `demo`", DemoSettings, "demo"),
)

# The project's annotated types, named by the validator that makes them:
# (one, several).
_VALIDATED: dict[Callable[..., Any], tuple[str, str]] = {
    check_timezone: ("IANA timezone name", "IANA timezone names"),
    check_token: ("secret token", "secret tokens"),
    check_fernet_key: ("secret Fernet key", "secret Fernet keys"),
    check_link_key: ("secret string of 32+ characters", "secret strings of 32+ characters"),
    check_http_url: ("http(s) URL", "http(s) URLs"),
    check_user_name: ("name", "names"),
    check_email: ("e-mail address", "e-mail addresses"),
    check_resource_id: ("resource id", "resource ids"),
    check_password_hash: ("password hash", "password hashes"),
    check_colour: ("colour `#rrggbb`", "colours `#rrggbb`"),
    check_not_blank: ("non-empty string", "non-empty strings"),
}
_PLAIN: dict[object, tuple[str, str]] = {
    str: ("string", "strings"),
    bool: ("boolean", "booleans"),
    int: ("integer", "integers"),
    float: ("number", "numbers"),
    SecretStr: ("secret string", "secret strings"),
}


class DocsError(ValueError):
    """The README cannot be rewritten (a marker line is missing or doubled)."""


# --------------------------------------------------------------------------- Type


def _union_args(annotation: object) -> tuple[object, ...] | None:
    if get_origin(annotation) in (Union, types.UnionType):
        return get_args(annotation)
    return None


def _unwrap(annotation: object, metadata: Sequence[object]) -> tuple[object, list[object]]:
    """The bare type and every constraint on it (Annotated layers flattened)."""
    found = list(metadata)
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        found.extend(more)
    return annotation, found


def _bounds(metadata: Sequence[object]) -> str:
    """ " 0-65535", " >= 1024", " > 0", " > 0 and <= 60"; "" without bounds."""
    low: list[str] = []
    high: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            low.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            low.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            high.append(f"<= {item.le}")
        elif isinstance(item, annotated_types.Lt):
            high.append(f"< {item.lt}")
    if low and high and low[0].startswith(">=") and high[0].startswith("<="):
        return f" {low[0][3:]}-{high[0][3:]}"
    return "".join(f" {bound}" for bound in (" and ".join([*low, *high]),) if bound)


def _choices(values: Sequence[object]) -> str:
    shown = [f"`{value}`" for value in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _words(annotation: object, metadata: Sequence[object], plural: bool = False) -> str:
    bare, constraints = _unwrap(annotation, metadata)
    for item in constraints:
        if isinstance(item, AfterValidator) and item.func in _VALIDATED:
            return _VALIDATED[item.func][int(plural)]
    if get_origin(bare) is Literal:
        return _choices(get_args(bare))
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return "mappings" if plural else "mapping"
    if get_origin(bare) is tuple:
        item_type = get_args(bare)[0]
        return f"list of {_words(item_type, (), plural=True)}"
    if get_origin(bare) is dict:
        key, value = get_args(bare)
        return f"mapping of {_words(key, (), plural=True)} to {_words(value, ())}"
    if bare in _PLAIN:
        return _PLAIN[bare][int(plural)] + _bounds(constraints)
    raise DocsError(f"no words for the type {bare!r}: add them to gateway/settings/docs.py")


def type_cell(field: FieldInfo) -> str:
    """The Type column: what the key holds, in words."""
    options = _union_args(field.annotation)
    if options is None or type(None) not in options:
        return _words(field.annotation, field.metadata)
    (inner,) = [option for option in options if option is not type(None)]
    bare, _ = _unwrap(inner, ())
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return "mapping or absent"
    if get_origin(bare) is Literal:
        # "`a`, `b` or null" rather than "`a` or `b` or null".
        return f"{', '.join(f'`{value}`' for value in get_args(bare))} or null"
    return f"{_words(inner, field.metadata)} or null"


# --------------------------------------------------------------------------- Default


def _plain_scalar(value: str) -> str:
    # Quoted like YAML must quote it: "*" alone would start an alias.
    return value if re.fullmatch(r"[A-Za-z0-9_./:@+-]+", value) else f'"{value}"'


def yaml_value(value: object) -> str:
    """A default as YAML writes it in flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        return f"[{', '.join(yaml_value(item) for item in value)}]"
    if isinstance(value, dict):
        pairs = (f"{_plain_scalar(str(k))}: {yaml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise DocsError(f"no YAML form for the default {value!r}")


def _min_length(field: FieldInfo) -> int:
    for item in field.metadata:
        if isinstance(item, annotated_types.MinLen):
            return item.min_length
    return 0


def default_cell(table: Table, name: str, field: FieldInfo) -> str:
    """The Default column of one key."""
    key = table.key(name)
    if key in INHERITS:
        if not field.is_required() and field.default is not None:
            raise DocsError(f"{key} has a default of its own, yet is said to inherit")
        return f"from `{INHERITS[key]}`"
    if field.is_required():
        least = _min_length(field)
        shown = "**required**"
        if least:
            shown += ", at least one" if least == 1 else f", at least {least}"
    elif field.default_factory is not None:
        value = field.get_default(call_default_factory=True)
        shown = _section_link(type(value)) if isinstance(value, BaseModel) else ""
        shown = shown or f"`{yaml_value(value)}`"
    elif field.default is None:
        shown = "absent" if type_cell(field) == "mapping or absent" else "null"
    else:
        shown = f"`{yaml_value(field.default)}`"
    note = DEFAULT_NOTES.get(key)
    if note is None:
        return shown
    return f"{shown} {note}" if note.startswith("(") else f"{shown}: {note}"


def anchor(heading: str) -> str:
    """GitHub's id of a Markdown heading: lower case, punctuation dropped."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-")


def _section_link(model: type[BaseModel]) -> str:
    for table in TABLES:
        if table.model is model:
            if table.marker.startswith("#"):
                return f"see [{table.path}](#{anchor(table.marker)})"
            return "see below"
    return ""


# --------------------------------------------------------------------------- tables


def _cell(text: str) -> str:
    # A "|" inside a cell would end it; Markdown writes it "\|".
    return re.sub(r"(?<!\\)\|", r"\|", text)


def table_lines(table: Table) -> list[str]:
    """The table's lines as the README should have them."""
    lines = [HEADER, RULE]
    for name, field in table.model.model_fields.items():
        key = table.key(name)
        if key not in MEANINGS:
            raise DocsError(f"{key} has no meaning: add it to gateway/settings/meanings.py")
        cells = (
            f"`{name}`",
            type_cell(field),
            default_cell(table, name, field),
            MEANINGS[key],
        )
        lines.append(f"| {' | '.join(_cell(cell) for cell in cells)} |")
    return lines


def _section_models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``model`` and every section model nested in it, depth first."""
    yield model
    for field in model.model_fields.values():
        stack: list[object] = [field.annotation]
        while stack:
            annotation = stack.pop()
            bare, _ = _unwrap(annotation, ())
            if isinstance(bare, type) and issubclass(bare, BaseModel):
                yield from _section_models(bare)
            else:
                stack.extend(get_args(bare))


def problems() -> list[str]:
    """What keeps the tables from being complete: a section model without a
    table, a key without a meaning, a meaning or note for no key."""
    found: list[str] = []
    documented = {table.model for table in TABLES}
    for model in dict.fromkeys(_section_models(Settings)):
        if model not in documented:
            found.append(f"{model.__name__} has no table in gateway.settings.docs.TABLES")
    keys = {table.key(name) for table in TABLES for name in table.model.model_fields}
    for key in sorted(keys - MEANINGS.keys()):
        found.append(f"{key} has no meaning in gateway/settings/meanings.py")
    for source, entries in (
        ("MEANINGS", MEANINGS),
        ("DEFAULT_NOTES", DEFAULT_NOTES),
        ("INHERITS", INHERITS),
    ):
        for key in sorted(entries.keys() - keys):
            found.append(f"{source} in gateway/settings/meanings.py names no key: {key}")
    return found


def _marker_index(lines: Sequence[str], marker: str) -> int:
    hits = [i for i, line in enumerate(lines) if line == marker]
    if len(hits) != 1:
        where = "is missing" if not hits else f"appears {len(hits)} times"
        raise DocsError(f"the line {marker!r} {where} in the README; its key table follows it")
    return hits[0]


def table_span(lines: Sequence[str], table: Table) -> tuple[int, int]:
    """Where the table stands: [start, end) lines. When there is none yet
    before the next heading, start == end: where a new one goes, after the
    paragraph that follows the marker (or right after the marker)."""
    marker = _marker_index(lines, table.marker)
    for i in range(marker + 1, len(lines)):
        if lines[i].startswith("#"):
            break
        if lines[i] == HEADER:
            end = i
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            return i, end
    i = marker + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and not lines[i].startswith(("#", "|", "```")):
        while i < len(lines) and lines[i].strip():
            i += 1
        return i, i
    return marker + 1, marker + 1


def documented(text: str, table: Table) -> list[str]:
    """The table's lines as the README has them now (empty if none)."""
    lines = text.splitlines()
    start, end = table_span(lines, table)
    return lines[start:end]


def rewrite(text: str) -> str:
    """The README with every key table made from the models; other lines kept."""
    lines = text.splitlines()
    for table in TABLES:
        start, end = table_span(lines, table)
        new = table_lines(table)
        if start == end:
            new = ["", *new]
        lines[start:end] = new
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.settings.docs",
        description="Rewrite the key tables of config/README.md from the settings models.",
    )
    parser.add_argument("readme", nargs="?", type=Path, default=README)
    args = parser.parse_args(argv)
    found = problems()
    if found:
        print("\n".join(found), file=sys.stderr)
        return 1
    path: Path = args.readme
    text = path.read_text(encoding="utf-8")
    try:
        new = rewrite(text)
    except DocsError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    if new == text:
        print(f"{path}: the key tables are up to date")
        return 0
    path.write_text(new, encoding="utf-8")
    print(f"{path}: key tables rewritten from the settings models")
    return 0


if __name__ == "__main__":
    sys.exit(main())

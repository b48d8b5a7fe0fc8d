"""Reading a settings file: YAML with the line of every key (ruamel.yaml's
round-trip loader), ``${NAME}`` filled from the environment, validation by
the models, and every problem turned into a ``ConfigIssue`` at its line."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from .errors import ConfigIssue, Loc, SettingsError, format_loc
from .fields import BASE_DIR, CROSS_CHECKED
from .root import Settings, cross_check


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
    for where, message in cross_check(data):
        issues.append(ConfigIssue(format_loc(where), reader.line(where), message))

    context = {
        BASE_DIR: (base_dir if base_dir is not None else Path.cwd()).resolve(),
        CROSS_CHECKED: True,
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
                self.issues.append(ConfigIssue(format_loc(loc), self.line(loc), problem))
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
    return ConfigIssue(format_loc(loc), reader.line(loc), message)

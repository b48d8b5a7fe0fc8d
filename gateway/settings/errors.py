"""What is wrong with a settings file: each problem with its key path and
line (``ConfigIssue``), all of them together (``SettingsError``)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

# A key path as pydantic reports it: ("resources", 1, "timezone").
Loc = tuple[str | int, ...]


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


def format_loc(loc: Loc) -> str:
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

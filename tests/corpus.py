"""The real-world calendars in ``shared/corpus/ics`` (beside the repository, DESIGN.md)."""

from __future__ import annotations

import os
from pathlib import Path

CORPUS = Path(
    os.environ.get(
        "CALGATEWAY_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus" / "ics"
    )
)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.ics"))


def read_utf8(path: Path) -> str | None:
    """The file's text, or None if it is not UTF-8 (iCalendar must be, RFC 5545 3.1.4)."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None

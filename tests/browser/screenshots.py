"""Where the browser tests' screenshots go, and the lines at the end of a
run that say so. Hooked in ``tests/conftest.py``: under pytest-xdist only
the controller prints the summary, and it loads no conftest below
``tests/`` when the run starts at ``tests/``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
_STARTED = pytest.StashKey[float]()


def screenshot_dir() -> Path:
    """``$CALGATEWAY_SCREENSHOTS``, else ``build/screenshots/`` of the checkout."""
    where = os.environ.get("CALGATEWAY_SCREENSHOTS")
    return Path(where) if where else REPO / "build" / "screenshots"


def note_start(config: pytest.Config) -> None:
    config.stash[_STARTED] = time.time()


def summarize(terminalreporter: pytest.TerminalReporter) -> None:
    """How many screenshots this run wrote (any worker), and where."""
    started = terminalreporter.config.stash.get(_STARTED, None)
    folder = screenshot_dir()
    if started is None or not folder.is_dir():
        return
    new = [p for p in folder.glob("*.png") if p.stat().st_mtime >= started - 1]
    if new:
        terminalreporter.write_sep("-", "screenshots")
        terminalreporter.write_line(f"{len(new)} screenshots in {folder}")

"""Fixtures shared by the replica tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp import Recorder, smtp_server


@pytest.fixture
def mail() -> Iterator[tuple[Recorder, int]]:
    """A real SMTP server on loopback: (what it received, its port)."""
    with smtp_server() as server:
        yield server

"""A real SMTP server on loopback for every invitation test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.smtp import Recorder, smtp_server


@pytest.fixture
def mail() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server

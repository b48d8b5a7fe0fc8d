"""Fixtures for the Google bridge tests: the fake Google, an SMTP server and
the gateway configured against both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fake_google.calendar import FakeGoogle
from tests.backends import Store
from tests.google.harness import Gateway, running_gateway
from tests.smtp import Recorder, smtp_server


@pytest.fixture
async def fake() -> AsyncIterator[FakeGoogle]:
    # The gateway under test listens on loopback http://, so push channels
    # need the fake to accept an http address (Google would not).
    async with FakeGoogle.running(allow_http_webhooks=True) as google:
        yield google


@pytest.fixture
def mail() -> Iterator[tuple[Recorder, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def gateway(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> AsyncIterator[Gateway]:
    async with running_gateway(tmp_path, store, fake, mail) as gw:
        yield gw

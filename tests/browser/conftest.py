"""Fixtures of the browser tests: one headless Chromium per pytest-xdist
worker (session), handed to each test at 390 px and at 1280 px wide
(``browser``, ids "390" and "1280") with no cookies and an empty console
log; the gateway with the fake Google (``site``). Where the screenshots
went is said at the end of the run (``tests.browser.screenshots``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.backends import Store
from tests.browser.chromium import (
    SIZES,
    Browser,
    require_programs,
    reset,
    set_viewport,
    start_chromium,
)
from tests.browser.site import Site, running_site


@pytest.fixture(scope="session")
def chromium() -> Iterator[WebDriver]:
    browser, driver = require_programs()
    chrome = start_chromium(browser, driver)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(params=list(SIZES), ids=list(SIZES))
def browser(request: pytest.FixtureRequest, chromium: WebDriver) -> Iterator[Browser]:
    width, height = SIZES[request.param]
    reset(chromium)
    set_viewport(chromium, width, height)
    yield Browser(chromium, width, height)
    reset(chromium)


@pytest.fixture
async def site(tmp_path: Path, store: Store) -> AsyncIterator[Site]:
    async with running_site(tmp_path, store) as running:
        yield running

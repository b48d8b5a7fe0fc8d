"""Debian's Chromium, headless, driven by selenium through chromedriver.

``start_chromium()`` starts one browser (the session fixture in
``tests/browser/conftest.py`` keeps one per pytest-xdist worker and reuses
it); ``Browser`` is that browser seen from an async test: every WebDriver
call runs in a thread (``asyncio.to_thread``), because the gateway under
test serves from the test's own event loop and a blocking call there would
leave the browser waiting for a server that cannot answer.

The viewport is set through the DevTools protocol
(``Emulation.setDeviceMetricsOverride``), exactly ``width`` CSS pixels wide;
below 600 px as a phone (``mobile``: the page's viewport meta tag counts,
scrollbars overlay), so a page without ``width=device-width`` is laid out
980 px wide and the page checks notice (``tests.browser.checks``).

``shot(driver, name)`` writes a PNG of the whole page (not just the
viewport) to ``$CALGATEWAY_SCREENSHOTS`` or ``build/screenshots/``, named
``{name}-{language}-{width}.png`` (the language from ``<html lang>``).

When Chromium or chromedriver is missing the browser tests are skipped with
one line saying how to install them; with ``CI=true`` they fail instead
(``.ci/run`` installs both), as ``tests/pgserver.py`` does for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from tests.browser import checks
from tests.browser.screenshots import screenshot_dir

INSTALL_HINT = (
    "browser tests SKIPPED: chromium/chromedriver not found; install them with "
    "`apt-get install chromium chromium-driver` (CI=true makes this an error)"
)
# Every wait of the browser is bounded: a page that does not load within
# this fails the test instead of hanging the run.
PAGE_LOAD_TIMEOUT_S = 20
SCRIPT_TIMEOUT_S = 10
PHONE_BELOW = 600  # CSS px: narrower viewports are emulated as a phone
SIZES = {"390": (390, 844), "1280": (1280, 800)}

T = TypeVar("T")


def find_programs() -> tuple[str, str] | None:
    """(chromium, chromedriver): Debian's paths, else the first on PATH."""

    def first(*names: str) -> str | None:
        for name in names:
            found = shutil.which(name)
            if found:
                return found
        return None

    browser = first("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
    driver = first("/usr/bin/chromedriver", "chromedriver")
    return (browser, driver) if browser and driver else None


def require_programs() -> tuple[str, str]:
    """The programs, or skip (locally) / fail (``CI=true``) saying what to install."""
    found = find_programs()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(INSTALL_HINT.replace("SKIPPED", "FAILED"))
        pytest.skip(INSTALL_HINT)
    return found


def start_chromium(browser: str, driver: str) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # containers and CI run as root, where the sandbox refuses
        "--disable-dev-shm-usage",  # /dev/shm is tiny in containers
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # no calls home from the test machine
        "--lang=en-US",
        "--window-size=1280,800",
    ):
        options.add_argument(argument)
    # The console log (CSP violations, script errors) for ``checks``.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    chrome.set_script_timeout(SCRIPT_TIMEOUT_S)
    return chrome


def set_viewport(driver: WebDriver, width: int, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < PHONE_BELOW},
    )


def set_time_zone(driver: WebDriver, zone: str) -> None:
    """The browser's own time zone (the booker's), "" for the machine's."""
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": zone})


def set_scripts(driver: WebDriver, *, enabled: bool) -> None:
    """Run the pages' scripts or not (a browser with JavaScript off)."""
    driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": not enabled})


def reset(driver: WebDriver) -> None:
    """A fresh start for the next test: no cookies of any site, the
    machine's time zone, scripts on, an empty page, the console log read
    and dropped."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    set_time_zone(driver, "")
    set_scripts(driver, enabled=True)
    driver.get("about:blank")
    checks.console_log(driver)


def shot(driver: WebDriver, name: str) -> Path:
    """A PNG of the whole page as it is now; returns its path."""
    language = driver.execute_script("return document.documentElement.lang") or "none"
    width = driver.execute_script("return window.innerWidth")
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    image = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": max(int(width), int(size["width"])),
                "height": int(size["height"]),
                "scale": 1,
            },
        },
    )
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
    path = screenshot_dir() / f"{safe}-{language}-{width}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(image["data"]))
    return path


@dataclass
class Browser:
    """The worker's Chromium at one width, for one async test."""

    driver: WebDriver
    width: int
    height: int
    shots: list[Path] = field(default_factory=list)

    @property
    def size(self) -> str:
        return str(self.width)

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` off the event loop (module doc)."""
        return await asyncio.to_thread(call, *args)

    async def time_zone(self, zone: str) -> None:
        """Be a browser in ``zone`` (an IANA name), as a booker abroad."""
        await self.run(set_time_zone, self.driver, zone)

    async def without_scripts(self) -> None:
        """From now on in this test, pages run no JavaScript."""
        await self.run(lambda: set_scripts(self.driver, enabled=False))

    async def open(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def url(self) -> str:
        return await self.run(lambda: self.driver.current_url)

    async def text(self) -> str:
        """What the page says (its visible text)."""
        return await self.run(lambda: self.driver.find_element(By.TAG_NAME, "body").text)

    async def heading(self) -> str:
        return await self.run(lambda: self.driver.find_element(By.TAG_NAME, "h1").text)

    async def fill(self, label: str, value: str) -> None:
        """Type ``value`` into the control whose accessible name is ``label``."""

        def do() -> None:
            element = _control(self.driver, label)
            element.clear()
            element.send_keys(value)

        await self.run(do)

    async def value(self, label: str) -> str:
        """What the control named ``label`` holds (a link to copy, say)."""
        return await self.run(lambda: _control(self.driver, label).get_attribute("value") or "")

    async def select(self, label: str, option: str) -> None:
        """Pick the option shown as ``option`` in the list named ``label``."""
        await self.run(lambda: Select(_control(self.driver, label)).select_by_visible_text(option))

    async def column(self, table_id: str, index: int) -> list[str]:
        """The texts of one column (0-based) of the table's body rows."""

        def read() -> list[str]:
            cells = self.driver.find_elements(
                By.CSS_SELECTOR, f"#{table_id} tbody tr td:nth-child({index + 1})"
            )
            return [cell.text for cell in cells]

        return await self.run(read)

    async def choose(self, label: str) -> None:
        """Tick the radio button or checkbox named ``label``."""
        await self.run(lambda: _control(self.driver, label).click())

    async def press(self, name: str) -> None:
        """Click the (first) button or link named ``name`` and wait for the
        next page."""

        def do() -> None:
            element = _clickable(self.driver, name)
            old = self.driver.find_element(By.TAG_NAME, "html")
            element.click()
            _wait_until(lambda: _stale(old), f"a new page after pressing {name!r}")

        await self.run(do)

    async def names(self, tag: str = "button") -> list[str]:
        """The accessible names of the page's buttons (or other ``tag``s)."""
        return await self.run(
            lambda: [
                e.accessible_name
                for e in self.driver.find_elements(By.TAG_NAME, tag)
                if e.is_displayed()
            ]
        )

    async def check(self, *, language: str | None = None) -> None:
        """The page checks (``tests.browser.checks``); fails with every problem."""
        problems = await self.run(checks.problems, self.driver, self.width, language)
        assert not problems, f"{await self.url()} at {self.width} px:\n" + "\n".join(problems)

    async def shot(self, name: str) -> Path:
        path = await self.run(shot, self.driver, name)
        self.shots.append(path)
        return path

    async def look(self, name: str, *, language: str | None = None) -> str:
        """Take the page's screenshot, check it; returns its text (the usual
        three steps after every page a test reaches). The screenshot first:
        it shows the page as it came, and is there when a check fails."""
        await self.shot(name)
        await self.check(language=language)
        return await self.text()


def _control(driver: WebDriver, label: str) -> WebElement:
    for element in driver.find_elements(By.CSS_SELECTOR, "input, select, textarea"):
        if element.is_displayed() and element.accessible_name.strip() == label:
            return element
    raise AssertionError(f"no control labelled {label!r} on {driver.current_url}")


def _clickable(driver: WebDriver, name: str) -> WebElement:
    candidates = driver.find_elements(
        By.CSS_SELECTOR, "button, input[type=submit], a[href], [role=button]"
    )
    for element in candidates:
        shown = element.is_displayed()
        # By what a screen reader announces, or by what the eye reads (a
        # row's "Retry now" is announced "Retry item 7 now").
        if shown and name in (element.accessible_name.strip(), element.text.strip()):
            return element
    names = [e.accessible_name for e in candidates if e.is_displayed()]
    raise AssertionError(f"no button or link {name!r} on {driver.current_url}; there are {names}")


def _stale(element: WebElement) -> bool:
    try:
        element.tag_name  # noqa: B018 - any call tells whether the page went away
    except WebDriverException:  # stale: the old page is gone
        return True
    return False


def _wait_until(done: Callable[[], bool], what: str, within: float = PAGE_LOAD_TIMEOUT_S) -> None:
    """Poll ``done`` (WebDriver calls are round trips, no sleeping needed
    between them) until true, at most ``within`` seconds."""
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {within} s")

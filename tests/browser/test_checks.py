"""The page checks catch what they are for: each broken page here (served
on loopback with the gateway's own Content-Security-Policy) makes exactly
its check complain, and a page done right passes them all. Without this a
check that silently passes everything would look like a passing page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser import checks
from tests.browser.chromium import Browser, reset, set_viewport
from tests.net import LOOPBACK, free_port

CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'"
STYLE = """
body { margin: 0; font-family: sans-serif; color: #1d1d1f; background: #fff; }
:focus-visible { outline: 3px solid #1a5fb4; }
.wide { width: 700px; }
.pale { color: #aaaaaa; }
.nofocus:focus { outline: none; }
.narrow { width: 2em; overflow-wrap: anywhere; }
"""
GOOD = """
<h1>Fine</h1>
<h2>Part</h2>
<form><label for="name">Name</label> <input id="name" name="name">
<img src="/pixel.svg" alt="">
<button type="submit">Send</button></form>
"""
BROKEN = {
    "no-viewport": ("", GOOD, 'no <meta name="viewport"'),
    "wide": (None, GOOD + '<div class="wide">x</div>', "does not fit 390 px"),
    "no-lang": (None, GOOD, "no lang attribute"),
    "wrong-lang": (None, GOOD, 'expected "de"'),
    "two-h1": (None, GOOD + "<h1>Again</h1>", "2 <h1> elements"),
    "skipped": (None, GOOD + "<h4>Deep</h4>", "<h2> then <h4>"),
    "unlabelled": (None, GOOD + '<input name="x">', "without an accessible name"),
    "no-alt": (None, GOOD + '<img src="/pixel.svg">', "image without alt"),
    "narrow": (None, GOOD + '<p class="narrow">Attempts</p>', "word broken across lines"),
    "pale": (None, GOOD + '<p class="pale">faint</p>', "contrast 2.32:1"),
    "inline-style": (None, GOOD + '<p style="color:red">x</p>', "console error"),
    "script-error": (None, GOOD + '<script src="/boom.js"></script>', "console error"),
    "unreachable": (None, GOOD + '<button tabindex="-1">Hidden</button>', "never reaches"),
    "no-focus-ring": (None, GOOD + '<button class="nofocus">Plain</button>', "no visible focus"),
}
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def document(name: str) -> str:
    viewport, body, _ = BROKEN.get(name, (None, GOOD, ""))
    lang = "" if name == "no-lang" else ' lang="en"'
    return (
        f"<!doctype html><html{lang}><head><meta charset=utf-8>"
        f"{VIEWPORT if viewport is None else viewport}<title>{name}</title>"
        f'<link rel="stylesheet" href="/style.css"></head><body>{body}</body></html>'
    )


async def page(request: web.Request) -> web.Response:
    return web.Response(
        text=document(request.match_info["name"]),
        content_type="text/html",
        headers={"Content-Security-Policy": CSP},
    )


async def static(request: web.Request) -> web.Response:
    files = {
        "style.css": ("text/css", STYLE),
        "pixel.svg": ("image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg"/>'),
        "boom.js": ("text/javascript", "undefinedFunction();"),
    }
    if request.match_info["file"] not in files:
        raise web.HTTPNotFound()  # /favicon.ico, which Chromium asks for unasked
    kind, text = files[request.match_info["file"]]
    return web.Response(text=text, content_type=kind)


@pytest.fixture
async def pages() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/page/{name}", page)
    app.router.add_get("/{file}", static)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def phone(chromium: WebDriver) -> Browser:
    """One width is enough to prove the checks (the pages' tests run both)."""
    reset(chromium)
    set_viewport(chromium, 390, 844)
    return Browser(chromium, 390, 844)


async def found(phone: Browser, pages: str, name: str, language: str = "en") -> list[str]:
    await phone.open(f"{pages}/page/{name}")
    return await phone.run(checks.problems, phone.driver, phone.width, language)


async def test_a_page_done_right_passes(phone: Browser, pages: str) -> None:
    assert await found(phone, pages, "good") == []


@pytest.mark.parametrize("name", sorted(BROKEN))
async def test_each_fault_is_caught_by_its_check(phone: Browser, pages: str, name: str) -> None:
    problems = await found(phone, pages, name, "de" if name == "wrong-lang" else "en")
    expected = BROKEN[name][2]
    assert len(problems) == 1 and expected in problems[0], problems

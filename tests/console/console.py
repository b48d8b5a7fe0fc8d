"""Driving the admin console over HTTP like a browser without scripts: fetch
a page, read its form's CSRF token, post the form, follow the 303.

Imported by the console tests (one place for these helpers)."""

from __future__ import annotations

from typing import Any

import lxml.html
from aiohttp import ClientResponse

from tests.conftest import ADMIN_PASSWORD, AppClient

OWN_ORIGIN = "http://gateway.test"  # server.base_url of the test settings


def page(text: str) -> Any:
    """The parsed HTML document (lxml)."""
    return lxml.html.fromstring(text)


def words(text: str) -> str:
    """The visible text of a page, whitespace collapsed."""
    return " ".join(page(text).text_content().split())


def csrf_of(text: str, form_id: str | None = None) -> str:
    doc = page(text)
    scope = doc.get_element_by_id(form_id) if form_id else doc
    values = scope.xpath(".//input[@name='csrf']/@value")
    assert values, f"no csrf field in {form_id or 'the page'}"
    return str(values[0])


async def sign_in(
    client: AppClient,
    name: str = "admin",
    password: str = ADMIN_PASSWORD,
    next_path: str = "",
    *,
    origin: str = OWN_ORIGIN,
) -> ClientResponse:
    """Open the sign-in form and send it; the answer, not followed."""
    form = await client.get("/admin/sign-in", params={"next": next_path} if next_path else None)
    assert form.status == 200, await form.text()
    token = csrf_of(await form.text(), "sign-in")
    return await client.post(
        "/admin/sign-in",
        data={"csrf": token, "name": name, "password": password, "next": next_path},
        headers={"Origin": origin},
        allow_redirects=False,
    )


async def signed_in(client: AppClient, *, origin: str = OWN_ORIGIN) -> str:
    """Sign the admin in; the CSRF token of the session's forms. ``origin``:
    the server's own (its ``server.base_url``), which a browser sends."""
    answer = await sign_in(client, origin=origin)
    assert answer.status == 303, await answer.text()
    overview = await client.get("/admin/")
    assert overview.status == 200
    return csrf_of(await overview.text(), "sign-out")


async def act(
    client: AppClient, path: str, csrf: str | None, *, origin: str | None = OWN_ORIGIN
) -> ClientResponse:
    """POST a console form (not followed)."""
    data = {"csrf": csrf} if csrf is not None else {}
    headers = {"Origin": origin} if origin is not None else {}
    return await client.post(path, data=data, headers=headers, allow_redirects=False)


async def act_and_follow(
    client: AppClient, path: str, csrf: str, *, origin: str = OWN_ORIGIN
) -> tuple[str, str]:
    """POST, check the 303, GET where it leads: (location, page text)."""
    answer = await act(client, path, csrf, origin=origin)
    assert answer.status == 303, f"{answer.status}: {await answer.text()}"
    location = answer.headers["Location"]
    shown = await client.get(location)
    assert shown.status == 200, await shown.text()
    return location, await shown.text()


def flash_of(text: str) -> str:
    found = page(text).xpath("//*[@id='flash']")
    return " ".join(found[0].text_content().split()) if found else ""

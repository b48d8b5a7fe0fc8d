"""The way into the console over real HTTP: the landing page at /, signing
in (right, wrong, no admin, locked out), signing out, the session cookie's
end (idle, password changed, admin flag removed) and the redirect of a
visitor without a session."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.settings import load_settings
from gateway.web.auth import hash_password
from tests.backends import Store
from tests.conftest import ADMIN_PASSWORD, READER_PASSWORD, AppClient, settings_yaml
from tests.console.console import act, csrf_of, page, sign_in, signed_in, words

Client = Callable[[web.Application], Awaitable[AppClient]]


async def test_landing_page_says_what_the_server_is_and_where_apps_connect(
    client: AppClient,
) -> None:
    answer = await client.get("/", allow_redirects=False)
    assert answer.status == 200
    assert answer.content_type == "text/html"
    text = await answer.text()
    assert "http://gateway.test/.well-known/caldav" in words(text)
    assert page(text).get_element_by_id("sign-in-link").get("href") == "/admin/sign-in"
    assert page(text).get("lang") == "en"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    head = await client.head("/", allow_redirects=False)
    assert head.status == 200


async def test_propfind_at_root_still_leads_calendar_apps_to_dav(client: AppClient) -> None:
    answer = await client.request("PROPFIND", "/", allow_redirects=False)
    assert answer.status in (301, 302, 307, 308)


async def test_admin_signs_in_and_lands_on_the_overview(client: AppClient) -> None:
    answer = await sign_in(client)
    assert answer.status == 303
    assert answer.headers["Location"] == "/admin/"
    cookie = answer.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("calgateway_console="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Path=/" in session
    assert "Secure" not in session  # base_url is http here
    overview = await client.get("/admin/")
    assert overview.status == 200
    assert "Signed in as admin" in words(await overview.text())
    # A signed-in admin at / goes to the console.
    root = await client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (303, "/admin/")


async def test_a_page_asked_for_before_sign_in_is_shown_after_it(client: AppClient) -> None:
    first = await client.get("/admin/outbox", allow_redirects=False)
    assert first.status == 303
    assert first.headers["Location"] == "/admin/sign-in?next=/admin/outbox"
    answer = await sign_in(client, next_path="/admin/outbox")
    assert answer.headers["Location"] == "/admin/outbox"


async def test_sign_in_never_sends_the_browser_to_another_site(client: AppClient) -> None:
    for target in ("https://evil.example/", "//evil.example/admin/", "/\\evil.example"):
        answer = await sign_in(client, next_path=target)
        assert answer.headers["Location"] == "/admin/", target
        client.session.cookie_jar.clear()


async def test_wrong_password_and_unknown_name_get_one_message(client: AppClient) -> None:
    wrong = await sign_in(client, password="not-the-password")
    unknown = await sign_in(client, name="nobody", password="not-the-password")
    for answer in (wrong, unknown):
        assert answer.status == 403
        assert "Name or password wrong." in words(await answer.text())
        assert not any(
            c.startswith("calgateway_console=") for c in answer.headers.getall("Set-Cookie", [])
        )
    assert (await client.get("/admin/", allow_redirects=False)).status == 303


async def test_a_user_without_admin_flag_may_not_use_the_console(client: AppClient) -> None:
    answer = await sign_in(client, name="reader", password=READER_PASSWORD)
    assert answer.status == 403
    assert "This account may not use the console" in words(await answer.text())
    assert (await client.get("/admin/", allow_redirects=False)).status == 303


async def test_too_many_wrong_passwords_get_a_429_page_with_retry_after(
    client_with: Callable[..., Awaitable[AppClient]],
) -> None:
    client = await client_with(extra="auth:\n  max_failures_per_user: 2\n")
    for _ in range(2):
        assert (await sign_in(client, password="wrong-password")).status == 403
    locked = await sign_in(client)  # even the right password now
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) >= 1
    text = await locked.text()
    assert locked.content_type == "text/html"
    assert "Too many sign-in attempts" in words(text)


async def test_sign_in_from_the_address_the_browser_used_works(client: AppClient) -> None:
    """base_url says gateway.test; the admin opened the server by its IP."""
    own = str(client.make_url("/")).rstrip("/")
    answer = await sign_in(client, origin=own)
    assert answer.status == 303


async def test_sign_in_form_from_another_site_is_refused(client: AppClient) -> None:
    form = await client.get("/admin/sign-in")
    token = csrf_of(await form.text(), "sign-in")
    data = {"csrf": token, "name": "admin", "password": ADMIN_PASSWORD}
    cross = await client.post(
        "/admin/sign-in", data=data, headers={"Origin": "http://evil.example"}
    )
    assert cross.status == 403
    assert "Request refused" in words(await cross.text())
    tokenless = await client.post(
        "/admin/sign-in", data={"name": "admin", "password": ADMIN_PASSWORD}
    )
    assert tokenless.status == 403
    assert (await client.get("/admin/", allow_redirects=False)).status == 303


async def test_sign_out_ends_the_session(client: AppClient) -> None:
    csrf = await signed_in(client)
    answer = await act(client, "/admin/sign-out", csrf)
    assert (answer.status, answer.headers["Location"]) == (303, "/admin/sign-in")
    after = await client.get("/admin/sign-in")
    assert "You are signed out." in words(await after.text())
    assert (await client.get("/admin/", allow_redirects=False)).status == 303


async def test_sign_out_without_token_is_refused(client: AppClient) -> None:
    await signed_in(client)
    refused = await act(client, "/admin/sign-out", None)
    assert refused.status == 403
    assert (await client.get("/admin/", allow_redirects=False)).status == 200


@functools.cache
def _hash(password: str) -> str:
    """One hash per password: a new salt would be a new hash (a changed password)."""
    return hash_password(password)


def _config(tmp_path: Path, store: Store, name: str, *, password: str, admin: bool) -> Path:
    """The test settings with the admin's password and admin flag changed."""
    text = settings_yaml(store.url)
    start = text.index("  - name: admin\n")
    end = text.index("  - name: reader\n")
    user = (
        f'  - name: admin\n    password_hash: "{_hash(password)}"\n'
        f'    access: {{"*": read-write}}\n    admin: {"true" if admin else "false"}\n'
    )
    path = tmp_path / name
    path.write_text(text[:start] + user + text[end:], encoding="utf-8")
    return path


async def _generations(
    tmp_path: Path, store: Store, aiohttp_client: Client, **changed: object
) -> tuple[AppClient, AppClient]:
    """Two servers over one database, as before and after a SIGHUP that
    changed the admin's settings (``password``, ``admin``)."""
    before = _config(tmp_path, store, "before.yaml", password=ADMIN_PASSWORD, admin=True)
    after_password = str(changed.get("password", ADMIN_PASSWORD))
    after = _config(
        tmp_path, store, "after.yaml", password=after_password, admin=bool(changed.get("admin"))
    )
    first = await aiohttp_client(create_app(load_settings(before)))
    second = await aiohttp_client(create_app(load_settings(after)))
    return first, second


def _session_cookie(client: AppClient) -> dict[str, str]:
    """The session cookie of ``client``, to send to another server."""
    value = next(c.value for c in client.session.cookie_jar if c.key == "calgateway_console")
    return {"Cookie": f"calgateway_console={value}"}


async def test_session_survives_a_restart_with_the_same_settings(
    tmp_path: Path, store: Store, aiohttp_client: Client
) -> None:
    first, second = await _generations(tmp_path, store, aiohttp_client, admin=True)
    await signed_in(first)
    answer = await second.get("/admin/", headers=_session_cookie(first), allow_redirects=False)
    assert answer.status == 200


async def test_password_change_ends_the_session(
    tmp_path: Path, store: Store, aiohttp_client: Client
) -> None:
    first, second = await _generations(
        tmp_path, store, aiohttp_client, admin=True, password="a-new-password-1"
    )
    await signed_in(first)
    answer = await second.get("/admin/", headers=_session_cookie(first), allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"].startswith("/admin/sign-in")


async def test_admin_flag_removed_ends_the_session(
    tmp_path: Path, store: Store, aiohttp_client: Client
) -> None:
    first, second = await _generations(tmp_path, store, aiohttp_client, admin=False)
    await signed_in(first)
    answer = await second.get("/admin/", headers=_session_cookie(first), allow_redirects=False)
    assert answer.status == 303


async def test_session_ends_after_twelve_idle_hours(
    config_file: Path, aiohttp_client: Client
) -> None:
    now = [datetime(2026, 12, 7, 9, 0, tzinfo=UTC)]
    client = await aiohttp_client(create_app(load_settings(config_file), clock=lambda: now[0]))
    await signed_in(client)
    now[0] += timedelta(hours=11)
    assert (await client.get("/admin/", allow_redirects=False)).status == 200  # renews it
    now[0] += timedelta(hours=11)
    assert (await client.get("/admin/", allow_redirects=False)).status == 200
    now[0] += timedelta(hours=12, minutes=1)
    assert (await client.get("/admin/", allow_redirects=False)).status == 303

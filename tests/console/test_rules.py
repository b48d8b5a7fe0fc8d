"""The console's pure rules as tables: when a session cookie lets its holder
in, the CSRF token and the Origin check, where sign-in may send the
browser, and how values are put in words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, SecretStr

from gateway.front.console import csrf, sessions
from gateway.front.console.guard import safe_next
from gateway.front.console.sessions import Admin, Session
from gateway.front.console.wording import MASK, age_text, settings_rows
from gateway.web.origin import same_origin

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ADMIN = Admin("ada", "$argon2id$v=19$m=65536,t=3,p=4$salt$hash", admin=True)


def _cookie(key: bytes = KEY, admin: Admin = ADMIN, at: datetime = T0) -> str:
    return sessions.encode(key, sessions.new_session(key, admin, at))


def _tampered(value: str) -> str:
    body, _, signature = value.partition(".")
    forged = sessions._b64(b'{"u":"root"}')
    return f"{forged}.{signature}" if body != forged else value


@pytest.mark.parametrize(
    ("cookie", "admins", "now", "outcome"),
    [
        pytest.param(_cookie(), {"ada": ADMIN}, T0, "ok", id="fresh"),
        pytest.param(
            _cookie(), {"ada": ADMIN}, T0 + timedelta(hours=11, minutes=59), "ok", id="idle-11h59"
        ),
        pytest.param(
            _cookie(), {"ada": ADMIN}, T0 + timedelta(hours=12, seconds=1), "idle", id="idle-12h"
        ),
        pytest.param(_cookie(OTHER_KEY), {"ada": ADMIN}, T0, "invalid", id="other-key"),
        pytest.param(_tampered(_cookie()), {"ada": ADMIN}, T0, "invalid", id="payload-changed"),
        pytest.param("not-a-cookie", {"ada": ADMIN}, T0, "invalid", id="garbage"),
        pytest.param("a.b.c", {"ada": ADMIN}, T0, "invalid", id="three-parts"),
        pytest.param("Zm9v.", {"ada": ADMIN}, T0, "invalid", id="no-signature"),
        pytest.param("ü.ü", {"ada": ADMIN}, T0, "invalid", id="not-ascii"),
        pytest.param(_cookie(), {}, T0, "no admin", id="user-removed"),
        pytest.param(
            _cookie(), {"ada": replace(ADMIN, admin=False)}, T0, "no admin", id="admin-flag-removed"
        ),
        pytest.param(
            _cookie(),
            {"ada": replace(ADMIN, password_hash="$argon2id$new")},
            T0,
            "password changed",
            id="password-changed",
        ),
    ],
)
def test_when_a_session_cookie_lets_its_holder_in(
    cookie: str, admins: dict[str, Admin], now: datetime, outcome: str
) -> None:
    verdict = sessions.verify(KEY, cookie, admins, now)
    if outcome == "ok":
        assert isinstance(verdict, Session) and verdict.user == "ada"
    else:
        assert verdict == outcome


def test_a_session_used_daily_ends_after_seven_days() -> None:
    session = sessions.new_session(KEY, ADMIN, T0)
    now = T0
    while now - T0 < timedelta(days=7):
        now += timedelta(hours=10)
        verdict = sessions.verify(KEY, sessions.encode(KEY, session), {"ada": ADMIN}, now)
        if now - T0 <= sessions.MAX_AGE:
            assert isinstance(verdict, Session), now
            session = sessions.renewed(verdict, now) or verdict
    assert sessions.verify(KEY, sessions.encode(KEY, session), {"ada": ADMIN}, now) == "too old"


@pytest.mark.parametrize(
    ("seen_ago", "renewed"),
    [(timedelta(0), False), (timedelta(seconds=59), False), (timedelta(minutes=1), True)],
)
def test_a_cookie_is_sent_again_at_most_once_a_minute(seen_ago: timedelta, renewed: bool) -> None:
    session = sessions.new_session(KEY, ADMIN, T0)
    again = sessions.renewed(session, T0 + seen_ago)
    assert (again is not None) is renewed
    if again is not None:
        assert again.seen == T0 + seen_ago and again.id == session.id


def test_the_cookie_does_not_show_the_password_hash() -> None:
    cookie = _cookie()
    assert "argon2" not in cookie
    payload = sessions.unsign(KEY, "session", cookie)
    assert payload is not None and "argon2" not in str(payload)


def test_a_value_signed_for_one_purpose_is_no_good_for_another() -> None:
    flash = sessions.sign(KEY, "flash", {"u": "ada"})
    assert sessions.unsign(KEY, "flash", flash) == {"u": "ada"}
    assert sessions.unsign(KEY, "session", flash) is None


@pytest.mark.parametrize(
    ("session_id", "given", "ok"),
    [
        ("s1", csrf.token(KEY, "s1"), True),
        ("s2", csrf.token(KEY, "s1"), False),  # another session's token
        ("s1", csrf.token(OTHER_KEY, "s1"), False),
        ("s1", "", False),
        ("s1", None, False),
        ("s1", "ü", False),
    ],
)
def test_csrf_token_is_bound_to_the_session(session_id: str, given: str | None, ok: bool) -> None:
    assert csrf.token_ok(KEY, session_id, given) is ok


@pytest.mark.parametrize(
    ("origin", "public_url", "ok"),
    [
        (None, "https://cal.example", True),  # no browser form: the token decides
        ("https://cal.example", "https://cal.example/", True),
        ("https://CAL.example:443", "https://cal.example", True),
        ("http://cal.example", "https://cal.example", False),
        ("https://cal.example:8443", "https://cal.example", False),
        ("https://evil.example", "https://cal.example", False),
        ("null", "https://cal.example", False),
        ("", "https://cal.example", False),
        ("http://localhost:8080", "https://cal.example", True),  # the address it was sent to
        ("http://localhost:8081", "https://cal.example", False),
    ],
)
def test_origin_must_be_our_own(origin: str | None, public_url: str, ok: bool) -> None:
    assert same_origin(origin, [public_url, "http://localhost:8080"]) is ok


@pytest.mark.parametrize(
    ("value", "target"),
    [
        (None, "/admin/"),
        ("", "/admin/"),
        ("/admin/outbox", "/admin/outbox"),
        ("/admin/resources/anna?kind=conflict", "/admin/resources/anna?kind=conflict"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("/admin/\\evil", "/admin/"),
        ("/feeds/anna.ics", "/admin/"),
        ("/admin/sign-in", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
    ],
)
def test_sign_in_leads_only_into_the_console(value: str | None, target: str) -> None:
    assert safe_next(value) == target


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (None, "never"),
        (timedelta(seconds=-30), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (timedelta(hours=1), "1 hour ago"),
        (timedelta(hours=23, minutes=59), "23 hours ago"),
        (timedelta(days=2, hours=5), "2 days ago"),
    ],
)
def test_age_in_words(ago: timedelta | None, text: str) -> None:
    assert age_text(None if ago is None else T0 - ago, T0) == text


class _Inner(BaseModel):
    password_hash: str = "$argon2id$x"
    token: SecretStr = SecretStr("s3cret")
    port: int = 8080


class _Outer(BaseModel):
    name: str = "gw"
    enabled: bool = True
    optional: str | None = None
    inner: _Inner = _Inner()
    items: tuple[_Inner, ...] = (_Inner(port=1),)
    empty: tuple[str, ...] = ()
    access: dict[str, str] = {"*": "read-write"}


def test_settings_rows_name_each_key_and_hide_secrets() -> None:
    assert settings_rows(_Outer()) == [
        ("name", "gw"),
        ("enabled", "true"),
        ("optional", "not set"),
        ("inner.password_hash", MASK),
        ("inner.token", MASK),
        ("inner.port", "8080"),
        ("items[0].password_hash", MASK),
        ("items[0].token", MASK),
        ("items[0].port", "1"),
        ("empty", "[] (none)"),
        ("access.*", "read-write"),
    ]

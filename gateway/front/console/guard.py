"""Who may use the console, applied to requests: the session cookie, the
sign-in cookie, the CSRF checks of every POST, and the flash message an
action leaves for the page it redirects to.

The rules are in ``sessions`` and ``csrf`` (pure); this module reads and
writes cookies and turns a refusal into a redirect to the sign-in page or a
403 page.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.look.pages import message_page
from gateway.settings import Settings
from gateway.web.keys import ADMIN_ACTIONS, CLOCK, SETTINGS
from gateway.web.origin import same_origin

from . import csrf, sessions
from .sessions import Admin, Session

SESSION_COOKIE = "calgateway_console"
SIGN_IN_COOKIE = "calgateway_sign_in"
FLASH_COOKIE = "calgateway_flash"
SIGN_IN_PATH = "/admin/sign-in"
HOME = "/admin/"
# The sign-in form must be sent within this many seconds of being shown.
SIGN_IN_SECONDS = 3600

REQUEST_SESSION = web.RequestKey("console_session", Session)  # the verified session


@dataclass
class KeyHolder:
    """The session key, read from the database once (it never changes)."""

    key: bytes | None = None
    lock: asyncio.Lock | None = None


KEY = web.AppKey("console_key", KeyHolder)


async def session_key(request: web.Request) -> bytes:
    holder = request.config_dict[KEY]
    if holder.key is None:
        if holder.lock is None:
            holder.lock = asyncio.Lock()
        async with holder.lock:
            if holder.key is None:
                holder.key = await request.config_dict[ADMIN_ACTIONS].session_key()
    return holder.key


def admins(settings: Settings) -> dict[str, Admin]:
    return {u.name: Admin(u.name, u.password_hash, u.admin) for u in settings.users}


async def current_session(request: web.Request) -> Session | None:
    """The request's session if its cookie still lets it in."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    key = await session_key(request)
    verdict = sessions.verify(key, value, admins(request.config_dict[SETTINGS]), _now(request))
    return verdict if isinstance(verdict, Session) else None


def secure(request: web.Request) -> bool:
    """Cookies only over https when the server is reached by https."""
    return request.config_dict[SETTINGS].server.public_url.lower().startswith("https:")


def set_session_cookie(
    request: web.Request, response: web.StreamResponse, key: bytes, session: Session
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sessions.encode(key, session),
        path="/",
        max_age=int(sessions.IDLE_LIMIT.total_seconds()),
        httponly=True,
        secure=secure(request),
        samesite="Lax",
    )


def end_session(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=secure(request), samesite="Lax")


def see_other(location: str) -> web.Response:
    """303: after a POST, the browser GETs ``location`` (RFC 9110 15.4.4)."""
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path of this server only,
    never another site (an open redirect would lend our name to phishing)."""
    if not value:
        return HOME
    parts = urlsplit(value)
    if (
        parts.scheme
        or parts.netloc
        or not value.startswith(HOME)
        or "\\" in value
        or value.startswith(SIGN_IN_PATH)
    ):
        return HOME
    return value


# -- the sign-in form's own CSRF binding -----------------------------------------------


def start_sign_in(request: web.Request, response: web.StreamResponse, nonce: str) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        path=SIGN_IN_PATH,
        max_age=SIGN_IN_SECONDS,
        httponly=True,
        secure=secure(request),
        samesite="Lax",
    )


def sign_in_nonce(request: web.Request) -> str:
    """The sign-in cookie's nonce, or a new one (then ``start_sign_in``)."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(16)


def sign_in_binding(nonce: str) -> str:
    return f"sign-in:{nonce}"


def end_sign_in(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH, secure=secure(request), samesite="Lax")


# -- CSRF ------------------------------------------------------------------------------


def forged(
    request: web.Request, key: bytes, binding: str, given: str | None
) -> web.Response | None:
    """The 403 page for a POST that did not come from our own form, else None."""
    own = (request.config_dict[SETTINGS].server.public_url, f"{request.scheme}://{request.host}")
    if same_origin(request.headers.get("Origin"), own) and csrf.token_ok(key, binding, given):
        return None
    return message_page(
        request,
        "Request refused",
        "This form was not sent from a page of this console, or the page was too old. "
        "Go back, reload the page and try again.",
        status=403,
    )


# -- flash messages --------------------------------------------------------------------

FlashKind = Literal["done", "error"]


@dataclass(frozen=True, slots=True)
class Flash:
    kind: FlashKind
    message: str
    link: str = ""  # shown as selectable text under the message (a connect link)


def flash(
    request: web.Request, response: web.StreamResponse, key: bytes, note: Flash
) -> web.StreamResponse:
    """Leave ``note`` for the next page the browser opens in the console.
    Signed, so no other site can put words on the console's pages."""
    value = sessions.sign(key, "flash", {"k": note.kind, "m": note.message, "l": note.link})
    response.set_cookie(
        FLASH_COOKIE, value, path=HOME, httponly=True, secure=secure(request), samesite="Lax"
    )
    return response


def take_flash(request: web.Request, key: bytes, response: web.StreamResponse) -> Flash | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    response.del_cookie(FLASH_COOKIE, path=HOME, secure=secure(request), samesite="Lax")
    payload = sessions.unsign(key, "flash", value)
    if payload is None:
        return None
    kind, message, link = payload.get("k"), payload.get("m"), payload.get("l", "")
    if kind not in ("done", "error") or not isinstance(message, str) or not isinstance(link, str):
        return None
    return Flash(kind, message, link)


# -- the middleware --------------------------------------------------------------------

_OPEN_ROUTES = frozenset({"console_sign_in", "console_sign_in_post"})


@web.middleware
async def console_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every console route but sign-in needs a session; every POST of a
    session also its CSRF token. A renewed session goes back as a cookie."""
    if request.match_info.route.name in _OPEN_ROUTES:
        return await handler(request)
    session = await current_session(request)
    if session is None:
        if request.method in ("GET", "HEAD"):
            target = quote(request.path_qs, safe="/?=&-_.~%")
            response = see_other(f"{SIGN_IN_PATH}?next={target}")
        else:
            response = see_other(SIGN_IN_PATH)
        if request.cookies.get(SESSION_COOKIE):
            end_session(request, response)
        return response
    key = await session_key(request)
    if request.method == "POST":
        form = await request.post()
        given = form.get(csrf.FIELD)
        refused = forged(request, key, session.id, given if isinstance(given, str) else None)
        if refused is not None:
            return refused
    request[REQUEST_SESSION] = session
    answer = await handler(request)
    again = sessions.renewed(session, _now(request))
    if again is not None and not answer.prepared and SESSION_COOKIE not in answer.cookies:
        set_session_cookie(request, answer, key, again)
    return answer


def session_of(request: web.Request) -> Session:
    return request[REQUEST_SESSION]


def page_context(request: web.Request, key: bytes) -> Mapping[str, str]:
    """What every signed-in page's layout needs: who, and the CSRF token."""
    session = session_of(request)
    return {"user": session.user, "csrf": csrf.token(key, session.id)}


def _now(request: web.Request) -> datetime:
    return request.config_dict[CLOCK]()

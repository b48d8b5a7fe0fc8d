"""The pages around signing in: the landing page at ``/`` for visitors, the
sign-in form, and sign-out.

Sign-in checks the name and password with the server's one
``Authenticator`` (argon2, the backoff per address and per name, the
queue of checks): a refusal there is a 429 or 503 page with Retry-After.
A wrong name and a wrong password get the same answer; a right password of
a user without ``admin: true`` is told that this account may not use the
console.
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.look.pages import message_page, render_page
from gateway.web.auth import SignInRefused
from gateway.web.keys import AUTHENTICATOR, CLOCK, SETTINGS

from .. import csrf, guard, sessions
from ..guard import Flash
from .render import done

log = logging.getLogger("calgateway.console")

WRONG = "Name or password wrong."
NOT_ADMIN = (
    "This account may not use the console. An administrator can allow it with "
    "admin: true in its users[] entry of the settings."
)


async def landing(request: web.Request) -> web.StreamResponse:
    """``/``: a signed-in admin goes to the console; anyone else learns what
    this server is and where calendar apps connect."""
    if await guard.current_session(request) is not None:
        return guard.see_other(guard.HOME)
    public_url = request.config_dict[SETTINGS].server.public_url
    return render_page(
        request,
        "console/landing.html",
        {
            "title": "Calendar server",
            "caldav_url": f"{public_url}/.well-known/caldav",
            "sign_in_url": guard.SIGN_IN_PATH,
        },
    )


async def to_console(request: web.Request) -> web.StreamResponse:
    """``/admin`` without its slash."""
    return guard.see_other(guard.HOME)


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if await guard.current_session(request) is not None:
        return guard.see_other(guard.safe_next(request.query.get("next")))
    return await _form(
        request, status=200, message=None, name="", next_path=request.query.get("next")
    )


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    nonce = request.cookies.get(guard.SIGN_IN_COOKIE, "")
    key = await guard.session_key(request)
    given = form.get(csrf.FIELD)
    refused = guard.forged(
        request,
        key,
        guard.sign_in_binding(nonce),
        given if isinstance(given, str) and nonce else None,
    )
    if refused is not None:
        return refused
    posted_next = form.get("next")
    next_path = guard.safe_next(posted_next if isinstance(posted_next, str) else None)
    name, password = form.get("name"), form.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        return await _form(
            request,
            status=400,
            message="Enter a name and a password.",
            name="",
            next_path=next_path,
        )
    authenticator = request.config_dict[AUTHENTICATOR]
    try:
        principal = await authenticator.sign_in(name, password, address=request.remote)
    except SignInRefused as refusal:
        response = message_page(
            request,
            refusal.title,
            f"Signing in is refused for now: {refusal.message}. "
            f"Try again in {refusal.retry_after} seconds.",
            status=refusal.status,
        )
        response.headers.update(refusal.headers)
        return response
    if principal is None:
        return await _form(request, status=403, message=WRONG, name=name, next_path=next_path)
    admin = guard.admins(request.config_dict[SETTINGS]).get(principal.name)
    if admin is None or not admin.admin:
        log.info("console sign-in of a user who is no admin", extra={"user": principal.name})
        return await _form(request, status=403, message=NOT_ADMIN, name=name, next_path=next_path)
    session = sessions.new_session(key, admin, request.config_dict[CLOCK]())
    response = guard.see_other(next_path)
    guard.set_session_cookie(request, response, key, session)
    guard.end_sign_in(request, response)
    log.info("console sign-in", extra={"user": admin.name, "address": request.remote})
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    session = guard.session_of(request)
    response = await done(request, guard.SIGN_IN_PATH, Flash("done", "You are signed out."))
    guard.end_session(request, response)
    log.info("console sign-out", extra={"user": session.user})
    return response


async def _form(
    request: web.Request, *, status: int, message: str | None, name: str, next_path: str | None
) -> web.StreamResponse:
    key = await guard.session_key(request)
    nonce = guard.sign_in_nonce(request)
    holder = web.Response()
    note = guard.take_flash(request, key, holder)
    response = render_page(
        request,
        "console/sign_in.html",
        {
            "title": "Sign in",
            "message": message,
            "flash": note,
            "name": name,
            "next": guard.safe_next(next_path),
            "csrf": csrf.token(key, guard.sign_in_binding(nonce)),
        },
        status=status,
    )
    for cookie, morsel in holder.cookies.items():
        response.cookies[cookie] = morsel
    guard.start_sign_in(request, response, nonce)
    return response

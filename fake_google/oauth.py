"""Google's OAuth 2.0 endpoints, faked: consent page, token endpoint, revocation.

Semantics: "Using OAuth 2.0 for Web Server Applications"
(https://developers.google.com/identity/protocols/oauth2/web-server), RFC 6749
(authorization code grant, refresh) and RFC 7636 (PKCE). The consent page does not
render: it "consents" at once as the account chosen with ``consent_as`` and redirects.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from aiohttp import web

from fake_google.errors import (
    Faults,
    insufficient_scopes,
    invalid_credentials,
    login_required,
)
from fake_google.store import Store

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
CALENDAR = SCOPE_PREFIX + "calendar"
CALENDAR_READONLY = SCOPE_PREFIX + "calendar.readonly"
EVENTS = SCOPE_PREFIX + "calendar.events"
EVENTS_READONLY = SCOPE_PREFIX + "calendar.events.readonly"
CALENDARLIST = SCOPE_PREFIX + "calendar.calendarlist"
CALENDARLIST_READONLY = SCOPE_PREFIX + "calendar.calendarlist.readonly"
CALENDARS = SCOPE_PREFIX + "calendar.calendars"
CALENDARS_READONLY = SCOPE_PREFIX + "calendar.calendars.readonly"

# Which scopes allow which calls (each method's "scopes" in the discovery document).
EVENTS_READ = frozenset({CALENDAR, CALENDAR_READONLY, EVENTS, EVENTS_READONLY})
EVENTS_WRITE = frozenset({CALENDAR, EVENTS})
CALENDARLIST_READ = frozenset({CALENDAR, CALENDAR_READONLY, CALENDARLIST, CALENDARLIST_READONLY})
CALENDARS_READ = frozenset({CALENDAR, CALENDAR_READONLY, CALENDARS, CALENDARS_READONLY})
ANY_CALENDAR = EVENTS_READ | CALENDARLIST_READ | CALENDARS_READ
DEFAULT_SCOPES: tuple[str, ...] = (CALENDAR,)

ACCESS_TOKEN_LIFETIME = 3599  # seconds, what Google's token endpoint answers
CODE_LIFETIME = 600  # authorization codes are short-lived
_CHALLENGE_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 section 4.1
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_OPENID = frozenset({"openid", "email", "profile"})  # sign-in scopes, always granted


@dataclass
class AccessGrant:
    token: str
    email: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float
    refresh_token: str | None
    revoked: bool = False

    def valid(self) -> bool:
        return not self.revoked and time.time() < self.expires_at


@dataclass
class RefreshGrant:
    token: str
    email: str
    client_id: str
    scopes: frozenset[str]
    code: str | None
    revoked: bool = False


@dataclass
class _AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    email: str
    scopes: frozenset[str]
    challenge: str | None
    method: str
    offline: bool
    issued_at: float
    used: bool = False


def _error_page(status: int, error: str, detail: str) -> web.Response:
    # Google shows an HTML "Access blocked" page (it cannot trust the redirect_uri).
    error, detail = html.escape(error), html.escape(detail)
    text = (
        f"<!doctype html><html><head><title>Error {status}: {error}</title></head><body>"
        "<h1>Access blocked: Authorization Error</h1>"
        f"<p>Error {status}: {error}</p><p>{detail}</p></body></html>"
    )
    return web.Response(status=status, text=text, content_type="text/html")


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    body = {"error": error, "error_description": description}
    return web.json_response(body, status=status, headers=_NO_STORE)


def _with_query(uri: str, params: list[tuple[str, str]]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


class OAuthProvider:
    def __init__(
        self,
        store: Store,
        faults: Faults,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: frozenset[str] | None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.consent_set = False
        self.consent_email: str | None = None
        self.consent_scopes: frozenset[str] | None = None
        self.codes: dict[str, _AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.access_tokens: dict[str, AccessGrant] = {}
        self.granted: set[tuple[str, str]] = set()  # (email, client_id) that consented
        self.offline_granted: set[tuple[str, str]] = set()  # ... and got a refresh token
        self.token_requests: list[str] = []  # grant_type of every POST /token

    # --- test controls --------------------------------------------------------------------

    def consent_as(self, email: str | None, scopes: frozenset[str] | None) -> None:
        if email is not None and email not in self.store.accounts:
            raise KeyError(email)
        self.consent_set = True
        self.consent_email = email
        self.consent_scopes = scopes

    def issue_refresh_token(self, email: str, scopes: frozenset[str]) -> str:
        if email not in self.store.accounts:
            raise KeyError(email)
        self.granted.add((email, self.client_id))
        self.offline_granted.add((email, self.client_id))
        return self._new_refresh(email, self.client_id, scopes, None).token

    def issue_access_token(self, email: str, scopes: frozenset[str]) -> str:
        if email not in self.store.accounts:
            raise KeyError(email)
        return self._new_access(email, self.client_id, scopes, None).token

    def revoke_account(self, email: str) -> None:
        for grant in self.refresh_tokens.values():
            if grant.email == email:
                grant.revoked = True
        for access in self.access_tokens.values():
            if access.email == email:
                access.revoked = True
        self.granted = {g for g in self.granted if g[0] != email}
        self.offline_granted = {g for g in self.offline_granted if g[0] != email}

    def expire_access_tokens(self) -> None:
        for access in self.access_tokens.values():
            access.expires_at = 0.0

    # --- API authentication ---------------------------------------------------------------

    def authenticate(self, header: str | None) -> AccessGrant:
        if not header:
            raise login_required()
        scheme, _, token = header.partition(" ")
        grant = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if grant is None or not grant.valid():
            raise invalid_credentials()
        return grant

    @staticmethod
    def require(grant: AccessGrant, allowed: frozenset[str]) -> None:
        if not grant.scopes & allowed:
            raise insufficient_scopes()

    # --- tokens ---------------------------------------------------------------------------

    def _new_refresh(
        self, email: str, client_id: str, scopes: frozenset[str], code: str | None
    ) -> RefreshGrant:
        grant = RefreshGrant("1//0f" + secrets.token_urlsafe(40), email, client_id, scopes, code)
        self.refresh_tokens[grant.token] = grant
        return grant

    def _new_access(
        self, email: str, client_id: str, scopes: frozenset[str], refresh: str | None
    ) -> AccessGrant:
        grant = AccessGrant(
            "ya29.f" + secrets.token_urlsafe(40),
            email,
            client_id,
            scopes,
            time.time() + ACCESS_TOKEN_LIFETIME,
            refresh,
        )
        self.access_tokens[grant.token] = grant
        return grant

    def _revoke_grant(self, email: str, client_id: str) -> None:
        # Revoking one token revokes the whole grant of that user to that client.
        for refresh in self.refresh_tokens.values():
            if refresh.email == email and refresh.client_id == client_id:
                refresh.revoked = True
        for access in self.access_tokens.values():
            if access.email == email and access.client_id == client_id:
                access.revoked = True
        self.granted.discard((email, client_id))
        self.offline_granted.discard((email, client_id))

    # --- GET /o/oauth2/auth ---------------------------------------------------------------

    def _valid_redirect(self, uri: str) -> bool:
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return False
        return self.redirect_uris is None or uri in self.redirect_uris

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        client_id = q.get("client_id")
        if not client_id:
            return _error_page(400, "invalid_request", "Missing required parameter: client_id")
        if client_id != self.client_id:
            return _error_page(401, "invalid_client", "The OAuth client was not found. (client_id)")
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri:
            return _error_page(400, "invalid_request", "Missing required parameter: redirect_uri")
        if not self._valid_redirect(redirect_uri):
            return _error_page(400, "redirect_uri_mismatch", f"redirect_uri={redirect_uri}")
        response_type = q.get("response_type")
        if not response_type:
            return _error_page(400, "invalid_request", "Missing required parameter: response_type")
        if response_type != "code":
            return _error_page(
                400, "unsupported_response_type", f"Invalid response_type: {response_type}"
            )
        scope = q.get("scope", "").split()
        if not scope:
            return _error_page(400, "invalid_request", "Missing required parameter: scope")
        bad = [s for s in scope if not s.startswith(SCOPE_PREFIX) and s not in _OPENID]
        if bad:
            return _error_page(
                400, "invalid_scope", f"Some requested scopes were invalid: scope={' '.join(bad)}"
            )
        access_type = q.get("access_type", "online")
        if access_type not in ("online", "offline"):
            return _error_page(400, "invalid_request", f"Invalid access_type: {access_type}")
        prompt = set(q.get("prompt", "").split())
        if not prompt <= {"none", "consent", "select_account"} or (
            "none" in prompt and len(prompt) > 1
        ):
            return _error_page(400, "invalid_request", f"Invalid prompt: {q.get('prompt')}")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method")
        if method is not None and method not in ("S256", "plain"):
            return _error_page(400, "invalid_request", f"Invalid code_challenge_method: {method}")
        if method is not None and challenge is None:
            return _error_page(400, "invalid_request", "Missing required parameter: code_challenge")
        if challenge is not None and not _CHALLENGE_RE.fullmatch(challenge):
            return _error_page(400, "invalid_request", "Invalid code_challenge")
        state = q.get("state")
        echo = [("state", state)] if state is not None else []

        email = self._consenting(q.get("login_hint"))
        if email is None:
            raise web.HTTPFound(_with_query(redirect_uri, [("error", "access_denied"), *echo]))
        if "none" in prompt and (email, client_id) not in self.granted:
            raise web.HTTPFound(_with_query(redirect_uri, [("error", "consent_required"), *echo]))
        granted = frozenset(scope)
        if self.consent_scopes is not None:  # the user unticked some scopes
            granted = frozenset(s for s in scope if s in self.consent_scopes or s in _OPENID)
        code = "4/0A" + secrets.token_urlsafe(48)
        self.codes[code] = _AuthCode(
            code=code,
            client_id=client_id,
            redirect_uri=redirect_uri,
            email=email,
            scopes=granted,
            challenge=challenge,
            method=method or "plain",
            # access_type=offline yields a refresh token "the first time that your
            # application exchanges an authorization code"; later consents only with
            # prompt=consent (web-server OAuth guide).
            offline=access_type == "offline"
            and ("consent" in prompt or (email, client_id) not in self.offline_granted),
            issued_at=time.monotonic(),
        )
        self.granted.add((email, client_id))
        params = [*echo, ("code", code), ("scope", " ".join(sorted(granted)))]
        raise web.HTTPFound(_with_query(redirect_uri, params))

    def _consenting(self, login_hint: str | None) -> str | None:
        if self.consent_set:
            return self.consent_email
        # Unset: the hinted account if it exists, else the first one added.
        if login_hint in self.store.accounts:
            return login_hint
        return next(iter(self.store.accounts), None)

    # --- POST /token ----------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "Invalid content type")
        form = await request.post()
        fault = self.faults.take("token", "POST")
        if fault is not None:
            return web.json_response(fault.oauth_body(), status=fault.status, headers=_NO_STORE)
        grant_type = str(form.get("grant_type", ""))
        self.token_requests.append(grant_type)
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode()
            except ValueError:
                return _oauth_error(401, "invalid_client", "Unauthorized")
            user, _, password = decoded.partition(":")
            client_id, secret = unquote_plus(user), unquote_plus(password)
        if not client_id:
            return _oauth_error(
                400, "invalid_request", "Could not determine client ID from request."
            )
        if client_id != self.client_id:
            return _oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not secrets.compare_digest(secret, self.client_secret):
            return _oauth_error(401, "invalid_client", "Unauthorized")
        if grant_type == "authorization_code":
            return self._exchange_code(form, client_id)
        if grant_type == "refresh_token":
            return self._refresh(form, client_id)
        return _oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(self, form: Mapping[str, Any], client_id: str) -> web.Response:
        code = str(form.get("code", ""))
        if not code:
            return _oauth_error(400, "invalid_request", "Missing required parameter: code")
        entry = self.codes.get(code)
        if entry is None or entry.client_id != client_id:
            return _oauth_error(400, "invalid_grant", "Malformed auth code.")
        if entry.used:
            # RFC 6749 4.1.2: a code used twice revokes what it granted.
            self._revoke_grant(entry.email, entry.client_id)
            return _oauth_error(400, "invalid_grant", "Bad Request")
        if time.monotonic() - entry.issued_at > CODE_LIFETIME:
            return _oauth_error(400, "invalid_grant", "Bad Request")
        redirect_uri = str(form.get("redirect_uri", ""))
        if not redirect_uri:
            return _oauth_error(400, "invalid_request", "Missing parameter: redirect_uri")
        if redirect_uri != entry.redirect_uri:
            return _oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if entry.challenge is not None:
            verifier = str(form.get("code_verifier", ""))
            if not verifier:
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            if entry.method == "S256":
                digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
                derived = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            else:
                derived = verifier
            if not secrets.compare_digest(derived, entry.challenge):
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
        entry.used = True
        refresh = (
            self._new_refresh(entry.email, client_id, entry.scopes, code) if entry.offline else None
        )
        access = self._new_access(
            entry.email, client_id, entry.scopes, refresh.token if refresh else None
        )
        body = {
            "access_token": access.token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": " ".join(sorted(entry.scopes)),
            "token_type": "Bearer",
        }
        if refresh is not None:  # only for access_type=offline (see authorize)
            self.offline_granted.add((entry.email, client_id))
            body["refresh_token"] = refresh.token
        return web.json_response(body, headers=_NO_STORE)

    def _refresh(self, form: Mapping[str, Any], client_id: str) -> web.Response:
        token = str(form.get("refresh_token", ""))
        if not token:
            return _oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
        grant = self.refresh_tokens.get(token)
        if grant is None or grant.revoked:
            return _oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client_id:
            return _oauth_error(400, "unauthorized_client", "Unauthorized")
        scopes = grant.scopes
        asked = str(form.get("scope", "")).split()
        if asked:
            if not set(asked) <= grant.scopes:
                return _oauth_error(400, "invalid_scope", "Bad Request")
            scopes = frozenset(asked)
        access = self._new_access(grant.email, client_id, scopes, grant.token)
        # No new refresh token: Google keeps the one the client holds.
        body = {
            "access_token": access.token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }
        return web.json_response(body, headers=_NO_STORE)

    # --- POST /revoke ---------------------------------------------------------------------

    async def revoke(self, request: web.Request) -> web.Response:
        token = request.query.get("token")
        if token is None and request.content_type == "application/x-www-form-urlencoded":
            token = str((await request.post()).get("token", "")) or None
        refresh = self.refresh_tokens.get(token or "")
        access = self.access_tokens.get(token or "")
        grant = refresh or access
        if grant is None or grant.revoked:
            return _oauth_error(400, "invalid_token", "Token expired or revoked")
        self._revoke_grant(grant.email, grant.client_id)
        return web.json_response({})

"""OAuth 2.0 for web server applications, as Google documents it: the
consent URL and the authorization-code exchange, with PKCE.

Written against aiohttp rather than google-auth-oauthlib: that library goes
through requests-oauthlib, which is synchronous and refuses any http:// token
endpoint unless a process-wide environment switch is set, while the gateway
exchanges codes inside its event loop and its tests talk to a fake Google on
loopback. What is needed is two small, standard requests (RFC 6749 4.1,
RFC 7636); token refresh stays with google-auth.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from .client import SCOPES, OAuthClient


class ConsentFailed(Exception):
    """The code exchange did not give us a refresh token."""


class CodeRefused(ConsentFailed):
    """Google's token endpoint refused the code (RFC 6749 5.2: ``invalid_grant``
    for a code used twice or too old, ``redirect_uri_mismatch``, ...): only
    a new consent gives a new code."""

    def __init__(self, message: str, error: str) -> None:
        super().__init__(message)
        self.error = error


class TokenEndpointUnavailable(ConsentFailed):
    """Google's token endpoint could not be reached, timed out or answered
    5xx/429: it may work in a few minutes."""


class NoRefreshToken(ConsentFailed):
    """Google granted access but sent no refresh token (the account had
    granted access before and the grant was not shown again)."""


@dataclass(frozen=True, slots=True)
class Pkce:
    verifier: str
    challenge: str


def new_pkce() -> Pkce:
    # RFC 7636 4.1: 43-128 characters from the unreserved set; 64 random
    # bytes in url-safe base64 give 86. 4.2: challenge = BASE64URL(SHA256).
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return Pkce(verifier, challenge)


def new_state() -> str:
    return secrets.token_urlsafe(32)


def consent_url(
    auth_uri: str,
    client: OAuthClient,
    *,
    redirect_uri: str,
    state: str,
    challenge: str,
    login_hint: str = "",
) -> str:
    params = {
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        # offline: a refresh token, so that sync runs without the person;
        # consent: Google sends a refresh token again on a reconnect.
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{auth_uri}?{urlencode(params)}"


async def exchange_code(
    session: aiohttp.ClientSession,
    client: OAuthClient,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
    timeout_s: float,
) -> str:
    """The refresh token for an authorization code (RFC 6749 4.1.3)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "code_verifier": verifier,
    }
    try:
        async with session.post(
            client.token_uri, data=form, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = {}
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TokenEndpointUnavailable(
            f"Google's token endpoint could not be reached: {exc!r}"
        ) from exc
    error = str(answer.get("error", "")) if isinstance(answer, dict) else ""
    if status == 429 or status >= 500:
        raise TokenEndpointUnavailable(f"Google's token endpoint answered {status} {error}".strip())
    if status != 200 or not isinstance(answer, dict):
        raise CodeRefused(f"Google refused the authorization code: {status} {error}".strip(), error)
    refresh = answer.get("refresh_token")
    if not refresh:
        raise NoRefreshToken(
            "Google sent no refresh token; remove this app's access in your Google account "
            "settings (Security, Third-party access) and open the invitation link again"
        )
    return str(refresh)

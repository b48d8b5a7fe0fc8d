"""Secrets and identifiers of the Google bridge: refresh tokens at rest
(``TokenVault``), Google event ids of bookings, PKCE and the consent URL."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from gateway.core.mirror import booking_id_of_event, google_event_id
from google_bridge import oauth
from google_bridge.client import SCOPES, OAuthClient
from google_bridge.oauth import consent_url, new_pkce
from google_bridge.tokens import TokenKeyMismatch, TokenVault, new_key

REFRESH = "1//0gLx-refresh-token_for.anna~very-secret-value"

# -- TokenVault ------------------------------------------------------------------


def test_seal_and_open_round_trip() -> None:
    vault = TokenVault([new_key()])
    for token in (REFRESH, "ü-ñ-日本-🔑", "x" * 2000):
        sealed = vault.seal(token)
        assert isinstance(sealed, bytes)
        assert vault.open(sealed) == token


def test_ciphertext_does_not_contain_the_token() -> None:
    vault = TokenVault([new_key()])
    sealed = vault.seal(REFRESH)
    assert REFRESH.encode() not in sealed
    assert b"very-secret" not in sealed
    assert b"very-secret" not in base64.urlsafe_b64decode(sealed)
    # Sealing twice gives different ciphertexts (random IV): equal tokens
    # cannot be spotted in a copied database.
    assert vault.seal(REFRESH) != sealed


def test_wrong_key_is_a_token_key_mismatch() -> None:
    sealed = TokenVault([new_key()]).seal(REFRESH)
    with pytest.raises(TokenKeyMismatch, match="token_keys"):
        TokenVault([new_key()]).open(sealed)


@pytest.mark.parametrize("damaged", [b"", b"not a fernet token", b"gAAAAAB" + b"A" * 80])
def test_garbage_is_a_token_key_mismatch(damaged: bytes) -> None:
    with pytest.raises(TokenKeyMismatch):
        TokenVault([new_key()]).open(damaged)


def test_tampered_ciphertext_is_refused() -> None:
    vault = TokenVault([new_key()])
    raw = bytearray(base64.urlsafe_b64decode(vault.seal(REFRESH)))
    raw[40] ^= 0x01
    with pytest.raises(TokenKeyMismatch):
        vault.open(base64.urlsafe_b64encode(bytes(raw)))


def test_vault_needs_a_key() -> None:
    with pytest.raises(ValueError):
        TokenVault([])


def test_new_keys_are_fernet_keys_and_differ() -> None:
    keys = {new_key() for _ in range(5)}
    assert len(keys) == 5
    for key in keys:
        Fernet(key)  # accepted as is
        assert len(base64.urlsafe_b64decode(key)) == 32


def test_key_with_surrounding_whitespace_from_yaml_still_works() -> None:
    key = new_key()
    sealed = TokenVault([key]).seal(REFRESH)
    assert TokenVault([f"  {key}\n"]).open(sealed) == REFRESH


def test_key_rotation() -> None:
    old, new = new_key(), new_key()
    old_vault = TokenVault([old])
    sealed_old = old_vault.seal(REFRESH)

    rotated_vault = TokenVault([new, old])
    # Tokens sealed before the rotation still open ...
    assert rotated_vault.open(sealed_old) == REFRESH
    # ... and new ones are sealed with the new (first) key only.
    sealed_new = rotated_vault.seal("another token")
    assert TokenVault([new]).open(sealed_new) == "another token"
    with pytest.raises(TokenKeyMismatch):
        old_vault.open(sealed_new)

    # rotate() re-encrypts under the new key: the old key can be dropped.
    moved = rotated_vault.rotate(sealed_old)
    assert moved != sealed_old
    assert TokenVault([new]).open(moved) == REFRESH
    with pytest.raises(TokenKeyMismatch):
        old_vault.open(moved)


def test_rotating_a_token_no_key_opens_is_a_token_key_mismatch() -> None:
    # The old key was dropped before its tokens were rotated.
    sealed = TokenVault([new_key()]).seal(REFRESH)
    with pytest.raises(TokenKeyMismatch):
        TokenVault([new_key(), new_key()]).rotate(sealed)


# -- Google event ids --------------------------------------------------------------

# Calendar API, Events.insert "id": base32hex characters (a-v, 0-9), 5 to 1024 of them.
GOOGLE_ID = re.compile(r"[a-v0-9]{5,1024}")

BOOKING_IDS = [
    # A fresh one each run, under a fixed test id: pytest-xdist's workers
    # must collect the same names.
    pytest.param(uuid.uuid4().hex, id="uuid4"),
    uuid.UUID("00000000-0000-4000-8000-000000000000").hex,
    "ffffffffffffffffffffffffffffffff",
    "id-anna-u1",
    "b-ünïcode-1",
    "abc",  # the shortest id that still gives five characters
    "日本語の予約",
    "x" * 640,  # the longest one that fits 1024 characters
]


@pytest.mark.parametrize("booking_id", BOOKING_IDS)
def test_google_event_id_is_valid_and_round_trips(booking_id: str) -> None:
    event_id = google_event_id(booking_id)
    assert GOOGLE_ID.fullmatch(event_id), event_id
    assert booking_id_of_event(event_id) == booking_id
    assert google_event_id(booking_id) == event_id  # deterministic: retries name one event


def test_google_event_ids_of_real_booking_ids() -> None:
    ids = [uuid.uuid4().hex for _ in range(200)]
    event_ids = [google_event_id(i) for i in ids]
    assert len(set(event_ids)) == len(ids)
    assert all(GOOGLE_ID.fullmatch(e) for e in event_ids)
    assert [booking_id_of_event(e) for e in event_ids] == ids


@pytest.mark.parametrize(
    "foreign",
    [
        "xyz12345",  # w-z are not base32hex
        "7kq_20260312T090000Z",  # an instance of a recurring event
        "abc-def",
        "a",  # impossible length
        "vvvfrv7r",  # base32hex of bytes that are not UTF-8
    ],
)
def test_events_made_elsewhere_have_no_booking_id(foreign: str) -> None:
    assert booking_id_of_event(foreign) is None


# -- PKCE and the consent URL --------------------------------------------------------

UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")  # RFC 7636 4.1


def test_pkce_verifier_and_challenge() -> None:
    pkce = new_pkce()
    assert 43 <= len(pkce.verifier) <= 128
    assert UNRESERVED.fullmatch(pkce.verifier)
    expected = base64.urlsafe_b64encode(hashlib.sha256(pkce.verifier.encode()).digest())
    assert pkce.challenge == expected.decode().rstrip("=")
    assert "=" not in pkce.challenge
    assert len(pkce.challenge) == 43
    assert new_pkce().verifier != pkce.verifier


def test_pkce_challenge_matches_the_rfc_7636_example(monkeypatch: pytest.MonkeyPatch) -> None:
    # RFC 7636 Appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    monkeypatch.setattr(oauth.secrets, "token_urlsafe", lambda nbytes=None: verifier)
    pkce = new_pkce()
    assert pkce.verifier == verifier
    assert pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


CLIENT = OAuthClient(
    client_id="1234-abc.apps.googleusercontent.com",
    client_secret="GOCSPX-client-secret-value",
    token_uri="https://oauth2.googleapis.com/token",
)
AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
REDIRECT = "https://gateway.example.com/google/callback"


def parsed(url: str) -> dict[str, str]:
    params = parse_qs(urlsplit(url).query, strict_parsing=True)
    assert all(len(values) == 1 for values in params.values()), params
    return {key: values[0] for key, values in params.items()}


def test_consent_url_asks_for_offline_access_with_pkce() -> None:
    pkce = new_pkce()
    url = consent_url(
        AUTH_URI, CLIENT, redirect_uri=REDIRECT, state="st&te=1/2", challenge=pkce.challenge
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AUTH_URI
    params = parsed(url)
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == pkce.challenge
    assert params["state"] == "st&te=1/2"
    assert params["redirect_uri"] == REDIRECT
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT.client_id
    assert params["scope"].split(" ") == list(SCOPES)
    assert "https://www.googleapis.com/auth/calendar.events" in params["scope"].split(" ")
    assert "login_hint" not in params
    # Neither the client secret nor the PKCE verifier ever goes to the browser.
    assert CLIENT.client_secret not in url
    assert pkce.verifier not in url


def test_consent_url_login_hint() -> None:
    url = consent_url(
        AUTH_URI,
        CLIENT,
        redirect_uri=REDIRECT,
        state="s",
        challenge="c",
        login_hint="anna+cal@example.com",
    )
    assert parsed(url)["login_hint"] == "anna+cal@example.com"

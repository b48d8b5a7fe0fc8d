"""Refresh tokens at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

A refresh token opens somebody's Google calendar for as long as they do not
revoke it, so the database holds only ciphertext. ``google.token_keys`` lists
the keys: the first encrypts, all decrypt (MultiFernet), so a key is rotated
by putting a new one first and dropping the old one once every connection has
been re-encrypted (``rotate``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenKeyMismatch(Exception):
    """A stored token none of the configured keys can decrypt."""


class TokenVault:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one token key is needed")
        self._fernet = MultiFernet([Fernet(key.strip().encode("ascii")) for key in keys])

    def seal(self, refresh_token: str) -> bytes:
        return self._fernet.encrypt(refresh_token.encode("utf-8"))

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(sealed).decode("utf-8")
        except InvalidToken:
            raise TokenKeyMismatch(
                "a stored Google token cannot be decrypted with google.token_keys "
                "(was a key removed?); reconnect the resource"
            ) from None

    def rotate(self, sealed: bytes) -> bytes:
        """Re-encrypt with the first key."""
        try:
            return self._fernet.rotate(sealed)
        except InvalidToken:
            raise TokenKeyMismatch(
                "a stored Google token cannot be decrypted with any of google.token_keys; "
                "keep the old key listed until its tokens are rotated"
            ) from None


def new_key() -> str:
    """A fresh key for ``google.token_keys``."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")

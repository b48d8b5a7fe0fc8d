"""Fixtures for the tests of gateway.web."""

from __future__ import annotations

import pytest

from gateway.web import auth as auth_module


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords the authenticator really checks (not answered from its
    cache, nor refused before a hash is computed)."""
    calls: list[str] = []
    real = auth_module.verify_password

    def counting(password_hash: str, password: str) -> bool:
        calls.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(auth_module, "verify_password", counting)
    return calls

"""The cost of new password hashes and of the dummy hash an unknown user name
is checked against (gateway.web.password_cost)."""

from __future__ import annotations

import bcrypt
import pytest
from argon2 import Parameters, Type, extract_parameters

from gateway.web.auth import hash_password, make_dummy_hash
from gateway.web.password_cost import NEW_HASH_PARAMETERS, BcryptCost, DummyCost, dummy_cost

SALT = "c29tZXNhbHRzb21lc2FsdA"  # 16 bytes, unpadded base64 as argon2 writes it
DIGEST = "a" * 43  # 32 bytes


def argon(m: int, t: int, p: int, kind: str = "argon2id") -> str:
    """A well-formed argon2 hash string with these parameters (nothing hashed:
    only its parameters are read)."""
    return f"${kind}$v=19$m={m},t={t},p={p}${SALT}${DIGEST}"


def crypt(rounds: int, prefix: str = "2b") -> str:
    return f"${prefix}${rounds:02d}$" + "a" * 53


def params(m: int, t: int, p: int, kind: Type = Type.ID) -> Parameters:
    return Parameters(
        type=kind, version=19, salt_len=16, hash_len=32, time_cost=t, memory_cost=m, parallelism=p
    )


OLD_DEFAULT = argon(65536, 3, 4)  # argon2-cffi's default, what hash-password wrote before
NEW = argon(19456, 2, 1)

CASES: list[tuple[str, list[str], DummyCost]] = [
    ("no users: the cost of new hashes", [], NEW_HASH_PARAMETERS),
    ("one user", [OLD_DEFAULT], params(65536, 3, 4)),
    ("the costliest argon2 hash", [NEW, OLD_DEFAULT, NEW], params(65536, 3, 4)),
    ("memory x passes decides", [argon(8192, 8, 1), argon(32768, 1, 1)], params(8192, 8, 1)),
    (
        "memory decides between equals",
        [argon(16384, 2, 1), argon(32768, 1, 2)],
        params(32768, 1, 2),
    ),
    ("argon2i keeps its type", [argon(4096, 3, 1, "argon2i")], params(4096, 3, 1, Type.I)),
    (
        "bcrypt only: the highest cost",
        [crypt(10), crypt(12, "2y"), crypt(11, "2a")],
        BcryptCost(12),
    ),
    ("more bcrypt than argon2 users", [crypt(10), crypt(10), NEW], BcryptCost(10)),
    ("as many of each: argon2", [crypt(12), NEW], params(19456, 2, 1)),
    (
        "unreadable hashes are left out",
        ["$argon2id$v=19$junk", crypt(10), NEW],
        params(19456, 2, 1),
    ),
    ("bcrypt cost out of range is left out", ["$2b$99$" + "a" * 53, "$2b$x$"], NEW_HASH_PARAMETERS),
]


@pytest.mark.parametrize(("hashes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dummy_cost(hashes: list[str], expected: DummyCost) -> None:
    assert dummy_cost(hashes) == expected


def test_new_hashes_use_owasps_minimum_for_argon2id() -> None:
    made = hash_password("correct horse battery")
    assert made.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert extract_parameters(made) == NEW_HASH_PARAMETERS


@pytest.mark.parametrize(
    "cost", [params(1024, 2, 1), params(2048, 1, 2, Type.I), BcryptCost(5)], ids=str
)
def test_the_dummy_hash_has_the_cost_asked_for(cost: DummyCost) -> None:
    made = make_dummy_hash(cost)
    if isinstance(cost, BcryptCost):
        assert made.startswith("$2b$05$")
        assert not bcrypt.checkpw(b"anything", made.encode())
    else:
        assert extract_parameters(made) == cost

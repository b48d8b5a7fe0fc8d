"""What a password hash costs: the parameters of new hashes, and those of the
dummy hash an unknown user name is checked against.

Pure decisions over hash strings; ``gateway.web.auth`` makes and checks the
hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import Parameters, Type, extract_parameters
from argon2.exceptions import InvalidHashError

# New hashes (`calgateway hash-password`): argon2id at the minimum of OWASP's
# Password Storage Cheat Sheet, 19 MiB, two passes, one lane. argon2-cffi's
# default (RFC 9106's second recommendation, 64 MiB, t=3, p=4) made one
# sign-in cost more memory than the whole calendar of 10,000 events. Hashes
# made before keep their own cost: argon2 reads it from the hash.
NEW_HASH_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19_456,  # KiB
    parallelism=1,
)


@dataclass(frozen=True, slots=True)
class BcryptCost:
    """A bcrypt hash's cost: 2**rounds iterations."""

    rounds: int


DummyCost = Parameters | BcryptCost


def dummy_cost(password_hashes: Iterable[str]) -> DummyCost:
    """The cost of the dummy hash checked for an unknown user name, so that a
    wrong name takes as long as a wrong password: the kind of hash most users
    have (argon2 on a tie), at the highest cost among the users' hashes of that
    kind; the parameters of new hashes when there is none. A hash that cannot
    be read is left out: it refuses every password without computing."""
    argon: list[Parameters] = []
    bcrypt_rounds: list[int] = []
    for password_hash in password_hashes:
        if password_hash.startswith("$argon2"):
            try:
                argon.append(extract_parameters(password_hash))
            except InvalidHashError:
                continue
        elif password_hash.startswith("$2"):
            rounds = _bcrypt_rounds(password_hash)
            if rounds is not None:
                bcrypt_rounds.append(rounds)
    if bcrypt_rounds and len(bcrypt_rounds) > len(argon):
        return BcryptCost(max(bcrypt_rounds))
    if argon:
        # Time grows with memory x passes; memory decides between equals.
        return max(argon, key=lambda p: (p.memory_cost * p.time_cost, p.memory_cost))
    return NEW_HASH_PARAMETERS


def _bcrypt_rounds(password_hash: str) -> int | None:
    # "$2b$12$<22 salt><31 hash>": the cost is the two digits after the prefix.
    parts = password_hash.split("$")
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    rounds = int(parts[2])
    return rounds if 4 <= rounds <= 31 else None

"""Customer passwords: argon2id hashes, verified exactly as typed.

Parameters follow OWASP's argon2id floor (t=2, m=19 MiB, p=1). A hash made with
older parameters is replaced at the next successful login.
"""

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@cache
def _dummy_hash() -> str:
    """Verified against when the login ID is unknown, so that an unknown ID
    costs the same time as a wrong password and timing does not tell them apart."""
    return _hasher.hash("itscom-id-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)

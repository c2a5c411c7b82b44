"""Random credentials and how they are stored.

Codes, tokens, session cookies and one-time URLs are 256-bit random values; the
database keeps only their SHA-256 digest, so a read of the database yields
nothing that can be replayed. A digest (not a slow password hash) is right for
these: they are high-entropy, and lookups must stay cheap on hot endpoints.
"""

import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` bytes of entropy (default 256 bits)."""
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """The stored form of a random credential."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def matches(value: str, stored_digest: str | None) -> bool:
    """Constant-time comparison of a presented credential with its digest."""
    if not stored_digest:
        return False
    return hmac.compare_digest(digest(value), stored_digest)

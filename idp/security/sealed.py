"""Values kept in the browser's session cookie, encrypted.

Flask's session cookie is signed, not encrypted: anyone at the browser can
read it. What a customer typed into a procedure (kana name, phone, the last
digits of a card) is sealed with Fernet under a key derived from
IDP_SECRET_KEY before it goes there.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, session


def derived_fernet(label: str, secret: str) -> Fernet:
    """A Fernet key for one purpose (``label``) derived from a secret; the
    one derivation behind sealed session values, mail bodies and signing keys.
    Derived once per app (its ``idp.fernets`` cache)."""

    def derive() -> Fernet:
        key = hashlib.sha256(label.encode() + b"\0" + secret.encode()).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    return current_app.extensions["idp.fernets"].get((label, secret), derive)


def _fernet() -> Fernet:
    return derived_fernet("idp sealed session", current_app.secret_key)


def load(key: str) -> dict:
    """The sealed dict under ``key`` in the session; {} when absent or unreadable."""
    sealed = session.get(key)
    if not sealed:
        return {}
    try:
        return json.loads(_fernet().decrypt(sealed.encode()))
    except (InvalidToken, ValueError):
        return {}


def store(key: str, value: dict) -> None:
    session[key] = _fernet().encrypt(json.dumps(value, ensure_ascii=False).encode()).decode()


def seal_text(value: str) -> str:
    """Seal one string for storage (e.g. a TOTP secret)."""
    return _fernet().encrypt(value.encode()).decode()


def unseal_text(value: str) -> str:
    return _fernet().decrypt(value.encode()).decode()

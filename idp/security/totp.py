"""TOTP (RFC 6238) as both sign-ins use it: the console's administrators
and customers' second factor. 30-second steps, 6 digits, ±1 step of clock
skew, and a code works once: the caller keeps the last step accepted and
claims the new one. Secrets are stored sealed (security.sealed), time comes
from the app's clock."""

from __future__ import annotations

import io

import pyotp
from cryptography.fernet import InvalidToken

from . import sealed
from .clock import now

STEP = 30


def new_secret() -> str:
    """A fresh base32 secret (160 bits) for an authenticator app."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, name: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def qr_svg(uri: str, title: str) -> str:
    """The QR code of ``uri`` as inline SVG (an authenticator's otpauth://
    URI; the login page's also draws My Page's address with it). segno is
    imported here: the CLI's processes never draw one, and a worker draws
    the login page's once per language (the app caches it)."""
    import segno

    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True, title=title)
    return buffer.getvalue().decode()


def accepted_step(secret: str, last_step: int, code: str, *, is_sealed: bool = True) -> int | None:
    """The time step ``code`` belongs to (now, or one step either side),
    never one at or before ``last_step``; None when the code is wrong."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    try:
        totp = pyotp.TOTP(sealed.unseal_text(secret) if is_sealed else secret)
    except InvalidToken:  # sealed under another IDP_SECRET_KEY: no code matches
        return None
    t = now()
    for offset in (0, -1, 1):
        step = t // STEP + offset
        if step > last_step and totp.at(step * STEP) == code:
            return step
    return None


def code_at(secret: str, t: int) -> str:
    """The code of (plain) ``secret`` at time ``t`` (tests, and nothing else)."""
    return pyotp.TOTP(secret).at(t)

"""Device cookies: OWASP "Slow Down Online Guessing Attacks with Device Cookies".

After a successful login the browser gets a cookie entry bound to that login
ID: a random nonce, when it was issued, and an HMAC over both and the ID
under a key derived from the app's secret. A later login that presents a
valid entry for the ID it types comes from a browser the owner used before:
it is held to that entry's own failure budget instead of the ID's and the
address's budgets, which anybody can spend. So a stranger's guesses slow
every unknown browser but never lock the owner out; a thief of the cookie
gets a budget of its own and no more.

One browser keeps entries for a few IDs (a family's computer), newest first.
The cookie never holds the login ID itself, and nothing is stored server-side
but the failure counts, keyed by the nonce's digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from flask import current_app

from .clock import now
from .secrets import digest, new_secret

COOKIE = "idp_device"
# One entry as remember() writes it: nonce.issued.mac, ASCII only. Anything
# else (a browser or WSGI server may hand over any latin-1 text) is no entry.
_ENTRY = re.compile(r"[A-Za-z0-9_-]{1,64}\.[0-9]{1,12}\.[A-Za-z0-9_-]{22}", re.ASCII)


def trusted(cookie: str | None, login_id: str, purpose: str = "login") -> str | None:
    """The throttle key, for ``purpose``, of this browser's device cookie for
    ``login_id`` (normalised), or None when it holds no valid, unexpired
    entry for it."""
    for entry in _entries(cookie):
        if _valid(entry, login_id):
            return f"{purpose}:device:" + digest(entry.split(".")[0])
    return None


def remember(cookie: str | None, login_id: str) -> str:
    """The cookie after a successful login to ``login_id``: a fresh entry for
    it first, then the browser's entries for other IDs, up to the limit."""
    nonce, issued = new_secret(16), now()
    fresh = f"{nonce}.{issued}.{_mac(login_id, nonce, issued)}"
    others = [entry for entry in _entries(cookie) if not _valid(entry, login_id)]
    return "~".join([fresh, *others][: current_app.config["LOGIN_DEVICE_COOKIES_PER_BROWSER"]])


def set_cookie(response, value: str) -> None:
    config = current_app.config
    response.set_cookie(COOKIE, value, max_age=config["LOGIN_DEVICE_COOKIE_LIFETIME"], httponly=True,
                        secure=config["SESSION_COOKIE_SECURE"], samesite="Lax")


def _entries(cookie: str | None) -> list[str]:
    if not cookie or len(cookie) > 1024:
        return []
    return [entry for entry in cookie.split("~") if _ENTRY.fullmatch(entry)]


def _valid(entry: str, login_id: str) -> bool:
    nonce, issued, mac = entry.split(".")
    if not issued.isdigit() or now() >= int(issued) + current_app.config["LOGIN_DEVICE_COOKIE_LIFETIME"]:
        return False
    return hmac.compare_digest(mac, _mac(login_id, nonce, int(issued)))


def _mac(login_id: str, nonce: str, issued: int) -> str:
    key = hmac.new(current_app.secret_key.encode(), b"device cookie", hashlib.sha256).digest()
    message = f"{login_id}\0{nonce}\0{issued}".encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()[:16]).rstrip(b"=").decode()

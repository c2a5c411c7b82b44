"""Sign-ins waiting for a login: where the customer goes once signed in.

A site's authorization request (or an OP page that needs a login) sends the
customer to ``/login?request=KEY`` and leaves an entry under KEY in the flow
cookie: the URL to continue at, the client that asked, its ``login_hint``,
the language its ``ui_locales`` asks for (language.py), and the request digest that this login makes fresh (``prompt=login``,
``max_age``). The cookie is signed, so only the OP writes entries: a link
naming another KEY finds nothing, and the login page then names the home
site. Each tab carries its own KEY, so two sites' logins in two tabs each go
back to, and name, their own site.

A bare ``/login`` (a bookmark, 「ログイントップへ」) continues the latest sign-in
this browser started within LIFETIME, so that registering or recovering on
the way still returns to the site that asked; with none it lands on the
home site (``IDP_HOME_URL``).

Pushed authorization requests (RFC 9126, oauth.par) this browser is in the
middle of are remembered too, by the digest of their parameters
(``remember_pushed``): the login comes back to /authorize with those
parameters, and a client that must push is not refused on the way back.
Both survive the login's new session (``FLOW_KEYS``).
"""

from __future__ import annotations

from flask import session, url_for

from .security.clock import now

SESSION_KEY = "login_pending"
PUSHED_KEY = "pushed_requests"
FLOW_KEYS = (SESSION_KEY, PUSHED_KEY)  # carried over the login's new session
MAX_PUSHED = 3  # pushed requests one browser may be in the middle of (tabs)
# A few tabs at once, their URLs together within one authorization
# request's length: the flow cookie must stay under a browser's 4 kB.
MAX_PENDING = 3
MAX_LENGTH = 2048
# Seconds a bare /login still continues a sign-in a site asked for: long
# enough to register or recover on the way (30 minutes each, manual).
LIFETIME = 3600


def remember(key: str, next_url: str, *, client_id: str | None = None, hint: str | None = None,
             reauth: str | None = None, locale: str | None = None) -> str:
    """Keep a sign-in under ``key``; returns the login page's URL for it."""
    entry = {"key": key, "next": next_url, "client_id": client_id, "hint": hint, "reauth": reauth,
             "locale": locale, "at": now()}
    kept, length = [entry], len(next_url)
    for older in reversed([e for e in _live() if e["key"] != key]):
        length += len(older["next"])
        if len(kept) == MAX_PENDING or length > MAX_LENGTH:
            break
        kept.insert(0, older)
    session[SESSION_KEY] = kept
    return url_for("login.login", request=key)


def find(key: str | None) -> dict | None:
    """The sign-in a login page is for: the one its URL names, or, for a bare
    /login, the latest; None when it names one this browser does not hold."""
    entries = _live()
    if key is None:
        return entries[-1] if entries else None
    return next((e for e in entries if e["key"] == key), None)


def take(key: str | None) -> dict | None:
    """find(), and forget it: the login it waited for has happened."""
    entry = find(key)
    if entry is not None:
        session[SESSION_KEY] = [e for e in _live() if e["key"] != entry["key"]]
    return entry


def remember_pushed(request_digest: str) -> None:
    session[PUSHED_KEY] = [*[d for d in _pushed() if d != request_digest], request_digest][-MAX_PUSHED:]


def was_pushed(request_digest: str) -> bool:
    return request_digest in _pushed()


def forget_pushed(request_digest: str) -> None:
    """The authorization response was sent: that pushed request is done."""
    if request_digest in _pushed():
        session[PUSHED_KEY] = [d for d in _pushed() if d != request_digest]


def _pushed() -> list[str]:
    marks = session.get(PUSHED_KEY)
    return marks if isinstance(marks, list) else []


def _live() -> list[dict]:
    entries = session.get(SESSION_KEY)
    if not isinstance(entries, list):
        return []
    oldest = now() - LIFETIME
    return [e for e in entries if isinstance(e, dict) and e.get("at", 0) >= oldest]

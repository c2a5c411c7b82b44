"""The OP session cookie: who is signed in to this browser.

The cookie carries a 256-bit random value; the database keeps its digest.
A new value is issued at every login (no session fixation), and the Flask
session that carries CSRF tokens and flow state is cleared at the same time.
"""

from __future__ import annotations

from flask import current_app, g, request, session

from .. import audit
from ..extensions import db
from ..models import Account, LoginSession
from ..oauth import backchannel
from ..security.clock import now
from ..security.secrets import digest, new_secret

COOKIE = "idp_session"


def current_login_session() -> LoginSession | None:
    """The live OP session of this browser, looked up once per request."""
    if "idp_login_session" not in g:
        g.idp_login_session = _lookup(request.cookies.get(COOKIE))
    return g.idp_login_session


def start_login_session(account: Account, *, keep: tuple[str, ...] = ()) -> LoginSession:
    """Sign ``account`` in: end this browser's previous session, issue a new cookie.

    ``keep`` names Flask-session keys (flow state) carried over the reset.
    """
    carried = {key: session[key] for key in keep if key in session}
    _end(current_login_session(), "replaced")
    session.clear()
    session.update(carried)
    t = now()
    cookie_value = new_secret()
    login_session = LoginSession(
        cookie_digest=digest(cookie_value),
        sid=new_secret(16),
        account=account,
        auth_time=t,
        expires_at=t + current_app.config["SESSION_LIFETIME"],
        ip_address=request.remote_addr,
        user_agent=(request.user_agent.string or "")[:512],
    )
    db.session.add(login_session)
    g.idp_login_session = login_session
    g.idp_set_cookie = cookie_value
    return login_session


def end_login_session(reason: str, client_id: str | None = None) -> None:
    login_session = current_login_session()
    if login_session is not None:
        _end(login_session, reason)
        audit.record("logout", account=login_session.account, client_id=client_id, reason=reason)
    session.clear()
    g.idp_login_session = None
    g.idp_set_cookie = ""


def write_cookie(response):
    """after_request: send the new cookie value, or delete the cookie."""
    value = g.get("idp_set_cookie")
    if value is None:
        return response
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    # Over https the SSO cookie also travels with an RP's cross-site POSTed
    # authorization request (OIDC Core 3.1.2.1); the OP's pages cannot be
    # framed, and its state-changing forms need the Lax flow cookie's CSRF token.
    samesite = "None" if secure else "Lax"
    if value:
        response.set_cookie(COOKIE, value, max_age=current_app.config["SESSION_LIFETIME"], secure=secure,
                            httponly=True, samesite=samesite)
    else:
        response.delete_cookie(COOKIE, secure=secure, httponly=True, samesite=samesite)
    return response


def _lookup(cookie_value: str | None) -> LoginSession | None:
    if not cookie_value or len(cookie_value) > 128:
        return None
    login_session = db.session.scalar(db.select(LoginSession).filter_by(cookie_digest=digest(cookie_value)))
    if login_session is None or not login_session.is_live(now()):
        return None
    return login_session


def _end(login_session: LoginSession | None, reason: str) -> None:
    if login_session is not None and login_session.ended_at is None:
        login_session.ended_at = now()
        backchannel.queue_for([login_session])

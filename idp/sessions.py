"""OP sessions: who is signed in to which browser, and ending that.

The cookie carries a 256-bit random value; the database keeps its digest.
A new value is issued at every login (no session fixation), and the Flask
session that carries CSRF tokens and flow state is cleared at the same time.

Every way a session ends goes through ``_end``: this browser's logout or a
new login in it, the customer ending one from the account page, and
everything of an account at once (password change, recovery,
re-registration, the console). Each ended session queues a back-channel
logout notice to every client that received a code in it; the notices
queued by a request are handed to the sender threads after it
(``oauth.backchannel.send_after_request``, through ``take_queued_notices``).

Request-local state, in Flask's ``g`` (read only here):
- ``idp_login_session``: this browser's session, looked up once per request;
- ``idp_set_cookie``: the cookie value ``write_cookie`` sends ("" deletes it);
- ``idp_backchannel``: ids of the notices this request queued.
"""

from __future__ import annotations

import functools

from flask import current_app, g, request, session
from sqlalchemy import bindparam
from sqlalchemy.orm import contains_eager, lazyload, make_transient_to_detached

from . import audit
from .extensions import db
from .models import Account, AuthorizationCode, BackchannelLogout, Client, LoginSession
from .security.clock import now
from .security.secrets import digest, new_secret

COOKIE = "idp_session"


# --- this browser's session ----------------------------------------------------


def current_login_session(*, with_account: bool = False) -> LoginSession | None:
    """The live OP session of this browser, looked up once per request.

    Its ``account`` is loaded on first use (one query by key, with the
    contract), unless ``with_account`` asks for it in the lookup itself:
    the authorization endpoint, the most frequent caller, mostly needs the
    session's own columns, and the account's 38 columns (with its
    contract's) cost about a fifth of that step's CPU.
    """
    if "idp_login_session" not in g:
        g.idp_login_session = _lookup(request.cookies.get(COOKIE), with_account)
    return g.idp_login_session


def start_login_session(account: Account, *, keep: tuple[str, ...] = (),
                        methods: tuple[str, ...] = ("pwd",)) -> LoginSession:
    """Sign ``account`` in: end this browser's previous session, issue a new cookie.

    ``keep`` names Flask-session keys (flow state) carried over the reset;
    ``methods`` says how the customer authenticated (RFC 8176 amr values,
    idp.second_factor).
    """
    carried = {key: session[key] for key in keep if key in session}
    _end([current_login_session()], now())
    session.clear()
    session.update(carried)
    t = now()
    cookie_value = new_secret()
    row = {
        "cookie_digest": digest(cookie_value),
        "sid": new_secret(16),
        "account_id": account.id,
        "auth_time": t,
        "amr": " ".join(dict.fromkeys(methods)),
        "expires_at": t + current_app.config["SESSION_LIFETIME"],
        "ended_at": None,
        "ip_address": request.remote_addr,
        "user_agent": (request.user_agent.string or "")[:512],
    }
    # Written by one Core INSERT (in the request's transaction), then handed
    # to the ORM as the persistent object that row is: the unit of work
    # would cost more CPU than the statement.
    row_id = db.session.execute(_insert_session(), row).scalar_one()
    login_session = LoginSession(id=row_id, **row)
    make_transient_to_detached(login_session)
    db.session.add(login_session)
    g.idp_login_session = login_session
    g.idp_set_cookie = cookie_value
    return login_session


def end_login_session(reason: str, client_id: str | None = None) -> None:
    """Log this browser out (its own logout, or an RP's): audited, cookie deleted."""
    login_session = current_login_session()
    if login_session is not None:
        _end([login_session], now())
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


def _lookup(cookie_value: str | None, with_account: bool) -> LoginSession | None:
    if not cookie_value or len(cookie_value) > 128:
        return None
    # The account's status is checked in the query (LoginSession.is_live
    # would load the account for it).
    login_session = db.session.scalar(_select_by_cookie(with_account), {"digest": digest(cookie_value)})
    if login_session is None or not login_session.is_open(now()):
        return None
    return login_session


# --- an account's sessions --------------------------------------------------------


def live_sessions(account_id: int) -> list[LoginSession]:
    """The account's live sessions, newest first."""
    t = now()
    rows = db.session.scalars(
        db.select(LoginSession).filter_by(account_id=account_id, ended_at=None).order_by(LoginSession.auth_time.desc())
    )
    return [s for s in rows if s.is_live(t)]


def end_one(account: Account, sid: str) -> LoginSession | None:
    """End one of the account's sessions; None when it is not (or no longer) theirs."""
    login_session = db.session.scalar(db.select(LoginSession).filter_by(account_id=account.id, sid=sid, ended_at=None))
    if login_session is None:
        return None
    _end([login_session], now())
    return login_session


def end_all(account: Account, at: int, keep: LoginSession | None = None) -> None:
    """End every session of the account but ``keep``."""
    sessions = db.session.scalars(
        db.select(LoginSession).where(LoginSession.account_id == account.id, LoginSession.ended_at.is_(None))
    ).all()
    _end([s for s in sessions if s is not keep], at)


def _end(sessions: list[LoginSession | None], at: int) -> None:
    ended = [s for s in sessions if s is not None and s.ended_at is None]
    for login_session in ended:
        login_session.ended_at = at
    _queue_notices(ended)


# --- back-channel logout notices ------------------------------------------------------


def _queue_notices(sessions: list[LoginSession]) -> None:
    """Queue a notice to every RP that took part in these (just ended) sessions."""
    sids = {s.sid: s for s in sessions}
    if not sids:
        return
    pairs = db.session.execute(
        db.select(AuthorizationCode.client_id, AuthorizationCode.sid)
        .where(AuthorizationCode.sid.in_(sids))
        .distinct()
    ).all()
    if not pairs:
        return
    clients = {
        c.client_id: c
        for c in db.session.scalars(db.select(Client).where(Client.client_id.in_({p.client_id for p in pairs})))
    }
    t = now()
    queued = []
    for client_id, sid in pairs:
        uri = clients[client_id].client_metadata.get("backchannel_logout_uri") if client_id in clients else None
        if uri:
            notice = BackchannelLogout(client_id=client_id, uri=uri, subject=sids[sid].account.subject, sid=sid,
                                       created_at=t, next_attempt_at=t, attempts=0)
            db.session.add(notice)
            queued.append(notice)
    if queued:
        db.session.flush()
        g.setdefault("idp_backchannel", []).extend(n.id for n in queued)


def take_queued_notices() -> list[int]:
    """The ids of the notices this request queued, once."""
    return g.pop("idp_backchannel", None) or []


@functools.cache
def _insert_session():
    return LoginSession.__table__.insert().returning(LoginSession.__table__.c.id)


# Built once: building and cache-keying a statement per request costs more
# CPU than a lookup's own work (as in idp.tokens).
@functools.cache
def _select_by_cookie(with_account: bool):
    return (
        db.select(LoginSession)
        .join(LoginSession.account)
        .where(LoginSession.cookie_digest == bindparam("digest"), Account.is_active)
        .options(contains_eager(LoginSession.account) if with_account else lazyload(LoginSession.account))
    )

"""OpenID Connect Back-Channel Logout 1.0: telling every RP of an ended session.

When an OP session ends (logout, a new login in the same browser, a
password reset, re-registration), each client that received a code in that
session and registered a ``backchannel_logout_uri`` is queued a notice
(``idp.sessions``).
Notices are sent right after the request that ended the session, on a
small thread pool, so that no RP can hold up the customer's logout; a
notice that fails is retried with backoff by ``flask --app idp backchannel
send --loop`` (and the next inline round), and every outcome is audited.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from flask import current_app
from joserfc import jwt
from sqlalchemy import or_, update

from .. import audit, sessions
from ..claims import subject_for
from ..extensions import db
from ..keys import DEFAULT_ALG, signing_keyset
from ..models import BackchannelLogout, Client
from ..retry import record_failure
from ..security import outbound
from ..security.clock import now
from ..security.secrets import new_secret

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_LIFETIME = 120
TIMEOUT = 5  # per socket operation
DEADLINE = 10  # for the whole exchange
LEASE = 30
MAX_ATTEMPTS = 10


def send_after_request(response):
    """after_request: hand the notices this request queued (idp.sessions) to
    the sender threads."""
    ids = sessions.take_queued_notices()
    if ids and current_app.config["BACKCHANNEL_INLINE"]:
        app = current_app._get_current_object()
        app.extensions["idp.backchannel"].submit(_deliver_in_thread, app, ids)
    return response


def deliver_due(limit: int = 100, only: list[int] | None = None) -> tuple[int, int]:
    """Send the notices that are due (or just ``only`` these); (sent, failed)."""
    t = now()
    query = db.select(BackchannelLogout.id).where(
        BackchannelLogout.delivered_at.is_(None),
        BackchannelLogout.failed_at.is_(None),
        BackchannelLogout.next_attempt_at <= t,
    )
    if only is not None:
        query = query.where(BackchannelLogout.id.in_(only))
    sent = failed = 0
    for notice_id in db.session.scalars(query.order_by(BackchannelLogout.id).limit(limit)).all():
        if not _lease(notice_id, t):
            continue  # another sender has it
        notice = db.session.get(BackchannelLogout, notice_id)
        try:
            _post(notice)
        except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors
            _record_failure(notice, error)
            failed += 1
        else:
            notice.delivered_at = now()
            audit.record("backchannel.delivered", client_id=notice.client_id, sid=notice.sid)
            sent += 1
        notice.lease_until = None
        db.session.commit()
    return sent, failed


def logout_token(client_id: str, subject: str, sid: str) -> str:
    """The logout token for ``client_id`` about the account whose public
    subject is ``subject``."""
    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    alg = (client.id_token_signed_response_alg if client else None) or DEFAULT_ALG
    issued = now()
    claims = {
        "iss": current_app.config["ISSUER"],
        "aud": client_id,
        "iat": issued,
        "exp": issued + TOKEN_LIFETIME,
        "jti": new_secret(16),
        "sub": subject_for(client, subject),  # notice.subject is the public one
        "sid": sid,
        "events": {EVENT: {}},
    }
    return jwt.encode({"alg": alg, "typ": "logout+jwt"}, claims, signing_keyset(alg), [alg])


def init_app(app) -> None:
    app.extensions["idp.backchannel"] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="backchannel")
    app.after_request(send_after_request)


def _deliver_in_thread(app, ids: list[int]) -> None:
    with app.app_context():
        try:
            deliver_due(only=ids)
        except Exception:  # a thread has nobody to report to but the log
            app.logger.exception("back-channel logout delivery failed")
        finally:
            db.session.remove()


def _post(notice: BackchannelLogout) -> None:
    body = urlencode({"logout_token": logout_token(notice.client_id, notice.subject, notice.sid)})
    status, _ = outbound.request("POST", notice.uri, body, {
        "Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store",
    }, allow_private=current_app.config["ALLOW_PRIVATE_OUTBOUND"], timeout=TIMEOUT, deadline=DEADLINE)
    if status not in (200, 204):
        raise ValueError(f"status {status}")


def _lease(notice_id: int, t: int) -> bool:
    result = db.session.execute(
        update(BackchannelLogout)
        .where(BackchannelLogout.id == notice_id,
               or_(BackchannelLogout.lease_until.is_(None), BackchannelLogout.lease_until < t))
        .values(lease_until=t + LEASE)
    )
    db.session.commit()
    return result.rowcount == 1


def _record_failure(notice: BackchannelLogout, error: Exception) -> None:
    record_failure(notice, error, max_attempts=MAX_ATTEMPTS, base=30, cap=3600)
    audit.record("backchannel.failed", "failure", client_id=notice.client_id, attempts=notice.attempts,
                 error=notice.last_error)

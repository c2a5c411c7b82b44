"""The durable outbox.

``enqueue()`` adds a mail to the caller's transaction, so a mail exists if
and only if what caused it was committed. ``deliver_due()`` sends what is
due, one short transaction per mail, and on failure retries with
exponential backoff (1 min, 2 min, 4 min … capped at 1 h) up to
``MAX_ATTEMPTS``; a mail survives an SMTP outage and any restart. Several
senders may run at once: on PostgreSQL each claims rows with
``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, render_template

from .. import audit
from ..extensions import db
from ..models.mail import OutboxMail
from ..retry import record_failure
from ..security.clock import now
from ..security.sealed import derived_fernet

SENDER = "mypage@itscom.jp"
MAX_ATTEMPTS = 20
BACKOFF_BASE = 60
BACKOFF_MAX = 3600


def enqueue(kind: str, recipient: str, subject: str, template: str, **context) -> OutboxMail:
    """Queue a mail rendered from ``templates/mail/<template>``; the caller commits.
    Subject and body are in the language of the request that sends it."""
    body = render_template(f"mail/{template}", **context)
    t = now()
    mail = OutboxMail(
        kind=kind,
        sender=SENDER,
        recipient=recipient,
        subject=str(subject),
        body=_fernet().encrypt(body.encode("utf-8")),
        created_at=t,
        next_attempt_at=t,
        attempts=0,
    )
    db.session.add(mail)
    return mail


def read_body(mail: OutboxMail) -> str | None:
    return _fernet().decrypt(mail.body).decode("utf-8") if mail.body else None


def deliver_due(limit: int = 50) -> tuple[int, int]:
    """Send the mails that are due; returns (sent, failed this round)."""
    transport = current_app.extensions["idp.mail"]
    if transport is None:
        raise RuntimeError("IDP_MAIL_URL is not set: mails stay in the development outbox (/dev/mail)")
    sent = failed = 0
    for _ in range(limit):
        mail = _claim_next()
        if mail is None:
            break
        try:
            message = _message(mail)
        except InvalidToken:
            # Sealed under another IDP_SECRET_KEY: it can never be sent; it
            # must not block the mails behind it either.
            mail.failed_at, mail.body, mail.last_error = now(), None, "body cannot be decrypted"
            audit.record("mail.failed", "failure", kind=mail.kind, mail_id=mail.id, attempts=mail.attempts)
            db.session.commit()
            failed += 1
            continue
        try:
            transport.send(message)
        except (OSError, ValueError) as error:  # smtplib errors are OSErrors
            _record_failure(mail, error)
            audit.record("mail.failed", "failure", kind=mail.kind, mail_id=mail.id, attempts=mail.attempts)
            failed += 1
        else:
            mail.sent_at = now()
            mail.body = None
            mail.last_error = None
            audit.record("mail.sent", kind=mail.kind, mail_id=mail.id)
            sent += 1
        db.session.commit()
    return sent, failed


def _claim_next() -> OutboxMail | None:
    query = (
        db.select(OutboxMail)
        .where(OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None), OutboxMail.next_attempt_at <= now())
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id)
        .limit(1)
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return db.session.scalar(query)


def _record_failure(mail: OutboxMail, error: Exception) -> None:
    if record_failure(mail, error, max_attempts=MAX_ATTEMPTS, base=BACKOFF_BASE, cap=BACKOFF_MAX):
        mail.body = None
        current_app.logger.error("mail %s to %s given up: %s", mail.id, mail.recipient, mail.last_error)


def _message(mail: OutboxMail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail.sender
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(idstring=f"outbox{mail.id}", domain="itscom.jp")
    message.set_content(read_body(mail), charset="utf-8")
    return message


def _fernet() -> Fernet:
    return derived_fernet("idp mail outbox", current_app.secret_key)

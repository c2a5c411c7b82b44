"""Account settings: password, contact address, 合言葉, sessions, connected sites.

Each action adds its changes and its audit row to the session; the view
commits them together (idp.audit)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from sqlalchemy import update

from .. import audit, sessions, tokens
from ..accounts import authenticate, normalise_answer, reset_password
from ..claims import in_reading_order
from ..extensions import db
from ..mail import enqueue
from ..models import Account, Client, Consent, ContactChange, LoginSession, Token
from ..security.clock import now
from ..security import totp
from ..security.passwords import hash_password
from ..security.secrets import digest, new_secret
from .user_agents import Device, device_of


@dataclass
class Site:
    client: Client
    scopes: list[str]  # in the order the customer reads them


@dataclass
class SignedIn:
    """One live session of the customer, as the account page lists it."""

    session: LoginSession
    device: Device
    current: bool


def change_password(login_session: LoginSession, new: str) -> None:
    """Set the new password (after reauthenticate()); other sessions and all tokens end."""
    reset_password(login_session.account, new, reason="account.password_change", keep=login_session)


def reauthenticate(login_session: LoginSession, password: str, address: str | None,
                   device_cookie: str | None) -> bool:
    """Whether the current password is right, asked again (throttled like a
    login, the browser's device cookie included: Throttled when refused).
    Asked before a new password and before changes that could hand the
    account to someone else (contact address, 合言葉)."""
    return authenticate(login_session.account.login_id, password, address, device_cookie).account is not None


def start_contact_change(account: Account, new_email: str) -> None:
    """Mail a confirmation link to the new address; nothing changes before it is opened."""
    token = new_secret()
    t = now()
    db.session.add(ContactChange(account=account, new_email=new_email.lower(), token_digest=digest(token),
                                 created_at=t, expires_at=t + current_app.config["CONTACT_CHANGE_LIFETIME"]))
    enqueue("contact_change", new_email.lower(), gettext("連絡先メールアドレス確認のご案内"), "contact_change.txt",
            name=account.contract.name_kanji, url=f"{current_app.config['ISSUER']}/account/contact/{token}")
    audit.record("account.contact_change_requested", account=account)


def contact_change_pending(token: str) -> bool:
    if not token or len(token) > 128:
        return False
    change = db.session.scalar(db.select(ContactChange).filter_by(token_digest=digest(token)))
    return change is not None and change.completed_at is None and now() < change.expires_at


def confirm_contact_change(token: str) -> Account | None:
    """Open the mailed link: the address becomes the (confirmed) contact; the old one is told."""
    if not token or len(token) > 128:
        return None
    change = db.session.scalar(db.select(ContactChange).filter_by(token_digest=digest(token)))
    t = now()
    if change is None:
        return None
    claimed = db.session.execute(
        update(ContactChange)
        .where(ContactChange.id == change.id, ContactChange.completed_at.is_(None), ContactChange.expires_at > t)
        .values(completed_at=t)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return None
    account = change.account
    old = account.contact_email
    account.contact_email = change.new_email
    account.contact_email_verified = True
    if old and old != change.new_email:
        enqueue("contact_changed", old, gettext("連絡先メールアドレス変更のお知らせ"), "contact_changed.txt",
                name=account.contract.name_kanji)
    audit.record("account.contact_changed", account=account)
    return account


def set_secret(account: Account, question: str, answer: str) -> None:
    account.secret_question = question
    account.secret_answer_hash = hash_password(normalise_answer(answer))
    audit.record("account.secret_set", account=account)


def qr_svg(uri: str) -> str:
    """The QR code an authenticator app scans to enrol."""
    return totp.qr_svg(uri, gettext("認証アプリに登録するQRコード"))


def live_sessions(current: LoginSession) -> list[SignedIn]:
    """The customer's live sessions, newest first, each with its device."""
    return [SignedIn(s, device_of(s.user_agent), s.sid == current.sid)
            for s in sessions.live_sessions(current.account_id)]


def end_session(account: Account, sid: str) -> SignedIn | None:
    """End one of the customer's sessions; None when it is not (or no longer) theirs."""
    login_session = sessions.end_one(account, sid)
    if login_session is None:
        return None
    audit.record("account.session_ended", account=account)
    return SignedIn(login_session, device_of(login_session.user_agent), False)


def connected_sites(account: Account) -> list[Site]:
    """Clients holding live tokens or remembered consent for this customer."""
    t = now()
    scopes: dict[str, set[str]] = {}
    for consent in db.session.scalars(db.select(Consent).filter_by(account_id=account.id, revoked_at=None)):
        scopes.setdefault(consent.client_id, set()).update(consent.scope.split())
    for token in db.session.scalars(db.select(Token).filter_by(account_id=account.id, revoked_at=None)):
        if token.is_refresh_usable(t) or t < token.access_expires_at:
            scopes.setdefault(token.client_id, set()).update(token.scope.split())
    clients = db.session.scalars(db.select(Client).where(Client.client_id.in_(scopes))).all()
    return [Site(c, in_reading_order(scopes[c.client_id])) for c in clients]


def revoke_site(account: Account, client_id: str) -> Client | None:
    """Forget the consent and end every token this client holds for the
    customer; the client, or None when there is no such site."""
    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    if client is None:
        return None
    t = now()
    db.session.execute(
        update(Consent).where(Consent.account_id == account.id, Consent.client_id == client_id,
                              Consent.revoked_at.is_(None)).values(revoked_at=t)
    )
    tokens.revoke((Token.account_id == account.id) & (Token.client_id == client_id), t)
    audit.record("account.site_revoked", account=account, client_id=client_id)
    return client

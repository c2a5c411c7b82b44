"""What the console looks up and does, and its administrators' sign-in.

Every action records one audit event naming its administrator (``admin_id``);
actions built on core functions that record events of their own run inside
``audit.action()``, so that theirs is the only row. Nothing here commits but
``sign_in`` (it says why): the view, or the CLI command, commits (idp.audit).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import update

from .. import audit, clients, keys, second_factor
from ..accounts import end_everything
from ..contracts import ImportReport, upsert_contracts
from ..extensions import db
from ..models import Account, Admin, AuditEvent, Client, Contract, SigningKey
from ..security import sealed, totp
from ..security.clock import now
from ..security.credentials import common_passwords
from ..security.passwords import hash_password, verify_password
from ..security.throttle import Throttled, attempt, budget

AUDIT_PAGE_SIZE = 50


class AdminError(Exception):
    pass


# --- administrators ----------------------------------------------------------

# Administrators need more than customers (console's words: Japanese).
PASSWORD_RULES = "管理者のパスワードは12文字以上で、よく使われるパスワードやユーザー名を含むものは使用できません。"


def password_problems(password: str, username: str) -> list[str]:
    """Administrators need more than customers: 12+ characters, not common, not the name."""
    problems = []
    if len(password) < 12:
        problems.append("パスワードが12文字未満です。")
    if password.lower() in common_passwords():
        problems.append("よく使われるパスワードです。")
    if username.lower() in password.lower():
        problems.append("パスワードにユーザー名が含まれています。")
    return problems


def create_admin(username: str, password: str) -> tuple[Admin, str]:
    """A new administrator and the TOTP secret to enrol in an authenticator app."""
    username = username.strip().casefold()
    if not username or len(username) > 64:
        raise AdminError("ユーザー名は1～64文字にしてください。")
    problems = password_problems(password, username)
    if problems:
        raise AdminError(PASSWORD_RULES + "（" + "".join(problems) + "）")
    if db.session.scalar(db.select(Admin.id).filter_by(username=username)) is not None:
        raise AdminError(f"管理者 {username} は既に登録されています。")
    secret = totp.new_secret()
    admin = Admin(username=username, password_hash=hash_password(password),
                  totp_secret=sealed.seal_text(secret), totp_last_step=0, created_at=now(), disabled=False)
    db.session.add(admin)
    audit.record("admin.created", username=username)
    return admin, secret


def provisioning_uri(username: str, secret: str) -> str:
    return totp.provisioning_uri(secret, username, "iTSCOM ID admin")


@dataclass
class SignIn:
    admin: Admin | None = None
    nonce: str = ""  # the new console session's: only the latest sign-in's session lives


def sign_in(username: str, password: str, code: str, address: str | None) -> SignIn:
    """Both factors or nothing; the same answer for every kind of failure;
    Throttled when refused unchecked.

    Commits its outcome itself, a deliberate early commit: the throttle
    counters are written on their own connection, which on SQLite waits for
    this transaction's write lock, so a success clears them only once its
    transaction is over."""
    per_key = budget(5, "LOGIN_THROTTLE_WINDOW", "LOGIN_MAX_DELAY")
    username = username.strip().casefold()
    sign_in_attempt = attempt([(per_key, f"admin:user:{username}"), (per_key, f"admin:addr:{address}")])
    wait = sign_in_attempt.begin()
    if wait:
        audit.record("admin.login_throttled", "failure", retry_after=wait)
        db.session.commit()
        raise Throttled(wait)
    admin = db.session.scalar(db.select(Admin).where(db.func.lower(Admin.username) == username))
    password_ok = verify_password(admin.password_hash if admin else None, password)
    step = _accepted_step(admin, code) if password_ok and admin and not admin.disabled else None
    if step is None:
        audit.record("admin.login_failure", "failure", username=username[:64])
        db.session.commit()
        return SignIn()
    # A code works once, also for two sign-ins racing with it.
    claimed = db.session.execute(
        update(Admin).where(Admin.id == admin.id, Admin.totp_last_step < step).values(totp_last_step=step))
    if claimed.rowcount != 1:
        audit.record("admin.login_failure", "failure", username=username[:64], reason="totp_reused")
        db.session.commit()
        return SignIn()
    nonce = secrets.token_urlsafe(24)
    admin.session_nonce = nonce  # one live console session per administrator
    audit.record("admin.login", admin_id=admin.id)
    db.session.commit()
    sign_in_attempt.succeeded(clear=(f"admin:user:{username}",))
    return SignIn(admin=admin, nonce=nonce)


def _accepted_step(admin: Admin, code: str) -> int | None:
    """The time step the code belongs to (±1 step of skew), never one used before."""
    return totp.accepted_step(admin.totp_secret, admin.totp_last_step, code)


def live_admin(state: Mapping, t: int) -> Admin | None:
    """The administrator of a console session (``state``: the cookie
    session), if it lives: the administrator exists and is enabled, this
    session is the one their last sign-in started (logout ends it
    everywhere), it is not idle for longer than ADMIN_IDLE_TIMEOUT nor older
    than ADMIN_SESSION_LIFETIME."""
    config = current_app.config
    admin = db.session.get(Admin, state["admin_id"]) if state.get("admin_id") else None
    live = (
        admin is not None and not admin.disabled and admin.session_nonce
        and secrets.compare_digest(admin.session_nonce, state.get("admin_nonce", ""))
        and t - state.get("admin_seen", 0) <= config["ADMIN_IDLE_TIMEOUT"]
        and t - state.get("admin_since", 0) <= config["ADMIN_SESSION_LIFETIME"]
    )
    return admin if live else None


def sign_out(state: Mapping) -> None:
    """End the console session everywhere (every copy of its cookie too)."""
    admin = db.session.get(Admin, state["admin_id"]) if state.get("admin_id") else None
    if admin is not None and admin.session_nonce == state.get("admin_nonce"):
        admin.session_nonce = None
        audit.record("admin.logout", admin_id=admin.id)


# --- clients -----------------------------------------------------------------

def all_clients() -> list[Client]:
    return db.session.scalars(db.select(Client).order_by(Client.id)).all()


def find_client(client_id: str) -> Client | None:
    return db.session.scalar(db.select(Client).filter_by(client_id=client_id))


def register_client(admin: Admin, values: dict, first_party: bool) -> tuple[Client, str | None]:
    """A new client from the console's form (``values``: build_metadata's
    arguments) and its secret to show once; ClientError says what is wrong."""
    with audit.action("admin.client_created", admin_id=admin.id):
        return clients.create_client(**values, first_party=first_party)


def change_client(admin: Admin, client: Client, values: dict, first_party: bool) -> str | None:
    """The console's form saved; what the form does not show — its keys and
    their alg, its English name (``client_name#en``, set at registration) —
    is kept as registered. Returns a secret to show once when the new auth
    method needs one the client lacked."""
    kept = client.client_metadata
    metadata = clients.build_metadata(**values, jwks=kept.get("jwks"), jwks_uri=kept.get("jwks_uri"),
                                      token_endpoint_auth_signing_alg=kept.get("token_endpoint_auth_signing_alg"),
                                      english_name=kept.get("client_name#en"))
    clients.check_first_party(metadata, first_party)
    with audit.action("admin.client_updated", admin_id=admin.id, client_id=client.client_id):
        client.client_metadata = metadata
        client.first_party = first_party
        return clients.align_secret(client)


def rotate_client_secret(admin: Admin, client: Client) -> str:
    with audit.action("admin.client_secret_rotated", admin_id=admin.id, client_id=client.client_id):
        return clients.rotate_secret(client)


def toggle_client(admin: Admin, client: Client) -> None:
    """The one button disables and enables."""
    client.disabled = not client.disabled
    audit.record("admin.client_disabled" if client.disabled else "admin.client_enabled",
                 admin_id=admin.id, client_id=client.client_id)


def delete_client(admin: Admin, client: Client) -> None:
    with audit.action("admin.client_deleted", admin_id=admin.id, client_id=client.client_id):
        clients.delete_client(client)


# --- contracts ---------------------------------------------------------------

def find_contract(customer_number: str) -> Contract | None:
    return db.session.scalar(db.select(Contract).filter_by(customer_number=customer_number))


@dataclass
class ImportPreview:
    new: list[dict]
    updated: list[dict]


def preview_import(rows: list[dict]) -> ImportPreview:
    """Which rows of a parsed billing CSV are new contracts and which update one."""
    existing = set(db.session.scalars(db.select(Contract.customer_number).where(
        Contract.customer_number.in_([row["customer_number"] for row in rows]))))
    return ImportPreview(new=[row for row in rows if row["customer_number"] not in existing],
                         updated=[row for row in rows if row["customer_number"] in existing])


def import_contracts(admin: Admin, rows: list[dict]) -> ImportReport:
    report = upsert_contracts(rows)
    audit.record("admin.contracts_imported", admin_id=admin.id, created=report.created, updated=report.updated)
    return report


# --- accounts ----------------------------------------------------------------

def find_account(query: str) -> Account | None:
    """By iTSCOM ID or お客さま番号."""
    return db.session.scalar(db.select(Account).join(Account.contract).where(
        (Account.login_id == query.lower()) | (Contract.customer_number == query)))


def find_account_by_id(account_id: int) -> Account | None:
    return db.session.get(Account, account_id)


def toggle_lock(admin: Admin, account: Account) -> None:
    """The one button locks and unlocks; a lock ends every session and token."""
    locked = account.status != "locked"
    account.status = "locked" if locked else "active"
    if locked:
        end_everything(account, now())
    audit.record("admin.account_locked" if locked else "admin.account_unlocked", admin_id=admin.id,
                 account=account)


def end_sessions(admin: Admin, account: Account) -> None:
    """Every session and token of the account ends."""
    end_everything(account, now())
    audit.record("admin.account_revoked", admin_id=admin.id, account=account)


def reset_second_factor(admin: Admin, account: Account) -> bool:
    """Turn the customer's second factor off (their authenticator is lost
    and so are the recovery codes); the customer is told by mail. False
    when there was none."""
    if not second_factor.has_factor(account):
        return False
    second_factor.turn_off(account, admin_id=admin.id)
    return True


# --- signing keys ------------------------------------------------------------

def signing_keys(t: int) -> list[tuple[SigningKey, str]]:
    """Every key with what it does at ``t`` (keys.state)."""
    return [(key, keys.state(key, t)) for key in db.session.scalars(db.select(SigningKey).order_by(SigningKey.id))]


def rotate_key(admin: Admin, alg: str) -> SigningKey:
    row = keys.rotate(alg)
    audit.record("key.rotated", admin_id=admin.id, kid=row.kid, alg=alg)
    return row


# --- audit log ---------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilter:
    event: str | None = None
    account_id: int | None = None
    client_id: str | None = None
    since: int | None = None  # epoch seconds, inclusive
    until: int | None = None  # epoch seconds, exclusive


def audit_events(where: AuditFilter, page: int) -> tuple[list[AuditEvent], bool]:
    """One page of events, newest first, and whether an older page follows."""
    query = db.select(AuditEvent)
    if where.event:
        query = query.where(AuditEvent.event == where.event)
    if where.account_id is not None:
        query = query.where(AuditEvent.account_id == where.account_id)
    if where.client_id:
        query = query.where(AuditEvent.client_id == where.client_id)
    if where.since is not None:
        query = query.where(AuditEvent.created_at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.created_at < where.until)
    rows = db.session.scalars(query.order_by(AuditEvent.id.desc()).offset((page - 1) * AUDIT_PAGE_SIZE)
                              .limit(AUDIT_PAGE_SIZE + 1)).all()
    return rows[:AUDIT_PAGE_SIZE], len(rows) > AUDIT_PAGE_SIZE

"""Provisioning iTSCOM IDs outside the registration flow (migration, tests)."""

from __future__ import annotations

from . import audit, sessions, tokens
from .extensions import db
from .mail import enqueue
from .models import Account, Contract, LoginSession
from .security.clock import now
from .security.credentials import login_id_problems, password_problems
from .security.passwords import hash_password
from .security.secrets import new_secret


class AccountError(Exception):
    pass


def create_account(
    customer_number: str,
    login_id: str,
    password: str,
    contact_email: str | None = None,
    contact_confirmed: bool = True,
) -> Account:
    """An active account for an imported contract; AccountError says what is wrong."""
    contract = db.session.scalar(db.select(Contract).filter_by(customer_number=customer_number))
    if contract is None:
        raise AccountError(f"no contract with customer number {customer_number}; import it first")
    problems = login_id_problems(login_id) + password_problems(password, login_id)
    if contact_email is not None:
        problems += [p.replace("iTSCOM ID", "連絡先メールアドレス") for p in login_id_problems(contact_email)]
    if problems:
        raise AccountError(" ".join(problems))
    login_id = login_id.lower()
    if db.session.scalar(db.select(Account.id).filter_by(contract_id=contract.id)) is not None:
        raise AccountError(f"contract {customer_number} already has an iTSCOM ID")
    if db.session.scalar(db.select(Account.id).filter_by(login_id=login_id)) is not None:
        raise AccountError(f"the iTSCOM ID {login_id} is taken")
    t = now()
    account = Account(
        subject=new_secret(16),
        contract=contract,
        login_id=login_id,
        login_id_verified=True,
        password_hash=hash_password(password),
        contact_email=(contact_email or login_id).lower(),
        contact_email_verified=contact_confirmed,
        status="active",
        created_at=t,
        password_changed_at=t,
    )
    db.session.add(account)
    return account


def end_everything(account: Account, at: int, keep: LoginSession | None = None) -> None:
    """End every OP session (but ``keep``) and revoke every token of the account;
    the relying parties of those sessions are told by back-channel logout."""
    sessions.end_all(account, at, keep=keep)
    tokens.revoke_account(account, at)


def reset_password(account: Account, password: str, reason: str, keep: LoginSession | None = None) -> None:
    """Set a new password, sign the account out everywhere (but ``keep``),
    tell the customer by mail (SPEC §6), and audit it; the caller commits."""
    t = now()
    account.password_hash = hash_password(password)
    account.password_changed_at = t
    end_everything(account, t, keep=keep)
    if account.contact_email:
        enqueue(
            "password_changed",
            account.contact_email,
            "パスワード変更のお知らせ",
            "password_changed.txt",
            name=account.contract.name_kanji,
        )
    audit.record("account.password_reset", account=account, reason=reason)

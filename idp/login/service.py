"""Checking a login ID and password, with throttling (SPEC §3.1, §6).

Both an unknown ID and a wrong password cost one argon2 verification and
give the same answer; failures are counted per login ID (known or not) and
per client address, each with its own budget and progressive delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..extensions import db
from ..models import Account
from ..security.clock import now
from ..security.passwords import hash_password, needs_rehash, verify_password
from ..security.secrets import digest
from ..security.throttle import Attempt, Budget


@dataclass(frozen=True)
class LoginResult:
    account: Account | None = None
    retry_after: int = 0  # > 0: refused without checking, try again later


def normalise_login_id(login_id: str) -> str:
    return login_id.strip().lower()


def find_account(login_id: str) -> Account | None:
    login_id = normalise_login_id(login_id)
    if not login_id.isprintable() or len(login_id) > 100:
        return None  # no iTSCOM ID holds these
    return db.session.scalar(db.select(Account).filter_by(login_id=login_id))


def authenticate(login_id: str, password: str, address: str | None) -> LoginResult:
    config = current_app.config
    window, max_delay = config["LOGIN_THROTTLE_WINDOW"], config["LOGIN_MAX_DELAY"]
    account_key = "login:id:" + digest(normalise_login_id(login_id))
    attempt = Attempt(current_app.extensions["idp.counters"], [
        (Budget(config["LOGIN_FREE_FAILURES_PER_ACCOUNT"], window, max_delay), account_key),
        (Budget(config["LOGIN_FREE_FAILURES_PER_ADDRESS"], window, max_delay), f"login:addr:{address}"),
    ], now())
    wait = attempt.begin()
    if wait:
        audit.record("login.throttled", "failure", retry_after=wait)
        return LoginResult(retry_after=wait)

    account = find_account(login_id)
    valid = verify_password(account.password_hash if account else None, password)
    if valid and account.is_active:
        attempt.succeeded(clear=(account_key,))
        if needs_rehash(account.password_hash):
            account.password_hash = hash_password(password)
        audit.record("login.success", account=account)
        return LoginResult(account=account)

    attempt.failed()
    audit.record("login.failure", "failure", account=account, reason="locked" if valid else "credentials")
    return LoginResult()

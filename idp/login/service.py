"""Checking a login ID and password, with throttling (SPEC §3.1, §6).

Both an unknown ID and a wrong password cost one argon2 verification and
give the same answer. A browser without a device cookie for the typed ID
counts its failures per login ID (known or not) and per client address,
each with its own budget and progressive delay; a browser with one counts
them against that cookie alone (``security.devices``), so that strangers'
guesses cannot keep the owner out.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .. import audit
from ..extensions import db
from ..models import Account
from ..security.clock import now
from ..security.passwords import hash_password, needs_rehash, verify_password
from ..security import devices
from ..security.secrets import digest
from ..security.throttle import Attempt, Budget


@dataclass(frozen=True)
class LoginResult:
    account: Account | None = None
    retry_after: int = 0  # > 0: refused without checking, try again later
    device_cookie: str | None = None  # after a success: the browser's new device cookie


def normalise_login_id(login_id: str) -> str:
    return login_id.strip().lower()


def find_account(login_id: str) -> Account | None:
    login_id = normalise_login_id(login_id)
    if not login_id.isprintable() or len(login_id) > 100:
        return None  # no iTSCOM ID holds these
    return db.session.scalar(db.select(Account).filter_by(login_id=login_id))


def authenticate(login_id: str, password: str, address: str | None, device_cookie: str | None = None) -> LoginResult:
    normalised = normalise_login_id(login_id)
    device_key = devices.trusted(device_cookie, normalised)
    account_key = "login:id:" + digest(normalised)
    attempt = Attempt(current_app.extensions["idp.counters"], _gates(device_key, account_key, address), now())
    wait = attempt.begin()
    if wait:
        audit.record("login.throttled", "failure", retry_after=wait, device=device_key is not None)
        return LoginResult(retry_after=wait)

    account = find_account(login_id)
    valid = verify_password(account.password_hash if account else None, password)
    if valid and account.is_active:
        # A success clears the budget it was held to: its device cookie's, or
        # for an unknown browser the ID's (the device path leaves that one to
        # strangers, whose failures must not be wiped by the owner's login).
        attempt.succeeded(clear=(device_key or account_key,))
        if needs_rehash(account.password_hash):
            account.password_hash = hash_password(password)
        audit.record("login.success", account=account, device=device_key is not None)
        return LoginResult(account=account, device_cookie=devices.remember(device_cookie, normalised))

    attempt.failed()
    audit.record("login.failure", "failure", account=account, reason="locked" if valid else "credentials",
                 device=device_key is not None)
    return LoginResult()


def _gates(device_key: str | None, account_key: str, address: str | None) -> list[tuple[Budget, str]]:
    config = current_app.config
    window, max_delay = config["LOGIN_THROTTLE_WINDOW"], config["LOGIN_MAX_DELAY"]
    if device_key:
        return [(Budget(config["LOGIN_FREE_FAILURES_PER_DEVICE"], window, max_delay), device_key)]
    return [
        (Budget(config["LOGIN_FREE_FAILURES_PER_ACCOUNT"], window, max_delay), account_key),
        (Budget(config["LOGIN_FREE_FAILURES_PER_ADDRESS"], window, max_delay), f"login:addr:{address}"),
    ]

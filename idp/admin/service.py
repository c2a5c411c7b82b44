"""Administrator accounts and their sign-in: password, then TOTP (RFC 6238)."""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from flask import current_app
from sqlalchemy import update

from .. import audit
from ..extensions import db
from ..models import Admin
from ..security import sealed
from ..security.clock import now
from ..security.credentials import common_passwords
from ..security.passwords import hash_password, verify_password
from ..security.throttle import Attempt, Budget

TOTP_STEP = 30


class AdminError(Exception):
    pass


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
    secret = pyotp.random_base32()
    admin = Admin(username=username, password_hash=hash_password(password),
                  totp_secret=sealed.seal_text(secret), totp_last_step=0, created_at=now(), disabled=False)
    db.session.add(admin)
    audit.record("admin.created", username=username)
    db.session.commit()
    return admin, secret


def provisioning_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="iTSCOM ID admin")


@dataclass
class SignIn:
    admin: Admin | None = None
    retry_after: int = 0


def sign_in(username: str, password: str, code: str, address: str | None) -> SignIn:
    """Both factors or nothing; the same answer for every kind of failure."""
    config = current_app.config
    budget = Budget(5, config["LOGIN_THROTTLE_WINDOW"], config["LOGIN_MAX_DELAY"])
    username = username.strip().casefold()
    attempt = Attempt(current_app.extensions["idp.counters"],
                      [(budget, f"admin:user:{username}"), (budget, f"admin:addr:{address}")], now())
    wait = attempt.begin()
    if wait:
        audit.record("admin.login_throttled", "failure", retry_after=wait)
        db.session.commit()
        return SignIn(retry_after=wait)
    admin = db.session.scalar(db.select(Admin).where(db.func.lower(Admin.username) == username))
    password_ok = verify_password(admin.password_hash if admin else None, password)
    step = _accepted_step(admin, code) if password_ok and admin and not admin.disabled else None
    if step is None:
        attempt.failed()
        audit.record("admin.login_failure", "failure", username=username[:64])
        db.session.commit()
        return SignIn()
    # A code works once, also for two sign-ins racing with it.
    claimed = db.session.execute(
        update(Admin).where(Admin.id == admin.id, Admin.totp_last_step < step).values(totp_last_step=step))
    if claimed.rowcount != 1:
        attempt.failed()
        audit.record("admin.login_failure", "failure", username=username[:64], reason="totp_reused")
        db.session.commit()
        return SignIn()
    audit.record("admin.login", admin_id=admin.id)
    db.session.commit()
    # After the commit: the counters are written on their own connection,
    # which on SQLite would wait for this transaction's write lock.
    attempt.succeeded(clear=(f"admin:user:{username}",))
    return SignIn(admin=admin)


def _accepted_step(admin: Admin, code: str) -> int | None:
    """The time step the code belongs to (±1 step of skew), never one used before."""
    code = (code or "").strip()
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(sealed.unseal_text(admin.totp_secret))
    t = now()
    for offset in (0, -1, 1):
        step = t // TOTP_STEP + offset
        if step > admin.totp_last_step and totp.at(step * TOTP_STEP) == code:
            return step
    return None

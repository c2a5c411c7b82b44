"""iTSCOM IDs: finding one, checking its password, its 合言葉, provisioning
one outside the registration flow (migration, tests), and a new password.

Checking a login ID and password is throttled (SPEC §3.1, §6). Both an
unknown ID and a wrong password cost one argon2 verification and give the
same answer. A browser without a device cookie for the typed ID counts its
failures per login ID (known or not) and per client address, each with its
own budget and progressive delay; a browser with one counts them against
that cookie alone (``security.devices``), so that strangers' guesses cannot
keep the owner out. The login page and the account page's password check
both ask ``authenticate``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from flask_babel import gettext
from sqlalchemy import bindparam

from . import audit, second_factor, sessions, tokens
from .extensions import db
from .mail import enqueue
from .models import Account, Contract, LoginSession
from .security import devices
from .security.clock import now
from .security.credentials import login_id_problems, password_problems
from .security.passwords import hash_password, needs_rehash, verify_password
from .security.secrets import digest, new_secret
from .security.throttle import Budget, Throttled, attempt, budget

# --- finding an iTSCOM ID and checking its password ----------------------------


@dataclass(frozen=True)
class LoginResult:
    account: Account | None = None  # None: wrong ID or password, or a locked account
    device_cookie: str | None = None  # after a success: the browser's new device cookie
    needs_factor: bool = False  # after a password's success: a second factor is asked (second_factor.has_factor)


def normalise_login_id(login_id: str) -> str:
    return login_id.strip().lower()


def find_account(login_id: str) -> Account | None:
    return _find_with_factor(login_id)[0]


def _find_with_factor(login_id: str) -> tuple[Account | None, bool]:
    """The account of ``login_id``, and whether it has an authenticator
    (``second_factor.totp_exists``), by one statement."""
    login_id = normalise_login_id(login_id)
    if not login_id.isprintable() or len(login_id) > 100:
        return None, False  # no iTSCOM ID holds these
    found = db.session.execute(_select_with_factor(), {"login_id": login_id}).first()
    return (found[0], found[1]) if found is not None else (None, False)


@functools.cache
def _select_with_factor():
    return db.select(Account, second_factor.totp_exists()).where(Account.login_id == bindparam("login_id"))


def authenticate(login_id: str, password: str, address: str | None, device_cookie: str | None = None) -> LoginResult:
    """The account these credentials open; Throttled (audited) when refused
    without checking them."""
    normalised = normalise_login_id(login_id)
    device_key = devices.trusted(device_cookie, normalised)
    account_key = "login:id:" + digest(normalised)
    login = attempt(_gates(device_key, account_key, address))
    wait = login.begin()
    if wait:
        audit.record("login.throttled", "failure", retry_after=wait, device=device_key is not None)
        raise Throttled(wait)

    account, has_totp = _find_with_factor(login_id)
    valid = verify_password(account.password_hash if account else None, password)
    if valid and account.is_active:
        # A success clears the budget it was held to: its device cookie's, or
        # for an unknown browser the ID's (the device path leaves that one to
        # strangers, whose failures must not be wiped by the owner's login).
        login.succeeded(clear=(device_key or account_key,))
        if needs_rehash(account.password_hash):
            account.password_hash = hash_password(password)
        audit.record("login.success", account=account, device=device_key is not None)
        return LoginResult(account=account, device_cookie=devices.remember(device_cookie, normalised),
                           needs_factor=second_factor.has_factor(account, has_totp))

    audit.record("login.failure", "failure", account=account, reason="locked" if valid else "credentials",
                 device=device_key is not None)
    return LoginResult()


def _gates(device_key: str | None, account_key: str, address: str | None) -> list[tuple[Budget, str]]:
    window, max_delay = "LOGIN_THROTTLE_WINDOW", "LOGIN_MAX_DELAY"
    if device_key:
        return [(budget("LOGIN_FREE_FAILURES_PER_DEVICE", window, max_delay), device_key)]
    return [
        (budget("LOGIN_FREE_FAILURES_PER_ACCOUNT", window, max_delay), account_key),
        (budget("LOGIN_FREE_FAILURES_PER_ADDRESS", window, max_delay), f"login:addr:{address}"),
    ]


# --- 合言葉: the secret question and its answer ----------------------------------

def N_(text: str) -> str:
    """Marks a text for the catalog (pybabel extract) that is translated where it is shown."""
    return text


# 秘密の質問 (p.19): a fixed list, stored in Japanese whatever the page's
# language, shown translated.
SECRET_QUESTIONS = [
    N_("ペットの名前"),
    N_("母親の旧姓"),
    N_("生まれた町の名前"),
    N_("初めて通った学校の名前"),
    N_("子供のころのあだ名"),
    N_("好きな食べ物"),
]
HALF_WIDTH_SYMBOLS = re.compile(r"[!-/:-@\[-`{-~]")


def normalise_answer(answer: str) -> str:
    """Answers compare without regard to width, case, spaces or kana script."""
    text = re.sub(r"\s+", "", unicodedata.normalize("NFKC", answer)).casefold()
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


def answer_problems(answer: str) -> list[str]:
    if not answer.strip():
        return [gettext("答えを入力してください。")]
    if len(answer) > 50:
        return [gettext("答えは50文字以内で入力してください。")]
    if HALF_WIDTH_SYMBOLS.search(answer):
        return [gettext("答えに半角記号は使用できません。")]
    return []


# --- provisioning, and a new password -------------------------------------------


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
            gettext("パスワード変更のお知らせ"),
            "password_changed.txt",
            name=account.contract.name_kanji,
        )
    audit.record("account.password_reset", account=account, reason=reason)

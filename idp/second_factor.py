"""The second factor of password sign-ins (SPEC §7, issue 15): a TOTP
authenticator with recovery codes, and what a sign-in's methods are worth.

How a session authenticated is kept as RFC 8176 ``amr`` values on the OP
session (``LoginSession.amr``), copied onto each authorization code and
released in the ID token as ``amr`` (always) with the ``acr`` it satisfies
(always):

- a password alone: amr ``["pwd"]``, acr ``urn:itscom:acr:pwd``;
- a password and the authenticator's code: ``["pwd", "otp", "mfa"]``, acr
  ``urn:itscom:acr:mfa``;
- a password and a recovery code: the same (a recovery code is a printed
  one-time password, something the customer has; the audit log tells the
  two apart);
- a passkey (idp/passkeys.py, after the merge): its ceremony names its own
  methods, e.g. ``["hwk", "user", "mfa"]``; any amr with "mfa" is acr mfa.

A password sign-in of an account with a factor does not start the session:
``hold`` keeps a pending state (sealed in the flow cookie: bound to this
browser, expiring after MFA_PENDING_LIFETIME, taken once) and the login
page asks for the factor; ``verify`` checks a code (throttled like the
password: per device cookie, else per account and per client address), and
``take_held`` hands the state back once. The same state serves a step-up:
a site's ``acr_values`` asking for mfa of a session that has only "pwd".

Passkey as a second factor: on the factor page, passkeys.confirm_factor
checks one of the held account's passkeys (within this module's MFA budgets,
``begin_attempt``) and the login page takes the held state with
``satisfied_by_passkey``. An account may have the passkey as its only
factor (``Account.passkey_factor``, 2段階認証（パスキー）); ``turn_off``
turns off both kinds.

TOTP codes work once (the last accepted step is claimed), with ±1 step of
skew, on the app's clock. Recovery codes: ten, 80 bits each, shown once,
stored as digests, each single-use; a new set replaces the old.
"""

from __future__ import annotations

import secrets as random
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from sqlalchemy import delete, update

from . import audit
from .extensions import db
from .mail import enqueue
from .models import Account, LoginSession, Passkey, RecoveryCode, TotpFactor
from .security import devices, sealed, totp
from .security.clock import now
from .security.secrets import digest
from .security.throttle import Budget, Throttled, attempt, budget

ACR_PWD = "urn:itscom:acr:pwd"
ACR_MFA = "urn:itscom:acr:mfa"
ACR_VALUES = [ACR_PWD, ACR_MFA]

PASSWORD = ("pwd",)
WITH_CODE = ("pwd", "otp", "mfa")  # the authenticator's code, or a recovery code

RECOVERY_CODES = 10
_CODE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # 32 symbols, none to confuse (l/1, o/0)
_CODE_LENGTH = 16  # 80 bits

HELD_KEY = "mfa_held"
ENROL_KEY = "mfa_enrol"
CODES_KEY = "mfa_new_codes"


# --- what a sign-in is worth ----------------------------------------------------


def acr_of(methods) -> str:
    return ACR_MFA if "mfa" in methods else ACR_PWD


def amr_text(methods) -> str:
    """The stored form: unique values, in the order given."""
    return " ".join(dict.fromkeys(methods))


def unmet_acr(requested: list[str], methods) -> bool:
    """Whether a session with ``methods`` fails a request for these acr
    values (in preference order): only mfa can be asked for more; a list
    that also accepts pwd is met by a password."""
    known = [value for value in requested if value in ACR_VALUES]
    return bool(known) and acr_of(methods) not in known


def step_up(login_session: LoginSession, methods) -> None:
    """A factor given later in the same session: its methods join the
    session's, and auth_time becomes now (the latest authentication)."""
    login_session.amr = amr_text([*login_session.methods, *methods])
    login_session.auth_time = now()


# --- the factors of an account ----------------------------------------------------


def has_factor(account: Account, has_totp: bool | None = None) -> bool:
    """Whether password sign-ins of this account need a second factor: an
    authenticator app, or its passkeys (2段階認証（パスキー）), or both.
    ``has_totp``: whether it has an authenticator, when the caller read
    that with the account (``totp_exists``); else it is looked up."""
    if account.passkey_factor:
        return True
    return has_totp if has_totp is not None else totp_of(account) is not None


def totp_exists():
    """Whether the account of the statement has an authenticator, as an SQL
    expression: a login reads it with the account, in the same statement."""
    return db.select(TotpFactor.id).where(TotpFactor.account_id == Account.id).exists()


def has_passkey(account: Account) -> bool:
    return db.session.scalar(db.select(Passkey.id).filter_by(account_id=account.id).limit(1)) is not None


def totp_of(account: Account) -> TotpFactor | None:
    return db.session.scalar(db.select(TotpFactor).filter_by(account_id=account.id))


def recovery_codes_left(account: Account) -> int:
    return db.session.scalar(db.select(db.func.count(RecoveryCode.id)).filter_by(account_id=account.id,
                                                                                used_at=None)) or 0


# --- enrolment (アカウント設定) ---------------------------------------------------


def enrolment_secret(account: Account) -> str:
    """The secret being enrolled in this browser for ``account``: kept sealed
    in the flow cookie until confirmed, so that nothing is stored before the
    customer shows the authenticator works; a new one when none waits."""
    waiting = sealed.load(ENROL_KEY)
    if waiting.get("account") == account.id and now() - waiting.get("at", 0) <= current_app.config["MFA_ENROL_LIFETIME"]:
        return waiting["secret"]
    secret = totp.new_secret()
    sealed.store(ENROL_KEY, {"account": account.id, "secret": secret, "at": now()})
    return secret


def enrolment_uri(account: Account, secret: str) -> str:
    return totp.provisioning_uri(secret, account.login_id, "iTSCOM ID")


def confirm_enrolment(account: Account, code: str) -> list[str] | None:
    """Turn the authenticator on once ``code`` proves it works: the factor
    is stored, ten recovery codes made (returned, to show once), the
    customer told by mail. None when the code is wrong (or nothing waits)."""
    waiting = sealed.load(ENROL_KEY)
    if waiting.get("account") != account.id or totp_of(account) is not None:
        return None
    step = totp.accepted_step(waiting["secret"], 0, code, is_sealed=False)
    if step is None:
        return None
    sealed.store(ENROL_KEY, {})
    db.session.add(TotpFactor(account_id=account.id, secret=sealed.seal_text(waiting["secret"]), last_step=step,
                              created_at=now()))
    codes = _new_recovery_codes(account)
    audit.record("second_factor.enabled", account=account)
    _notify(account, gettext("2段階認証を設定しました。"))
    return codes


def turn_on_passkey(account: Account) -> list[str]:
    """2段階認証（パスキー）: password sign-ins of ``account`` (which has a
    passkey: the caller checks) ask for one of its passkeys from now on.
    Recovery codes are made when no factor had them yet (returned, to show
    once; else an empty list); the customer is told by mail."""
    codes = [] if has_factor(account) else _new_recovery_codes(account)
    account.passkey_factor = True
    audit.record("second_factor.enabled", account=account, kind="passkey")
    _notify(account, gettext("2段階認証（パスキー）を設定しました。パスワードでログインするときに、登録したパスキーでの確認が必要です。"))
    return codes


def renew_recovery_codes(account: Account) -> list[str]:
    """A new set of recovery codes; the old ones stop working."""
    codes = _new_recovery_codes(account)
    audit.record("second_factor.codes_renewed", account=account)
    _notify(account, gettext("2段階認証のリカバリーコードを作り直しました。以前のリカバリーコードは使えません。"))
    return codes


def turn_off(account: Account, reason: str = "customer", admin_id: int | None = None) -> None:
    """Remove the factor — the authenticator and the passkey factor alike —
    and its recovery codes; the customer is told by mail. (The passkeys stay,
    for passkey sign-ins.)"""
    account.passkey_factor = False
    db.session.execute(delete(TotpFactor).where(TotpFactor.account_id == account.id))
    _drop_recovery_codes(account)
    if admin_id is None:
        audit.record("second_factor.disabled", account=account)
        _notify(account, gettext("2段階認証を解除しました。"))
    else:
        audit.record("admin.second_factor_reset", account=account, admin_id=admin_id)
        _notify(account, gettext("お客様のお申し出により、当社にて2段階認証を解除しました。"))


def passkeys_removed(account: Account) -> None:
    """Every passkey of ``account`` went (passkeys.remove_all): 2段階認証
    （パスキー） goes with them, and so do the recovery codes unless an
    authenticator app still stands behind them. Nothing is mailed: the
    caller tells the customer why."""
    account.passkey_factor = False
    if totp_of(account) is None:
        _drop_recovery_codes(account)


def keep_notice(account: Account) -> None:
    """After a password recovery: the factor stays, and the customer is told."""
    if totp_of(account) is not None:
        _notify(account, gettext("パスワードを再設定しましたが、2段階認証の設定はそのままです。ログインには、これまでどおり認証アプリの確認コード（またはリカバリーコード）が必要です。"))
    elif has_factor(account):
        _notify(account, gettext("パスワードを再設定しましたが、2段階認証（パスキー）の設定はそのままです。ログインには、これまでどおり登録したパスキーでの確認（またはリカバリーコード）が必要です。"))


def show_once(account: Account, codes: list[str]) -> None:
    """Keep new recovery codes for the next page only (sealed)."""
    sealed.store(CODES_KEY, {"account": account.id, "codes": codes})


def take_shown(account: Account) -> list[str]:
    """The codes ``show_once`` kept, once."""
    kept = sealed.load(CODES_KEY)
    sealed.store(CODES_KEY, {})
    return kept.get("codes") or [] if kept.get("account") == account.id else []


def _drop_recovery_codes(account: Account) -> None:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))


def _new_recovery_codes(account: Account) -> list[str]:
    _drop_recovery_codes(account)
    t = now()
    codes = ["".join(random.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH)) for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(account_id=account.id, code_digest=digest(code), created_at=t) for code in codes)
    return [_grouped(code) for code in codes]


def _grouped(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _notify(account: Account, what: str) -> None:
    if account.contact_email:
        enqueue("second_factor", account.contact_email, gettext("2段階認証の設定変更のお知らせ"),
                "second_factor.txt", name=account.contract.name_kanji, what=what)


# --- checking a code ----------------------------------------------------------------


def verify(account: Account, code: str, address: str | None, device_cookie: str | None) -> str | None:
    """Which kind of code ``code`` is for ``account`` — "otp" (the
    authenticator's) or "recovery" (one of the recovery codes, now spent) —
    or None when it is neither. Throttled (audited) when refused unchecked."""
    guess = begin_attempt(account, address, device_cookie)
    # Read-only until the budget is settled: the counters write on their own
    # connection, which on SQLite waits for this transaction's write lock.
    found = _match(account, code)
    if found is not None:
        guess.succeeded()
    if found is None or not _claim(*found):
        guess.failed()
        return None
    kind = "otp" if isinstance(found[0], TotpFactor) else "recovery"
    audit.record("second_factor.verified", account=account, kind=kind)
    return kind


@dataclass
class FactorAttempt:
    """One try at the factor, counted against its budget (``begin_attempt``)."""

    account: Account
    guess: object
    clear: str
    on_device: bool

    def succeeded(self) -> None:
        """A right factor (before anything is written: see ``verify``)."""
        self.guess.succeeded(clear=(self.clear,))

    def failed(self, **details) -> None:
        audit.record("second_factor.failure", "failure", account=self.account, device=self.on_device, **details)


def begin_attempt(account: Account, address: str | None, device_cookie: str | None) -> FactorAttempt:
    """Start a try at ``account``'s factor — a code here, or a passkey's
    answer (passkeys.confirm_factor) — within the MFA budgets; Throttled
    (audited) when it may not be checked now."""
    device_key = devices.trusted(device_cookie, account.login_id, purpose="mfa")
    account_key = f"mfa:account:{account.id}"
    guess = attempt(_gates(device_key, account_key, address))
    wait = guess.begin()
    if wait:
        audit.record("second_factor.throttled", "failure", account=account, retry_after=wait)
        raise Throttled(wait)
    return FactorAttempt(account, guess, device_key or account_key, device_key is not None)


def _match(account: Account, code: str) -> tuple[TotpFactor | RecoveryCode, int] | None:
    """What ``code`` matches, unused: the factor and the step of its code,
    or a recovery code (and 0)."""
    if not has_factor(account):
        return None
    factor = totp_of(account)
    step = totp.accepted_step(factor.secret, factor.last_step, code) if factor is not None else None
    if step is not None:
        return factor, step
    normalised = "".join(c for c in (code or "").lower() if c.isalnum())
    if len(normalised) != _CODE_LENGTH or not normalised.isascii():
        return None
    row = db.session.scalar(db.select(RecoveryCode).filter_by(account_id=account.id, code_digest=digest(normalised),
                                                              used_at=None))
    return (row, 0) if row is not None else None


def _claim(found: TotpFactor | RecoveryCode, step: int) -> bool:
    """Spend what matched; False when a concurrent sign-in spent it first."""
    if isinstance(found, TotpFactor):
        statement = update(TotpFactor).where(TotpFactor.id == found.id, TotpFactor.last_step < step).values(
            last_step=step)
    else:
        statement = update(RecoveryCode).where(RecoveryCode.id == found.id, RecoveryCode.used_at.is_(None)).values(
            used_at=now())
    return db.session.execute(statement).rowcount == 1


def _gates(device_key: str | None, account_key: str, address: str | None) -> list[tuple[Budget, str]]:
    """As the password's (accounts._gates): a browser the owner signed in
    with before is held to its own budget, so that nobody's guesses lock
    the owner out; only someone who knows the password reaches these."""
    window, max_delay = "LOGIN_THROTTLE_WINDOW", "LOGIN_MAX_DELAY"
    if device_key:
        return [(budget("MFA_FREE_FAILURES_PER_DEVICE", window, max_delay), device_key)]
    return [
        (budget("MFA_FREE_FAILURES_PER_ACCOUNT", window, max_delay), account_key),
        (budget("MFA_FREE_FAILURES_PER_ADDRESS", window, max_delay), f"mfa:addr:{address}"),
    ]


# --- a sign-in waiting for its factor ---------------------------------------------------


@dataclass(frozen=True)
class Held:
    account_id: int
    key: str | None  # the pending sign-in (pending.py) to continue
    step_up_sid: str | None  # a step-up of this session; None: a password login
    device_cookie: str | None  # the login's new device cookie, set once the factor is given
    at: int


def hold(account: Account, key: str | None, *, device_cookie: str | None = None,
         step_up_sid: str | None = None) -> None:
    """Wait for the factor: a right password (or a session asked to step
    up) is kept in this browser's flow cookie, sealed, until ``take_held``."""
    sealed.store(HELD_KEY, {"account": account.id, "key": key, "sid": step_up_sid, "device": device_cookie,
                            "at": now()})


def held() -> Held | None:
    """The sign-in waiting in this browser, unless it expired."""
    state = sealed.load(HELD_KEY)
    if not state.get("account") or now() - state.get("at", 0) > current_app.config["MFA_PENDING_LIFETIME"]:
        return None
    return Held(state["account"], state.get("key"), state.get("sid"), state.get("device"), state["at"])


def held_account(state: Held) -> Account | None:
    account = db.session.get(Account, state.account_id)
    return account if account is not None and account.is_active else None


def drop_held() -> None:
    """The held sign-in is over (given, or abandoned): it cannot be used again."""
    sealed.store(HELD_KEY, {})


def satisfied_by_passkey(account_id: int) -> Held | None:
    """The seam for passkeys.py: its ceremony, having verified a passkey of
    ``account_id`` with user verification, takes the held sign-in (if it
    is that account's) to finish it as the login page's factor form does,
    with the passkey's methods (e.g. ``("pwd", "hwk", "user", "mfa")``)."""
    state = held()
    if state is None or state.account_id != account_id:
        return None
    drop_held()
    return state


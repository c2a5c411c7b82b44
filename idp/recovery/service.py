"""iTSCOM ID・パスワードが分からなくなったら (manual p.17–24): the rules.

本人認証 starts a procedure for whatever ID was typed. Accounts whose
contact address is confirmed get a mailed 6-digit code (3-B); others get a
mailed link bound to the account's one 合言葉 (3-A): the question and answer
set on the account page, or, when none is set yet, at 合言葉登録 (3-A-1),
kept for the account once the procedure completes. An unknown ID takes one
of these paths too (fixed per ID), with a code nobody can know and no mail.
Neither the link nor the answer resets anything alone: the link is opened,
then the account's question and answer are given.

These functions add to the session and the view commits (idp.audit), but
for one deliberate early commit: ``_commit_one_try``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from sqlalchemy import update

from .. import audit, second_factor
from ..accounts import (
    find_account,
    normalise_answer,
    normalise_login_id,
    reset_password,
)
from ..extensions import db
from ..mail import enqueue
from ..models import RecoveryProcedure
from ..security import devices
from ..security.clock import now
from ..security.passwords import hash_password, verify_password
from ..security.secrets import digest, new_secret
from ..security.throttle import Budget, Throttled, attempt, budget

MAX_FAILURES = 5


class RecoveryError(Exception):
    """The procedure cannot go on and the customer starts again: expired,
    completed, altered, or from another browser. Subclasses say why when
    the customer is told something else; ``reason`` names it."""

    reason = "ended"
    method: str | None = None


class TriesUsedUp(RecoveryError):
    """The five tries of a code or 合言葉 (``method``: "code", "secret") are spent."""

    reason = "used_up"

    def __init__(self, method: str) -> None:
        super().__init__(method)
        self.method = method


@dataclass
class Started:
    procedure: RecoveryProcedure
    binding: str  # kept in the starting browser's session


# --- 本人認証 (p.18) -------------------------------------------------------

def start(login_id: str, address: str | None, device_cookie: str | None = None) -> Started:
    """Begin a procedure for the typed ID; mails a code when 3-B applies.
    Throttled when refused.

    Every request counts, so that the flow cannot flood anybody's mailbox:
    from a browser that signed in to this ID before (its device cookie,
    ``security.devices``), against that browser's own budget only; from any
    other browser, against the ID's and the client address's budgets, which
    anybody can spend. So strangers who know an ID (an e-mail address) slow
    every unknown browser but never the holder's own.
    """
    wait = attempt(_throttle_gates(login_id, address, device_cookie)).begin()  # counted for good, whatever follows
    if wait:
        audit.record("recovery.throttled", "failure", retry_after=wait)
        raise Throttled(wait)
    account = find_account(login_id)
    if account is not None and not account.is_active:
        account = None
    t = now()
    binding = new_secret()
    if account is not None:
        method = "code" if account.contact_email_verified else "secret"
    else:
        method = _method_for_unknown(login_id)
    procedure = RecoveryProcedure(
        method=method,
        account=account,
        binding_digest=digest(binding),
        created_at=t,
        expires_at=t + current_app.config["RECOVERY_LIFETIME"],
        failures=0,
    )
    if method == "code":
        # An unknown ID gets a code nobody is told, at the same cost: the
        # mail is composed and sealed either way, and queued only for a
        # real account.
        code = f"{secrets.randbelow(10**6):06d}"
        procedure.code_digest = _code_digest(code)
        mail = enqueue("recovery_code", account.contact_email if account else login_id, gettext("認証コードのお知らせ"),
                       "recovery_code.txt", name=account.contract.name_kanji if account else "", code=code)
        if account is None:
            db.session.expunge(mail)
    elif (account.secret_answer_hash is not None) if account is not None else _unknown_has_secret(login_id):
        # The account's 合言葉 binds the link: 合言葉登録 is skipped.
        if account is not None:
            procedure.question, procedure.answer_hash = account.secret_question, account.secret_answer_hash
        _mail_link(procedure, account)
    db.session.add(procedure)
    audit.record("recovery.started", account=account, method=method, known=account is not None)
    db.session.flush()  # the procedure's id, for the browser's session
    return Started(procedure=procedure, binding=binding)


def bound_procedure(procedure_id, binding: str | None, method: str) -> RecoveryProcedure:
    """The live procedure this browser started; RecoveryError otherwise."""
    procedure = db.session.get(RecoveryProcedure, procedure_id) if isinstance(procedure_id, int) else None
    if procedure is None or not binding or not hmac.compare_digest(procedure.binding_digest, digest(binding)):
        raise RecoveryError()
    _check_live(procedure, method)
    return procedure


# --- 3-B: 認証コード入力 (p.22) ---------------------------------------------

def check_code(procedure: RecoveryProcedure, code: str) -> bool:
    """True when right. Every try is counted before the comparison, so that
    parallel guesses cannot exceed the five allowed; RecoveryError after."""
    _commit_one_try(procedure)
    code = unicodedata.normalize("NFKC", code).strip()
    right = procedure.account is not None and hmac.compare_digest(_code_digest(code), procedure.code_digest or "")
    return _verdict(procedure, right, "recovery.code_verified", "recovery.code_failed")


# --- 3-A: 合言葉登録, mail, 合言葉入力 (p.19–21) ------------------------------

def set_secret_and_mail_link(procedure: RecoveryProcedure, question: str, answer: str) -> None:
    """3-A-1/2: an account without a 合言葉 registers one (kept on the
    procedure until it completes), and the link is mailed."""
    procedure.question = question
    procedure.answer_hash = hash_password(normalise_answer(answer))
    _mail_link(procedure, procedure.account)


def _mail_link(procedure: RecoveryProcedure, account) -> None:
    """3-A-2: mail the link, valid 30 minutes from now; for an unknown ID
    everything happens but the mail."""
    token = new_secret()
    procedure.link_digest = digest(token)
    procedure.expires_at = now() + current_app.config["RECOVERY_LIFETIME"]
    # Composed for an unknown ID too (same cost), but never queued.
    mail = enqueue("recovery_link", account.contact_email if account else "", gettext("本人認証確認用メール"),
                   "recovery_link.txt", name=account.contract.name_kanji if account else "",
                   url=f"{current_app.config['ISSUER']}/recovery/link/{token}")
    if account is None:
        db.session.expunge(mail)
    audit.record("recovery.link_mailed", account=account, known=account is not None)


def procedure_for_link(token: str) -> RecoveryProcedure:
    if not token or len(token) > 128:
        raise RecoveryError()
    procedure = db.session.scalar(db.select(RecoveryProcedure).filter_by(link_digest=digest(token)))
    if procedure is None:
        raise RecoveryError()
    _check_live(procedure, "secret")
    return procedure


def check_secret(procedure: RecoveryProcedure, question: str, answer: str) -> bool:
    """3-A-4: the same question and answer as set at 3-A-1; tries are counted
    before the comparison, and five wrong end the procedure."""
    _commit_one_try(procedure)
    right_answer = verify_password(procedure.answer_hash, normalise_answer(answer))
    right = right_answer and hmac.compare_digest(question.encode(), (procedure.question or "").encode())
    return _verdict(procedure, right, "recovery.secret_verified", "recovery.secret_failed")


def tries_left(procedure: RecoveryProcedure) -> int:
    """How many more codes or answers this procedure takes."""
    return max(0, MAX_FAILURES - procedure.failures)


def _verdict(procedure: RecoveryProcedure, right: bool, verified: str, failed: str) -> bool:
    """Record one counted try of a code or secret: the procedure is verified,
    or the failure is audited."""
    if right:
        procedure.verified_at = now()
        audit.record(verified, account=procedure.account)
    else:
        audit.record(failed, "failure", account=procedure.account)
    return right


# --- the new password (p.23, p.21) -----------------------------------------

def complete(procedure: RecoveryProcedure, password: str) -> None:
    """Set the password once per procedure; 3-A also confirms the contact
    address. A second factor stays (idp.second_factor)."""
    t = now()
    claimed = db.session.execute(
        update(RecoveryProcedure)
        .where(RecoveryProcedure.id == procedure.id, RecoveryProcedure.completed_at.is_(None),
               RecoveryProcedure.verified_at.is_not(None), RecoveryProcedure.expires_at > t)
        .values(completed_at=t)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        raise RecoveryError()
    account = procedure.account
    # The account's other procedures (older codes and links) are over too.
    db.session.execute(
        update(RecoveryProcedure)
        .where(RecoveryProcedure.account_id == account.id, RecoveryProcedure.id != procedure.id,
               RecoveryProcedure.completed_at.is_(None))
        .values(expires_at=t)
    )
    reset_password(account, password, reason=f"recovery.{procedure.method}")
    # Recovery by mail never removes a factor (SPEC §7): the next password
    # sign-in asks for it as before, and the customer is told so.
    second_factor.keep_notice(account)
    if procedure.method == "secret":
        account.contact_email_verified = True  # the link reached it
        if account.secret_answer_hash is None:
            # The 合言葉 registered at 3-A-1 is now the account's one 合言葉.
            account.secret_question, account.secret_answer_hash = procedure.question, procedure.answer_hash
            audit.record("account.secret_set", account=account, via="recovery")
    audit.record("recovery.completed", account=account, method=procedure.method)


# --- helpers ---------------------------------------------------------------

def _check_live(procedure: RecoveryProcedure, method: str) -> None:
    if procedure.method != method or procedure.completed_at is not None or now() >= procedure.expires_at:
        raise RecoveryError()
    if procedure.failures >= MAX_FAILURES:
        raise TriesUsedUp(method)


def _commit_one_try(procedure: RecoveryProcedure) -> None:
    """Count one try atomically, or raise RecoveryError when none is left.

    A deliberate early commit: the try stays counted whatever happens to
    the request after it (an error, a lost connection, a rollback), or else
    a guess that failed to answer would cost nothing and the five tries
    could be exceeded. The verdict and its audit row commit in the view."""
    reserved = db.session.execute(
        update(RecoveryProcedure)
        .where(RecoveryProcedure.id == procedure.id, RecoveryProcedure.failures < MAX_FAILURES,
               RecoveryProcedure.completed_at.is_(None), RecoveryProcedure.expires_at > now())
        .values(failures=RecoveryProcedure.failures + 1)
    )
    db.session.commit()
    if reserved.rowcount != 1:
        _check_live(procedure, procedure.method)  # reloaded: which way it ended
        raise RecoveryError()


def _method_for_unknown(login_id: str) -> str:
    """An unknown ID takes the path a real account might, fixed per ID, so that
    the next screen tells nothing: most accounts have a confirmed contact."""
    return "secret" if _unknown_id_mac(login_id)[0] < 64 else "code"


def _unknown_has_secret(login_id: str) -> bool:
    """On 3-A, whether an unknown ID skips 合言葉登録 as an account with a
    合言葉 does; fixed per ID like the path itself."""
    return _unknown_id_mac(login_id)[1] < 128


def _unknown_id_mac(login_id: str) -> bytes:
    return hmac.new(current_app.secret_key.encode(), b"recovery method\0" + login_id.strip().lower().encode(),
                    hashlib.sha256).digest()


def _code_digest(code: str) -> str:
    """Keyed: six digits are too few for a plain digest to hide anything."""
    return hmac.new(current_app.secret_key.encode(), b"recovery code\0" + code.encode(), hashlib.sha256).hexdigest()


def _throttle_gates(login_id: str, address: str | None, device_cookie: str | None) -> list[tuple[Budget, str]]:
    """The budgets a request to start a procedure counts against.

    Unknown IDs and known ones are budgeted alike: a device cookie is valid
    for an ID only after a successful login to it, which a stranger cannot
    present. Per ID and per device the budget is hard (each request may send
    a mail); per address it is progressive, with short delays, since one
    address may be a carrier's NAT in front of many customers, and the
    mailboxes are already guarded by the per-ID budget.
    """
    window = "RECOVERY_THROTTLE_WINDOW"
    normalised = normalise_login_id(login_id)
    device_key = devices.trusted(device_cookie, normalised, purpose="recovery")
    if device_key:
        return [(budget("RECOVERY_REQUESTS_PER_DEVICE", window, hard=True), device_key)]
    return [
        (budget("RECOVERY_REQUESTS_PER_ID", window, hard=True), "recovery:id:" + digest(normalised)),
        (budget("RECOVERY_REQUESTS_PER_ADDRESS", window, "RECOVERY_ADDRESS_MAX_DELAY"), f"recovery:addr:{address}"),
    ]

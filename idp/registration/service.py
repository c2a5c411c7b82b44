"""はじめてのログイン (manual p.11–16): the rules behind each registration step.

Views call these plain functions; none of them needs a request except for
the client address passed in. They add to the session; the view commits
(idp.audit). A function that refuses after writing rolls its writes back
first, so that the view commits only the refusal's audit row.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext, lazy_gettext
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from .. import audit, passkeys
from ..accounts import end_everything
from ..contracts import (
    CUSTOMER_NUMBER,
    LAST4,
    PHONE,
    STB_ID,
    normalise_number,
    normalise_phone,
    normalise_stb_id,
)
from ..extensions import db
from ..mail import enqueue
from ..models import Account, Contract, PendingRegistration
from ..security.clock import now
from ..security.passwords import hash_password
from ..security.secrets import digest, new_secret
from ..security.throttle import Attempt, Budget, Throttled, attempt, budget

# お支払情報等 (p.12): the four items, in the manual's order and words.
PAYMENT_ITEMS = {
    "customer_number": lazy_gettext("お客さま番号"),
    "bank_last4": lazy_gettext("口座番号 下4桁"),
    "card_last4": lazy_gettext("クレジットカード番号 下4桁"),
    "stb_id": lazy_gettext("セットトップボックス (STB/Hit pot) のID"),
}
# The items of four digits: guessable, so budgeted per contract (verify_contract).
GUESSABLE_ITEMS = {"bank_last4", "card_last4"}
# Each item's format once normalised, as the billing export has it.
ITEM_FORMATS = {"customer_number": CUSTOMER_NUMBER, "bank_last4": LAST4, "card_last4": LAST4, "stb_id": STB_ID}
MAIL_SUBJECT = lazy_gettext("マイページ本登録のご案内")


class RegistrationError(Exception):
    """The registration cannot go on and the customer starts again: its
    mailed URL expired, was used, or the answer was altered. Subclasses say
    why when the customer is told something else; ``reason`` names it."""

    reason = "expired"


class LoginIdTaken(RegistrationError):
    """Another registration took the chosen iTSCOM ID first."""

    reason = "taken"


# --- normalising what customers type (normalise, don't reject) ----------

def normalise_item(kind: str, value: str) -> str:
    if kind == "stb_id":
        return normalise_stb_id(value)
    return normalise_number(value)


def item_well_formed(kind: str, value: str) -> bool:
    """Whether a typed お支払情報等 can be one at all (10 digits, 4 digits, 12 hex)."""
    return bool(ITEM_FORMATS[kind].fullmatch(normalise_item(kind, value)))


def phone_well_formed(value: str) -> bool:
    return bool(PHONE.fullmatch(normalise_phone(value)))


# --- step 1 and 2: verifying the contract --------------------------------
#
# The answer never says which field was wrong, nor whether a contract has
# the kana name and phone. Failures are budgeted so that guessing stays
# infeasible and nobody else's guesses keep the holder out:
# - 4-digit items (口座番号 / クレジットカード番号 下4桁): a hard budget per
#   contract the kana name and phone name (two phones, still one budget),
#   or per typed name and phone when they name none, answered alike;
#   strangers can spend it, so the holder is pointed to the お客さま番号.
#   At 追加認証情報, a budget per contract and first item instead, which
#   only someone who has just proven that item can spend. Each failure
#   also counts per client address.
# - お客さま番号 (10 digits) and STB ID (12 hex) cannot be guessed within a
#   budget, so no budget of theirs is shared with the holder's neighbours:
#   they count per client address and typed name + phone, and per client
#   address with a far larger budget that still ends one address's trying
#   of numbers. Behind a shared address (a carrier's NAT), other
#   customers' mistakes thus never refuse the holder's right answer. A
#   throttled answer is never checked: were right answers let through, a
#   refusal would mean "wrong" and the budget would stop no guesser.

def verify_contract(kana: str, phone: str, kind: str, value: str, address: str | None) -> list[int]:
    """Step 1: the ids of the contracts with this kana name, phone and
    お支払情報等 (none: not verified); Throttled when refused unchecked."""
    named, who = _contracts_named(kana, phone), digest(f"{kana}\0{phone}")
    digit_keys = [f"reg:digits:contract:{contract.id}" for contract in named] or [f"reg:digits:who:{who}"]
    return _verify(named, who, kind, value, address, digit_keys, additional=False)


def verify_additional_item(kana: str, phone: str, first_item: str, candidates: list[int], kind: str, value: str,
                           address: str | None) -> list[int]:
    """Step 2: which of the ``candidates`` that step 1's ``first_item``
    matched also hold this second item."""
    named = [contract for contract in _contracts_named(kana, phone) if contract.id in candidates]
    digit_keys = [f"reg:digits:contract:{contract_id}:after:{first_item}" for contract_id in sorted(candidates)]
    return _verify(named, digest(f"{kana}\0{phone}"), kind, value, address, digit_keys, additional=True)


def _verify(named: list[Contract], who: str, kind: str, value: str, address: str | None, digit_keys: list[str],
            additional: bool) -> list[int]:
    """Check ``value`` against the ``named`` contracts, within the budgets;
    ``who`` is the typed kana name and phone (a digest). A refused 4-digit
    item (``guessable_locked``) leaves the お客さま番号 and the STB ID,
    budgeted apart, to be accepted now."""
    verification = attempt(_verification_gates(kind, who, address, digit_keys))
    wait = verification.begin()
    if wait:
        audit.record("registration.verify_throttled", "failure", retry_after=wait, item=kind,
                     additional=additional, guessable_locked=kind in GUESSABLE_ITEMS)
        raise Throttled(wait)

    matches = [contract.id for contract in named if _has_item(contract, kind, value)]
    if not matches:
        audit.record("registration.verify_failed", "failure", item=kind, additional=additional)
        return []
    verification.succeeded()
    audit.record("registration.verified", item=kind, additional=additional, matches=len(matches))
    return matches


def _contracts_named(kana: str, phone: str) -> list[Contract]:
    """The contracts with this kana name (kana_key) and this phone among theirs."""
    candidates = db.session.scalars(db.select(Contract).filter_by(kana_key=kana).order_by(Contract.id)).all()
    return [contract for contract in candidates if phone in contract.phones]


def needs_additional_item(contract_ids: list[int]) -> bool:
    """p.13 (3): one more item when several contracts match or the contract asks for it."""
    if len(contract_ids) != 1:
        return True
    return db.session.get(Contract, contract_ids[0]).additional_auth


def _has_item(contract: Contract, kind: str, value: str) -> bool:
    if not value:
        return False
    if kind == "customer_number":
        return contract.customer_number == value
    if kind == "bank_last4":
        return contract.bank_last4 == value
    if kind == "card_last4":
        return contract.card_last4 == value
    if kind == "stb_id":
        return value in contract.stb_ids
    return False


def _verification_gates(kind: str, who: str, address: str | None, digit_keys: list[str]) -> list[tuple[Budget, str]]:
    window = "REGISTRATION_VERIFY_WINDOW"
    per_address = budget("REGISTRATION_VERIFY_FAILURES_PER_ADDRESS", window)
    if kind in GUESSABLE_ITEMS:
        digits = budget("REGISTRATION_VERIFY_FAILURES", window, hard=True)
        # Five a window would still be 240 guesses a day: a long-run cap too.
        long_run = budget("REGISTRATION_VERIFY_LONG_FAILURES", "REGISTRATION_VERIFY_LONG_WINDOW", hard=True)
        return [(per_address, f"reg:addr:{address}"), *((digits, key) for key in digit_keys),
                *((long_run, f"{key}:long") for key in digit_keys)]
    return [
        (per_address, f"reg:addr:{address}:who:{who}"),
        (budget("REGISTRATION_VERIFY_STRONG_FAILURES_PER_ADDRESS", window), f"reg:strong:addr:{address}"),
    ]


# --- step 4 and 5: choosing the ID and mailing the URL -------------------

def mail_gate(contract_id: int, address: str | None) -> Attempt:
    """Step 4 answers whether an ID is taken and sends mail: both are budgeted
    per contract and per client address, so the step is neither a lookup
    service for iTSCOM IDs nor a way to flood mailboxes. Every answer and
    every mail counts: the attempt is never taken back."""
    window = "REGISTRATION_VERIFY_WINDOW"
    return attempt([(budget("REGISTRATION_MAILS_PER_CONTRACT", window, hard=True), f"reg:mail:contract:{contract_id}"),
                    (budget("REGISTRATION_MAILS_PER_ADDRESS", window, hard=True), f"reg:mail:addr:{address}")])


def replaces_an_id(contract_id: int) -> bool:
    """Whether completing replaces the contract's current iTSCOM ID (p.17, p.24:
    「再度、新規登録をしていただくことにより、現在のご登録情報が更新されます。」).
    Only for the person who verified the contract, or who holds the URL
    mailed after that."""
    return db.session.scalar(db.select(Account.id).filter_by(contract_id=contract_id)) is not None


def login_id_taken(login_id: str, contract_id: int) -> bool:
    """True when another contract's account uses this iTSCOM ID."""
    owner = db.session.scalar(db.select(Account.contract_id).filter_by(login_id=login_id.lower()))
    return owner is not None and owner != contract_id


def start_registration(contract_id: int, login_id: str, password: str) -> PendingRegistration:
    """Keep the chosen ID and password aside and mail the one-time URL."""
    contract = db.session.get(Contract, contract_id)
    token = new_secret()
    t = now()
    pending = PendingRegistration(
        token_digest=digest(token),
        contract=contract,
        login_id=login_id.lower(),
        password_hash=hash_password(password),
        created_at=t,
        expires_at=t + current_app.config["REGISTRATION_URL_LIFETIME"],
    )
    db.session.add(pending)
    enqueue(
        "registration",
        pending.login_id,
        MAIL_SUBJECT,
        "registration.txt",
        name=contract.name_kanji,
        url=f"{current_app.config['ISSUER']}/registration/confirm/{token}",
    )
    audit.record("registration.mail_queued", customer=contract.customer_number)
    return pending


# --- step 6 to 8: the mailed URL, the contact address, completion --------

def find_pending(token: str) -> PendingRegistration | None:
    """The registration behind a mailed URL, if it is still good (30 minutes, unused)."""
    if not token or len(token) > 128:
        return None
    pending = db.session.scalar(db.select(PendingRegistration).filter_by(token_digest=digest(token)))
    if pending is None or pending.completed_at is not None or now() >= pending.expires_at:
        return None
    return pending


def contact_choices(pending: PendingRegistration) -> list[str]:
    """連絡先メールアドレス candidates: the contract's addresses and the new ID."""
    return list(dict.fromkeys([*pending.contract.contact_emails, pending.login_id]))


def complete_registration(pending_id: int, contact_email: str) -> Account:
    """Activate the new ID (p.16). Re-registration replaces the old ID and ends
    everything the old login held; ``sub`` stays. Exactly one completion wins
    a login ID that two registrations claim."""
    t = now()
    claimed = db.session.execute(
        update(PendingRegistration)
        .where(
            PendingRegistration.id == pending_id,
            PendingRegistration.completed_at.is_(None),
            PendingRegistration.expires_at > t,
        )
        .values(completed_at=t)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        raise RegistrationError()
    pending = db.session.get(PendingRegistration, pending_id)
    if contact_email not in contact_choices(pending):
        db.session.rollback()
        raise RegistrationError()
    if login_id_taken(pending.login_id, pending.contract_id):
        db.session.rollback()
        audit.record("registration.login_id_taken", "failure")
        raise LoginIdTaken()

    # Older mailed URLs of this contract can no longer replace what was just chosen.
    db.session.execute(
        update(PendingRegistration)
        .where(PendingRegistration.contract_id == pending.contract_id, PendingRegistration.id != pending.id,
               PendingRegistration.completed_at.is_(None))
        .values(expires_at=t)
    )
    account = db.session.scalar(db.select(Account).filter_by(contract_id=pending.contract_id))
    replaced = account is not None
    if account is None:
        account = Account(subject=new_secret(16), contract_id=pending.contract_id, created_at=t, status="active")
        db.session.add(account)
    else:
        end_everything(account, t)
        # The old ID's passkeys would still open the account: they go with it.
        passkeys.remove_all(account)
        # The holder of the old ID learns that it was replaced (SPEC §6).
        for address in dict.fromkeys([account.contact_email, account.login_id]):
            if address and address not in (pending.login_id, contact_email):
                enqueue("id_replaced", address, gettext("iTSCOM ID変更のお知らせ"), "id_replaced.txt",
                        name=pending.contract.name_kanji)
    account.login_id = pending.login_id
    account.login_id_verified = True  # the mailed URL reached this address
    account.password_hash = pending.password_hash
    account.password_changed_at = t
    account.contact_email = contact_email
    # An address from billing is not proven by this procedure; the new ID is.
    account.contact_email_verified = contact_email == pending.login_id
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent completion took the login ID first
        db.session.rollback()
        audit.record("registration.login_id_taken", "failure")
        raise LoginIdTaken() from None
    audit.record("registration.replaced" if replaced else "registration.completed", account=account)
    return account

"""Passkeys (WebAuthn): enrolled on the account page, signed in with on the
login page. The ceremonies themselves are py_webauthn's (Duo Labs); this
module keeps their challenges, their credentials and their rules.

The relying party is the issuer: RP ID is the host of ``IDP_ISSUER`` and the
only accepted origin is its scheme, host and port. Every passkey is a
discoverable credential with user verification required, so a sign-in needs
no iTSCOM ID typed: the credential names its account.

Challenges. Each ceremony starts with 32 random bytes, kept in this
browser's flow cookie with the time they were issued (and, for an
enrolment, the OP session and the name the customer gave): a response is
only taken from the browser that asked, within ``PASSKEY_CEREMONY_LIFETIME``.
Taking one spends it: it leaves the cookie, and its digest goes into
``used_assertions`` (unique), so a replayed response — even with a copy of
the old cookie, even on another node — is refused.

Sign-in is a login like the password's (login/views.py continues it the same
way); its failures are audited and throttled per client address, and every
failure answers alike, so that neither an unknown credential nor a wrong
signature tells anything. A signature counter that does not go up (a cloned
authenticator) is refused and audited as such.

py_webauthn (with pyasn1, cbor2 and pyOpenSSL, 5.3 MiB) is imported by the
functions below that use it, at the first ceremony: a process that never
sees one — the CLI and its mail senders, a worker of an issuer where
passkeys are not available — never loads it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, session
from flask_babel import gettext

from . import audit, second_factor
from .accounts import LoginResult, normalise_login_id
from .extensions import db
from .mail import enqueue
from .models import Account, LoginSession, Passkey, UsedAssertion
from .security import devices
from .security.clock import now
from .security.secrets import digest, new_secret
from .security.throttle import Throttled, attempt, budget

# A passkey sign-in, as the audit log names its method.
METHOD = "passkey"


def amr(passkey: Passkey) -> list[str]:
    """How a sign-in with this passkey authenticated, in OIDC's words (RFC
    8176 amr): a key bound to one device's hardware ("hwk") or a synced one
    ("swk"), and the user's verification by the authenticator ("user"). The
    second-factor work records it on the session (PasskeyLogin carries it)."""
    return ["swk" if passkey.backup_eligible else "hwk", "user"]


@dataclass(frozen=True)
class PasskeyLogin(LoginResult):
    """A passkey's login: what accounts.LoginResult says, and how it authenticated."""

    amr: tuple[str, ...] = ()


SESSION_KEY = "passkey_challenges"
# Ceremonies a browser may have open at once: the login page's conditional
# request and its button, a tab or two more.
MAX_OPEN = 4
# What a browser may send back: credential IDs are at most 1023 bytes, the
# rest is small; anything longer is not a passkey's answer.
MAX_RESPONSE = 16384
NAME_LENGTH = 64


# --- the relying party ------------------------------------------------------------


def rp_id() -> str:
    return urlsplit(current_app.config["ISSUER"]).hostname


def available() -> bool:
    """Whether browsers take passkeys for this issuer: WebAuthn refuses an IP
    address as RP ID (make run's 127.0.0.1; use localhost there)."""
    try:
        ipaddress.ip_address(rp_id())
    except ValueError:
        return True
    return False


def origin() -> str:
    parts = urlsplit(current_app.config["ISSUER"])
    return f"{parts.scheme}://{parts.netloc}"


# --- challenges: issued to this browser, taken once -------------------------------


def _issue(purpose: str, **bound) -> bytes:
    from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

    challenge = base64url_to_bytes(new_secret(32))
    entry = {"c": bytes_to_base64url(challenge), "for": purpose, "at": now(), **bound}
    session[SESSION_KEY] = (_open() + [entry])[-MAX_OPEN:]
    return challenge


def _open() -> list[dict]:
    entries = session.get(SESSION_KEY)
    if not isinstance(entries, list):
        return []
    oldest = now() - current_app.config["PASSKEY_CEREMONY_LIFETIME"]
    return [e for e in entries if isinstance(e, dict) and e.get("at", 0) >= oldest]


def _take(purpose: str, client_data_json: bytes) -> dict | None:
    """The open ceremony this response answers, gone from this browser; None
    when it holds none for that challenge (never issued, expired, or taken).
    ``_spend`` makes it gone for good."""
    from webauthn.helpers import bytes_to_base64url, parse_client_data_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        challenge = bytes_to_base64url(parse_client_data_json(client_data_json).challenge)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        return None
    entries = _open()
    entry = next((e for e in entries if e["c"] == challenge and e["for"] == purpose), None)
    session[SESSION_KEY] = [e for e in entries if e is not entry]
    return entry


def _spent(entry: dict) -> bool:
    return db.session.scalar(db.select(UsedAssertion.id).filter_by(digest=_spent_digest(entry))) is not None


def _spent_digest(entry: dict) -> str:
    return digest(f"webauthn\0{entry['c']}")


def _spend(entry: dict) -> bool:
    """Whether this ceremony's challenge was still unspent (and is spent
    now): False for a replay with a copy of an older flow cookie. Rolls the
    transaction back when False."""
    return UsedAssertion.first_use(_spent_digest(entry),
                                   entry["at"] + current_app.config["PASSKEY_CEREMONY_LIFETIME"])


def _challenge_of(entry: dict) -> bytes:
    from webauthn.helpers import base64url_to_bytes

    return base64url_to_bytes(entry["c"])


# --- enrolment (the account page) ---------------------------------------------------


def passkeys_of(account: Account) -> list[Passkey]:
    return list(db.session.scalars(db.select(Passkey).filter_by(account_id=account.id).order_by(Passkey.created_at)))


def registration_options(login_session: LoginSession, name: str) -> str:
    """The options (JSON) for navigator.credentials.create(), for a passkey
    named ``name``; asked after the current password (the view)."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    account = login_session.account
    challenge = _issue("enrol", sid=login_session.sid, name=name[:NAME_LENGTH])
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name="iTSCOM ID",
        # The opaque "sub": one handle per iTSCOM ID, so an authenticator
        # keeps one passkey per ID and a sign-in can be checked against it.
        user_id=account.subject.encode(),
        user_name=account.login_id,
        user_display_name=account.login_id,
        challenge=challenge,
        timeout=current_app.config["PASSKEY_CEREMONY_LIFETIME"] * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys_of(account)],
    )
    return options_to_json(options)


def enrol(login_session: LoginSession, response: str) -> Passkey | None:
    """Store the passkey navigator.credentials.create() made, and tell the
    customer by mail; None (audited) when the response is not a valid answer
    to this browser's open enrolment for this session. The caller commits."""
    from webauthn import verify_registration_response
    from webauthn.helpers import parse_registration_credential_json
    from webauthn.helpers.exceptions import WebAuthnException
    from webauthn.helpers.structs import CredentialDeviceType

    account = login_session.account
    try:
        if len(response) > MAX_RESPONSE:
            raise ValueError("too long")
        credential = parse_registration_credential_json(response)
        entry = _take("enrol", credential.response.client_data_json)
        if entry is None or entry.get("sid") != login_session.sid or not _spend(entry):
            raise ValueError("no open enrolment")
        verified = verify_registration_response(
            credential=credential, expected_challenge=_challenge_of(entry), expected_rp_id=rp_id(),
            expected_origin=origin(), require_user_verification=True)
    except (WebAuthnException, ValueError) as refused:
        audit.record("account.passkey_refused", "failure", account=account, reason=str(refused)[:200])
        return None
    if db.session.scalar(db.select(Passkey.id).filter_by(credential_id=verified.credential_id)) is not None:
        audit.record("account.passkey_refused", "failure", account=account, reason="already enrolled")
        return None
    t = now()
    passkey = Passkey(
        account=account, credential_id=verified.credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=" ".join(t.value for t in credential.response.transports or [])[:200],
        name=entry["name"], backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        created_at=t)
    db.session.add(passkey)
    _notify(account, "passkey_added", gettext("パスキー登録のお知らせ"), passkey)
    audit.record("account.passkey_added", account=account, passkey=passkey.name)
    return passkey


def remove(account: Account, passkey_id: int) -> Passkey | None:
    """Remove one of the customer's passkeys and tell them by mail; None when
    it is not (or no longer) theirs. The caller commits."""
    passkey = db.session.scalar(db.select(Passkey).filter_by(id=passkey_id, account_id=account.id))
    if passkey is None:
        return None
    db.session.delete(passkey)
    _notify(account, "passkey_removed", gettext("パスキー削除のお知らせ"), passkey)
    audit.record("account.passkey_removed", account=account, passkey=passkey.name)
    return passkey


def remove_all(account: Account) -> None:
    """Every passkey of the account goes (its iTSCOM ID was replaced), and
    with them the passkey factor: no sign-in may ask for one that is gone."""
    db.session.execute(db.delete(Passkey).where(Passkey.account_id == account.id))
    second_factor.passkeys_removed(account)


def _notify(account: Account, kind: str, subject: str, passkey: Passkey) -> None:
    if account.contact_email:
        enqueue(kind, account.contact_email, subject, f"{kind}.txt", name=account.contract.name_kanji,
                passkey=passkey.name)


# --- sign-in (the login page) ---------------------------------------------------------


def authentication_options() -> str:
    """The options (JSON) for navigator.credentials.get(): no credentials
    listed (discoverable ones name their account), user verification required."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_authentication_options(
        rp_id=rp_id(), challenge=_issue("login"),
        timeout=current_app.config["PASSKEY_CEREMONY_LIFETIME"] * 1000,
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options)


class Refusal(Exception):
    """Why an assertion was refused (audited, never shown), and the passkey it named."""

    def __init__(self, reason: str, passkey: Passkey | None = None, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.passkey, self.detail = reason, passkey, detail


def sign_in(response: str, address: str | None, device_cookie: str | None) -> LoginResult:
    """The account a passkey's assertion opens, like accounts.authenticate
    for a password; Throttled (audited) when this address has failed too
    often. Every refusal is audited with its reason and answers alike."""
    login = attempt([(budget("LOGIN_FREE_FAILURES_PER_ADDRESS", "LOGIN_THROTTLE_WINDOW", "LOGIN_MAX_DELAY"),
                      f"passkey:addr:{address}")])
    wait = login.begin()
    if wait:
        audit.record("login.throttled", "failure", retry_after=wait, method=METHOD)
        raise Throttled(wait)
    try:
        passkey, entry, new_sign_count = _verify_assertion(response)
        # The counters go before anything is written: on SQLite the request's
        # transaction would hold the lock they need.
        login.succeeded()
        if not _spend_login(passkey, entry, new_sign_count):
            raise Refusal("replayed", passkey)
    except Refusal as refused:
        account = refused.passkey.account if refused.passkey is not None else None
        detail = {"detail": refused.detail} if refused.detail else {}
        audit.record("login.failure", "failure", account=account, reason=refused.reason, method=METHOD, **detail)
        return LoginResult()
    account = passkey.account
    audit.record("login.success", account=account, method=METHOD, amr=amr(passkey))
    return PasskeyLogin(account=account, amr=tuple(amr(passkey)),
                        device_cookie=devices.remember(device_cookie, normalise_login_id(account.login_id)))


def _verify_assertion(response: str, purpose: str = "login") -> tuple[Passkey, dict, int]:
    """The passkey that signed this answer to a challenge this browser holds
    (for ``purpose``), that challenge's ceremony, and the new signature
    counter; Refusal says why not. Writes nothing."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import parse_authentication_credential_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        if len(response) > MAX_RESPONSE:
            raise Refusal("malformed")
        credential = parse_authentication_credential_json(response)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        raise Refusal("malformed") from None
    entry = _take(purpose, credential.response.client_data_json)
    if entry is None:
        raise Refusal("challenge")  # never issued to this browser, expired, or taken
    if _spent(entry):
        raise Refusal("replayed")  # with a copy of the flow cookie from before it was taken
    passkey = db.session.scalar(db.select(Passkey).filter_by(credential_id=credential.raw_id))
    if passkey is None:
        raise Refusal("unknown credential")
    handle = credential.response.user_handle
    if handle is not None and handle != passkey.account.subject.encode():
        raise Refusal("user handle", passkey)
    try:
        # The counter is checked below, after the signature: only a genuine
        # assertion can be called a clone's.
        verified = verify_authentication_response(
            credential=credential, expected_challenge=_challenge_of(entry), expected_rp_id=rp_id(),
            expected_origin=origin(), credential_public_key=passkey.public_key, credential_current_sign_count=0,
            require_user_verification=True)
    except WebAuthnException as invalid:
        raise Refusal("assertion", passkey, str(invalid)[:200]) from None
    if (verified.new_sign_count or passkey.sign_count) and verified.new_sign_count <= passkey.sign_count:
        raise Refusal("sign count", passkey)  # a cloned authenticator (WebAuthn §6.1.1)
    if not passkey.account.is_active:
        raise Refusal("locked", passkey)
    return passkey, entry, verified.new_sign_count


def _spend_login(passkey: Passkey, entry: dict, new_sign_count: int) -> bool:
    """Spend the challenge and note the use; False for a replayed answer."""
    if not _spend(entry):
        return False
    passkey.sign_count = new_sign_count
    passkey.last_used_at = now()
    return True


# --- the second factor of a password sign-in (the login page's factor step) -----------


def factor_options(account: Account) -> str:
    """The options (JSON) for navigator.credentials.get() on the factor page
    of ``account`` (whose password was right): its passkeys listed, user
    verification required, the challenge bound to that account."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

    options = generate_authentication_options(
        rp_id=rp_id(), challenge=_issue("factor", account=account.id),
        timeout=current_app.config["PASSKEY_CEREMONY_LIFETIME"] * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys_of(account)],
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options)


def confirm_factor(account: Account, response: str, address: str | None, device_cookie: str | None) -> list[str] | None:
    """The methods (``amr``) of a passkey of ``account`` that answered this
    browser's factor challenge for it, or None (audited as a failure of the
    second factor). Throttled like a code (second_factor.begin_attempt)."""
    guess = second_factor.begin_attempt(account, address, device_cookie)
    try:
        passkey, entry, new_sign_count = _verify_assertion(response, "factor")
        if passkey.account_id != account.id or entry.get("account") != account.id:
            raise Refusal("another account", passkey)
        guess.succeeded()  # before anything is written (see sign_in)
        if not _spend_login(passkey, entry, new_sign_count):
            raise Refusal("replayed", passkey)
    except Refusal as refused:
        guess.failed(kind=METHOD, reason=refused.reason, **({"detail": refused.detail} if refused.detail else {}))
        return None
    audit.record("second_factor.verified", account=account, kind=METHOD, amr=amr(passkey))
    return amr(passkey)

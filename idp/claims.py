"""What each scope reveals about a customer (SPEC §4), and the OIDC claims parameter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from flask import current_app

from .models import Account
from .security.text import unstorable

SCOPE_CLAIMS = {
    "openid": ("sub",),
    "profile": ("name", "name#ja-Kana-JP", "locale"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number",),
    "contract": ("customer_number",),
}
# The locale claim (a BCP 47 tag) of each language an account may use; an
# account that never said is Japanese, as every customer was before English.
LOCALE_CLAIMS = {"ja": "ja-JP", "en": "en"}
CLAIM_SCOPE = {claim: scope for scope, claims in SCOPE_CLAIMS.items() for claim in claims}
SUPPORTED_SCOPES = [*SCOPE_CLAIMS, "offline_access"]
SUPPORTED_CLAIMS = list(CLAIM_SCOPE)


def in_reading_order(scopes) -> list[str]:
    """Scopes as the consent and account pages list them (their words are in
    templates/_scopes.html): the supported ones in SUPPORTED_SCOPES order, then others."""
    unique = set(scopes)
    rank = {scope: i for i, scope in enumerate(SUPPORTED_SCOPES)}
    return sorted(unique, key=lambda s: (rank.get(s, len(rank)), s))


def subject_for(client, subject: str, secret: str | None = None) -> str:
    """The "sub" ``client`` sees for the account whose public subject is
    ``subject``: that subject itself, or for a pairwise client (OIDC Core
    8.1) base64url(HMAC-SHA-256(PAIRWISE_SECRET, sector identifier NUL
    subject)). The same on every node and after every restart and key
    rotation, as long as PAIRWISE_SECRET stays; never the same for two
    sectors. The one home of every sub the OP emits (ID tokens, access
    tokens, UserInfo, introspection, logout tokens). ``secret``: for callers
    outside an app context (oauth.lean); else the app's."""
    sector = client.sector_identifier if client is not None else None
    if sector is None:
        return subject
    key = (secret or current_app.config["PAIRWISE_SECRET"]).encode()
    mac = hmac.new(key, sector.encode() + b"\0" + subject.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def all_claims(account: Account, client, secret: str | None = None) -> dict:
    contract = account.contract
    claims = {
        "sub": subject_for(client, account.subject, secret),
        "name": contract.name_kanji,
        "name#ja-Kana-JP": contract.name_kana,
        "locale": LOCALE_CLAIMS.get(account.locale, "ja-JP"),
        "email": account.login_id,
        "email_verified": account.login_id_verified,
        "phone_number": contract.phone_e164,
        "customer_number": contract.customer_number,
    }
    return {k: v for k, v in claims.items() if v is not None}


def claims_for(account: Account, scope: str, requested: dict | None, client, secret: str | None = None) -> dict:
    """What ``client`` may read of ``account``: the claims of the granted
    scopes plus those named in a claims request member, "sub" as that client
    sees it (``subject_for``)."""
    names = {"sub"}
    for s in scope.split():
        names.update(SCOPE_CLAIMS.get(s, ()))
    names.update(name for name in (requested or {}) if name in CLAIM_SCOPE)
    available = all_claims(account, client, secret)
    return {name: available[name] for name in names if name in available}


def parse_claims_request(raw: str | None) -> dict | None:
    """The "claims" authorization parameter (Core 5.5); ValueError when malformed."""
    if not raw:
        return None
    if len(raw) > 4096:
        raise ValueError("claims is too long")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("claims is nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("claims must be a JSON object")
    if unstorable(value):
        raise ValueError("claims holds text that is not UTF-8")
    for member in ("userinfo", "id_token"):
        if member in value and not isinstance(value[member], dict):
            raise ValueError(f"claims.{member} must be a JSON object")
    return {m: value[m] for m in ("userinfo", "id_token") if m in value}


def _no_constant(name: str):
    """NaN and Infinity are not JSON (RFC 8259), and PostgreSQL's json type
    refuses them; Python's parser would accept them."""
    raise ValueError(f"claims holds {name}, which is not JSON")


def allowed_claims_request(raw: str | None, client) -> dict | None:
    """The claims request without claims of scopes the client is not registered for."""
    try:
        requested = parse_claims_request(raw)
    except ValueError:
        return None
    if requested is None:
        return None
    allowed = set(client.scope.split())
    return {
        member: {name: spec for name, spec in claims.items() if CLAIM_SCOPE.get(name) in allowed}
        for member, claims in requested.items()
    }


def scopes_implied(claims_request: dict | None) -> set[str]:
    """Scopes whose consent covers the individually requested claims."""
    implied = set()
    for member in (claims_request or {}).values():
        implied.update(CLAIM_SCOPE[name] for name in member if name in CLAIM_SCOPE)
    return implied

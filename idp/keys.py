"""Signing keys: generated once, stored in the database, shared by every process.

Each app keeps the current keys in memory (its ``idp.keys`` cache, see
idp/cache.py) for IDP_KEY_CACHE_SECONDS so that signing and the JWKS endpoint
cost no query; a key added by another process is seen within that time. The
JWKS document is serialised once per refresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cryptography.fernet import Fernet
from flask import current_app
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .extensions import db
from .models import SigningKey
from .security.clock import now
from .security.sealed import derived_fernet
from .security.secrets import new_secret

# The signing algorithms, the one list every other reads (client metadata,
# discovery, the CLI, the console): we sign ID tokens with each, and accept
# client assertions (private_key_jwt) signed with each (joserfc recommends both).
SUPPORTED_ALGS = ("RS256", "ES256")
# What signs when nobody chose: access tokens, UserInfo, and the ID tokens of
# clients that registered no id_token_signed_response_alg.
DEFAULT_ALG = "RS256"

# The first key of an algorithm signs from the beginning: no relying party
# can hold an older JWKS, so it needs no publish delay, and every process
# finds it signing whatever its clock says. Only one key per algorithm can
# carry this value (a partial unique index, migration 0012), which makes
# creating the first keys exactly-once across workers and nodes.
FIRST_KEY_ACTIVATES_AT = 0


@dataclass(frozen=True)
class KeyRing:
    signing: dict[str, KeySet]  # alg -> the one key that signs now
    public: KeySet  # every key that may still verify a live token
    jwks_bytes: bytes
    etag: str


def generate_key(alg: str, at: int, activates_at: int | None = None) -> SigningKey:
    kid = new_secret(12)
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, private=True)
    elif alg == "ES256":
        key = ECKey.generate_key("P-256", parameters=params, private=True)
    else:
        raise ValueError(f"unsupported signing algorithm {alg}")
    return SigningKey(
        kid=kid,
        alg=alg,
        private_jwk=_seal(json.dumps(key.as_dict(private=True))),
        created_at=at,
        activates_at=at if activates_at is None else activates_at,
    )


def rotate(alg: str) -> SigningKey:
    """Add a new key: published now, signing after KEY_PUBLISH_DELAY; the
    keys it replaces stop signing then and leave the JWKS once the longest
    token they signed has expired. Nobody's verification breaks.

    The caller commits, together with its audit row (idp.audit); this
    process forgets its cached keys when that commit happens."""
    config = current_app.config
    t = now()
    new = generate_key(alg, t, activates_at=t + config["KEY_PUBLISH_DELAY"])
    lifetime = max(config["ACCESS_TOKEN_LIFETIME"], config["ID_TOKEN_LIFETIME"])
    for old in db.session.scalars(
        db.select(SigningKey).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
    ):
        old.retired_at = new.activates_at
        old.removed_at = new.activates_at + lifetime
    db.session.add(new)
    cached = current_app.extensions["idp.keys"]
    event.listen(db.session(), "after_commit", lambda _session: cached.clear(), once=True)
    return new


def state(row: SigningKey, t: int) -> str:
    """What a key does now: next (published, not yet signing), active, retired (verifying only), removed."""
    if row.removed_at is not None and t >= row.removed_at:
        return "removed"
    if row.retired_at is not None and t >= row.retired_at:
        return "retired"
    return "active" if t >= row.activates_at else "next"


def ensure_signing_keys() -> None:
    """Create the first key of each algorithm that has no signing key (first
    start). Workers and nodes starting together all try: the unique index on
    first keys lets one per algorithm in, and the others use it. Each insert
    is its own transaction on its own connection, so that it neither commits
    nor rolls back the work of the request that needed the keys; on SQLite
    (one writer at a time) that request must not have written yet, so the
    token endpoint loads the keys first."""
    t = now()
    for alg in SUPPORTED_ALGS:
        if _signing_row(alg, t) is not None:
            continue
        try:
            with Session(db.engine) as session, session.begin():
                session.add(generate_key(alg, t, activates_at=FIRST_KEY_ACTIVATES_AT))
        except IntegrityError:
            pass  # another process created it first; that one signs


def keyring() -> KeyRing:
    """This app's keys, loaded at most once per IDP_KEY_CACHE_SECONDS."""
    return current_app.extensions["idp.keys"].get("ring", _load)


def forget_cached_keys() -> None:
    current_app.extensions["idp.keys"].clear()


def signing_keyset(alg: str = DEFAULT_ALG) -> KeySet:
    return keyring().signing[alg]


def _signing_row(alg: str, t: int) -> SigningKey | None:
    return db.session.scalar(
        db.select(SigningKey)
        .where(
            SigningKey.alg == alg,
            SigningKey.activates_at <= t,
            SigningKey.retired_at.is_(None) | (SigningKey.retired_at > t),
        )
        .order_by(SigningKey.activates_at.desc(), SigningKey.id.desc())
        .limit(1)
    )


def _load() -> KeyRing:
    t = now()  # one instant for the whole ring: every row below is chosen at t
    rows = {alg: _signing_row(alg, t) for alg in SUPPORTED_ALGS}
    if None in rows.values():
        ensure_signing_keys()
        rows = {alg: _signing_row(alg, t) for alg in SUPPORTED_ALGS}
    unsigned = [alg for alg, row in rows.items() if row is None]
    if unsigned:  # only a hand-edited table gets here: first keys always sign
        raise RuntimeError(f"no {', '.join(unsigned)} key signs now; see flask keys list")
    published = db.session.scalars(
        db.select(SigningKey)
        .where(SigningKey.removed_at.is_(None) | (SigningKey.removed_at > t))
        .order_by(SigningKey.id)
    ).all()
    # A stored key never changes, and importing an RSA key (its checks) costs
    # tens of milliseconds: a reload every KEY_CACHE_SECONDS reuses the keys
    # the last one imported.
    # The signing rows are published rows too: each key is imported once.
    known = current_app.extensions.get("idp.imported_keys", {})
    imported = {}
    for row in [*rows.values(), *published]:
        name = (row.kid, row.private_jwk)
        if name not in imported:
            imported[name] = known.get(name) or _import(row)
    current_app.extensions["idp.imported_keys"] = imported
    signing = {alg: KeySet([imported[row.kid, row.private_jwk]]) for alg, row in rows.items()}
    public = KeySet([imported[row.kid, row.private_jwk] for row in published])
    jwks_bytes = json.dumps(public.as_dict(private=False), separators=(",", ":")).encode()
    etag = hashlib.sha256(jwks_bytes).hexdigest()[:32]
    return KeyRing(signing, public, jwks_bytes, etag)


def _seal(private_jwk: str) -> str:
    """Private keys at rest are encrypted when IDP_KEY_ENCRYPTION_KEY is set."""
    fernet = _kek()
    return "fernet:" + fernet.encrypt(private_jwk.encode()).decode() if fernet else private_jwk


def _unseal(stored: str) -> str:
    if not stored.startswith("fernet:"):
        return stored
    fernet = _kek()
    if fernet is None:
        raise RuntimeError("signing keys are encrypted: set IDP_KEY_ENCRYPTION_KEY")
    return fernet.decrypt(stored.removeprefix("fernet:").encode()).decode()


def _kek() -> Fernet | None:
    key = current_app.config.get("KEY_ENCRYPTION_KEY")
    if not key:
        return None
    return derived_fernet("idp signing keys", str(key))


def _import(row: SigningKey):
    data = json.loads(_unseal(row.private_jwk))
    return RSAKey.import_key(data) if data["kty"] == "RSA" else ECKey.import_key(data)

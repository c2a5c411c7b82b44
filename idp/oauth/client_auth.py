"""private_key_jwt client authentication (RFC 7523, OIDC Core 9) through Authlib.

The client's public keys come from its registered ``jwks``, or from its
``jwks_uri``: fetched with a timeout, cached per process for
``JWKS_CACHE_SECONDS``, and fetched again at once when an assertion names a
key the cache does not know (the client rotated). Each assertion's ``jti``
is accepted once, across every node (a unique row); a few seconds of clock
skew are allowed.
"""

from __future__ import annotations

import json
import threading
import time

from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app, g
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import UsedAssertion
from ..security import outbound
from ..security.clock import now
from ..security.secrets import digest

JWKS_CACHE_SECONDS = 300
REFETCH_SECONDS = 10  # forced fetches (unknown kid) per URI, at most this often
FETCH_TIMEOUT = 5
MAX_JWKS_BYTES = 64 * 1024
SKEW = 5
ASSERTION_MAX_LIFETIME = 600

_cache: dict[str, tuple[float, dict]] = {}
_forced: dict[str, float] = {}
_cache_lock = threading.Lock()


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True, leeway=SKEW)

    def get_audiences(self):
        issuer = current_app.config["ISSUER"]
        return [f"{issuer}/token", issuer, f"{issuer}/revoke", f"{issuer}/introspect"]

    def resolve_client_public_key(self, client):
        g.idp_assertion_client = client
        return KeySet.import_key_set(client_jwks(client))

    def extract_assertion(self, assertion: str):
        headers, claims = super().extract_assertion(assertion)
        g.idp_assertion_alg = headers.get("alg")
        g.idp_assertion_kid = headers.get("kid")
        return headers, claims

    def authenticate_client(self, client):
        # Registration 1.0 2: a registered signing alg is the only one accepted.
        registered = client.client_metadata.get("token_endpoint_auth_signing_alg")
        if registered and g.get("idp_assertion_alg") != registered:
            raise InvalidClientError(description=f"The client assertion must be signed with {registered}.")
        return super().authenticate_client(client)

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            return super().process_assertion_claims(assertion, resolve_key)
        except InvalidClientError:
            client = g.get("idp_assertion_client")
            kid = g.get("idp_assertion_kid")
            if client is None or not client.client_metadata.get("jwks_uri") or not kid:
                raise
            if any(key.get("kid") == kid for key in client_jwks(client).get("keys", [])):
                raise  # the key is known: the assertion itself is bad
            # A key the cache does not know yet (the client rotated): fetch once
            # more, at most every REFETCH_SECONDS per URI.
            fresh = KeySet.import_key_set(client_jwks(client, force=True))
            return super().process_assertion_claims(assertion, fresh)

    def validate_jti(self, claims, jti):
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp > now() + ASSERTION_MAX_LIFETIME:
            return False  # a long-lived assertion could be replayed for too long
        db.session.add(UsedAssertion(digest=digest(f"{claims['sub']}\0{jti}"), expires_at=exp + SKEW))
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            return False
        return True


def client_jwks(client, force: bool = False) -> dict:
    metadata = client.client_metadata
    if metadata.get("jwks"):
        return metadata["jwks"]
    uri = metadata.get("jwks_uri")
    if not uri:
        raise InvalidClientError(description="The client has no keys.")
    with _cache_lock:
        cached = _cache.get(uri)
    t = time.monotonic()
    if cached and not force and t - cached[0] < JWKS_CACHE_SECONDS:
        return cached[1]
    if cached and force:
        with _cache_lock:
            if t - _forced.get(uri, -REFETCH_SECONDS) < REFETCH_SECONDS:
                return cached[1]
            _forced[uri] = t
    try:
        status, body = outbound.request("GET", uri, headers={"Accept": "application/json"},
                                        allow_private=current_app.config["ALLOW_PRIVATE_OUTBOUND"],
                                        timeout=FETCH_TIMEOUT, deadline=2 * FETCH_TIMEOUT, max_bytes=MAX_JWKS_BYTES)
        if status != 200:
            raise ValueError(f"status {status}")
        jwks = json.loads(body)
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ValueError("not a JWK Set")
    except (OSError, ValueError) as error:
        current_app.logger.warning("jwks_uri of %s unusable: %s", client.client_id, error)
        if cached:
            return cached[1]
        raise InvalidClientError(description="The client's jwks_uri could not be read.") from None
    with _cache_lock:
        _cache[uri] = (time.monotonic(), jwks)
    return jwks


def prune_used_assertions() -> int:
    return db.session.execute(db.delete(UsedAssertion).where(UsedAssertion.expires_at < now())).rowcount

"""DPoP: access tokens bound to a key the client proves it holds (RFC 9449).

Authlib 1.9 has no DPoP on the server side (its issue 724, pull request
814); this module adds it through Authlib's hooks, and is the one home of
its rules. Section numbers below are RFC 9449's.

- ``check_proof``: the DPoP proof of the current request (4.3): one DPoP
  header holding a JWS (joserfc parses and verifies it), typ ``dpop+jwt``,
  an asymmetric alg of ``ALGS``, a public ``jwk`` that verifies it, ``htm``
  and ``htu`` naming this request, ``iat`` within DPOP_PROOF_WINDOW seconds
  of the OP's clock, a ``jti`` never seen before within that window on any
  node (``Replay``), a ``nonce`` the OP issued when DPOP_NONCE_REQUIRED
  (``Nonces``), and at a resource ``ath``, the access token's hash.
- ``TokenBinding`` (a grant extension, run after Authlib checked the
  client, the code or refresh token and PKCE, before it issues tokens):
  a valid proof binds the new access token to its key (5, 6): the token
  row's ``dpop_jkt``, ``cnf.jkt`` in the JWT access token and
  ``token_type: DPoP`` (``bound_jkt`` says so to ``server``). It also
  enforces what a proof must be there for: a client registered with
  ``dpop_bound_access_tokens`` (5.2), a code whose authorization request
  named ``dpop_jkt`` (10), and a public client's refresh token, bound to the
  key it was issued with (5).
- ``AuthorizationRequestKey`` (a grant extension at /authorize): the
  ``dpop_jkt`` parameter's syntax (10); ``tokens.store_code`` keeps it.
- ``bind_pushed_request``: a proof sent with a pushed authorization request
  (oauth.par) binds the code as ``dpop_jkt`` does (10.1).
- ``DPoPTokenValidator``: the ``DPoP`` authorization scheme at UserInfo
  (7.1): a proof with ``ath`` whose key the token is bound to.
  ``refuse_as_bearer`` answers a bound token presented as Bearer (7.2).
- Introspection names the key of a bound access token (``cnf.jkt``, 6.2;
  ``server.IntrospectionEndpoint``).

Errors: ``invalid_dpop_proof`` and ``use_dpop_nonce`` (with a fresh
DPoP-Nonce header): 400 at the token endpoint (5), 401 with a ``DPoP``
WWW-Authenticate challenge at a resource (7.1, 9).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import pybreaker
import redis
from authlib.oauth2.rfc6749 import TokenValidator
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750.errors import InsufficientScopeError
from flask import current_app, g, request
from joserfc import jwk, jws, jwt
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry
from sqlalchemy import delete

from .. import tokens
from ..extensions import db, upsert
from ..models import UsedDPoPProof
from ..security.clock import now
from ..security.secrets import digest
from ..security.throttle import redis_client

log = logging.getLogger(__name__)

# 3, 4.2: asymmetric algorithms only ("none" and MACs are refused), each one
# tested in tests/oauth/test_dpop.py; published as
# dpop_signing_alg_values_supported (5.1).
ALGS = ("ES256", "ES384", "RS256", "PS256", "Ed25519")  # Ed25519: RFC 9864, which deprecates "EdDSA"
TYP = "dpop+jwt"  # 4.2
HEADER = "DPoP"
# 4.2: a proof is a JWS in compact serialisation. The length bounds what
# joserfc is asked to parse (an RSA 4096 key and every claim fit easily).
COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_PROOF_LENGTH = 8192
MAX_JTI_LENGTH = 256
MIN_RSA_BITS = 2048


class _ProofRegistry(JWSRegistry):
    """joserfc's JWS rules for proofs: the published algs only, and room in
    the header for the jwk (joserfc's default 512 bytes holds no RSA key)."""

    max_header_length = 4096
    max_payload_length = 4096


REGISTRY = _ProofRegistry(algorithms=list(ALGS))

# JWK members of private or symmetric keys (RFC 7518 6.2.2, 6.3.2, 6.4): 4.2
# says the jwk "MUST NOT contain a private key".
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
# 6.1, 10: a JWK SHA-256 thumbprint (RFC 7638), base64url without padding.
JKT = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Proof:
    jkt: str  # the thumbprint of the proof's key (RFC 7638, SHA-256)
    jti: str


# --- errors ------------------------------------------------------------------


class DPoPError(OAuth2Error):
    """invalid_dpop_proof or use_dpop_nonce: 400 at the token endpoint (5);
    401 with a DPoP challenge at a resource (7.1), which also answers
    invalid_token there. ``nonce``: a fresh DPoP-Nonce header (8, 9)."""

    def __init__(self, error: str, description: str, *, resource: bool, nonce: str | None = None) -> None:
        super().__init__(description, status_code=401 if resource else 400)
        self.error, self.resource, self.nonce = error, resource, nonce

    def get_headers(self):
        headers = super().get_headers()
        if self.resource:
            headers.append(("WWW-Authenticate", challenge(self.error, self.description)))
        if self.nonce:
            headers.append(("DPoP-Nonce", self.nonce))
        return headers


def challenge(error: str | None = None, description: str | None = None) -> str:
    """7.1: the DPoP WWW-Authenticate challenge, naming the algs accepted."""
    parts = [f'error="{error}"'] if error else []
    if description:
        parts.append(f'error_description="{description}"')
    parts.append(f'algs="{" ".join(ALGS)}"')
    return "DPoP " + ", ".join(parts)


def refuse_as_bearer() -> DPoPError:
    """7.2: a DPoP-bound access token presented as a Bearer token is refused:
    401 with a DPoP challenge, since only the DPoP scheme can use it."""
    return DPoPError("invalid_token", "The access token is DPoP-bound: present it with the DPoP scheme.",
                     resource=True)


# --- proofs (4.3) --------------------------------------------------------------


def check_proof(*, resource: bool, access_token: str | None = None) -> Proof | None:
    """The current request's DPoP proof, checked by every rule of 4.3; None
    when the request has no DPoP header. ``resource``: a protected resource
    (the proof must hash ``access_token``: ``ath``, 4.3 item 12)."""
    values = request.headers.getlist(HEADER)
    if not values:
        return None
    config = current_app.config

    def refuse(description: str) -> DPoPError:
        return DPoPError("invalid_dpop_proof", description, resource=resource)

    # 4.3 item 1: exactly one DPoP header (a server joins repeated ones with a comma).
    if len(values) != 1 or not COMPACT.fullmatch(values[0]) or len(values[0]) > MAX_PROOF_LENGTH:
        raise refuse("The request must carry exactly one DPoP proof, a compact JWS.")
    proof = values[0]
    try:
        header = jws.extract_compact(proof.encode(), registry=REGISTRY).headers()  # 4.3 item 2: well-formed
    except (JoseError, ValueError, TypeError):
        raise refuse("The DPoP proof is not a well-formed JWS.") from None
    if header.get("typ") != TYP:  # 4.3 item 4
        raise refuse(f"The DPoP proof's typ must be {TYP}.")
    alg = header.get("alg")
    if alg not in ALGS:  # 4.3 item 5: asymmetric, supported, not none
        raise refuse(f"The DPoP proof's alg must be one of {', '.join(ALGS)}.")
    key = _public_key(header.get("jwk"))  # 4.3 item 7
    if key is None:
        raise refuse("The DPoP proof's jwk must be a public key of a supported type.")
    try:
        claims = jwt.decode(proof, key, algorithms=[alg], registry=REGISTRY).claims  # 4.3 item 6: the jwk verifies it
    except (JoseError, ValueError, TypeError):
        raise refuse("The DPoP proof's signature does not verify with its jwk.") from None

    # 4.3 item 3: the claims 4.2 requires, typed.
    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH and isinstance(htm, str)
            and isinstance(htu, str) and isinstance(iat, int) and not isinstance(iat, bool)):
        raise refuse("The DPoP proof needs jti, htm, htu and iat.")
    if htm != request.method:  # 4.3 item 8
        raise refuse("The DPoP proof's htm is not this request's method.")
    if _normalised(htu) != _normalised(current_app.config["ISSUER"] + request.path):  # 4.3 item 9
        raise refuse("The DPoP proof's htu is not this endpoint's URL.")
    if config["DPOP_NONCE_REQUIRED"] and not _nonces().valid(claims.get("nonce")):  # 4.3 item 10, 8, 9
        raise DPoPError("use_dpop_nonce", "The DPoP proof must carry the nonce the server provides.",
                        resource=resource, nonce=_nonces().current())
    t, window = now(), config["DPOP_PROOF_WINDOW"]
    if abs(t - iat) > window:  # 4.3 item 11
        raise refuse("The DPoP proof's iat is outside the accepted window.")
    if resource and claims.get("ath") != access_token_hash(access_token or ""):  # 4.3 item 12, 7.1
        raise refuse("The DPoP proof's ath does not match the access token.")
    jkt = key.thumbprint()
    # 11.1: a proof is used once. Kept until its iat leaves the window.
    if not current_app.extensions["idp.dpop_replay"].first_use(digest(f"{jkt}\0{jti}"), iat + window, t):
        raise refuse("The DPoP proof was used before.")
    return Proof(jkt, jti)


def access_token_hash(access_token: str) -> str:
    """4.2 ath: base64url(SHA-256(ASCII of the access token)), no padding."""
    return _b64(hashlib.sha256(access_token.encode("ascii", "replace")).digest())


def _public_key(member):
    """The proof's ``jwk``: a public EC, RSA (at least 2048 bits) or OKP key; None otherwise."""
    if not isinstance(member, dict) or PRIVATE_MEMBERS & set(member):
        return None
    try:
        key = jwk.import_key(member)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    if key.is_private or key.key_type not in ("EC", "RSA", "OKP"):
        return None
    if key.key_type == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:
        return None
    return key


_UNRESERVED = "-._~"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _normalised(url: str) -> tuple | None:
    """A URL compared as 4.3 item 9 says: without its query and fragment,
    after RFC 3986 6.2.2 and 6.2.3 normalisation (case of scheme and host,
    default port, empty path, percent-encoding); None when not an http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    path = quote(unquote(parts.path or "/"), safe="/!$&'()*+,;=:@" + _UNRESERVED)
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --- nonces (8, 9) ---------------------------------------------------------------


class Nonces:
    """Server-provided nonces, verifiable on every node without shared
    state: the number of the current period of DPOP_NONCE_LIFETIME seconds
    and its HMAC under a key derived from IDP_SECRET_KEY. A nonce is
    accepted in its own period and the next one."""

    def __init__(self, secret: str, lifetime: int) -> None:
        self._key = hashlib.sha256(b"idp dpop nonce\0" + secret.encode()).digest()
        self._lifetime = lifetime

    def _for(self, period: int) -> str:
        packed = period.to_bytes(8, "big")
        return _b64(packed + hmac.new(self._key, packed, hashlib.sha256).digest()[:16])

    def current(self) -> str:
        return self._for(now() // self._lifetime)

    def valid(self, nonce) -> bool:
        if not isinstance(nonce, str) or len(nonce) != 32:
            return False
        period = now() // self._lifetime
        return any(hmac.compare_digest(nonce, self._for(p)) for p in (period, period - 1))


def _nonces() -> Nonces:
    return Nonces(current_app.secret_key, current_app.config["DPOP_NONCE_LIFETIME"])


def add_nonce(response):
    """8.2, 9: when nonces are required, every answer to a request that
    carried a proof names the current nonce, so the client never needs a
    failed request to learn it."""
    if current_app.config["DPOP_NONCE_REQUIRED"] and HEADER in request.headers and "DPoP-Nonce" not in response.headers:
        response.headers["DPoP-Nonce"] = _nonces().current()
    return response


# --- replay (11.1) ------------------------------------------------------------------


class DatabaseReplay:
    """Used proofs in the ``used_dpop_proofs`` table (the one store every
    node shares when no Redis is configured). One statement on the request's
    connection: on PostgreSQL the endpoints that check proofs run in
    autocommit (``tokens.without_transaction``), so it is visible to every
    node at once; on SQLite (one node) it commits with the request. A row
    whose window has passed is taken over; the rest are removed now and
    then (``PRUNE_EVERY``) and by ``flask audit prune``."""

    PRUNE_EVERY = 1000

    def __init__(self) -> None:
        self._uses = itertools.count(1)

    def first_use(self, key: str, expires_at: int, at: int) -> bool:
        table = UsedDPoPProof.__table__
        insert = upsert(table)
        statement = (
            insert.values(digest=key, expires_at=expires_at)
            .on_conflict_do_update(index_elements=[table.c.digest], set_={"expires_at": insert.excluded.expires_at},
                                   where=table.c.expires_at < at)
            .returning(table.c.id)
        )
        first = db.session.connection().execute(statement).first() is not None
        if next(self._uses) % self.PRUNE_EVERY == 0:
            prune(at)
        return first


class RedisReplay:
    """Used proofs in Redis (SET NX with an expiry); in the database while a
    circuit breaker is open, as the throttle counters do
    (``security.throttle``): a silent Redis costs one timeout per
    REDIS_BREAKER_RESET seconds and process."""

    def __init__(self, client: redis.Redis, fallback: DatabaseReplay, reset_timeout: int) -> None:
        self._redis, self._fallback = client, fallback
        self._breaker = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=reset_timeout, listeners=[_LogState()],
                                                 name="redis dpop replay")

    def first_use(self, key: str, expires_at: int, at: int) -> bool:
        try:
            return bool(self._breaker.call(self._redis.set, f"dpop:{key}", 1, nx=True, ex=max(1, expires_at - at + 1)))
        except (redis.RedisError, pybreaker.CircuitBreakerError):
            return self._fallback.first_use(key, expires_at, at)


class _LogState(pybreaker.CircuitBreakerListener):
    def state_change(self, breaker, old_state, new_state) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            log.warning("Redis did not answer: DPoP proofs checked in the database for %d s", breaker.reset_timeout)
        elif new_state.name == pybreaker.STATE_CLOSED:
            log.warning("Redis answers again: DPoP proofs checked in Redis")


def make_replay(config) -> DatabaseReplay | RedisReplay:
    database = DatabaseReplay()
    if not config["REDIS_URL"]:
        return database
    return RedisReplay(redis_client(config), database, config["REDIS_BREAKER_RESET"])


def prune(at: int) -> int:
    """Remove used proofs whose window has passed; returns how many."""
    return db.session.execute(delete(UsedDPoPProof).where(UsedDPoPProof.expires_at < at)).rowcount


# --- the token endpoint (5, 10) ----------------------------------------------------------


class TokenBinding:
    """A grant extension for every grant of the token endpoint."""

    def __call__(self, grant) -> None:
        grant.register_hook("before_create_token_response", self.bind)

    def bind(self, grant) -> None:
        oauth_request = grant.request
        client = oauth_request.client
        proof = check_proof(resource=False)
        code = getattr(oauth_request, "authorization_code", None)
        refresh_token = getattr(oauth_request, "refresh_token", None)
        required = (client.client_metadata.get("dpop_bound_access_tokens")  # 5.2
                    or (code is not None and code.dpop_jkt)  # 10
                    or (refresh_token is not None and client.is_public and refresh_token.dpop_jkt))  # 5
        if proof is None:
            if required:
                raise DPoPError("invalid_dpop_proof", "This token request must carry a DPoP proof.", resource=False)
            return
        if code is not None and code.dpop_jkt and code.dpop_jkt != proof.jkt:
            raise InvalidGrantError("The DPoP proof's key is not the one the authorization request named (dpop_jkt).")
        if refresh_token is not None and client.is_public and refresh_token.dpop_jkt not in (None, proof.jkt):
            raise InvalidGrantError("The refresh token is bound to another DPoP key.")
        g.idp_dpop_jkt = proof.jkt


def bound_jkt() -> str | None:
    """The key the token being issued in this request is bound to (None: a Bearer token)."""
    return g.get("idp_dpop_jkt")


class AuthorizationRequestKey:
    """10: ``dpop_jkt`` at /authorize, a JWK SHA-256 thumbprint."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant, redirect_uri) -> None:
        value = grant.request.payload.data.get("dpop_jkt")
        if value is not None and not JKT.fullmatch(value):
            raise InvalidRequestError("'dpop_jkt' must be a JWK SHA-256 thumbprint (base64url).")


def bind_pushed_request(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """10.1: the parameters of a pushed authorization request (RFC 9126),
    naming the key of the push's DPoP proof as ``dpop_jkt`` when it has one,
    so that the code is bound to that key; a ``dpop_jkt`` sent too must be
    that key's thumbprint."""
    proof = check_proof(resource=False)
    if proof is None:
        return params
    if dict(params).get("dpop_jkt", proof.jkt) != proof.jkt:
        raise DPoPError("invalid_dpop_proof", "The dpop_jkt is not the thumbprint of the DPoP proof's key.",
                        resource=False)
    return [(key, value) for key, value in params if key != "dpop_jkt"] + [("dpop_jkt", proof.jkt)]


# --- protected resources (7) ----------------------------------------------------------------


class DPoPTokenValidator(TokenValidator):
    """``Authorization: DPoP <token>`` with a proof of the key the token is
    bound to (7.1). A token not bound to a key cannot be proved with one: it
    is refused like a token bound to another key (4.3 item 12: "the public
    key to which the access token is bound"). The proof's key travels to
    ``validate_token`` in Flask's request-local ``g``."""

    TOKEN_TYPE = "dpop"

    def authenticate_token(self, token_string):
        proof = check_proof(resource=True, access_token=token_string)
        if proof is None:
            raise DPoPError("invalid_dpop_proof", "The DPoP scheme needs a DPoP proof.", resource=True)
        g.idp_dpop_resource_jkt = proof.jkt
        return tokens.bearer(token_string)

    def validate_token(self, token, scopes, request):
        def refuse(description: str) -> DPoPError:
            return DPoPError("invalid_token", description, resource=True)

        if token is None or token.is_expired() or token.is_revoked():
            raise refuse("The access token is not valid.")
        if token.dpop_jkt is None or token.dpop_jkt != g.get("idp_dpop_resource_jkt"):
            raise refuse("The access token is not bound to the DPoP proof's key.")
        if self.scope_insufficient(token.get_scope(), scopes):
            raise InsufficientScopeError()

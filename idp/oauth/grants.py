"""The grants: each answers Authlib's storage questions and adds what Authlib lacks.

Added through Authlib's hooks, not by copying its protocol code:
- ``AuthorizationRequestChecks``: response_mode, PKCE required for public
  clients, prompt / max_age / claims syntax, request objects refused.
- ``S256CodeChallenge``: PKCE with S256 only (RFC 9700 2.1.1).
- code tombstones: a second use of a code revokes what the first issued.
- refresh token families: replaying a rotated token revokes the family.
"""

from __future__ import annotations

import functools

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from flask import current_app, g
from sqlalchemy import bindparam, select, update

from .. import audit
from ..claims import allowed_claims_request, claims_for, parse_claims_request
from ..extensions import db
from ..keys import signing_keyset
from ..models import AuthorizationCode, Token
from ..security.clock import now
from ..security.secrets import digest

CONFIDENTIAL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
CLIENT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]
RESPONSE_MODES = {"query", "form_post"}
PROMPTS = {"none", "login", "consent", "select_account"}


class AuthorizationRequestChecks:
    """Authorization-request rules of SPEC §4/§6 that Authlib leaves to us."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant, redirect_uri) -> None:
        data = grant.request.payload.data
        if data.get("request"):
            raise _error("request_not_supported", "Request objects are not supported.")
        if data.get("request_uri"):
            raise _error("request_uri_not_supported", "request_uri is not supported.")
        if data.get("response_mode", "query") not in RESPONSE_MODES:
            raise InvalidRequestError("Unsupported 'response_mode'.")
        if not set((data.get("prompt") or "").split()) <= PROMPTS:
            raise InvalidRequestError("Unsupported 'prompt' value.")
        max_age = data.get("max_age")
        if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 10):
            raise InvalidRequestError("'max_age' must be a non-negative integer.")
        try:
            parse_claims_request(data.get("claims"))
        except ValueError:
            raise InvalidRequestError("'claims' must be a JSON object.") from None
        if grant.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("Public clients must use PKCE (code_challenge).")


class S256CodeChallenge(CodeChallenge):
    """PKCE with S256 only: "plain", or a challenge without a method, is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        super().validate_code_challenge(grant, redirect_uri)
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    @staticmethod
    def validate_no_multiple_request_parameter(request):
        """RFC 6749 3.1 for every parameter, not only the five Authlib checks:
        a repeated nonce, code_challenge or prompt is as ambiguous as a
        repeated redirect_uri. Raised without a redirect URI: a page."""
        for name, values in request.payload.datalist.items():
            if len(values) > 1:
                raise InvalidRequestError(f"The parameter '{name[:40]}' is repeated.")

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        # Authlib would quote the presented URI in the error description, and
        # refuse to build that error when the URI holds characters RFC 6749
        # forbids there; a fixed description serves every case.
        uri = request.payload.redirect_uri
        if uri and not client.check_redirect_uri(uri):
            raise InvalidRequestError("The redirect URI is not registered for this client.")
        return grants.AuthorizationCodeGrant.validate_authorization_redirect_uri(request, client)

    def save_authorization_code(self, code, request):
        """``request.user`` is the customer's LoginSession (see authorize.py)."""
        login_session = request.user
        data = request.payload.data
        issued = now()
        db.session.add(
            AuthorizationCode(
                code_digest=digest(code),
                client_id=request.client.client_id,
                account_id=login_session.account_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                claims_request=allowed_claims_request(data.get("claims"), request.client),
                auth_time=login_session.auth_time,
                sid=login_session.sid,
                created_at=issued,
                expires_at=issued + current_app.config["AUTHORIZATION_CODE_LIFETIME"],
            )
        )
        db.session.commit()

    def query_authorization_code(self, code, client):
        """A live code of this client. A code presented after it was used is
        reuse: what the first use issued is revoked (RFC 9700 4.2.4)."""
        row = db.session.scalar(
            db.select(AuthorizationCode).filter_by(code_digest=digest(code), client_id=client.client_id)
        )
        if row is None:
            return None
        if row.used_at is not None:
            _code_reused(row, now())
            return None
        if now() >= row.expires_at:
            return None
        return row

    def delete_authorization_code(self, authorization_code):
        """Claim the code only now, after every check passed: a rejected request
        (wrong verifier, wrong redirect URI) leaves it usable. Of two
        concurrent exchanges exactly one wins; the other is reuse."""
        t = now()
        if not claim_and_store(AuthorizationCode, authorization_code.id, "used_at", t, self.request.idp_token_row):
            _code_reused(db.session.get(AuthorizationCode, authorization_code.id), t)
            raise InvalidGrantError("Invalid 'code' in request.")

    def authenticate_user(self, authorization_code):
        account = authorization_code.account
        return account if account.is_active else None


class OpenIDCode(oidc_grants.OpenIDCode):
    def exists_nonce(self, nonce, request):
        # The nonce protects the RP against ID token replay; the OP does not
        # reject a repeated nonce (RPs retrying a login legitimately repeat it).
        return False

    def get_client_algorithm(self, client):
        return client.id_token_signed_response_alg or "RS256"

    def resolve_client_private_key(self, client):
        return signing_keyset(self.get_client_algorithm(client))

    def get_client_claims(self, client):
        issued = now()
        return {
            "iss": current_app.config["ISSUER"],
            "aud": client.client_id,
            "iat": issued,
            "exp": issued + current_app.config["ID_TOKEN_LIFETIME"],
        }

    def get_authorization_code_claims(self, authorization_code):
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            claims["sid"] = authorization_code.sid
        return claims

    def encode_id_token(self, token, request):
        # generate_user_info() is not told which code it serves; the claims
        # request travels through the request-local g.
        g.idp_id_token_claims = (request.authorization_code.claims_request or {}).get("id_token")
        return super().encode_id_token(token, request)

    def generate_user_info(self, user, scope):
        # An access token is issued with every ID token here, so scope claims
        # come from UserInfo (Core 5.4); the ID token carries "sub" and what
        # the claims parameter asked of it. It travels in id_token_hint URLs
        # and logs, so it stays free of personal data unless asked.
        return claims_for(user, "openid", g.pop("idp_id_token_claims", None))


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        """A live refresh token of this client; a rotated one presented again
        is replay, and the whole family is revoked."""
        row = token_by_digest("refresh_token", refresh_token)
        if row is None or row.client_id != self.request.client.client_id:
            return None
        if row.rotated_at is not None and row.revoked_at is None:
            _refresh_replayed(row, now())
            return None
        return row if row.is_refresh_usable(now()) else None

    def authenticate_user(self, refresh_token):
        account = refresh_token.account
        return account if account is not None and account.is_active else None

    def revoke_old_credential(self, refresh_token):
        """Rotate: claim the old token only now, after every check passed (a
        rejected request, e.g. a wider scope, leaves it usable). Of two
        concurrent refreshes exactly one wins; the other is replay."""
        t = now()
        if not claim_and_store(Token, refresh_token.id, "rotated_at", t, self.request.idp_token_row):
            _refresh_replayed(db.session.get(Token, refresh_token.id), t)
            raise InvalidGrantError()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS


def revoke_tokens(condition, at: int) -> None:
    db.session.execute(update(Token).where(condition, Token.revoked_at.is_(None)).values(revoked_at=at))


def _code_reused(row: AuthorizationCode, at: int) -> None:
    _one_transaction()
    revoke_tokens(Token.authorization_code_id == row.id, at)
    audit.record("token.code_reuse", "failure", account=row.account, client_id=row.client_id)


def _refresh_replayed(row: Token, at: int) -> None:
    _one_transaction()
    revoke_tokens(Token.family_id == row.family_id, at)
    audit.record("token.refresh_reuse", "failure", account=row.account, client_id=row.client_id)


def _one_transaction() -> None:
    """Leave the token endpoint's autocommit (PostgreSQL): the revocation and
    its audit row that follow commit together, when the request ends."""
    if db.session.connection().get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        db.session.commit()


def token_by_digest(kind: str, presented: str) -> Token | None:
    """The row of a presented access or refresh token (``kind``), by digest."""
    return db.session.scalar(_select_token(kind), {"digest": digest(presented)})


@functools.cache
def _select_token(kind: str):
    column = Token.refresh_token_digest if kind == "refresh_token" else Token.access_token_digest
    return db.select(Token).where(column == bindparam("digest"))


def store_token(token_row: dict) -> None:
    """Write a new ``tokens`` row (column values from ``server.token_row``)."""
    db.session.connection().execute(_insert_token(), token_row)


def claim_and_store(model, row_id: int, column: str, at: int, token_row: dict) -> bool:
    """Spend a code or refresh token and store the token it bought, atomically:
    ``column`` is set only if nobody set it before, and the new token row is
    written only by the winner. True for the winner.

    On PostgreSQL this is one statement (a data-modifying CTE), so that with
    the token endpoint in autocommit mode an exchange costs three round trips:
    the pool's pre-ping, reading the credential, and this."""
    connection = db.session.connection()
    params = {"claim_id": row_id, "claim_at": at}
    if connection.dialect.name != "postgresql":  # SQLite: no DML in CTEs; one transaction (views.token)
        if connection.execute(_claim(model, column), params).rowcount != 1:
            return False
        store_token(token_row)
        return True
    params.update((f"new_{name}", value) for name, value in token_row.items())
    return connection.execute(_claim_and_insert(model, column, tuple(token_row)), params).first() is not None


# The statements are built once: building and cache-keying a fresh SQLAlchemy
# statement per request cost more CPU than executing it.
@functools.cache
def _insert_token():
    return Token.__table__.insert()


@functools.cache
def _claim(model, column: str):
    table = model.__table__
    unspent = [table.c[column].is_(None)]
    if "revoked_at" in table.c:  # a refresh token revoked since it was read is spent too
        unspent.append(table.c.revoked_at.is_(None))
    return table.update().where(table.c.id == bindparam("claim_id"), *unspent).values({column: bindparam("claim_at")})


@functools.cache
def _claim_and_insert(model, column: str, names: tuple[str, ...]):
    """The claim as a CTE, and an INSERT of the columns ``names`` (what
    server.token_row sets; any other column takes its default)."""
    claimed = _claim(model, column).returning(model.__table__.c.id).cte("claimed")
    tokens = Token.__table__
    # Prefixed bind names: Core would read a parameter named like a column of
    # the UPDATE's table as a value to SET.
    row = select(*(bindparam(f"new_{name}", type_=tokens.c[name].type) for name in names)).select_from(claimed)
    return tokens.insert().from_select(list(names), row).returning(tokens.c.id)


def _error(code: str, description: str) -> InvalidRequestError:
    error = InvalidRequestError(description)
    error.error = code
    return error

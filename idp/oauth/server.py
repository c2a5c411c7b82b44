"""Authlib's authorization server, wired once per app (``config_oauth``).

Protocol handling stays in Authlib; this module answers its storage
questions (clients, tokens) and registers the grants and endpoints.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import (
    AuthorizationServer as _AuthorizationServer,
)
from authlib.integrations.flask_oauth2 import ResourceProtector, current_token
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app, g

from .. import audit
from ..claims import SUPPORTED_SCOPES, claims_for
from ..keys import keyring, signing_keyset
from ..models import Client, Token
from ..ops import TOKENS
from ..security.clock import now
from ..security.secrets import digest, new_secret
from . import client_auth, grants
from .registration import ConfigurationEndpoint, RegistrationEndpoint

CLIENT_AUTH_METHODS = grants.CLIENT_AUTH_METHODS


class AuthorizationServer(_AuthorizationServer):
    def create_oauth2_request(self, request):
        oauth_request = super().create_oauth2_request(request)
        if oauth_request.payload.client_id is not None and len(oauth_request.payload.client_id) > 64:
            raise InvalidRequestError("Invalid 'client_id'.")
        return oauth_request


def save_token(token: dict, request) -> None:
    """Store a token response by digest, continuing the refresh family if any.

    A token bought with a code or a refresh token is written only together
    with the claim on that credential, in one statement
    (``grants.claim_and_store``); any other token is written here."""
    values = token_row(token, request)
    if request.refresh_token is not None or request.authorization_code is not None:
        request.idp_token_row = values
    else:
        grants.store_token(values)
    # Counted, not audited: issuing is routine; reuse and revocation are audited.
    TOKENS.labels(request.payload.grant_type or "unknown").inc()


def token_row(token: dict, request) -> dict:
    """The ``tokens`` row of a token response, as column values."""
    config = current_app.config
    issued = now()
    previous: Token | None = request.refresh_token
    code = request.authorization_code
    row = {
        "client_id": request.client.client_id,
        "account_id": request.user.id if request.user is not None else None,
        "scope": token.get("scope", ""),
        "access_token_digest": digest(token["access_token"]),
        "refresh_token_digest": None,
        "issued_at": issued,
        "access_expires_at": issued + token["expires_in"],
        "refresh_expires_at": None,
        "authorization_code_id": None,
        "sid": None,
        "auth_time": None,
        "claims_request": None,
    }
    origin = previous if previous is not None else code
    if previous is not None:
        row["family_id"], row["family_expires_at"] = previous.family_id, previous.family_expires_at
        row["authorization_code_id"] = previous.authorization_code_id
    else:
        row["family_id"] = new_secret(16)
        row["family_expires_at"] = issued + config["REFRESH_TOKEN_ABSOLUTE_LIFETIME"]
        if code is not None:
            row["authorization_code_id"] = code.id
    if origin is not None:
        row["sid"], row["auth_time"], row["claims_request"] = origin.sid, origin.auth_time, origin.claims_request
    if "refresh_token" in token:
        row["refresh_token_digest"] = digest(token["refresh_token"])
        row["refresh_expires_at"] = min(issued + config["REFRESH_TOKEN_IDLE_LIFETIME"], row["family_expires_at"])
    return row


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 JWT access tokens; a refresh token only with offline_access."""

    def get_jwks(self):
        return signing_keyset("RS256")

    def get_jti(self, client, grant_type, user, scope) -> str:
        # 128 bits from one os.urandom call; Authlib's default draws each of
        # its 16 characters through SystemRandom.choice (a syscall apiece).
        return new_secret(16)

    def generate(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        include_refresh_token = include_refresh_token and "offline_access" in scope_to_list(scope or "")
        return super().generate(grant_type, client, user, scope, expires_in, include_refresh_token)


class PresentedToken:
    """A token as presented to revocation or introspection: access or refresh."""

    def __init__(self, row: Token, kind: str) -> None:
        self.row, self.kind = row, kind

    def check_client(self, client) -> bool:
        return self.row.check_client(client)

    def get_scope(self) -> str:
        return self.row.scope

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or (self.kind == "refresh_token" and self.row.rotated_at is not None)

    def is_expired(self) -> bool:
        t = now()
        return t >= (self.row.refresh_expires_at if self.kind == "refresh_token" else self.row.access_expires_at)

    def get_expires_at(self) -> int:
        return self.row.refresh_expires_at if self.kind == "refresh_token" else self.row.access_expires_at


def query_presented_token(token_string: str, token_type_hint: str | None) -> PresentedToken | None:
    kinds = ["refresh_token", "access_token"] if token_type_hint == "refresh_token" else ["access_token", "refresh_token"]
    for kind in kinds:
        row = grants.token_by_digest(kind, token_string)
        if row is not None:
            return PresentedToken(row, kind)
    return None


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return query_presented_token(token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request):
        t = now()
        if token.kind == "refresh_token":
            # RFC 7009 2.1: revoking a refresh token ends the whole grant.
            grants.revoke_tokens(Token.family_id == token.row.family_id, t)
        else:
            grants.revoke_tokens(Token.id == token.row.id, t)
        audit.record("token.revoked", account=token.row.account, client_id=token.row.client_id, kind=token.kind)


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return query_presented_token(token_string, token_type_hint)

    def check_permission(self, token: PresentedToken, client, request):
        # A client may introspect the tokens it was issued, nobody else's.
        return token.check_client(client)

    def introspect_token(self, token: PresentedToken):
        row = token.row
        account = row.account
        if account is not None and not account.is_active:
            return {"active": False}
        body = {
            "active": True,
            "client_id": row.client_id,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "iss": current_app.config["ISSUER"],
            "aud": row.client_id,
            "iat": row.issued_at,
            "exp": token.get_expires_at(),
            "sub": account.subject if account is not None else row.client_id,
        }
        if row.scope:
            body["scope"] = row.scope
        if account is not None and "email" in row.scope.split():
            body["username"] = account.login_id  # the e-mail only travels with the email scope
        return body


class BearerTokenValidator(_BearerTokenValidator):
    def authenticate_token(self, token_string):
        row = grants.token_by_digest("access_token", token_string)
        if row is None or (row.account is not None and not row.account.is_active):
            return None
        return row


class UserInfoEndpoint(_UserInfoEndpoint):
    def get_issuer(self):
        return current_app.config["ISSUER"]

    def resolve_private_key(self):
        return signing_keyset("RS256")

    def generate_user_info(self, user, scope):
        if user is None:  # a client_credentials token has no customer behind it
            raise InvalidTokenError()
        return claims_for(user, scope, (current_token.claims_request or {}).get("userinfo"))


class EndSessionEndpoint(_EndSessionEndpoint):
    def get_server_jwks(self):
        return keyring().public

    def end_session(self, end_session_request):
        from ..login.sessions import end_login_session

        end_login_session(reason="rp_logout", client_id=getattr(end_session_request.client, "client_id", None))

    def _validate_id_token_hint(self, id_token_hint):
        claims = super()._validate_id_token_hint(id_token_hint)
        if claims.get("iss") != current_app.config["ISSUER"]:
            raise InvalidRequestError("'id_token_hint' was not issued by this OP.")
        if "client_id" in claims or "scope" in claims:
            # Our RFC 9068 access tokens carry the same signature; they are no ID token.
            raise InvalidRequestError("'id_token_hint' is not an ID token.")
        return claims

    def is_post_logout_redirect_uri_legitimate(self, request, post_logout_redirect_uri, client, logout_hint):
        """Without an id_token_hint, a URI registered for the named client is
        followed once the customer confirmed the logout on our own page."""
        return bool(g.get("idp_logout_confirmed"))


def config_oauth(app) -> None:
    """One authorization server per app, holding that app's issuer and lifetimes."""
    server = AuthorizationServer()
    server.init_app(app, query_client=Client.lookup, save_token=save_token)
    # init_app() registered Authlib's opaque bearer generator; ours replaces it.
    server.register_token_generator(
        "default",
        AccessTokenGenerator(
            issuer=app.config["ISSUER"],
            expires_generator=lambda client, grant_type: app.config["ACCESS_TOKEN_LIFETIME"],
            refresh_token_generator=lambda **kwargs: new_secret(32),
        ),
    )
    server.scopes_supported = SUPPORTED_SCOPES
    server.register_client_auth_method("private_key_jwt", client_auth.PrivateKeyJWT())
    client_auth.init_app(app)
    server.register_grant(
        grants.AuthorizationCodeGrant,
        [grants.AuthorizationRequestChecks(), grants.S256CodeChallenge(required=True), grants.OpenIDCode()],
    )
    server.register_grant(grants.RefreshTokenGrant)
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    server.register_endpoint(EndSessionEndpoint)
    server.register_endpoint(RegistrationEndpoint)
    server.register_endpoint(ConfigurationEndpoint)
    protector = ResourceProtector()
    protector.register_token_validator(BearerTokenValidator())
    server.register_endpoint(UserInfoEndpoint(resource_protector=protector))
    app.extensions["idp.oauth"] = server


def oauth_server() -> AuthorizationServer:
    return current_app.extensions["idp.oauth"]

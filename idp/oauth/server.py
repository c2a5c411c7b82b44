"""Authlib's authorization server, wired once per app (``config_oauth``).

Protocol handling stays in Authlib; this module registers the grants and
endpoints, whose storage questions ``Client.lookup`` and ``idp.tokens``
answer.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import (
    AuthorizationServer as _AuthorizationServer,
)
from authlib.integrations.flask_oauth2 import ResourceProtector, current_token
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import current_app, g
from flask import request as http_request

from .. import sessions, tokens
from ..claims import SUPPORTED_SCOPES, claims_for, subject_for
from ..clients import AUTH_METHODS
from ..keys import DEFAULT_ALG, keyring, signing_keyset
from ..models import Client
from ..security.clock import now
from ..security.secrets import new_secret
from . import client_auth, dpop, grants
from .par import PushedAuthorizationEndpoint
from .registration import ConfigurationEndpoint, RegistrationEndpoint


class AuthorizationServer(_AuthorizationServer):
    def validate_requested_scope(self, scope):
        """Scope values the OP does not know are ignored, not refused (OIDC
        Core 3.1.2.1: "Scope values used that are not understood by an
        implementation SHOULD be ignored"; RFC 6749 3.3 lets the server grant
        less than asked). Client.get_allowed_scope then grants the known ones
        the client is registered for, and the token response names them
        (RFC 6749 3.3, 5.1). A refresh may still not widen its scope (RFC
        6749 6: Authlib's RefreshTokenGrant refuses with invalid_scope)."""

    def create_oauth2_request(self, request):
        # On the request object itself, not Flask's proxy (which Authlib's
        # passes): Authlib reads payload.data, the request's values, some
        # 25 times per validation, each through the proxy's lookup.
        oauth_request = FlaskOAuth2Request(http_request._get_current_object())
        pushed = g.get("idp_authorization_params")
        if pushed is not None:
            # /authorize with a request_uri: the pushed parameters are the request (oauth.par).
            oauth_request.payload = BasicOAuth2Payload(pushed)
        if oauth_request.payload.client_id is not None and len(oauth_request.payload.client_id) > 64:
            raise InvalidRequestError("Invalid 'client_id'.")
        return oauth_request


def save_token(token: dict, request) -> None:
    """Authlib's save_token, for the grant that spends nothing
    (client_credentials): its token is self-contained and not stored
    (``idp.tokens``), only counted. The grants that spend a code or a
    refresh token store theirs with the claim (grants.SpendsCredential)."""
    tokens.issued_self_contained(request.payload.grant_type)


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 JWT access tokens; a refresh token only with offline_access.
    Bound to a DPoP key when the request proved one (RFC 9449 5, 6.1:
    ``cnf.jkt`` and token_type DPoP; ``dpop.TokenBinding``)."""

    def get_jwks(self):
        return signing_keyset(DEFAULT_ALG)

    def get_jti(self, client, grant_type, user, scope) -> str:
        # 128 bits from one os.urandom call; Authlib's default draws each of
        # its 16 characters through SystemRandom.choice (a syscall apiece).
        return new_secret(16)

    def get_extra_claims(self, client, grant_type, user, scope):
        # Times from the app's clock, as every expiry check reads them
        # (security.clock; Authlib's own are time()'s): a client_credentials
        # token's are its only record (idp.tokens).
        issued = now()
        claims = {"iat": issued, "exp": issued + self._get_expires_in(client, grant_type)}
        # RFC 9068 2.2: "sub" is the customer's subject, as this client sees it.
        if user is not None:
            claims["sub"] = subject_for(client, user.subject)
        jkt = dpop.bound_jkt()
        if jkt:
            claims["cnf"] = {"jkt": jkt}  # RFC 9449 6.1
        return claims

    def generate(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        include_refresh_token = include_refresh_token and "offline_access" in scope_to_list(scope or "")
        token = super().generate(grant_type, client, user, scope, expires_in, include_refresh_token)
        if dpop.bound_jkt():
            token["token_type"] = "DPoP"  # RFC 9449 5
        return token


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string, token_type_hint):
        return tokens.presented(token_string, token_type_hint)

    def revoke_token(self, token: tokens.PresentedToken, request):
        tokens.revoke_presented(token)


class IntrospectionEndpoint(_IntrospectionEndpoint):
    """RFC 7662, on both paths: Flask's (Authlib's create_endpoint_response)
    and, for plain requests, ``oauth.lean``, which asks ``payload``."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, server=None, issuer: str | None = None, pairwise_secret: str | None = None) -> None:
        super().__init__(server)
        self.issuer = issuer
        self.pairwise_secret = pairwise_secret  # oauth.lean calls outside an app context

    def query_token(self, token_string, token_type_hint):
        return tokens.presented(token_string, token_type_hint)

    def check_permission(self, token: tokens.PresentedToken, client, request):
        # A client may introspect the tokens it was issued, nobody else's.
        # That client is kept on the token for introspect_token, to which
        # Authlib passes the token only: "sub" is the one that client sees.
        if not token.check_client(client):
            return False
        token.client = client
        return True

    def payload(self, token: tokens.PresentedToken | None, client) -> dict:
        """The answer to an authenticated ``client`` for ``token`` (None: not
        found), as Authlib's authenticate_token and create_endpoint_response
        decide it (RFC 7662 2.2: inactive unless the client may see it)."""
        if token is not None and not self.check_permission(token, client, None):
            token = None
        return self.create_introspection_payload(token)

    def introspect_token(self, token: tokens.PresentedToken):
        row = token.row
        account = token.account
        if account is not None and not account.is_active:
            return {"active": False}
        body = {
            "active": True,
            "client_id": row.client_id,
            "token_type": ("DPoP" if row.dpop_jkt else "Bearer") if token.kind == "access_token" else "refresh_token",
            "iss": self.issuer,
            "aud": row.client_id,
            "iat": row.issued_at,
            "exp": token.get_expires_at(),
            "sub": subject_for(token.client, account.subject, self.pairwise_secret) if account is not None
            else row.client_id,
        }
        if token.kind == "access_token" and row.dpop_jkt:
            body["cnf"] = {"jkt": row.dpop_jkt}  # RFC 9449 6.2
        if row.scope:
            body["scope"] = row.scope
        if account is not None and "email" in row.scope.split():
            body["username"] = account.login_id  # the e-mail only travels with the email scope
        return body


class BearerTokenValidator(_BearerTokenValidator):
    def authenticate_token(self, token_string):
        return tokens.bearer(token_string)

    def validate_token(self, token, scopes, request):
        if token is not None and token.dpop_jkt:
            raise dpop.refuse_as_bearer()  # RFC 9449 7.2
        super().validate_token(token, scopes, request)


class CredentialsMissing(OAuth2Error):
    """RFC 6750 3.1: a request without any authentication information (no
    Authorization header, a scheme UserInfo does not take, or one without
    credentials) is told how to authenticate, with no error code; RFC 9449
    7.2: a challenge for each scheme accepted, Bearer and DPoP."""

    status_code = 401

    def get_body(self):
        return []

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", "Bearer, " + dpop.challenge())]


class BearerTokens(ResourceProtector):
    """Where UserInfo takes its access token from (RFC 6750 2; OIDC Core
    5.3.1 "SHOULD" accept both): the Authorization header (2.1), or the
    access_token field of a single-part application/x-www-form-urlencoded
    POST body (2.2). One method per request (RFC 6750 2: a token by both
    is invalid_request, 3.1). Never the URI query (2.3): RFC 9700 2.5 and
    OAuth 2.1 drop it, as it leaks into logs and Referer headers; a token
    there is invalid_request, not silently "no token"."""

    FORM = "application/x-www-form-urlencoded"

    def parse_request_authorization(self, request):
        if "access_token" in http_request.args:
            raise InvalidRequestError("An access token must not be sent in the URI query (RFC 6750 2.3, RFC 9700 2.5).")
        in_body = http_request.method == "POST" and "access_token" in http_request.form
        if not in_body:
            parts = http_request.headers.get("Authorization", "").split(None, 1)  # as Authlib splits it
            if len(parts) != 2 or parts[0].lower() not in self._token_validators:
                raise CredentialsMissing()
            return super().parse_request_authorization(request)
        if http_request.mimetype != self.FORM:
            raise InvalidRequestError(f"An access token in the body needs a {self.FORM} body (RFC 6750 2.2).")
        if "Authorization" in http_request.headers:
            raise InvalidRequestError("The access token was sent by more than one method (RFC 6750 2).")
        return self.get_token_validator("bearer"), http_request.form["access_token"]


class UserInfoEndpoint(_UserInfoEndpoint):
    def get_issuer(self):
        return current_app.config["ISSUER"]

    def resolve_private_key(self):
        return signing_keyset(DEFAULT_ALG)

    def generate_user_info(self, user, scope):
        client = Client.lookup(current_token.client_id)
        # A client_credentials token has no customer behind it; a disabled
        # client's token reads nothing (nor would its sub be known: pairwise).
        if user is None or client is None:
            raise InvalidTokenError()
        return claims_for(user, scope, (current_token.claims_request or {}).get("userinfo"), client)


class EndSessionEndpoint(_EndSessionEndpoint):
    """RP-initiated logout. Whether the customer confirmed the logout on our
    own page (oauth.views.end_session, CSRF-checked) is decided before Authlib
    validates the request and asked by ``is_post_logout_redirect_uri_legitimate``
    during it; Authlib passes no state of ours between the two, so the view
    leaves it in Flask's request-local ``g.idp_logout_confirmed``."""

    def get_server_jwks(self):
        return keyring().public

    def end_session(self, end_session_request):
        sessions.end_login_session(reason="rp_logout", client_id=getattr(end_session_request.client, "client_id", None))

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
    binding = dpop.TokenBinding()
    server.register_grant(
        grants.AuthorizationCodeGrant,
        [grants.AuthorizationRequestChecks(), grants.S256CodeChallenge(required=True), grants.OPENID_CODE,
         dpop.AuthorizationRequestKey(), binding],
    )
    server.register_grant(grants.RefreshTokenGrant, [binding])
    server.register_grant(grants.ClientCredentialsGrant, [binding])
    app.extensions["idp.dpop_replay"] = dpop.make_replay(app.config)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint(server, app.config["ISSUER"], app.config["PAIRWISE_SECRET"]))
    server.register_endpoint(EndSessionEndpoint)
    server.register_endpoint(RegistrationEndpoint)
    server.register_endpoint(PushedAuthorizationEndpoint)
    server.register_endpoint(ConfigurationEndpoint)
    protector = BearerTokens()
    protector.register_token_validator(BearerTokenValidator())
    protector.register_token_validator(dpop.DPoPTokenValidator())
    server.register_endpoint(UserInfoEndpoint(resource_protector=protector))
    app.extensions["idp.oauth"] = server


def oauth_server() -> AuthorizationServer:
    return current_app.extensions["idp.oauth"]

"""The grants: Authlib's classes, answering its storage questions from ``idp.tokens``.

Added through Authlib's hooks, not by copying its protocol code:
- ``AuthorizationRequestChecks``: response_mode, PKCE required for public
  clients, prompt / max_age / claims syntax, request objects refused.
- ``S256CodeChallenge``: PKCE with S256 only (RFC 9700 2.1.1).
- ``SpendsCredential``: a token bought with a code or a refresh token is
  stored with the claim on that credential (save-then-claim, ``idp.tokens``),
  so code reuse and refresh replay revoke what they bought.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import NamedTuple

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from flask import current_app

from .. import tokens
from ..claims import claims_for, parse_claims_request
from ..clients import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from ..keys import DEFAULT_ALG, signing_keyset
from ..models import Account, AuthorizationCode, Client
from ..second_factor import acr_of
from ..security.clock import now
from ..security.secrets import new_secret
from . import dpop

RESPONSE_MODES = {"query", "form_post"}
# The parameters of a request waiting for login or consent travel in the
# flow cookie, and a browser drops a cookie over 4 kB without a word: a
# longer request (a 60 kB state, say) is refused (oauth.authorize, and
# oauth.par before it is stored). 2 kB leaves room for a signed JWT as state
# or an id_token_hint.
MAX_REQUEST_LENGTH = 2048
PROMPTS = {"none", "login", "consent", "select_account"}


class AuthorizationRequestChecks:
    """Authorization-request rules of SPEC §4/§6 that Authlib leaves to us."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant, redirect_uri) -> None:
        data = grant.request.payload.data
        if data.get("request"):
            raise _error("request_not_supported", "Request objects are not supported.")
        if data.get("request_uri"):  # but RFC 9126's, which oauth.authorize takes first (oauth.par)
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


class SpendsCredential:
    """For the grants that spend a credential (a code, a refresh token).

    Authlib calls ``save_token`` before it spends the credential
    (``delete_authorization_code``, ``revoke_old_credential``). Here
    ``save_token`` only builds the token's row and keeps it on this grant,
    which Authlib creates per request; the spending method stores it together
    with the claim, or not at all (``idp.tokens``, step 2)."""

    token_row: dict | None = None

    def save_token(self, token):
        request = self.request
        origin = request.refresh_token if request.refresh_token is not None else request.authorization_code
        self.token_row = tokens.new_row(token, request.payload.grant_type, request.client.client_id, request.user,
                                        origin, dpop_jkt=dpop.bound_jkt())


class AuthorizationCodeGrant(SpendsCredential, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

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

    def generate_authorization_code(self) -> str:
        # 256 bits from one os.urandom call, as every credential here
        # (security.secrets); Authlib's default draws each of its 48
        # characters through SystemRandom.choice, a syscall apiece (37 µs).
        return new_secret()

    def save_authorization_code(self, code, request):
        """``request.user`` is the customer's LoginSession (see authorize.py)."""
        tokens.store_code(code, request.client, request.user, request.payload.redirect_uri, request.scope,
                          request.payload.data)

    def query_authorization_code(self, code, client):
        return tokens.usable_code(code, client.client_id)

    def delete_authorization_code(self, authorization_code):
        """Claim the code only now, after every check passed: a rejected request
        (wrong verifier, wrong redirect URI) leaves it usable."""
        if not tokens.spend_code(authorization_code, self.token_row):
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
        return client.id_token_signed_response_alg or DEFAULT_ALG

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
        # How the customer authenticated, always (idp.second_factor).
        methods = (authorization_code.amr or "pwd").split()
        claims["amr"] = methods
        claims["acr"] = acr_of(methods)
        # "sub" as the client sees it, and what the claims parameter asked of
        # the ID token (Core 5.5).
        client = Client.lookup(authorization_code.client_id)
        requested = (authorization_code.claims_request or {}).get("id_token")
        claims.update(claims_for(authorization_code.account, "openid", requested, client))
        return claims

    def generate_user_info(self, user, scope):
        # An access token is issued with every ID token here, so scope claims
        # come from UserInfo (Core 5.4); the ID token carries "sub" and what
        # the claims parameter asked of it, which get_authorization_code_claims
        # adds: it knows the client (a pairwise one sees its own sub), and
        # Authlib asks this method about the user and scope only. The ID
        # token travels in id_token_hint URLs and logs, so it stays free of
        # personal data unless asked.
        return {}


# The one OpenIDCode extension of the code grant (server.config_oauth), which
# also adds the ID token of a code exchange below Flask (``add_id_token``).
OPENID_CODE = OpenIDCode()


class _CodeExchange(NamedTuple):
    """What OpenIDCode reads of a code exchange's request."""

    client: Client
    authorization_code: AuthorizationCode
    user: Account


def add_id_token(token: dict, client: Client, code: AuthorizationCode, account: Account) -> dict:
    """The ID token of a code exchange answered below Flask (``oauth.lean``):
    added to ``token`` by ``OPENID_CODE.process_token``, the hook that adds
    it on the Flask path (for an openid scope only)."""
    return OPENID_CODE.process_token(SimpleNamespace(request=_CodeExchange(client, code, account)),
                                     (200, token, None))


class RefreshTokenGrant(SpendsCredential, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        return tokens.usable_refresh_token(refresh_token, self.request.client.client_id)

    def authenticate_user(self, refresh_token):
        account = refresh_token.account
        return account if account is not None and account.is_active else None

    def revoke_old_credential(self, refresh_token):
        """Rotate: claim the old token only now, after every check passed (a
        rejected request, e.g. a wider scope, leaves it usable)."""
        if not tokens.spend_refresh_token(refresh_token, self.token_row):
            raise InvalidGrantError()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS

    def generate_token(self, user=None, scope=None, **kwargs):
        # Authlib issues the scope as asked; granted is what the client is
        # registered for of it (RFC 6749 3.3: unknown values ignored, as
        # server.AuthorizationServer.validate_requested_scope says).
        return super().generate_token(user, self.request.client.get_allowed_scope(scope), **kwargs)


def _error(code: str, description: str) -> InvalidRequestError:
    error = InvalidRequestError(description)
    error.error = code
    return error

"""Dynamic client registration (RFC 7591) and its management (RFC 7592), through
Authlib's endpoints.

Registration needs a single-use initial access token from ``flask clients
initial-token``. Metadata passes Authlib's RFC 7591 / OIDC checks and then
ours (idp.clients.build_metadata: https redirect URIs except loopback, no
fragments, known grant and response types, auth methods, keys, and public
addresses for the URIs the OP itself fetches). Clients
registered here are never first-party. The registration access token that
lets a client manage itself is stored as a digest and therefore re-issued
with every response of the configuration endpoint.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc7591 import (
    ClientMetadataClaims,
    InvalidClientMetadataError,
    InvalidRedirectURIError,
)
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint as _RegistrationEndpoint
from authlib.oauth2.rfc7592 import ClientConfigurationEndpoint as _ConfigurationEndpoint
from authlib.oidc.registration import ClientMetadataClaims as OIDCClientMetadataClaims
from flask import current_app, g
from flask import request as http_request
from sqlalchemy import update

from .. import audit
from ..clients import (
    DEFAULT_AUTH_METHOD,
    SECRET_AUTH_METHODS,
    ClientError,
    align_secret,
    build_metadata,
    check_redirect_uri,
    delete_client,
    describe,
    new_client_id,
)
from ..extensions import db
from ..keys import DEFAULT_ALG
from ..models import Client, InitialAccessToken
from ..security.clock import now
from ..security.secrets import digest, new_secret
from .discovery import discovery_document

CLAIMS = [ClientMetadataClaims, OIDCClientMetadataClaims]


def issue_initial_token(expires_in: int) -> str:
    """A new single-use initial access token and its audit row; the caller commits."""
    token = new_secret()
    t = now()
    db.session.add(InitialAccessToken(digest=digest(token), created_at=t, expires_at=t + expires_in))
    audit.record("client.initial_token_issued", expires_in=expires_in)
    return token


STRING_MEMBERS = ("client_name", "client_name#en", "scope", "backchannel_logout_uri", "jwks_uri", "token_endpoint_auth_method",
                  "id_token_signed_response_alg", "token_endpoint_auth_signing_alg", "subject_type",
                  "sector_identifier_uri")
LIST_MEMBERS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types")
# URIs the OP itself fetches or posts to: https only for self-registered
# clients, and (for every client) on a public address: clients.check_fetched_uri.
SERVER_FETCHED = ("jwks_uri", "backchannel_logout_uri", "sector_identifier_uri")


def _check_types(data: dict) -> None:
    for name in STRING_MEMBERS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise InvalidClientMetadataError(f"{name} must be a string.")
    for name in LIST_MEMBERS:
        value = data.get(name)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise InvalidClientMetadataError(f"{name} must be a list of strings.")
    if data.get("dpop_bound_access_tokens") is not None and not isinstance(data["dpop_bound_access_tokens"], bool):
        raise InvalidClientMetadataError("dpop_bound_access_tokens must be a boolean.")  # RFC 9449 5.2
    if not isinstance(data.get("require_pushed_authorization_requests", False), bool):
        raise InvalidClientMetadataError("require_pushed_authorization_requests must be a boolean.")
    if data.get("jwks") is not None and not isinstance(data["jwks"], dict):
        raise InvalidClientMetadataError("jwks must be a JWK Set object.")
    for name in SERVER_FETCHED:
        if data.get(name) and urlsplit(data[name]).scheme != "https":
            raise InvalidClientMetadataError(f"{name} must be an https URL.")


def checked_metadata(data: dict) -> dict:
    """RFC 7591 metadata through our rules; the RFC's error codes on failure."""
    _check_types(data)
    response_types = data.get("response_types", ["code"])
    if response_types not in (["code"], []):
        raise InvalidClientMetadataError("Only the 'code' response type is supported.")
    try:
        return build_metadata(
            data.get("client_name") or "client",
            list(data.get("redirect_uris") or []),
            list(data.get("post_logout_redirect_uris") or []),
            data.get("backchannel_logout_uri"),
            list(data.get("grant_types") or ["authorization_code"]),
            (data.get("scope") or "openid").split(),
            data.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD),
            data.get("id_token_signed_response_alg") or DEFAULT_ALG,
            jwks=data.get("jwks"),
            jwks_uri=data.get("jwks_uri"),
            token_endpoint_auth_signing_alg=data.get("token_endpoint_auth_signing_alg"),
            english_name=data.get("client_name#en"),
            dpop_bound_access_tokens=data.get("dpop_bound_access_tokens", False),
            require_pushed_authorization_requests=data.get("require_pushed_authorization_requests", False),
            subject_type=data.get("subject_type") or "public",
            sector_identifier_uri=data.get("sector_identifier_uri"),
            # These requests come from anyone with a token: no DNS lookup on
            # the request thread, where a name whose DNS never answers would
            # hold a worker. Addresses are judged here, names at each connect.
            resolve_names=False,
        )
    except ClientError as error:
        raise _rfc7591_error(error) from None


def _rfc7591_error(error: ClientError):
    """RFC 7591 3.2.2's error for a broken rule, chosen by the field at
    fault: invalid_redirect_uri for redirect_uris, else invalid_client_metadata."""
    if error.field == "redirect_uris":
        return InvalidRedirectURIError(str(error))
    return InvalidClientMetadataError(str(error))


def _precheck(request) -> None:
    """Redirect URIs first, so that their faults carry invalid_redirect_uri."""
    data = request.payload.data
    if not isinstance(data, dict):
        raise InvalidClientMetadataError("The request body must be a JSON object.")
    _check_types(data)  # before Authlib's claim classes see the values (redirect_uris: a list of strings)
    for uri in data.get("redirect_uris") or []:
        try:
            check_redirect_uri(uri)
        except ClientError as error:
            raise _rfc7591_error(error) from None


def _metadata(request, client_metadata: dict) -> dict:
    """Authlib's checked claims, plus the members its claim classes do not
    know (post_logout_redirect_uris, backchannel_logout_uri), all through ours."""
    return checked_metadata({**request.payload.data, **client_metadata})


def _bearer(request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _registration_info(client: Client) -> dict:
    token = new_secret()
    client.registration_token_digest = digest(token)
    return {
        "registration_client_uri": f"{current_app.config['ISSUER']}/register/{client.client_id}",
        "registration_access_token": token,
    }


def _server_metadata() -> dict:
    return discovery_document(current_app.config)


class RegistrationEndpoint(_RegistrationEndpoint):
    def __init__(self, server=None):
        super().__init__(server, claims_classes=CLAIMS)

    def authenticate_token(self, request):
        token = _bearer(request)
        if not token:
            raise InvalidTokenError()
        claimed = db.session.execute(
            update(InitialAccessToken)
            .where(InitialAccessToken.digest == digest(token), InitialAccessToken.used_at.is_(None),
                   InitialAccessToken.expires_at > now())
            .values(used_at=now())
        )
        if claimed.rowcount != 1:
            raise InvalidTokenError()  # unknown, spent or expired: 401 invalid_token
        return token

    def get_server_metadata(self):
        return _server_metadata()

    def generate_client_id(self, request):
        return new_client_id()

    def generate_client_secret(self, request):
        method = request.payload.data.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD)
        return new_secret(32) if method in SECRET_AUTH_METHODS else None

    def generate_client_info(self, request):
        info = super().generate_client_info(request)
        info["client_id_issued_at"] = now()
        if info["client_secret"] is None:
            del info["client_secret"], info["client_secret_expires_at"]
        return info

    def extract_client_metadata(self, request):
        # What we register is what the response says (RFC 7591 3.2.1): our
        # checked metadata, not an echo of the request.
        _precheck(request)
        return _metadata(request, super().extract_client_metadata(request))

    def save_client(self, client_info, client_metadata, request):
        metadata = client_metadata
        secret = client_info.get("client_secret")
        client = Client(
            client_id=client_info["client_id"],
            client_secret_digest=digest(secret) if secret else None,
            client_id_issued_at=client_info["client_id_issued_at"],
            first_party=False,
            client_metadata=metadata,
        )
        db.session.add(client)
        audit.record("client.registered", client_id=client.client_id, name=metadata["client_name"])
        return client

    def generate_client_registration_info(self, client, request):
        return _registration_info(client)


class ConfigurationEndpoint(_ConfigurationEndpoint):
    """GET, PUT and DELETE /register/<client_id> with the registration access token.

    The registration managed is the one the path names (``_path_client_id``).
    A PUT that changes the auth method to one needing a secret creates one in
    ``update_client``, which Authlib then asks for the response in
    ``generate_client_registration_info``: this endpoint is shared by every
    request, so the new secret travels between the two in Flask's
    request-local ``g.idp_new_secret``."""

    def __init__(self, server=None):
        super().__init__(server, claims_classes=CLAIMS)

    def authenticate_token(self, request):
        token = _bearer(request)
        client = db.session.scalar(db.select(Client).filter_by(registration_token_digest=digest(token))) if token else None
        if client is None or client.client_id != _path_client_id():
            raise InvalidTokenError()  # RFC 7592 2: 401 with invalid_token
        return _RegistrationToken(client)

    def extract_client_metadata(self, request):
        _precheck(request)
        return _metadata(request, super().extract_client_metadata(request))

    def authenticate_client(self, request):
        return db.session.scalar(db.select(Client).filter_by(client_id=_path_client_id()))

    def revoke_access_token(self, request, token):
        token.client.registration_token_digest = None

    def check_permission(self, client, request):
        return True

    def introspect_client(self, client):
        return describe(client)

    def generate_client_registration_info(self, client, request):
        info = _registration_info(client)
        if g.get("idp_new_secret"):
            info["client_secret"] = g.idp_new_secret  # shown once: the method now needs one
            info["client_secret_expires_at"] = 0
        return info

    def delete_client(self, client, request):
        delete_client(client)

    def update_client(self, client, client_metadata, request):
        client.client_metadata = client_metadata
        g.idp_new_secret = align_secret(client)
        audit.record("client.updated", client_id=client.client_id)
        return client

    def get_server_metadata(self):
        return _server_metadata()


def _path_client_id() -> str | None:
    """The <client_id> of /register/<client_id> (oauth.views.client_configuration)."""
    return (http_request.view_args or {}).get("client_id")


class _RegistrationToken:
    def __init__(self, client: Client) -> None:
        self.client = client

    def check_client(self, client) -> bool:
        return client is not None and client.id == self.client.id


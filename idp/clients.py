"""Registering relying parties: metadata checks, secrets shown once, stored hashed."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import audit, tokens
from .claims import SUPPORTED_SCOPES
from .extensions import db
from .keys import DEFAULT_ALG, SUPPORTED_ALGS
from .models import Client, Token
from .models.client import is_loopback
from .security import outbound
from .security.clock import now
from .security.secrets import digest, new_secret

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
# How a client authenticates at the token, revocation and introspection
# endpoints: the one list every other reads (Authlib's grants and endpoints,
# discovery, the CLI, the console). "none" is a public client (PKCE).
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
DEFAULT_AUTH_METHOD = "client_secret_basic"
CONFIDENTIAL_AUTH_METHODS = tuple(method for method in AUTH_METHODS if method != "none")
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")  # those that need a client secret
DEFAULT_SCOPES = SUPPORTED_SCOPES
# OIDC Core 8: "public" (one sub for every client) or "pairwise" (a sub per
# sector identifier, claims.subject_for).
SUBJECT_TYPES = ("public", "pairwise")
# Fetching a sector_identifier_uri (Registration 1.0 5): the outbound guard's
# limits, as for a jwks_uri.
SECTOR_FETCH_TIMEOUT = 2
SECTOR_FETCH_DEADLINE = 3
MAX_SECTOR_BYTES = 64 * 1024


class ClientError(Exception):
    """Metadata that breaks a rule. str() is the English sentence of the CLI
    and of RFC 7591 answers; ``rule`` names the rule and ``field`` the
    metadata at fault (with ``value``), so that the console can say it in
    Japanese (admin/words.py)."""

    def __init__(self, message: str, rule: str, field: str = "", value: str = "") -> None:
        super().__init__(message)
        self.rule, self.field, self.value = rule, field, value


# What check_redirect_uri calls each URI field in its messages.
URI_FIELDS = {
    "redirect_uris": "redirect URI",
    "post_logout_redirect_uris": "post-logout redirect URI",
    "backchannel_logout_uri": "back-channel logout URI",
    "jwks_uri": "jwks_uri",
    "sector_identifier_uri": "sector_identifier_uri",
}


def new_client_id() -> str:
    """128 random bits, URL-safe, never starting with "-": operators pass
    client IDs to `flask clients delete ID` and the like, where a leading
    dash would be read as an option."""
    while (client_id := new_secret(16)).startswith("-"):
        pass
    return client_id


def check_redirect_uri(uri: str, field: str = "redirect_uris") -> None:
    """https, or http on a loopback host; absolute; no fragment (SPEC §6)."""
    what = URI_FIELDS[field]

    def refuse(problem: str, rule: str):
        return ClientError(f"{what} {uri!r} {problem}", rule, field, uri)

    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise refuse("is not a valid URL", "invalid_url") from None
    if not parts.netloc or parts.scheme not in ("https", "http"):
        raise refuse("must be an absolute https URL", "not_absolute_https")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise refuse("may use http only on a loopback host", "http_not_loopback")
    if "#" in uri:
        raise refuse("must not have a fragment", "fragment")


def check_fetched_uri(uri: str, field: str, resolve_name: bool = True) -> None:
    """A URI the OP itself fetches or posts to (jwks_uri, back-channel logout):
    the rules of redirect URIs, and a public destination (no SSRF; checked
    again at connect time, see security.outbound). ``resolve_name``: judge a
    host name by what it resolves to now, too (up to VET_LOOKUP_TIMEOUT)."""
    check_redirect_uri(uri, field)
    what = URI_FIELDS[field]
    try:
        outbound.vet_url(uri, allow_private=current_app.config["ALLOW_PRIVATE_OUTBOUND"], resolve_name=resolve_name)
    except outbound.ForbiddenDestination as error:
        raise ClientError(f"{what} {uri!r} must be on a public address: {error}", "not_public", field, uri) from None
    except outbound.OutboundError:
        raise ClientError(f"{what} {uri!r} is not a valid URL", "invalid_url", field, uri) from None


def build_metadata(
    name: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str] = (),
    backchannel_logout_uri: str | None = None,
    grant_types: list[str] = ("authorization_code", "refresh_token"),
    scopes: list[str] = DEFAULT_SCOPES,
    auth_method: str = DEFAULT_AUTH_METHOD,
    id_token_signed_response_alg: str = DEFAULT_ALG,
    jwks: dict | None = None,
    jwks_uri: str | None = None,
    token_endpoint_auth_signing_alg: str | None = None,
    resolve_names: bool = True,
    english_name: str | None = None,
    dpop_bound_access_tokens: bool = False,
    require_pushed_authorization_requests: bool = False,
    subject_type: str = "public",
    sector_identifier_uri: str | None = None,
) -> dict:
    """Checked RFC 7591 metadata for a client; ClientError says what is wrong.
    ``english_name`` is the name English pages show (``client_name#en``,
    RFC 7591 2.2); without one they show ``name``.
    ``require_pushed_authorization_requests``: RFC 9126 6. ``subject_type``
    and ``sector_identifier_uri``: OIDC Core 8.1 and Registration 1.0 2, 5
    (``check_sector``)."""
    if not name.strip():
        raise ClientError("a client needs a name", "name_required", "client_name")
    if auth_method not in AUTH_METHODS:
        raise ClientError(f"auth method must be one of {', '.join(AUTH_METHODS)}", "unsupported",
                          "token_endpoint_auth_method", auth_method)
    unknown = set(grant_types) - set(GRANT_TYPES)
    if unknown:
        raise ClientError(f"unsupported grant types: {', '.join(sorted(unknown))}", "unsupported", "grant_types",
                          ", ".join(sorted(unknown)))
    if "authorization_code" in grant_types and not redirect_uris:
        raise ClientError("the authorization_code grant needs at least one redirect URI", "redirect_uri_required",
                          "redirect_uris")
    if auth_method == "none" and "client_credentials" in grant_types:
        raise ClientError("a public client (auth method none) cannot use client_credentials",
                          "public_client_credentials", "grant_types")
    unknown = set(scopes) - set(SUPPORTED_SCOPES)
    if unknown:
        raise ClientError(f"unsupported scopes: {', '.join(sorted(unknown))}", "unsupported", "scope",
                          ", ".join(sorted(unknown)))
    if id_token_signed_response_alg not in SUPPORTED_ALGS:
        raise ClientError(f"id_token_signed_response_alg must be one of {', '.join(SUPPORTED_ALGS)}", "unsupported",
                          "id_token_signed_response_alg", id_token_signed_response_alg)
    for uri in redirect_uris:
        check_redirect_uri(uri)
    for uri in post_logout_redirect_uris:
        check_redirect_uri(uri, "post_logout_redirect_uris")
    if backchannel_logout_uri:
        check_fetched_uri(backchannel_logout_uri, "backchannel_logout_uri", resolve_names)
    if auth_method == "private_key_jwt" and not (jwks or jwks_uri):
        raise ClientError("private_key_jwt needs the client's jwks or jwks_uri", "keys_required", "jwks")
    if jwks is not None:
        try:
            KeySet.import_key_set(jwks)
        except (ValueError, TypeError, KeyError, JoseError):
            raise ClientError("jwks is not a valid JWK Set", "invalid_jwks", "jwks") from None
        if any("d" in key for key in jwks.get("keys", [])):
            raise ClientError("jwks must hold public keys only", "private_jwks", "jwks")
    if jwks_uri:
        check_fetched_uri(jwks_uri, "jwks_uri", resolve_names)
    if token_endpoint_auth_signing_alg not in (None, *SUPPORTED_ALGS):
        raise ClientError(f"token_endpoint_auth_signing_alg must be one of {', '.join(SUPPORTED_ALGS)}",
                          "unsupported", "token_endpoint_auth_signing_alg", str(token_endpoint_auth_signing_alg))
    if subject_type not in SUBJECT_TYPES:
        raise ClientError(f"subject_type must be one of {', '.join(SUBJECT_TYPES)}", "unsupported", "subject_type",
                          str(subject_type))
    if subject_type == "pairwise":
        check_sector(redirect_uris, sector_identifier_uri)
    elif sector_identifier_uri:
        raise ClientError("sector_identifier_uri is for pairwise clients only", "sector_not_pairwise",
                          "sector_identifier_uri", sector_identifier_uri)
    metadata = {
        "client_name": name.strip(),
        "redirect_uris": list(dict.fromkeys(redirect_uris)),
        "post_logout_redirect_uris": list(dict.fromkeys(post_logout_redirect_uris)),
        "grant_types": list(dict.fromkeys(grant_types)),
        "response_types": ["code"] if "authorization_code" in grant_types else [],
        "scope": " ".join(dict.fromkeys(scopes)),
        "token_endpoint_auth_method": auth_method,
        "id_token_signed_response_alg": id_token_signed_response_alg,
    }
    if backchannel_logout_uri:
        metadata["backchannel_logout_uri"] = backchannel_logout_uri
        metadata["backchannel_logout_session_required"] = True
    if jwks is not None:
        metadata["jwks"] = jwks
    if jwks_uri:
        metadata["jwks_uri"] = jwks_uri
    if token_endpoint_auth_signing_alg:
        metadata["token_endpoint_auth_signing_alg"] = token_endpoint_auth_signing_alg
    if english_name and english_name.strip():
        metadata["client_name#en"] = english_name.strip()
    if dpop_bound_access_tokens:
        metadata["dpop_bound_access_tokens"] = True  # RFC 9449 5.2: every token request needs a DPoP proof
    if require_pushed_authorization_requests:
        metadata["require_pushed_authorization_requests"] = True
    if subject_type == "pairwise":
        metadata["subject_type"] = "pairwise"
        if sector_identifier_uri:
            metadata["sector_identifier_uri"] = sector_identifier_uri
    return metadata


def check_sector(redirect_uris: list[str], sector_identifier_uri: str | None) -> None:
    """A pairwise client's sector identifier can be told (OIDC Core 8.1):
    without a sector_identifier_uri its redirect URIs share one host; with
    one, that https URL (on a public address, fetched through the outbound
    guard) answers a JSON array holding every redirect URI (Registration
    1.0 5; https only for self-registered clients, oauth.registration)."""
    if not sector_identifier_uri:
        if len({urlsplit(uri).hostname for uri in redirect_uris}) > 1:
            raise ClientError("redirect URIs on several hosts need a sector_identifier_uri", "sector_required",
                              "sector_identifier_uri")
        return
    # Fetched at once, so the address is judged at connect time (outbound.request).
    check_fetched_uri(sector_identifier_uri, "sector_identifier_uri", resolve_name=False)
    try:
        status, body = outbound.request(
            "GET", sector_identifier_uri, headers={"Accept": "application/json"},
            allow_private=current_app.config["ALLOW_PRIVATE_OUTBOUND"], timeout=SECTOR_FETCH_TIMEOUT,
            deadline=SECTOR_FETCH_DEADLINE, max_bytes=MAX_SECTOR_BYTES)
        listed = json.loads(body) if status == 200 else None
    except (OSError, ValueError):
        listed = None
    if not isinstance(listed, list):
        raise ClientError(f"sector_identifier_uri {sector_identifier_uri!r} did not answer a JSON array",
                          "sector_unreadable", "sector_identifier_uri", sector_identifier_uri)
    missing = [uri for uri in redirect_uris if uri not in listed]
    if missing:
        raise ClientError(f"sector_identifier_uri {sector_identifier_uri!r} does not list {missing[0]!r}",
                          "sector_mismatch", "sector_identifier_uri", sector_identifier_uri)


def create_client(*args, first_party: bool = False, client_id: str | None = None, **kwargs) -> tuple[Client, str | None]:
    """A new client and its secret (None for a public client); the caller
    commits. Arguments as build_metadata(). First-party sites see public
    subjects (they are the operator's own)."""
    metadata = build_metadata(*args, **kwargs)
    check_first_party(metadata, first_party)
    secret = new_secret(32) if metadata["token_endpoint_auth_method"] in SECRET_AUTH_METHODS else None
    client = Client(
        client_id=client_id or new_client_id(),
        client_secret_digest=digest(secret) if secret else None,
        client_id_issued_at=now(),
        first_party=first_party,
        client_metadata=metadata,
    )
    db.session.add(client)
    audit.record("client.created", client_id=client.client_id, name=metadata["client_name"])
    return client, secret


def check_first_party(metadata: dict, first_party: bool) -> None:
    """First-party sites are the operator's own: they see public subjects."""
    if first_party and metadata.get("subject_type") == "pairwise":
        raise ClientError("a first-party client uses public subjects", "first_party_pairwise", "subject_type",
                          "pairwise")


def align_secret(client: Client) -> str | None:
    """After the auth method changed: a method that needs a secret gets one
    (returned, to be shown once), a method without one drops the old digest."""
    needs = client.token_endpoint_auth_method in SECRET_AUTH_METHODS
    if needs and client.client_secret_digest is None:
        secret = new_secret(32)
        client.client_secret_digest = digest(secret)
        audit.record("client.secret_rotated", client_id=client.client_id)
        return secret
    if not needs:
        client.client_secret_digest = None
    return None


def rotate_secret(client: Client) -> str:
    if client.client_secret_digest is None:
        raise ClientError("a public client has no secret", "no_secret")
    secret = new_secret(32)
    client.client_secret_digest = digest(secret)
    audit.record("client.secret_rotated", client_id=client.client_id)
    return secret


def delete_client(client: Client) -> None:
    """Remove a client and end every token it holds."""
    tokens.revoke(Token.client_id == client.client_id, now())
    audit.record("client.deleted", client_id=client.client_id)
    db.session.delete(client)


def describe(client: Client, secret: str | None = None) -> dict:
    """The client's registration as RFC 7591 prints it; the secret only when new."""
    body = {
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "first_party": client.first_party,
        **client.client_metadata,
    }
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    return body

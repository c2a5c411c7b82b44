"""The discovery document (OpenID Connect Discovery 1.0, RFC 8414).

What the OP supports, read from the lists the rest of the code uses. Its
bytes are built once per app (``discovery_body``) and served by one path:
the view (``oauth.views.discovery``) and the WSGI middleware in front of Flask
(``documents.PublicDocuments``) both take them from here. RFC 7591/7592
responses carry the same document as server metadata.
"""

from __future__ import annotations

import json

from ..claims import SUPPORTED_CLAIMS, SUPPORTED_SCOPES
from ..clients import AUTH_METHODS
from ..keys import SUPPORTED_ALGS
from . import dpop
from ..second_factor import ACR_VALUES


def discovery_document(config) -> dict:
    """What the OP supports, for the app whose ``config`` this is."""
    issuer = config["ISSUER"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "end_session_endpoint": f"{issuer}/session/end",
        "registration_endpoint": f"{issuer}/register",
        "pushed_authorization_request_endpoint": f"{issuer}/par",  # RFC 9126 5
        "require_pushed_authorization_requests": config["REQUIRE_PAR"],
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],  # OIDC Core 8
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(dpop.ALGS),  # RFC 9449 5.1
        "claims_supported": SUPPORTED_CLAIMS + ["iss", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash", "acr", "amr"],
        "claims_parameter_supported": True,
        "acr_values_supported": ACR_VALUES,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["ja", "en"],
        "claims_locales_supported": ["ja"],
    }


def discovery_body(app) -> bytes:
    """The discovery document's bytes, serialised once per app."""
    return app.extensions["idp.discovery"].get(
        "body", lambda: json.dumps(discovery_document(app.config), ensure_ascii=False).encode())

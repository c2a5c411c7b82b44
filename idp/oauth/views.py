"""Protocol endpoints other than /authorize: discovery, JWKS, token, UserInfo,
revocation, introspection and RP-initiated logout.

Each view hands the request to Authlib and commits what it wrote; a failed
request commits only what failure itself must record (revocations on reuse,
audit rows). On PostgreSQL the token endpoint runs without a transaction
(``idp.tokens`` says why and how).
"""

from __future__ import annotations

import base64
import json

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, OAuth2Error
from flask import Blueprint, Response, current_app, g, render_template, request

from .. import tokens
from ..claims import subject_for
from ..extensions import csrf, db
from ..forms import ConfirmForm
from ..keys import keyring
from ..models import Client
from ..sessions import current_login_session
from . import dpop
from .discovery import discovery_body
from .documents import DISCOVERY_MAX_AGE, JWKS_MAX_AGE, cache_control
from .server import oauth_server

bp = Blueprint("oauth", __name__)

# CORS is offered on these endpoints only (SPEC §6), to registered origins.
CORS_ENDPOINTS = {"oauth.discovery", "oauth.jwks", "oauth.token", "oauth.userinfo", "oauth.revoke"}


@bp.route("/.well-known/openid-configuration")
def discovery():
    return _cacheable(discovery_body(current_app), max_age=DISCOVERY_MAX_AGE)


@bp.route("/jwks")
def jwks():
    ring = keyring()
    if request.if_none_match.contains(ring.etag):
        # The 200's Cache-Control too (RFC 9110 15.4.5), not the pages' no-store.
        return Response(status=304, headers={"ETag": f'"{ring.etag}"', "Cache-Control": cache_control(JWKS_MAX_AGE)})
    response = _cacheable(ring.jwks_bytes, max_age=JWKS_MAX_AGE, content_type="application/jwk-set+json")
    response.set_etag(ring.etag)
    return response


CLIENT_AUTH_ENDPOINTS = {"oauth.token", "oauth.revoke", "oauth.introspect", "oauth.par"}


@bp.before_app_request
def _refuse_malformed_requests():
    """What Authlib would read wrongly or fail on, answered first:
    - a parameter given twice (RFC 6749 3.1, 3.2: "MUST NOT be included more
      than once"; Authlib would silently take the first value) is
      invalid_request;
    - HTTP Basic credentials that are not UTF-8 or hold a NUL (which no
      client_id has and PostgreSQL cannot compare), and an Authorization
      header of a scheme and a space with nothing after them but what
      Python counts as whitespace (U+00A0, which servers keep: Authlib's
      split fails on it), are invalid_client (RFC 6749 5.2)."""
    if request.endpoint not in CLIENT_AUTH_ENDPOINTS and request.endpoint != "oauth.userinfo":
        return None
    repeated = next((key for key, values in request.values.lists() if len(values) > 1), None)
    if repeated is not None:
        return _oauth_error(InvalidRequestError(f"The parameter '{repeated[:40]}' is repeated."))
    header = request.headers.get("Authorization", "")
    if request.endpoint not in CLIENT_AUTH_ENDPOINTS or " " not in header:
        return None
    scheme, *token = header.split(None, 1)  # as Authlib's extract_basic_authorization splits it
    if token and scheme.lower() != "basic":
        return None
    try:
        usable = bool(token) and "\x00" not in base64.b64decode(token[0].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        usable = False
    if not usable:
        refused = InvalidClientError("The credentials are missing or not UTF-8 text.")
        refused.status_code = 401  # RFC 6749 5.2: the client tried the Authorization header
        return _oauth_error(refused)
    return None


@bp.errorhandler(OAuth2Error)
def _refused_before_the_endpoint(error: OAuth2Error) -> Response:
    """An OAuth error Authlib raises before its endpoint handles errors:
    reading the request (server.create_oauth2_request: a client_id too
    long; InsecureTransportError over plain HTTP to a name not loopback)."""
    return _oauth_error(error)


def _oauth_error(error: OAuth2Error) -> Response:
    """Authlib's own answer for ``error``: its status, JSON body and headers
    (no-store, and WWW-Authenticate for a 401 invalid_client)."""
    status, body, headers = error()
    return Response(json.dumps(dict(body)), status=status, headers=headers)


@bp.route("/token", methods=["POST"])
@csrf.exempt
def token():
    # Every write of a token request is one atomic statement on PostgreSQL
    # (idp.tokens): no transaction around them.
    tokens.without_transaction()
    # The keys next, before this request writes anything (a client
    # assertion's jti, a spent code): on a fresh SQLite database creating
    # them takes a connection of its own (keys.ensure_signing_keys), which
    # would wait for this request's own write lock.
    keyring()
    response = oauth_server().create_token_response()
    db.session.commit()
    return dpop.add_nonce(response)


@bp.route("/par", methods=["POST"])
@csrf.exempt
def par():
    """RFC 9126 2 (oauth.par). What a failed request wrote (a client
    assertion's jti) commits too, as at the token endpoint."""
    response = oauth_server().create_endpoint_response("pushed_authorization")
    db.session.commit()
    return dpop.add_nonce(response)


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo():
    tokens.without_transaction()  # reads only (and a DPoP proof's jti: one statement)
    return dpop.add_nonce(_endpoint_response("userinfo"))


@bp.route("/revoke", methods=["POST"])
@csrf.exempt
def revoke():
    return _endpoint_response("revocation")


@bp.route("/introspect", methods=["POST"])
@csrf.exempt
def introspect():
    tokens.without_transaction()  # reads only
    return _endpoint_response("introspection")


def _endpoint_response(name: str) -> Response:
    response = oauth_server().create_endpoint_response(name)
    db.session.commit()
    return response


@bp.route("/register", methods=["POST"])
@csrf.exempt
def register():
    """RFC 7591 dynamic client registration (initial access token required).
    A refused registration writes nothing: its initial token stays usable."""
    response = oauth_server().create_endpoint_response("client_registration")
    if response.status_code < 400:
        db.session.commit()
    else:
        db.session.rollback()
    return response


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@csrf.exempt
def client_configuration(client_id: str):
    """RFC 7592: the client reads, updates or deletes its own registration
    (the endpoint reads ``client_id`` from the path)."""
    return _endpoint_response("client_configuration")


@bp.route("/session/end", methods=["GET", "POST"])
@csrf.exempt  # checked below, once we know whether this is our own confirmation form
def end_session():
    """RP-initiated logout; without an id_token_hint for this browser's
    customer, the customer confirms first (so a cross-site link cannot log
    them out)."""
    server = oauth_server()
    form = ConfirmForm()
    # Our own confirmation form, CSRF-checked; an RP's POST carries no token.
    # Read by server.EndSessionEndpoint while Authlib validates the request.
    g.idp_logout_confirmed = request.method == "POST" and form.validate_on_submit()
    try:
        end_request = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template("oauth/error.html", error=error), 400
    login_session = current_login_session(with_account=True)  # its subject, and the logout's audit record
    hinted_subject = (end_request.id_token_claims or {}).get("sub")
    must_confirm = end_request.needs_confirmation or (  # the hint's sub is the one its client sees
        login_session is not None
        and hinted_subject != subject_for(end_request.client, login_session.account.subject)
    )
    if must_confirm and not g.idp_logout_confirmed:
        return render_template("oauth/logout_confirm.html", form=form, params=request.values)
    response = server.create_endpoint_response("end_session", end_request)
    db.session.commit()
    return response or render_template("oauth/logged_out.html")


@bp.after_app_request
def _cors(response: Response) -> Response:
    if request.endpoint not in CORS_ENDPOINTS:
        return response
    response.vary.add("Origin")  # cacheable documents differ by Origin
    origin = request.headers.get("Origin")
    if origin and origin in Client.origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, DPoP"
        # RFC 9449 7.1, 8: a browser client reads the DPoP challenge and nonce.
        response.headers["Access-Control-Expose-Headers"] = "DPoP-Nonce, WWW-Authenticate"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _cacheable(body: bytes, max_age: int, content_type: str = "application/json") -> Response:
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = cache_control(max_age)
    return response

"""Pushed authorization requests (RFC 9126), built on Authlib's hooks
(Authlib 1.9 has no PAR on the server side: its issue 724, pull request 814).

1. The client POSTs its authorization request to ``/par`` (oauth.views.par),
   authenticating as at the token endpoint (RFC 9126 2: Authlib's client
   authentication with the methods of ``clients.AUTH_METHODS``, through
   ``PushedAuthorizationEndpoint``, a registered Authlib endpoint).
2. The request is checked as /authorize would check it (2.1: Authlib's
   authorization-code grant with our extensions, ``validate_authorization_request``),
   and stored (``PushedRequest``: the digest of the request_uri's random part,
   the client, the parameters, at most LIFETIME seconds). The answer is 201
   with ``request_uri`` and ``expires_in`` (2.2), ``Cache-Control: no-store``;
   errors are RFC 6749 5.2's JSON (2.3).
3. The browser brings ``client_id`` and ``request_uri`` to /authorize
   (oauth.authorize), which calls ``take``: the row is deleted by that one
   statement, so one request_uri serves one authorization request however
   many nodes race for it (4: "one-time use"); the pushed parameters are the
   request and any others sent along are ignored (4).
4. The rest of that authorization (login, consent) comes back to /authorize
   with the pushed parameters in the URL, as every interaction does; this
   browser's Flask session remembers their digest (``pending.remember_pushed``)
   so that a client that must push (5: its metadata
   ``require_pushed_authorization_requests``, or IDP_REQUIRE_PAR for all)
   is not refused on the way back (``must_push``); the mark goes once the
   authorization response is sent (``pending.forget_pushed``).

A DPoP proof with the push binds the code to its key as the ``dpop_jkt``
parameter does; when both are sent they must name the same key (RFC 9449
10.1, ``dpop.bind_pushed_request``).

Storage is bounded: a client has at most MAX_LIVE_PER_CLIENT live requests
(429 beyond, 2.3), each at most MAX_REQUEST_LENGTH long, and every push
deletes the expired rows.
"""

from __future__ import annotations

from urllib.parse import urlencode

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import OAuth2Request, TokenEndpoint
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app
from sqlalchemy import delete, func, select

from .. import pending
from ..clients import AUTH_METHODS
from ..extensions import db
from ..models import Client, PushedRequest
from ..security.clock import now
from ..security.secrets import digest, new_secret
from ..security.text import unstorable
from . import dpop
from .grants import MAX_REQUEST_LENGTH

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"  # RFC 9126 2.2
# RFC 9126 2.2: "a short time" (its example: 60 s); long enough for a
# redirect, too short for a URI kept in logs or history to be worth anything.
LIFETIME = 60
MAX_LIVE_PER_CLIENT = 100  # live pushed requests per client: at most this many per LIFETIME


class PushedAuthorizationEndpoint(TokenEndpoint):
    """RFC 9126 2: the pushed authorization request endpoint."""

    ENDPOINT_NAME = "pushed_authorization"
    CLIENT_AUTH_METHODS = AUTH_METHODS  # 2: as at the token endpoint

    def create_endpoint_response(self, request):
        client = self.authenticate_endpoint_client(request)
        # The body only (2: a form POST); the client_id of the authenticated client.
        params = [(key, value) for key in request.form for value in request.form.getlist(key)
                  if key not in _CLIENT_AUTHENTICATION and key != "client_id"]
        self.check(client, request.form.get("client_id"), params)
        params = dpop.bind_pushed_request(params)
        params.append(("client_id", client.client_id))
        request_uri = store(client.client_id, params)
        return 201, {"request_uri": request_uri, "expires_in": LIFETIME}, default_json_headers

    def check(self, client: Client, client_id: str | None, params: list[tuple[str, str]]) -> None:
        """The pushed parameters, checked as /authorize checks them (2.1);
        an error is answered here as JSON, never by redirect (2.3)."""
        named = dict(params)
        if "request_uri" in named:
            raise InvalidRequestError("A pushed request must not hold a request_uri (RFC 9126 2.1).")
        if client_id not in (None, client.client_id):
            raise InvalidRequestError("The client_id is not the client that authenticated.")
        if any("\ufffd" in text or unstorable(text) for pair in params for text in pair):
            raise InvalidRequestError("The pushed parameters are not UTF-8 text.")
        if len(urlencode(params)) > MAX_REQUEST_LENGTH:
            raise InvalidRequestError(f"The authorization request is too long (over {MAX_REQUEST_LENGTH} characters).")
        authorization = OAuth2Request("POST", f"{current_app.config['ISSUER']}/authorize")
        authorization.payload = BasicOAuth2Payload({**named, "client_id": client.client_id})
        try:
            grant = self.server.get_authorization_grant(authorization)
            grant.validate_authorization_request()
        except OAuth2Error as error:
            error.redirect_uri = None  # 2.3: the error goes to the client that pushed, not by redirect
            raise
        except ValueError:
            # As at /authorize: Authlib refuses to build an error whose description
            # would quote characters RFC 6749 forbids there (response_type='code"').
            raise InvalidRequestError() from None
        if live_count(client.client_id) >= MAX_LIVE_PER_CLIENT:
            raise TooManyPushedRequests()


# client_secret_post and private_key_jwt send these in the body; they are
# not part of the authorization request.
_CLIENT_AUTHENTICATION = {"client_secret", "client_assertion", "client_assertion_type"}


class TooManyPushedRequests(InvalidRequestError):
    """RFC 9126 2.3: 429 when a client pushes more than the OP allows."""

    status_code = 429

    def __init__(self):
        super().__init__(f"Too many pushed requests; at most {MAX_LIVE_PER_CLIENT} may wait at once.")

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(LIFETIME))]


def store(client_id: str, params: list[tuple[str, str]]) -> str:
    """Keep a checked pushed request; its request_uri. Expired rows go first."""
    t = now()
    prune_expired()
    secret = new_secret(32)
    db.session.add(PushedRequest(digest=digest(secret), client_id=client_id, params=[list(p) for p in params],
                                 expires_at=t + LIFETIME))
    return REQUEST_URI_PREFIX + secret


def prune_expired() -> int:
    """Remove pushed requests past their lifetime (every push, and ``flask
    audit prune``); the caller commits. Returns how many."""
    return db.session.execute(delete(PushedRequest).where(PushedRequest.expires_at <= now())).rowcount


def live_count(client_id: str) -> int:
    return db.session.scalar(select(func.count()).select_from(PushedRequest).where(
        PushedRequest.client_id == client_id, PushedRequest.expires_at > now()))


def take(client_id: str | None, request_uri: str) -> list[tuple[str, str]]:
    """The parameters pushed by ``client_id`` as ``request_uri``, spent by
    this call; InvalidRequestUri when there are none (never pushed, pushed
    by another client, used, or expired). The caller commits."""
    if not client_id:
        raise InvalidRequestError("An authorization request with a request_uri needs its client_id (RFC 9126 4).")
    spent = db.session.execute(
        delete(PushedRequest)
        .where(PushedRequest.digest == digest(request_uri[len(REQUEST_URI_PREFIX):]),
               PushedRequest.client_id == client_id, PushedRequest.expires_at > now())
        .returning(PushedRequest.params)
    ).first()
    if spent is None:
        raise InvalidRequestUri()
    return [(key, value) for key, value in spent.params]


class InvalidRequestUri(InvalidRequestError):
    """OIDC Core 3.1.2.6 / RFC 9126 4: the request_uri cannot be used."""

    error = "invalid_request_uri"

    def __init__(self):
        super().__init__("The request_uri is unknown, expired, already used or another client's.")


def must_push(client_id: str | None, request_digest: str) -> bool:
    """Whether an authorization request without a request_uri is refused
    (RFC 9126 5): the client (or the OP) requires pushed requests, and this
    browser is not on its way through one (``pending.remember_pushed``)."""
    client = Client.lookup(client_id)
    if client is None or not (current_app.config["REQUIRE_PAR"] or client.requires_pushed_authorization_requests):
        return False
    return not pending.was_pushed(request_digest)

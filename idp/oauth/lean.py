"""UserInfo served below Flask, for the plain case (issue 14).

Every relying party calls UserInfo with a Bearer token after each login,
and most of a Flask request's cost there is the pipeline (request hooks,
the ORM, Authlib's request objects), not the answer. This WSGI middleware
answers the one plain case itself: a GET, or a POST without a body, with
``Authorization: Bearer <token>`` (RFC 6750 2.1's b64token syntax), no
query string, no Origin (CORS) and no cookie, over HTTPS (or to loopback, as Authlib allows), for a live access token
with the openid scope, of an active account and an enabled client that
asked for plain JSON (no ``userinfo_signed_response_alg``).

Everything else goes to Flask unchanged, which answers it as before: any
other request shape (bad input included: a NUL or a byte outside ASCII in
any header), an unknown, expired or revoked token, a
token without openid or without a customer, a client not in the cache, and
any failure here (a database outage: Flask's error handlers answer 503).
So the errors and their WWW-Authenticate headers keep one source, and the
claims one rule: ``claims.claims_for``; the token by digest is
``tokens.userinfo_row``.

The answer carries what the Flask path's does: Authlib's JSON headers
(Content-Type, Cache-Control: no-store, Pragma: no-cache), the security
headers of ``security.headers``, Vary: Origin (``views._cors``), and the
request is counted in the same metrics (``ops``). UserInfo records no
audit event on either path.
"""

from __future__ import annotations

import json
import re
import time

from authlib.common.security import is_secure_transport

from .. import tokens
from ..claims import claims_for
from ..extensions import db
from ..ops import LATENCY, REQUESTS
from ..security.headers import security_headers

PATH = "/userinfo"
ENDPOINT = "oauth.userinfo"  # the Flask endpoint, as the metrics label it
# RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; one space, as every client sends.
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")


class _NotCached(Exception):
    """The client is not in this app's cache: Flask loads it."""


def _not_cached():
    raise _NotCached


class LeanUserInfo:
    def __init__(self, wsgi_app, flask_app) -> None:
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self._ready = None  # (engine, clock, clients cache, headers), on the first request

    def __call__(self, environ, start_response):
        token = _plain_bearer(environ) if environ.get("PATH_INFO") == PATH else None
        if token is None:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            body = self._answer(token)
        except Exception:
            # A database outage, or anything unforeseen: Flask answers it as
            # it always did (503 with Retry-After for an outage).
            body = None
        if body is None:
            return self.wsgi_app(environ, start_response)
        headers = [*self._ready[3], ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        method = environ["REQUEST_METHOD"]
        LATENCY.labels(ENDPOINT).observe(time.perf_counter() - started)
        REQUESTS.labels(ENDPOINT, method, "200").inc()
        return [body]

    def _answer(self, token: str) -> bytes | None:
        """The JSON body for ``token``, or None when Flask must answer."""
        if self._ready is None:
            self._ready = self._prepare()
        engine, clock, clients, _ = self._ready
        with engine.connect() as connection:
            found = tokens.userinfo_row(connection, token)
        if found is None:
            return None
        row, account = found
        if (row.revoked_at is not None or clock.now() >= row.access_expires_at
                or "openid" not in row.scope.split() or not account.is_active):
            return None
        client = clients.get(row.client_id, _not_cached)
        if client is None or client.client_metadata.get("userinfo_signed_response_alg"):
            return None
        return json.dumps(claims_for(account, row.scope, (row.claims_request or {}).get("userinfo"))).encode()

    def _prepare(self):
        app = self.flask_app
        with app.app_context():
            # One statement that only reads: no BEGIN and ROLLBACK round trips
            # (as tokens.without_transaction on the Flask path).
            engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache"),
                   *security_headers(app, "application/json"), ("Vary", "Origin")]
        return engine, app.extensions["idp.clock"], app.extensions["idp.clients"], headers


def _plain_bearer(environ) -> str | None:
    """The token of a plain Bearer request; None for anything else."""
    method = environ.get("REQUEST_METHOD")
    if method == "POST":
        if (environ.get("CONTENT_LENGTH") not in (None, "", "0") or environ.get("CONTENT_TYPE")
                or "HTTP_TRANSFER_ENCODING" in environ):
            return None
    elif method != "GET":
        return None
    if environ.get("QUERY_STRING") or "HTTP_ORIGIN" in environ or "HTTP_COOKIE" in environ:
        return None
    if environ.get("wsgi.url_scheme") != "https" and not is_secure_transport(f"http://{environ.get('HTTP_HOST')}/"):
        return None  # Authlib refuses plain HTTP but to loopback (InsecureTransportError), on the Flask path
    match = BEARER.fullmatch(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        return None
    # A NUL in any header is refused by errors._refuse_nul_characters; other
    # bytes outside ASCII are left to Flask too (WSGI gives them as latin-1).
    if any(not value.isascii() or "\x00" in value for key, value in environ.items() if key.startswith("HTTP_")):
        return None
    return match.group(1)

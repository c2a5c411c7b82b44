"""UserInfo and introspection served below Flask, for the plain case (issue 14).

Relying parties call UserInfo after each login and resource servers
introspect every token they are shown, and most of a Flask request's cost
there is the pipeline (request hooks, the ORM, Authlib's request objects),
not the answer. This one WSGI middleware answers the plain requests of each
endpoint itself, picked by path; everything else goes to Flask unchanged,
which answers it as before. So the errors and their WWW-Authenticate
headers keep one source, and each endpoint's rules one home.

Plain for both (``_plain_channel``): no query string, no Origin (CORS), no
cookie, no Transfer-Encoding, over HTTPS (or to loopback, as Authlib
allows), and every header ASCII without a NUL (errors._refuse_nul_characters
refuses a NUL; other bytes outside ASCII are left to Flask too: WSGI gives
them as latin-1).

UserInfo (``UserInfo``): a GET, or a POST without a body, with
``Authorization: Bearer <token>`` (RFC 6750 2.1's b64token syntax), for a
live access token with the openid scope, of an active account and an
enabled client that asked for plain JSON (no
``userinfo_signed_response_alg``). The claims: ``claims.claims_for``, its
"sub" the one that client sees (public or pairwise); the token by digest:
``tokens.userinfo_row``. A token in a POST body (RFC 6750 2.2) is Flask's.

Introspection (``Introspection``, RFC 7662): a POST of
``application/x-www-form-urlencoded`` (exactly), its Content-Length given
and at most MAX_CONTENT_LENGTH, whose fields are ``token`` and optionally
``token_type_hint`` (access_token or refresh_token), each once, not empty,
UTF-8 without a NUL; the client authenticated with client_secret_basic
(RFC 6749 2.3.1): ``Authorization: Basic`` of ``client_id:secret`` (UTF-8,
no percent-encoding), the client in this app's cache (``Client.lookup``'s),
enabled, registered for client_secret_basic, its secret right. Any
failure of client authentication goes to Flask, which answers
invalid_client as before. The answer: ``server.IntrospectionEndpoint``'s
``payload``; the token by digest: ``tokens.introspected``.

Any failure here (a database outage: Flask's error handlers answer 503)
hands the request to Flask too. An answer carries what the Flask path's
does: Authlib's JSON headers (Content-Type, Cache-Control: no-store,
Pragma: no-cache), the security headers of ``security.headers``, Vary:
Origin where ``views._cors`` adds it (UserInfo), the body as Flask's JSON
provider writes it; and the request is counted in the same metrics
(``ops``). Neither endpoint records an audit event on either path.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from typing import NamedTuple
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.consts import default_json_headers

from .. import tokens
from ..claims import claims_for
from ..extensions import db
from ..ops import LATENCY, REQUESTS
from ..security.headers import security_headers
from .server import IntrospectionEndpoint

# RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; one space, as every client sends.
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")
# RFC 7617 2: "Basic" SP token68 (base64); one space, as every client sends.
BASIC = re.compile(r"Basic ([A-Za-z0-9+/]+={0,2})")
FORM = "application/x-www-form-urlencoded"
HINTS = ("access_token", "refresh_token")  # Authlib's SUPPORTED_TOKEN_TYPES; another is Flask's error


class _Ready(NamedTuple):
    """What the answers need, made on the first request (in an app context)."""

    app: object
    engine: object  # autocommit: one statement that only reads needs no BEGIN and ROLLBACK round trips
    clock: object
    clients: object  # this app's client cache, as Client.lookup fills it
    headers: dict  # path -> the response headers but Content-Length


class _NotCached(Exception):
    """The client is not in this app's cache: Flask loads it."""


def _not_cached():
    raise _NotCached


class UserInfo:
    path = "/userinfo"
    name = "oauth.userinfo"  # the Flask endpoint, as the metrics label it
    vary = True  # views._cors: a CORS endpoint

    def plain(self, environ) -> str | None:
        """The token of a plain Bearer request; None for anything else."""
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            if environ.get("CONTENT_LENGTH") not in (None, "", "0") or environ.get("CONTENT_TYPE"):
                return None
        elif method != "GET":
            return None
        match = BEARER.fullmatch(environ.get("HTTP_AUTHORIZATION", ""))
        return match.group(1) if match is not None else None

    def answer(self, ready: _Ready, token: str) -> bytes | None:
        """The JSON body for ``token``, or None when Flask must answer."""
        with ready.engine.connect() as connection:
            found = tokens.userinfo_row(connection, token)
        if found is None:
            return None
        row, account = found
        if (row.revoked_at is not None or ready.clock.now() >= row.access_expires_at
                or "openid" not in row.scope.split() or not account.is_active):
            return None
        client = ready.clients.get(row.client_id, _not_cached)
        if client is None or client.client_metadata.get("userinfo_signed_response_alg"):
            return None
        claims = claims_for(account, row.scope, (row.claims_request or {}).get("userinfo"), client,
                            ready.app.config["PAIRWISE_SECRET"])
        return json.dumps(claims).encode()


class _Introspect(NamedTuple):
    client_id: str
    secret: str
    token: str
    hint: str | None


class Introspection:
    path = "/introspect"
    name = "oauth.introspect"
    vary = False

    def __init__(self, app) -> None:
        self.max_length = app.config["MAX_CONTENT_LENGTH"]
        self.endpoint = IntrospectionEndpoint(issuer=app.config["ISSUER"],
                                              pairwise_secret=app.config["PAIRWISE_SECRET"])

    def plain(self, environ) -> _Introspect | None:
        """The parts of a plain introspection request; None for anything
        else. The body read here is put back for Flask."""
        length = environ.get("CONTENT_LENGTH") or ""
        if (environ.get("REQUEST_METHOD") != "POST" or environ.get("CONTENT_TYPE") != FORM
                or not (length.isascii() and length.isdigit()) or not 0 < int(length) <= self.max_length):
            return None
        credentials = _basic_credentials(environ.get("HTTP_AUTHORIZATION", ""))
        if credentials is None:
            return None
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)
        fields = _form(body) if len(body) == int(length) else None
        if fields is None or set(fields) - {"token", "token_type_hint"} or not fields.get("token"):
            return None
        hint = fields.get("token_type_hint")
        if hint is not None and hint not in HINTS:
            return None
        return _Introspect(*credentials, fields["token"], hint)

    def answer(self, ready: _Ready, request: _Introspect) -> bytes | None:
        """The JSON body, or None when Flask must answer (every failure of
        client authentication, so that invalid_client has one source)."""
        client = ready.clients.get(request.client_id, _not_cached)
        if (client is None or client.disabled
                or not client.check_endpoint_auth_method("client_secret_basic", "introspection")
                or not client.check_client_secret(request.secret)):
            return None
        with ready.engine.connect() as connection:
            token = tokens.introspected(connection, request.token, request.hint, ready.clock.now())
        return ready.app.json.dumps(self.endpoint.payload(token, client)).encode()


class LeanEndpoints:
    """The WSGI middleware: the endpoint named by the path says whether a
    request is plain (``plain``: what it needs of the request, or None) and
    answers it (``answer``: the body, or None to hand it to Flask)."""

    def __init__(self, wsgi_app, flask_app) -> None:
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self.endpoints = {endpoint.path: endpoint for endpoint in (UserInfo(), Introspection(flask_app))}
        self._ready: _Ready | None = None

    def __call__(self, environ, start_response):
        endpoint = self.endpoints.get(environ.get("PATH_INFO"))
        request = endpoint.plain(environ) if endpoint is not None and _plain_channel(environ) else None
        if request is None:
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            if self._ready is None:
                self._ready = self._prepare()
            body = endpoint.answer(self._ready, request)
        except Exception:
            # A database outage, or anything unforeseen: Flask answers it as
            # it always did (503 with Retry-After for an outage).
            body = None
        if body is None:
            return self.wsgi_app(environ, start_response)
        start_response("200 OK", [*self._ready.headers[endpoint.path], ("Content-Length", str(len(body)))])
        LATENCY.labels(endpoint.name).observe(time.perf_counter() - started)
        REQUESTS.labels(endpoint.name, environ["REQUEST_METHOD"], "200").inc()
        return [body]

    def _prepare(self) -> _Ready:
        app = self.flask_app
        with app.app_context():
            engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")  # as tokens.without_transaction
        json_headers = [*default_json_headers, *security_headers(app, "application/json")]
        headers = {path: [*json_headers, *([("Vary", "Origin")] if endpoint.vary else [])]
                   for path, endpoint in self.endpoints.items()}
        return _Ready(app, engine, app.extensions["idp.clock"], app.extensions["idp.clients"], headers)


def _plain_channel(environ) -> bool:
    """What every plain request shares (the module's docstring says why)."""
    if (environ.get("QUERY_STRING") or "HTTP_ORIGIN" in environ or "HTTP_COOKIE" in environ
            or "HTTP_TRANSFER_ENCODING" in environ):
        return False
    if environ.get("wsgi.url_scheme") != "https" and not is_secure_transport(f"http://{environ.get('HTTP_HOST')}/"):
        return False  # Authlib refuses plain HTTP but to loopback (InsecureTransportError), on the Flask path
    return not any(not value.isascii() or "\x00" in value for key, value in environ.items() if key.startswith("HTTP_"))


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """client_id and secret of plain HTTP Basic credentials, as Authlib's
    extract_basic_authorization reads them; None for anything else (the
    Flask path decides: views._refuse_malformed_requests, Authlib)."""
    match = BASIC.fullmatch(header)
    if match is None:
        return None
    try:
        text = base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError
        return None
    client_id, colon, secret = text.partition(":")
    # No "%": Authlib percent-decodes both (RFC 6749 2.3.1), and then unquote is the identity.
    if not colon or not client_id or not secret or "%" in text or "\x00" in text:
        return None
    return client_id, secret


def _form(body: bytes) -> dict[str, str] | None:
    """A urlencoded body's fields, as werkzeug parses them; None when not
    ASCII, not UTF-8 once decoded, holding a NUL or a field given twice."""
    if not body.isascii():
        return None
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
    except ValueError:  # UnicodeDecodeError
        return None
    fields = dict(pairs)
    if len(fields) != len(pairs) or any("\x00" in key or "\x00" in value for key, value in pairs):
        return None
    return fields

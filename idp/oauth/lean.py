"""The machine-to-machine endpoints served below Flask, for the plain case (issue 14).

Relying parties call UserInfo after each login and refresh their tokens,
resource servers introspect every token they are shown, and services fetch
client_credentials tokens all day; most of a Flask request's cost there is
the pipeline (request hooks, the ORM, Authlib's request objects), not the
answer. This one WSGI middleware answers the plain requests of each
endpoint itself, picked by path; everything else goes to Flask unchanged,
which answers it as before. So the errors and their WWW-Authenticate
headers keep one source, and each endpoint's rules one home.

Plain for all (``_plain_channel``): no query string, no Origin (CORS), no
Transfer-Encoding, no Upgrade (a WebSocket handshake), no DPoP proof
(``oauth.dpop``), over HTTPS (or to loopback, as Authlib allows) with a
Host the Flask path takes (werkzeug keeps it and can route by it; else
Flask answers 400), and every header ASCII without a NUL in its name or
value, Content-Type's too (errors._refuse_nul_characters refuses a NUL;
other bytes outside ASCII are left to Flask too: WSGI gives them as
latin-1). Cookies are no reason to go to Flask: none of these answers
reads one, and Flask's are the same with the OP's cookies or without (a
browser sends them along when it calls these endpoints itself, as
bench/logins.mjs does).

UserInfo (``UserInfo``): a GET or a POST without a body (a POST without
a Content-Type either), with ``Authorization: Bearer <token>`` (RFC 6750
2.1's b64token syntax), for a live access token with the openid scope,
not DPoP-bound (RFC 9449 7.2: Flask refuses those as Bearer), of an
active account and an enabled client that asked for plain JSON (no
``userinfo_signed_response_alg``). The claims: ``claims.claims_for``, its
"sub" the one that client sees (public or pairwise), in its order (the
Flask path sorts the members; a JSON object has no order); the token by
digest: ``tokens.userinfo_row``. A token in a POST body (RFC 6750 2.2) is
Flask's.

The three endpoints that authenticate the client (``_ClientRequest``): a
POST of ``application/x-www-form-urlencoded`` (exactly), its Content-Length
given and at most MAX_CONTENT_LENGTH, each field once, not empty, UTF-8
without a NUL; the client authenticated with client_secret_basic (RFC 6749
2.3.1): ``Authorization: Basic`` of ``client_id:secret`` (UTF-8, no
percent-encoding), the client in this app's cache (``Client.lookup``'s),
enabled, registered for client_secret_basic, its secret right. Any failure
of client authentication goes to Flask, which answers invalid_client as
before.

- Introspection (``Introspection``, RFC 7662): fields ``token`` and
  optionally ``token_type_hint`` (access_token or refresh_token). The
  answer: ``server.IntrospectionEndpoint``'s ``payload``; the token by
  digest: ``tokens.introspected``.
- Revocation (``Revocation``, RFC 7009): the same fields. A token this
  client holds is revoked by ``tokens.revoke_below_flask`` (its audit row
  in the same transaction); one unknown or already revoked is answered 200
  with nothing written (2.2). Another client's token goes to Flask
  (Authlib's invalid_grant).
- Token (``TokenEndpoint``, RFC 6749): ``grant_type=client_credentials`` (4.4) or
  ``grant_type=refresh_token`` with ``refresh_token`` (6), and optionally
  ``scope`` of values the OP supports, or ``grant_type=authorization_code``
  with ``code``, ``redirect_uri`` and ``code_verifier`` (4.1.3, RFC 7636
  4.5), for a client registered for that grant. The token is Authlib's (``server.generate_token``: the RFC 9068
  JWT signed through joserfc), its row ``tokens.new_row``'s; a
  client_credentials token has none (self-contained, ``idp.tokens``), so
  that request costs no statement at all. A refresh
  token is rotated by ``tokens.claim_and_store`` as on the Flask path; one
  that is not usable (unknown, expired, rotated: replay), a scope wider
  than granted, a customer no longer active, or a claim lost to another
  request goes to Flask, which answers (and revokes the family on replay)
  as before. A code is exchanged as the Flask path does it (the code
  grant's rules, PKCE S256 by Authlib's comparison, the ID token by the
  same OpenIDCode hook, ``grants.add_id_token``) and claimed and its token
  stored by ``tokens.claim_and_store_on``; a code unknown, spent (reuse:
  Flask revokes what it bought), expired or lost to a concurrent exchange,
  a redirect_uri or verifier that does not match, a DPoP-bound code, a
  challenge not S256 or a customer no longer active goes to Flask.

Any failure here (a database outage: Flask's error handlers answer 503)
hands the request to Flask too; nothing is half-written, since every write
here is one transaction. An answer carries what the Flask path's does:
Authlib's JSON headers (Content-Type, Cache-Control: no-store, Pragma:
no-cache), the security headers of ``security.headers``, Vary: Origin
where ``views._cors`` adds it, the body as the Flask path writes it; and
the request is counted in the same metrics (``ops``).

The statements run through ``_Database``: on PostgreSQL a few connections
of the app's pool held for good, in autocommit, with psycopg's server-side
prepared statements, so a read costs one round trip and no pre-ping.
Durability (README): every write here (a revocation, a refresh-token
rotation, a code exchange) waits for the disk.
"""

from __future__ import annotations

import base64
import functools
import io
import itertools
import json
import re
import threading
import weakref
from collections import namedtuple
import time
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import parse_qsl

import psycopg
from psycopg import generators, pq
from psycopg.adapt import PyFormat, Transformer
from authlib.common.security import is_secure_transport
from authlib.consts import default_json_headers
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from psycopg.types.json import Json
from flask import json as flask_json
from sqlalchemy import event
from werkzeug.wsgi import get_host

from .. import tokens
from ..claims import SUPPORTED_SCOPES, claims_for
from ..extensions import db
from ..models import AuthorizationCode, Token
from ..ops import LATENCY, REQUESTS
from ..security.headers import security_headers
from .grants import add_id_token
from .server import IntrospectionEndpoint, oauth_server

# RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; one space, as every client sends.
BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")
# RFC 7617 2: "Basic" SP token68 (base64); one space, as every client sends.
BASIC = re.compile(r"Basic ([A-Za-z0-9+/]+={0,2})")
FORM = "application/x-www-form-urlencoded"
HINTS = ("access_token", "refresh_token")  # Authlib's SUPPORTED_TOKEN_TYPES; another is Flask's error
# PostgreSQL connections a process keeps for this path; more requests at once take more, returned after.
HELD_CONNECTIONS = 4


class _Ready(NamedTuple):
    """What the answers need, made on the first request (in an app context)."""

    app: object
    database: _Database
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
        if method not in ("GET", "POST") or environ.get("CONTENT_LENGTH") not in (None, "", "0"):
            # A body, even a GET's, is Flask's: its hooks read a form or JSON
            # one (a NUL, nesting too deep: 400; too long: 413), and a
            # POST's may hold the token (RFC 6750 2.2).
            return None
        if method == "POST" and environ.get("CONTENT_TYPE"):
            return None
        match = BEARER.fullmatch(environ.get("HTTP_AUTHORIZATION", ""))
        return match.group(1) if match is not None else None

    def answer(self, ready: _Ready, token: str, environ) -> bytes | None:
        """The JSON body for ``token``, or None when Flask must answer."""
        with ready.database.connection() as connection:
            found = tokens.userinfo_row(connection, token)
        if found is None:
            return None
        row, account = found
        if (row.revoked_at is not None or ready.clock.now() >= row.access_expires_at
                or "openid" not in row.scope.split() or not account.is_active):
            return None
        if row.dpop_jkt is not None:
            return None  # DPoP (RFC 9449 7.2): a bound token as Bearer is Flask's to refuse
        client = ready.clients.get(row.client_id, _not_cached)
        if client is None or client.client_metadata.get("userinfo_signed_response_alg"):
            return None
        claims = claims_for(account, row.scope, (row.claims_request or {}).get("userinfo"), client,
                            ready.app.config["PAIRWISE_SECRET"])
        return json.dumps(claims).encode()


class _ClientRequest(NamedTuple):
    client_id: str
    secret: str
    fields: dict[str, str]


class _ClientAuthenticated:
    """An endpoint that authenticates the client (the module's docstring):
    ``fields`` says which form fields a plain request may carry."""

    fields = frozenset({"token", "token_type_hint"})  # RFC 7662 2.1, RFC 7009 2.1
    endpoint: str  # Client.check_endpoint_auth_method's name of it

    def __init__(self, app) -> None:
        self.max_length = app.config["MAX_CONTENT_LENGTH"]

    def plain(self, environ) -> _ClientRequest | None:
        """The parts of a plain request; None for anything else. The body
        read here is put back for Flask."""
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
        if fields is None or set(fields) - self.fields or not all(fields.values()) or not self.usual(fields):
            return None
        return _ClientRequest(*credentials, fields)

    def usual(self, fields: dict[str, str]) -> bool:
        """The fields are what this path answers (else Flask does)."""
        hint = fields.get("token_type_hint")
        return "token" in fields and (hint is None or hint in HINTS)

    def client(self, ready: _Ready, request: _ClientRequest):
        """The authenticated client, or None: Flask answers (invalid_client has one source)."""
        client = ready.clients.get(request.client_id, _not_cached)
        if (client is None or client.disabled
                or not client.check_endpoint_auth_method("client_secret_basic", self.endpoint)
                or not client.check_client_secret(request.secret)):
            return None
        return client


class Introspection(_ClientAuthenticated):
    path = "/introspect"
    name = "oauth.introspect"
    vary = False
    endpoint = "introspection"

    def __init__(self, app) -> None:
        super().__init__(app)
        self.endpoint_object = IntrospectionEndpoint(issuer=app.config["ISSUER"],
                                                     pairwise_secret=app.config["PAIRWISE_SECRET"])

    def answer(self, ready: _Ready, request: _ClientRequest, environ) -> bytes | None:
        client = self.client(ready, request)
        if client is None:
            return None
        with ready.app.app_context(), ready.database.connection() as connection:
            token = tokens.introspected(connection, request.fields["token"], request.fields.get("token_type_hint"),
                                        ready.clock.now())
        return ready.app.json.dumps(self.endpoint_object.payload(token, client)).encode()


class Revocation(_ClientAuthenticated):
    path = "/revoke"
    name = "oauth.revoke"
    vary = True
    endpoint = "revocation"

    def answer(self, ready: _Ready, request: _ClientRequest, environ) -> bytes | None:
        client = self.client(ready, request)
        if client is None:
            return None
        at = ready.clock.now()
        with ready.app.app_context(), ready.database.connection() as connection:
            token = tokens.introspected(connection, request.fields["token"], request.fields.get("token_type_hint"), at,
                                        with_account=False)
            if token is not None and not token.check_client(client):
                return None  # Authlib's invalid_grant (RFC 7009 2.1: the token was not issued to it)
            if token is not None and token.row.revoked_at is None:
                tokens.revoke_below_flask(connection, token, at, environ.get("REMOTE_ADDR"),
                                          environ.get("HTTP_USER_AGENT", ""))
        return ready.app.json.dumps({}).encode()


# Per grant type: the fields a plain token request has, and those it may have.
_GRANT_FIELDS = {
    "client_credentials": (frozenset({"grant_type"}), frozenset({"scope"})),
    "refresh_token": (frozenset({"grant_type", "refresh_token"}), frozenset({"scope"})),
    "authorization_code": (frozenset({"grant_type", "code", "redirect_uri", "code_verifier"}), frozenset()),
}


class TokenEndpoint(_ClientAuthenticated):
    path = "/token"
    name = "oauth.token"
    vary = True
    fields = frozenset({"grant_type", "scope", "refresh_token", "code", "redirect_uri", "code_verifier"})
    endpoint = "token"

    def usual(self, fields: dict[str, str]) -> bool:
        if fields.get("grant_type") not in _GRANT_FIELDS:
            return False
        required, optional = _GRANT_FIELDS[fields["grant_type"]]
        if not required <= fields.keys() <= required | optional:
            return False
        # Scope values the OP supports, each once (RFC 6749 3.3); anything else is Flask's to judge.
        scope = fields.get("scope", "").split(" ") if "scope" in fields else []
        return all(value in SUPPORTED_SCOPES for value in scope) and len(set(scope)) == len(scope)

    def answer(self, ready: _Ready, request: _ClientRequest, environ) -> bytes | None:
        client = self.client(ready, request)
        fields = request.fields
        grant_type = fields["grant_type"]
        if client is None or not client.check_grant_type(grant_type):
            return None  # unauthorized_client, from Flask
        if client.client_metadata.get("dpop_bound_access_tokens"):
            return None  # RFC 9449 5.2: a proof is required, and proofs are Flask's (oauth.dpop)
        with ready.app.app_context():
            if grant_type == "client_credentials":
                return self._client_credentials(client, fields.get("scope"))
            with ready.database.connection() as connection:
                if grant_type == "authorization_code":
                    return self._code(connection, client, fields)
                return self._refresh(connection, client, fields["refresh_token"], fields.get("scope"))

    @staticmethod
    def _client_credentials(client, scope: str | None) -> bytes:
        """RFC 6749 4.4.2–4.4.3, as Authlib's ClientCredentialsGrant: no
        refresh token; the token self-contained, not stored (``idp.tokens``)."""
        token = oauth_server().generate_token("client_credentials", client, None, scope, include_refresh_token=False)
        tokens.issued_self_contained("client_credentials")
        return flask_json.dumps(token).encode()

    @staticmethod
    def _code(connection, client, fields: dict[str, str]) -> bytes | None:
        """RFC 6749 4.1.3–4.1.4 with PKCE (RFC 7636 4.6), as Authlib's
        AuthorizationCodeGrant with ``grants``' extensions: the code claimed
        and the token stored in one statement, the ID token added by the
        Flask path's own hook (``grants.add_id_token``)."""
        found = tokens.code_row(connection, fields["code"], client.client_id)
        if found is None:
            return None  # unknown, or another client's: Flask answers invalid_grant
        code, account = found
        if code.used_at is not None or tokens.now() >= code.expires_at or not account.is_active:
            return None  # reuse (Flask revokes what the code bought), expired, or a customer no longer active
        if code.dpop_jkt is not None:
            return None  # RFC 9449 10: the token request must prove that key, and proofs are Flask's
        if code.redirect_uri is None or code.redirect_uri != fields["redirect_uri"]:
            return None  # invalid_grant, or a code whose authorization request implied its redirect URI
        verifier = fields["code_verifier"]
        if (code.code_challenge_method != "S256" or not code.code_challenge
                or not CODE_VERIFIER_PATTERN.match(verifier)
                or not compare_s256_code_challenge(verifier, code.code_challenge)):
            return None  # Flask answers: a failed check leaves the code usable there too
        token = oauth_server().generate_token("authorization_code", client, account, code.scope,
                                              include_refresh_token=client.check_grant_type("refresh_token"))
        row = tokens.new_row(token, "authorization_code", client.client_id, account, code)
        token = add_id_token(token, client, code, account)
        if not tokens.claim_and_store_on(connection, AuthorizationCode, code.id, "used_at", row["issued_at"], row):
            return None  # another exchange spent it first: reuse, which Flask answers (and revokes)
        return flask_json.dumps(token).encode()

    @staticmethod
    def _refresh(connection, client, presented: str, scope: str | None) -> bytes | None:
        """RFC 6749 6, as Authlib's RefreshTokenGrant with ``grants.RefreshTokenGrant``'s
        storage: the old token claimed and its successor stored in one statement."""
        found = tokens.refresh_row(connection, presented)
        if found is None:
            return None
        old, account = found
        if (old.client_id != client.client_id or not old.is_refresh_usable(tokens.now())
                or account is None or not account.is_active):
            return None  # unknown, expired, rotated (replay) or revoked: Flask answers invalid_grant
        if scope is not None and not set(scope.split()) <= set(old.scope.split()):
            return None  # invalid_scope (RFC 6749 6: no scope beyond the original grant)
        token = oauth_server().generate_token("refresh_token", client, account, scope or old.scope,
                                              include_refresh_token=True)
        row = tokens.new_row(token, "refresh_token", client.client_id, account, old)
        if not tokens.claim_and_store_on(connection, Token, old.id, "rotated_at", row["issued_at"], row):
            return None  # another request rotated it first: replay, which Flask answers
        return flask_json.dumps(token).encode()


class LeanEndpoints:
    """The WSGI middleware: the endpoint named by the path says whether a
    request is plain (``plain``: what it needs of the request, or None) and
    answers it (``answer``: the body, or None to hand it to Flask)."""

    def __init__(self, wsgi_app, flask_app) -> None:
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app
        self.endpoints = {endpoint.path: endpoint for endpoint in (
            UserInfo(), Introspection(flask_app), Revocation(flask_app), TokenEndpoint(flask_app))}
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
            body = endpoint.answer(self._ready, request, environ)
        except Exception:
            # A database outage, or anything unforeseen: Flask answers it as
            # it always did (503 with Retry-After for an outage).
            body = None
        if body is None:
            return self.wsgi_app(environ, start_response)
        start_response("200 OK", [*self._ready.headers[endpoint.path], ("Content-Length", str(len(body)))])
        latency, requests = _metrics(endpoint.name, environ["REQUEST_METHOD"])
        latency.observe(time.perf_counter() - started)
        requests.inc()
        return [body]

    def _prepare(self) -> _Ready:
        app = self.flask_app
        with app.app_context():
            database = _Database(db.engine)
        json_headers = [*default_json_headers, *security_headers(app, "application/json")]
        headers = {path: [*json_headers, *([("Vary", "Origin")] if endpoint.vary else [])]
                   for path, endpoint in self.endpoints.items()}
        return _Ready(app, database, app.extensions["idp.clock"], app.extensions["idp.clients"], headers)


@functools.lru_cache(maxsize=16)
def _metrics(name: str, method: str):
    """The latency and request-count series of an endpoint's answered
    requests (``ops``), looked up once: ``labels`` locks and hashes each time."""
    return LATENCY.labels(name), REQUESTS.labels(name, method, "200")


# --- the database ---------------------------------------------------------------


class _Rows(list):
    """A statement's rows, read as a SQLAlchemy Result is."""

    def first(self):
        return self[0] if self else None

    def all(self):
        return self


class _Database:
    """Where this path's statements (``idp.tokens``'s Core statements) run.

    PostgreSQL: connections of the app's own pool, checked out once (the
    pool's ping runs then) and held, up to HELD_CONNECTIONS, in
    autocommit; each statement is compiled once and prepared on the server
    (``_Held``), so a read is one round trip, and so is each
    write, a single statement. A connection that fails is invalidated and
    the request goes to Flask. Disposing of the engine closes the held ones.
    SQLite: a connection of the engine per request, in a transaction (a
    round trip costs nothing there)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.postgresql = engine.dialect.name == "postgresql"
        self.idle: list[_Held] = []
        self.lock = threading.Lock()
        if self.postgresql:
            event.listen(engine, "engine_disposed", self.close)

    @contextmanager
    def connection(self):
        if not self.postgresql:
            with self.engine.begin() as connection:
                yield connection
            return
        with self.lock:
            held = self.idle.pop() if self.idle else None
        if held is None:
            held = _Held(self.engine)
        try:
            yield held
        except BaseException:
            held.discard()
            raise
        with self.lock:
            keep = len(self.idle) < HELD_CONNECTIONS
            if keep:
                self.idle.append(held)
        if not keep:
            held.release()

    def close(self, *args) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for held in idle:
            held.discard()


class _Held:
    """One held PostgreSQL connection (``_Database``), taking Core statements
    as a SQLAlchemy connection does (``execute``, ``dialect``).

    Statements go through libpq as psycopg's own cursors send them
    (``psycopg.pq``: prepare once per connection, then execute prepared),
    without a cursor: a cursor's query conversion, prepared-statement
    bookkeeping and result setup cost ~20 µs a statement (measured beside
    this, in-process), a third of a revocation's CPU. Values go as text,
    their types inferred by the server from the statement (as psycopg sends
    a str); rows come back through psycopg's loaders (``Transformer``).
    ``psycopg.generators`` is psycopg's own, not its documented API: should
    a release change it, every request here fails over to Flask, and the
    lean tests, which count what reaches Flask, fail."""

    def __init__(self, engine) -> None:
        self.dialect = engine.dialect
        self.pooled = engine.raw_connection()
        self.raw: psycopg.Connection = self.pooled.driver_connection
        self.raw.rollback()  # the ping's transaction, if any
        self.raw.autocommit = True
        # Every statement here finds its rows by an indexed key (a digest, an
        # id, a family). PostgreSQL plans a prepared statement for good after
        # five executions (its generic plan, kept until an ANALYZE of the
        # table): made while a table was small, that plan may be a sequential
        # scan, which it keeps as the table grows — with autovacuum off, or
        # until autovacuum analyzes it. Seen in bench/run.sh: revocation fell
        # to a fifth once client_credentials tokens stopped filling the
        # tokens table before introspection ran. Without sequential scans the
        # plan is the index's from the start.
        self.raw.execute("SET enable_seqscan = off")
        self.pgconn = self.raw.pgconn
        self.loader = Transformer(self.raw)
        self.dumper = Transformer(self.raw)
        self.prepared: set[bytes] = set()
        # An app dropped without disposing of its engine (a test's second
        # app, say) must not leave the connection open when this goes.
        self._finalizer = weakref.finalize(self, _invalidate, self.pooled)

    def execute(self, statement, params: dict) -> _Rows:
        sql = _sql(statement, self.dialect)
        if sql.name not in self.prepared:
            self.pgconn.send_prepare(sql.name, sql.text)
            self._result(duplicate_ok=True)  # a connection this path held before has it already
            self.prepared.add(sql.name)
        values = self.dumper.dump_sequence([_adapted(params[name]) for name in sql.parameters], sql.formats)
        self.pgconn.send_query_prepared(sql.name, values)
        result = self._result()
        if not result.nfields:
            return _Rows()
        self.loader.set_pgresult(result)
        return _Rows(self.loader.load_rows(0, result.ntuples, _row_class(sql.name, result)._make))

    def _result(self, duplicate_ok: bool = False):
        """The one result of what was sent, waited for with the connection's deadline."""
        (result,) = self.raw.wait(generators.execute(self.pgconn))
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            if duplicate_ok and result.error_field(pq.DiagnosticField.SQLSTATE) == b"42P05":
                return result
            raise psycopg.DatabaseError((result.error_message or b"").decode(errors="replace"))
        return result

    def discard(self) -> None:
        self._finalizer.detach()
        self.pooled.invalidate()

    def release(self) -> None:
        self._finalizer.detach()
        self.raw.execute("RESET enable_seqscan")  # the pool's other users plan as usual
        self.raw.autocommit = False
        self.pooled.close()


def _invalidate(pooled) -> None:
    """Close a held connection whose holder is gone (``_Held``'s finalizer)."""
    try:
        pooled.invalidate()
    except Exception:  # the pool or the connection is gone already
        pass


_ROW_CLASSES: dict[bytes, type] = {}  # statement name -> its named row


def _row_class(name: bytes, result) -> type:
    """The named row of a statement's result (its columns never change)."""
    row = _ROW_CLASSES.get(name)
    if row is None:
        row = _ROW_CLASSES.setdefault(name, namedtuple("Row", [result.fname(i).decode() for i in range(result.nfields)]))
    return row


class _Statement(NamedTuple):
    name: bytes  # of the prepared statement, on every held connection
    text: bytes  # with $1, $2, ... for its parameters
    parameters: tuple[str, ...]  # the bind parameters' names, in $n order
    formats: list  # psycopg's PyFormat of each: text, the type left to the server


_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")
_NAMES = itertools.count()


@functools.cache
def _sql(statement, dialect) -> _Statement:
    """A Core statement compiled once for ``_Held``. Every value is a named
    bind parameter of the statement (no column_keys: those would turn
    parameters named like columns into more SET clauses); a name used twice
    is one parameter."""
    names: list[str] = []

    def numbered(match) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PYFORMAT.sub(numbered, str(statement.compile(dialect=dialect)))
    name = f"idp_lean_{next(_NAMES)}".encode()
    return _Statement(name, text.encode(), tuple(names), [PyFormat.TEXT] * len(names))


def _adapted(value):
    """A JSON column's value (a dict, a list) as psycopg sends JSON."""
    return Json(value) if isinstance(value, (dict, list)) else value


# --- the request ------------------------------------------------------------------


def _plain_channel(environ) -> bool:
    """What every plain request shares (the module's docstring says why)."""
    if environ.get("QUERY_STRING") or "HTTP_ORIGIN" in environ or "HTTP_TRANSFER_ENCODING" in environ:
        return False
    if "HTTP_UPGRADE" in environ:
        return False  # werkzeug's routing refuses a WebSocket handshake to these (WebsocketMismatch, 400)
    if "HTTP_DPOP" in environ:
        return False  # DPoP (RFC 9449): a request carrying a proof is Flask's (oauth/dpop.py)
    if not _secure_transport(environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
                             environ.get("SERVER_PORT")):
        return False
    # The headers as errors._nul_in_headers reads them: names and values, Content-Type and -Length too.
    return not any("\x00" in key or not value.isascii() or "\x00" in value
                   for key, value in environ.items() if key.startswith(("HTTP_", "CONTENT_")))


@functools.lru_cache(maxsize=64)
def _secure_transport(scheme: str | None, host: str | None, server_name: str | None, server_port: str | None) -> bool:
    """Whether the Flask path gets past the request's URL, once per Host
    value: werkzeug's host (``get_host``: empty when the Host header holds
    what no host name may, a bad port say), a name its routing can encode
    (``Map.bind``: BadHost, 400, otherwise), and Authlib's
    ``is_secure_transport`` of the URL (https, or plain HTTP to loopback;
    without a host, neither: InsecureTransportError, 400)."""
    environ = {"wsgi.url_scheme": scheme, "SERVER_NAME": server_name, "SERVER_PORT": server_port}
    if host is not None:
        environ["HTTP_HOST"] = host
    host = get_host(environ)
    try:
        host.lower().partition(":")[0].encode("idna")
    except UnicodeError:
        return False
    return is_secure_transport(f"{scheme}://{host}/")


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

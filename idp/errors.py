"""Errors as the customer or the client sees them: a page in the customer's language, or OAuth JSON.

No stack trace ever reaches a response. An unreachable database (down,
restarting, out of connections) is an outage, not a bug: wherever it
surfaces — a view, a before/after_request hook, the session's close at
teardown — the request answers 503 with Retry-After and the log gets one
line. Any other unexpected exception is logged with its traceback, its
transaction rolled back, and answered with a plain 500 page.

Bad input is a 4xx, including what Werkzeug itself would fail on: a query
string's raw bytes (``Request``), an id in a path past any row
(``DatabaseId``), a Host header it cannot build URLs for (``_respond``).
"""

import logging
import re

import flask
from flask import Flask, current_app, g, jsonify, render_template, request
from flask.globals import request_ctx
from flask_babel import lazy_gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import IntegerConverter

from .extensions import db
from .security.text import unstorable

# Paths of the machine-facing endpoints; by path, since a 405 or 413 may
# come before routing has named an endpoint.
JSON_PATHS = {"/token", "/userinfo", "/revoke", "/introspect", "/jwks", "/par"}

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
# The methods whose body Flask-WTF reads as a form's data.
SUBMIT_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

MESSAGES = {
    400: lazy_gettext("リクエストの内容が正しくありません。"),
    404: lazy_gettext("お探しのページは見つかりませんでした。"),
    405: lazy_gettext("この操作は受け付けられません。"),
    413: lazy_gettext("送信された内容が大きすぎます。"),
    415: lazy_gettext("送信された形式には対応していません。"),
    429: lazy_gettext("しばらくしてから再度お試しください。"),
    500: lazy_gettext("システムエラーが発生しました。しばらくしてから再度お試しください。"),
    503: lazy_gettext("ただいまサービスを一時的にご利用いただけません。しばらくしてから再度お試しください。"),
}

# A byte of a query string outside ASCII (Request).
RAW_QUERY_BYTE = re.compile(rb"[\x80-\xff]")
# The largest row id an <int:...> URL may name: PostgreSQL's integer column (DatabaseId).
LARGEST_ID = 2**31 - 1

# Seconds a client should wait before trying again while the database is
# unreachable: a restart takes a few, and the pool reconnects at once after.
RETRY_AFTER = 5

# SQLite reports bad SQL as OperationalError too; only these result codes
# (and their extended forms) mean the database cannot serve right now.
SQLITE_UNAVAILABLE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")


def database_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` says the database cannot serve now — unreachable,
    restarting, out of connections or locked — rather than that our code or
    our schema is wrong (those stay 500s with a traceback)."""
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return False
    if error.connection_invalidated:
        return True
    sqlite_name = getattr(error.orig, "sqlite_errorname", None)
    if sqlite_name is not None:
        return sqlite_name.startswith(SQLITE_UNAVAILABLE)
    # psycopg raises these for a failed or lost connection and for SQLSTATE
    # classes 08 (connection), 40 (rollback), 53 (resources), 55/57 (state,
    # operator intervention: shutdown, starting up) and 58 (system).
    return True


class Request(flask.Request):
    """Flask's request, its query string read as a browser sends it: bytes
    outside ASCII (sent raw by a client; WSGI hands them over as latin-1)
    are percent-encoded. So a query string that is not UTF-8 reads as its
    %FF form does (Werkzeug keeps "%FF" as text), where Werkzeug would
    raise UnicodeDecodeError at each read of request.args, full_path or url
    (hooks, the error page); UTF-8 reads as before."""

    def __init__(self, environ, *args, **kwargs) -> None:
        super().__init__(environ, *args, **kwargs)
        if not self.query_string.isascii():
            self.query_string = RAW_QUERY_BYTE.sub(lambda byte: b"%%%02X" % byte[0][0], self.query_string)


class DatabaseId(IntegerConverter):
    """``<int:...>`` in our URLs names a row by its id: a number larger than
    any id (which the database could not even compare) names none, a 404."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", LARGEST_ID)
        super().__init__(map, *args, **kwargs)


def _nul_in_headers(environ) -> bool:
    """Whether a request header's name or value holds U+0000: read from the
    WSGI environ, where they are (HTTP_*, CONTENT_*), rather than through
    request.headers, whose per-header translation cost ~25 µs a request."""
    return any("\x00" in key or "\x00" in value for key, value in environ.items()
               if key.startswith(("HTTP_", "CONTENT_")) and isinstance(value, str))


def init_app(app: Flask) -> None:
    if not any(isinstance(f, _NoOutageTracebacks) for f in app.logger.filters):
        app.logger.addFilter(_NoOutageTracebacks())

    @app.before_request
    def _refuse_nul_characters():
        # No field of ours may hold U+0000, and PostgreSQL cannot store one:
        # refuse it at the door rather than fail deep inside. In the path it
        # can name nothing (404); in a parameter, header or cookie it is
        # malformed (RFC 9110 5.5 forbids it in header fields).
        if "\x00" in request.path:
            return _respond(404)
        fields = [request.args, request.form] if request.mimetype in FORM_TYPES else [request.args]
        if (any("\x00" in key or "\x00" in value for values in fields for key, value in values.items(multi=True))
                or _nul_in_headers(request.environ) or (request.is_json and _unstorable_json())):
            return _respond(400)
        return None

    @app.before_request
    def _refuse_json_on_pages():
        # Our pages take HTML forms. Flask-WTF would read a JSON body as a
        # form's data too, and its forms fail on what is no form: a list, a
        # number where text belongs.
        if (request.is_json and request.method in SUBMIT_METHODS and request.url_rule is not None
                and not _machine_path(request.path)):
            return _respond(415)
        return None

    @app.errorhandler(CSRFError)
    def _csrf(error):
        message = lazy_gettext("画面の有効期限が切れました。お手数ですが、もう一度はじめからお試しください。")
        return render_template("errors/error.html", message=message), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        # An exception from an after_request hook reaches us wrapped (Flask's
        # handle_exception): an outage there is an outage too.
        if isinstance(error, InternalServerError) and database_unavailable(error.original_exception):
            return _outage(error.original_exception)
        return _respond(error.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if database_unavailable(error):
            return _outage(error)  # the session is closed at teardown
        app.logger.exception("unhandled error on %s", request.path)
        db.session.rollback()
        return _respond(InternalServerError.code)

    @app.teardown_request
    def _close_session(error):
        # Closing the session rolls back what it read. On a connection the
        # server has dropped that raises, and from Flask-SQLAlchemy's own
        # teardown (which runs after this one) it would escape the request
        # after its response was made. The server has undone that
        # transaction already: log the outage and throw the connection away.
        try:
            db.session.remove()
        except Exception as close_error:
            if not database_unavailable(close_error):
                raise
            _log_outage(close_error, "database unavailable after the answer")
            db.session.remove()


def _unstorable_json() -> bool:
    """A JSON body (client metadata) nested deeper than the parser goes, or
    holding text no page or column of ours can hold (security.text)."""
    try:
        return unstorable(request.get_json(silent=True))
    except RecursionError:
        return True


def _outage(error: BaseException):
    _log_outage(error)
    response = current_app.make_response(_respond(503))
    response.headers["Retry-After"] = str(RETRY_AFTER)
    response.headers["Cache-Control"] = "no-store"
    return response


def _log_outage(error: BaseException, what: str = "database unavailable") -> None:
    """One line per request, however many places the outage surfaced in."""
    if g.get("idp_outage_logged"):
        return
    g.idp_outage_logged = True
    cause = getattr(error, "orig", None) or error
    summary = str(cause).strip().splitlines() or [type(cause).__name__]
    current_app.logger.error("%s: %s %s: %s", what, request.method, request.path, summary[0])


class _NoOutageTracebacks(logging.Filter):
    """Flask logs an exception from an after_request hook with its traceback
    before our handler sees it, and logs again if a hook fails while the
    error response is finalised. For an outage, _log_outage's line is all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and database_unavailable(record.exc_info[1]))


def _machine_path(path: str) -> bool:
    """Whether ``path`` is a machine-facing endpoint's (OAuth JSON errors), not a page's."""
    return path in JSON_PATHS or path.startswith(("/.well-known/", "/register/")) or path == "/register"


def _respond(status: int):
    if request_ctx.url_adapter is None:
        # A Host header Werkzeug cannot build URLs for (BadHost: a label
        # over 63 characters, say): the page's links are paths, the same
        # under any host name.
        request_ctx.url_adapter = current_app.url_map.bind("localhost", script_name=request.root_path or "/")
    if _machine_path(request.path):
        error = "server_error" if status >= 500 else "invalid_request"
        if status == 503:
            error = "temporarily_unavailable"  # RFC 6749 4.1.2.1's word for it
        return jsonify(error=error), status, {"Cache-Control": "no-store"}
    message = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
    return render_template("errors/error.html", message=message), status

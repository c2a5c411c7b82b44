"""Errors as the customer or the client sees them: a Japanese page, or OAuth JSON.

No stack trace ever reaches a response; an unexpected exception is logged,
its transaction rolled back, and answered with a plain 500 page.
"""

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db

# Paths of the machine-facing endpoints; by path, since a 405 or 413 may
# come before routing has named an endpoint.
JSON_PATHS = {"/token", "/userinfo", "/revoke", "/introspect", "/jwks"}

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}

MESSAGES = {
    400: "リクエストの内容が正しくありません。",
    404: "お探しのページは見つかりませんでした。",
    405: "この操作は受け付けられません。",
    413: "送信された内容が大きすぎます。",
    415: "送信された形式には対応していません。",
    429: "しばらくしてから再度お試しください。",
    500: "システムエラーが発生しました。しばらくしてから再度お試しください。",
}


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_nul_characters():
        # No field of ours may hold U+0000, and PostgreSQL cannot store one:
        # refuse it at the door rather than fail deep inside. In the path it
        # can name nothing (404); in a parameter, header or cookie it is
        # malformed (RFC 9110 5.5 forbids it in header fields).
        if "\x00" in request.path:
            return _respond(404)
        fields = [request.args, request.form] if request.mimetype in FORM_TYPES else [request.args]
        texts = [text for values in fields for key, value in values.items(multi=True) for text in (key, value)]
        texts += [text for pair in request.headers.items() for text in pair]
        if any("\x00" in text for text in texts):
            return _respond(400)
        return None

    @app.errorhandler(CSRFError)
    def _csrf(error):
        message = "画面の有効期限が切れました。お手数ですが、もう一度はじめからお試しください。"
        return render_template("errors/error.html", message=message), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return _respond(error.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error on %s", request.path)
        db.session.rollback()
        return _respond(InternalServerError.code)


def _respond(status: int):
    path = request.path
    if path in JSON_PATHS or path.startswith(("/.well-known/", "/register/")) or path == "/register":
        error = "server_error" if status >= 500 else "invalid_request"
        return jsonify(error=error), status, {"Cache-Control": "no-store"}
    message = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
    return render_template("errors/error.html", message=message), status

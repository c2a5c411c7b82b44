"""Discovery and JWKS served below Flask.

Both are public, precomputed bytes that every relying party polls; the full
Flask pipeline (session, CSRF, metrics and header hooks) costs more than
the document. This WSGI middleware answers plain GETs for them directly,
with the same body, Content-Type, Cache-Control, ETag (and 304) the views
give. Requests with an Origin header (CORS) go through Flask as before;
the answers here say ``Vary: Origin`` as the views' do, so that no cache
hands one of them, without Access-Control-Allow-Origin, to a CORS request.
"""

from __future__ import annotations

from ..keys import keyring
from .discovery import discovery_body

DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/jwks"
# Vary: Origin on every answer, with an Origin or without (Fetch, "CORS
# protocol and HTTP caches"): the Flask views add Access-Control-Allow-Origin
# for registered origins only (views._cors).
COMMON = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Vary", "Origin")]


class PublicDocuments:
    def __init__(self, wsgi_app, flask_app) -> None:
        self.wsgi_app = wsgi_app
        self.flask_app = flask_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        if (path not in (DISCOVERY, JWKS) or environ.get("REQUEST_METHOD") != "GET"
                or "HTTP_ORIGIN" in environ or environ.get("QUERY_STRING")):
            return self.wsgi_app(environ, start_response)
        if path == DISCOVERY:
            body, etag, content_type, max_age = discovery_body(self.flask_app), None, "application/json", 3600
        else:
            try:
                with self.flask_app.app_context():
                    ring = keyring()
            except Exception:
                # Keys not cached and not loadable here (the database is
                # unreachable): Flask's view tries again, and its error
                # handlers answer a failure (503 for an outage).
                return self.wsgi_app(environ, start_response)
            body, etag, content_type, max_age = ring.jwks_bytes, f'"{ring.etag}"', "application/jwk-set+json", 300
        headers = [("Cache-Control", f"public, max-age={max_age}"), *COMMON]
        if etag:
            headers.append(("ETag", etag))
            if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
                start_response("304 Not Modified", headers)
                return [b""]
        headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

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
DISCOVERY_MAX_AGE = 3600
JWKS_MAX_AGE = 300
# Vary: Origin on every answer, with an Origin or without (Fetch, "CORS
# protocol and HTTP caches"): the Flask views add Access-Control-Allow-Origin
# for registered origins only (views._cors).
COMMON = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"), ("Vary", "Origin")]


def cache_control(max_age: int) -> str:
    """The documents' Cache-Control, here and in the views (oauth.views),
    on a 304 as on its 200 (RFC 9110 15.4.5)."""
    return f"public, max-age={max_age}"


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
            body, etag, max_age = discovery_body(self.flask_app), None, DISCOVERY_MAX_AGE
            content_type = "application/json"
        else:
            try:
                with self.flask_app.app_context():
                    ring = keyring()
            except Exception:
                # Keys not cached and not loadable here (the database is
                # unreachable): Flask's view tries again, and its error
                # handlers answer a failure (503 for an outage).
                return self.wsgi_app(environ, start_response)
            body, etag, max_age = ring.jwks_bytes, f'"{ring.etag}"', JWKS_MAX_AGE
            content_type = "application/jwk-set+json"
        headers = [("Cache-Control", cache_control(max_age)), *COMMON]
        if etag:
            headers.append(("ETag", etag))
            if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
                start_response("304 Not Modified", headers)
                return [b""]
        headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

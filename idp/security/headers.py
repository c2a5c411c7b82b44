"""Response headers every page carries (SPEC §6 "Pages")."""

from flask import Flask, Response

# No inline script anywhere; pages load /static files only. form-action is
# left open on purpose: Chromium applies it to the redirect chain after a
# form POST, and the login POST ends in a redirect to the client.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        # Every page of the OP carries a CSRF token or a customer's data (or
        # both): no browser or shared cache may keep a copy (SPEC §6).
        if response.mimetype == "text/html":
            headers.setdefault("Cache-Control", "no-store")
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

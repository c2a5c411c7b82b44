"""Response headers every page carries (SPEC §6 "Pages")."""

from flask import Flask, Response

# No inline script anywhere; pages load /static files only. form-action is
# left open on purpose: Chromium applies it to the redirect chain after a
# form POST, and the login POST ends in a redirect to the client.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def security_headers(app: Flask, mimetype: str) -> list[tuple[str, str]]:
    """The headers every response of ``app`` with this mimetype carries unless it set its own."""
    headers = []
    # Every page of the OP carries a CSRF token or a customer's data (or
    # both): no browser or shared cache may keep a copy (SPEC §6).
    if mimetype == "text/html":
        headers.append(("Cache-Control", "no-store"))
    headers += [("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"),
                ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
    if app.config["SESSION_COOKIE_SECURE"]:
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return headers


def init_app(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in security_headers(app, response.mimetype):
            response.headers.setdefault(name, value)
        return response

import pytest
from werkzeug.test import Client

from .client_keys import JwksServer


@pytest.fixture
def jwks_server():
    """A private_key_jwt client's jwks_uri on a loopback port."""
    server = JwksServer()
    yield server
    server.close()


# --- the lean path below Flask (idp/oauth/lean.py) and Flask's own ----------------


@pytest.fixture
def flask_requests(app):
    """Paths of the requests Flask's pipeline saw (a before_request hook)."""
    from flask import request

    seen = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(request.path) and None)
    return seen


@pytest.fixture
def back_channel(app):
    """An RP's or resource server's server: no cookies."""
    return app.test_client(use_cookies=False)


@pytest.fixture
def flask_path(app):
    """The same app without the lean middleware: today's answers."""
    return Client(app.wsgi_app.wsgi_app, app.response_class, use_cookies=False)

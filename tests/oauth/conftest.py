import pytest

from .client_keys import JwksServer


@pytest.fixture
def jwks_server():
    """A private_key_jwt client's jwks_uri on a loopback port."""
    server = JwksServer()
    yield server
    server.close()

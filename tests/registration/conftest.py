import pytest

from .helpers import Registrant


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url}


@pytest.fixture
def registrant(app, client, contracts, mail_server):
    return Registrant(app, client, mail_server)

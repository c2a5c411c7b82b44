import pytest


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url}

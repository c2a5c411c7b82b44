import pytest

from ..mailserver import MailServer, free_port


@pytest.fixture
def mail_server():
    server = MailServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url}

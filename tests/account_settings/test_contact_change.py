"""A new contact address waits for its mailed link: how long that link lives."""

import pytest

from idp.extensions import db
from idp.models import ContactChange

from ..helpers import submit


@pytest.fixture
def config_overrides():
    # Different from RECOVERY_LIFETIME, which contact changes once borrowed.
    return {"CONTACT_CHANGE_LIFETIME": 600, "RECOVERY_LIFETIME": 1800}


def test_the_confirmation_link_lives_contact_change_lifetime(app, rp, client, clock):
    rp.login()
    assert submit(client, "/account/contact", page="/account/", data={"contact_email": "taro.new@example.jp",
                                                                      "current_password": "itscom-demo1"}).status_code == 303
    with app.app_context():
        change = db.session.scalar(db.select(ContactChange))
        assert change.expires_at == change.created_at + 600

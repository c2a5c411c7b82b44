"""Registering again for a contract that has an iTSCOM ID (manual p.17, p.24:
「再度、新規登録をしていただくことにより、現在のご登録情報が更新されます。」): the
person who verified the contract is told, on ID・パスワード設定 and on the
mailed URL's confirmation page, that the current iTSCOM ID will be replaced."""

import pytest

from idp.accounts import create_account
from idp.extensions import db
from idp.mail import deliver_due

from ..helpers import login, submit
from ..passkeys import SoftAuthenticator, enrol
from .helpers import Registrant

REPLACES = "このご契約には、すでにiTSCOM IDが登録されています。この手続きを完了すると、現在のiTSCOM IDとパスワードは新しいものに置き換わり、ご利用いただけなくなります。"


@pytest.fixture
def hanako_has_an_id(app, contracts):
    with app.app_context():
        create_account("2005128464", "hanako.old@example.jp", "Hanako-2025")
        db.session.commit()


def test_the_id_step_and_the_confirm_step_say_the_current_id_will_be_replaced(app, client, registrant,
                                                                              hanako_has_an_id):
    assert registrant.verify().location == "/registration/terms"
    assert registrant.agree().location == "/registration/account"
    step4 = client.get("/registration/account").get_data(as_text=True)
    assert REPLACES in step4
    assert "hanako.old@example.jp" not in step4  # replaced, not revealed

    wrong = registrant.choose("hanako.new@example.jp", confirm="Something-else1")  # a slip on step 4
    assert REPLACES in wrong.get_data(as_text=True)
    assert registrant.choose("hanako.new@example.jp").location == "/registration/sent"

    confirm = app.test_client().get(registrant.mailed_path("hanako.new@example.jp")).get_data(as_text=True)
    assert "登録内容の確認" in confirm and REPLACES in confirm
    assert "hanako.old@example.jp" not in confirm


def test_a_first_registration_is_not_warned(app, client, registrant):
    registrant.verify()
    registrant.agree()
    assert REPLACES not in client.get("/registration/account").get_data(as_text=True)
    registrant.choose("hanako.new@example.jp")
    confirm = client.get(registrant.mailed_path("hanako.new@example.jp")).get_data(as_text=True)
    assert "登録内容の確認" in confirm and REPLACES not in confirm


def test_nobody_learns_of_the_current_id_without_verifying_the_contract(client, registrant, hanako_has_an_id):
    assert REPLACES not in client.get("/registration/").get_data(as_text=True)
    assert client.get("/registration/account").location == "/registration/"
    refused = registrant.verify(payment_value="0078").get_data(as_text=True)
    assert "入力された内容ではご契約を確認できませんでした。" in refused and REPLACES not in refused
    assert client.get("/registration/account").location == "/registration/"


def test_re_registration_tells_the_old_addresses(app, registrant, mail_server):
    with app.app_context():
        create_account("2005128464", "hanako.old@example.jp", "Hanako-2025")
        db.session.commit()
    path = registrant.up_to_mail("someone.else@example.net")
    assert registrant.confirm(path, contact="someone.else@example.net").location == "/registration/complete"
    with app.app_context():
        deliver_due()
    notice = mail_server.inbox.last_to("hanako.old@example.jp")
    assert notice["Subject"] == "iTSCOM ID変更のお知らせ"


def test_re_registration_leaves_no_passkey_factor_without_its_passkeys(app, client, registrant, hanako_has_an_id):
    """The old ID's passkeys go with it, and so does 2段階認証（パスキー）: the
    new ID's password sign-in is not stopped at a factor page that asks for
    a passkey nobody has."""
    assert login(client, "hanako.old@example.jp", "Hanako-2025").status_code == 303
    assert enrol(client, SoftAuthenticator(), password="Hanako-2025").status_code == 303
    turned_on = submit(client, "/account/factor/passkey", {"current_password": "Hanako-2025"}, page="/account/")
    assert turned_on.location.endswith("/account/factor/codes")

    other_browser = app.test_client()
    new = Registrant(app, other_browser, registrant.mail_server)
    path = new.up_to_mail("hanako.new@example.jp")
    assert new.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"

    signed_in = login(other_browser, "hanako.new@example.jp", "Hanako-2026")
    assert signed_in.location == app.config["HOME_URL"]  # not /login/factor
    page = other_browser.get("/account/").get_data(as_text=True)
    assert "2段階認証は設定されていません。" in page and "2段階認証（パスキー）は設定済みです。" not in page

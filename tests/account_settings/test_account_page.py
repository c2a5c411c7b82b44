"""アカウント設定: the customer's own settings on the OP."""

import re
from urllib.parse import urlsplit

from idp.extensions import db
from idp.mail import deliver_due
from idp.models import Account, Consent, ContactChange
from idp.security.passwords import verify_password

from ..faults import audit_rows_refused
from ..helpers import RelyingParty, csrf_token, query_of, submit
from ..mailserver import body_of


def page(client):
    return client.get("/account/").get_data(as_text=True)


def test_account_page_needs_a_login_and_comes_back(rp, client):
    response = client.get("/account/")
    assert response.status_code == 303 and response.location == "/login?request=account"
    login = rp.login()
    assert login.location == "/account/"
    html = page(client)
    for words in ["アカウント設定", "パスワード変更", "連絡先メールアドレス", "合言葉", "ログイン中の端末", "連携サイト"]:
        assert words in html


def test_password_change_needs_the_current_password_and_keeps_this_session(app, rp, client, mail_server):
    old = rp.tokens()
    other_browser = RelyingParty(app, app.test_client(), rp.client_id, rp.client_secret)
    other_browser.login()
    wrong = submit(client, "/account/password", page="/account/", data={"current_password": "nope-nope", "password": "Taro-2026x",
                                               "password_confirm": "Taro-2026x"})
    assert wrong.status_code == 400 and "現在のパスワードが正しくありません。" in wrong.get_data(as_text=True)
    done = submit(client, "/account/password", page="/account/", data={"current_password": "itscom-demo1", "password": "Taro-2026x",
                                              "password_confirm": "Taro-2026x"})
    assert done.status_code == 303
    assert "パスワードを変更しました。" in page(client)  # this browser stays signed in
    assert query_of(other_browser.authorize(prompt="none").location)["error"] == "login_required"
    assert rp.token_request({"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}).status_code == 400
    with app.app_context():
        deliver_due()
    assert mail_server.inbox.last_to("taro.itsu@example.jp")["Subject"] == "パスワード変更のお知らせ"


def test_contact_address_changes_only_when_the_mailed_link_is_opened(app, rp, client, mail_server):
    rp.login()
    wrong = submit(client, "/account/contact", page="/account/", data={"contact_email": "taro.new@example.jp", "current_password": "nope-nope"})
    assert wrong.status_code == 400 and "現在のパスワードが正しくありません。" in wrong.get_data(as_text=True)
    assert submit(client, "/account/contact", page="/account/", data={"contact_email": "taro.new@example.jp",
                                             "current_password": "itscom-demo1"}).status_code == 303
    with app.app_context():
        assert db.session.scalar(db.select(Account)).contact_email == "taro.itsu@example.jp"
        deliver_due()
    mail = mail_server.inbox.last_to("taro.new@example.jp")
    assert mail["Subject"] == "連絡先メールアドレス確認のご案内"
    path = urlsplit(re.search(r"https?://\S+/account/contact/\S+", body_of(mail)).group(0)).path
    reader = app.test_client()
    page = reader.get(path)
    assert page.status_code == 200  # opening the link changes nothing yet
    with app.app_context():
        assert db.session.scalar(db.select(Account)).contact_email == "taro.itsu@example.jp"
    assert reader.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))}).status_code == 200
    assert app.test_client().get(path).status_code == 400  # single use
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        assert account.contact_email == "taro.new@example.jp" and account.contact_email_verified
        deliver_due()
    assert mail_server.inbox.last_to("taro.itsu@example.jp")["Subject"] == "連絡先メールアドレス変更のお知らせ"


def test_secret_question(app, rp, client):
    rp.login()
    bad = submit(client, "/account/secret", page="/account/", data={"question": "ペットの名前", "answer": "po<chi>", "current_password": "itscom-demo1"})
    assert "答えに半角記号は使用できません。" in bad.get_data(as_text=True)
    unauthenticated = submit(client, "/account/secret", page="/account/", data={"question": "ペットの名前", "answer": "ポチ", "current_password": "x"})
    assert unauthenticated.status_code == 400
    assert submit(client, "/account/secret", page="/account/", data={"question": "ペットの名前", "answer": "ポチ",
                                            "current_password": "itscom-demo1"}).status_code == 303
    assert "登録済みの秘密の質問: ペットの名前" in page(client)
    with app.app_context():
        assert db.session.scalar(db.select(Account)).secret_answer_hash.startswith("$argon2id$")


def test_sessions_can_be_listed_and_ended(app, rp, client):
    rp.login()
    phone = RelyingParty(app, app.test_client(), rp.client_id, rp.client_secret)
    phone.login()
    html = page(client)
    sids = re.findall(r'/account/sessions/([^/]+)/end', html)
    assert len(sids) == 2 and "（この端末）" in html
    current = re.search(r'（この端末）.*?/account/sessions/([^/]+)/end', html, re.S).group(1)
    other = next(s for s in sids if s != current)
    assert submit(client, f"/account/sessions/{other}/end", page="/account/", data={}).status_code == 303
    assert query_of(phone.authorize(prompt="none").location)["error"] == "login_required"
    assert "code" in query_of(rp.authorize(prompt="none").location)


def test_connected_sites_can_be_revoked(app, client, account):
    third = RelyingParty.register(app, client, first_party=False)
    third.login()
    consent_page = third.authorize(scope="openid email offline_access").get_data(as_text=True)
    digest = re.search(r'name="request" value="([^"]+)"', consent_page).group(1)
    back = client.post("/authorize/consent", data={"csrf_token": csrf_token(consent_page), "request": digest,
                                                    "decision": "approve"})
    code = query_of(client.get(back.location).location)["code"]
    tokens = third.exchange(code).get_json()
    assert "Test RP" in page(client)
    assert submit(client, f"/account/sites/{third.client_id}/revoke", page="/account/", data={}).status_code == 303
    assert "連携しているサイトはありません。" in page(client)
    assert client.post("/introspect", data={"token": tokens["access_token"]},
                       headers=third.auth()).get_json()["active"] is False
    with app.app_context():
        assert db.session.scalar(db.select(Consent)).revoked_at is not None
    assert third.authorize(scope="openid email offline_access").status_code == 200  # asks again


def test_a_new_password_must_be_typed_twice_alike_and_follow_the_rules(app, rp, client):
    rp.login()
    response = submit(client, "/account/password", page="/account/", data={
        "current_password": "itscom-demo1", "password": "taro.itsu@example.jp", "password_confirm": "Taro-2026x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "パスワードとパスワード再入力が一致しません。" in html and "iTSCOM IDと同じパスワードは使用できません。" in html
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(login_id="taro.itsu@example.jp"))
        assert verify_password(account.password_hash, "itscom-demo1")


def test_strangers_guesses_do_not_block_the_owners_password_change(app, rp, client, mail_server):
    rp.login()  # this browser now holds a device cookie for the ID
    for _ in range(6):  # unknown browsers guess the password
        RelyingParty(app, app.test_client(), rp.client_id, rp.client_secret).login(password="wrong-pass")
    assert RelyingParty(app, app.test_client(), rp.client_id, rp.client_secret).login().status_code == 429
    done = submit(client, "/account/password", page="/account/", data={"current_password": "itscom-demo1", "password": "Taro-2026x",
                                              "password_confirm": "Taro-2026x"})
    assert done.status_code == 303


def test_each_change_commits_with_its_audit_row_or_not_at_all(app, rp, client, mail_server):
    """When the database refuses the audit rows, a change answers an error
    page and leaves nothing half-written: the password, the other browser's
    session, the contact address and the 合言葉 stay as they were."""
    other_browser = RelyingParty(app, app.test_client(), rp.client_id, rp.client_secret)
    other_browser.login()
    rp.login()
    changes = [
        ("/account/password", {"current_password": "itscom-demo1", "password": "Taro-2026x",
                               "password_confirm": "Taro-2026x"}),
        ("/account/contact", {"contact_email": "taro.new@example.jp", "current_password": "itscom-demo1"}),
        ("/account/secret", {"question": "好きな食べ物", "answer": "カレー", "current_password": "itscom-demo1"}),
    ]
    with audit_rows_refused(app):
        for path, data in changes:
            assert submit(client, path, page="/account/", data=data).status_code == 500, path
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(login_id="taro.itsu@example.jp"))
        assert verify_password(account.password_hash, "itscom-demo1") and account.secret_answer_hash is None
        assert db.session.scalar(db.select(db.func.count()).select_from(ContactChange)) == 0
    assert "error" not in query_of(other_browser.authorize(prompt="none").location)

"""The company's name and the way to contact it, in every page and mail.

The company is イッツ・コミュニケーションズ株式会社 (brand イッツコム / iTSCOM); the
manual's mail samples misspell it イツ…. Every 「こちらからお問い合わせください」
and every mail's contact form lead to IDP_CONTACT_URL."""

import re
from pathlib import Path

import pytest
from flask import render_template

from sites import mypage

from .helpers import csrf_token
from .mailserver import body_of
from .registration.helpers import Registrant

ROOT = Path(__file__).resolve().parents[1]
COMPANY = "イッツ・コミュニケーションズ株式会社"
MISSPELT = re.compile(r"(?<!ッ)イツ(?:・コミュニケーションズ|コム)")
CONTACT = "https://support.example.test/contact"
MAILS = ["registration.txt", "recovery_code.txt", "recovery_link.txt", "contact_change.txt", "contact_changed.txt",
         "password_changed.txt", "id_replaced.txt", "second_factor.txt", "passkey_added.txt", "passkey_removed.txt"]


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url, "CONTACT_URL": CONTACT}


def test_no_template_misspells_the_company():
    templates = [*(ROOT / "templates").rglob("*.*"), *(ROOT / "sites").rglob("templates/*.html")]
    assert len(templates) > 40
    assert [str(t.relative_to(ROOT)) for t in templates if MISSPELT.search(t.read_text())] == []


def test_every_mail_names_the_company_and_the_configured_contact_page(app):
    assert set(MAILS) == {p.name for p in (ROOT / "templates" / "mail").glob("*.txt")} - {"_footer.txt"}
    with app.test_request_context():
        for name in MAILS:
            body = render_template(f"mail/{name}", name="逸 太郎", url="https://id.example.test/x", code="123456")
            assert body.rstrip().endswith("メールアドレス：info@itscom.jp"), name
            assert f"\n{COMPANY}\n" in body and f"<{CONTACT}>" in body, name
            assert "イッツコムまでお知らせください。" in body, name
            assert not MISSPELT.search(body) and "itscom.net" not in body, name


def test_the_registration_mail_as_sent(app, client, contracts, mail_server):
    Registrant(app, client, mail_server).up_to_mail("hanako.new@example.jp")
    body = body_of(mail_server.inbox.last_to("hanako.new@example.jp"))
    assert f"\n{COMPANY}\n" in body and f"<{CONTACT}>" in body and not MISSPELT.search(body)


def test_the_recovery_pages_contact_link_follows_the_setting(app, client, account, mail_server):
    page = client.get("/recovery/identify").get_data(as_text=True)
    client.post("/recovery/identify", data={"csrf_token": csrf_token(page), "login_id": "taro.itsu@example.jp"})
    code_page = client.get("/recovery/code").get_data(as_text=True)
    assert f'<a href="{CONTACT}" rel="noopener">こちら</a>からお問い合わせください' in code_page


def test_the_secret_sent_page_too(app, client, contracts, mail_server):
    from idp.accounts import create_account
    from idp.extensions import db

    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025", contact_email="yamada.mobile@example.com",
                       contact_confirmed=False)
        db.session.commit()
    page = client.get("/recovery/identify").get_data(as_text=True)
    client.post("/recovery/identify", data={"csrf_token": csrf_token(page), "login_id": "yamada@example.jp"})
    page = client.get("/recovery/secret").get_data(as_text=True)
    client.post("/recovery/secret", data={"csrf_token": csrf_token(page), "question": "ペットの名前", "answer": "ぽち"})
    sent = client.get("/recovery/secret/sent").get_data(as_text=True)
    assert f'<a href="{CONTACT}" rel="noopener">こちら</a>からお問い合わせください' in sent


def test_the_default_contact_page_is_the_one_the_manual_names(tmp_path):
    from idp import create_app

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "k" * 40})
    assert app.config["CONTACT_URL"] == "http://www.itscom.net/info/contact/index.html"


def test_my_pages_contact_link_follows_its_setting(tmp_path):
    import json
    import sqlite3

    app = mypage.create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "x", "CLIENT_SECRET": "y",
                             "SECRET_KEY": "rp-test-secret", "DATABASE": str(tmp_path / "rp.sqlite3"),
                             "CONTACT_URL": CONTACT})
    with sqlite3.connect(tmp_path / "rp.sqlite3") as conn:  # a signed-in customer
        conn.execute("INSERT INTO rp_sessions (id, sid, sub, claims, id_token, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                     ("local", "sid", "sub", json.dumps({"name": "逸 太郎", "email": "taro.itsu@example.jp"}), "x", 0))
    browser = app.test_client()
    with browser.session_transaction() as session:
        session["local_session"] = "local"
    help_page = browser.get("/help").get_data(as_text=True)
    assert f'<a href="{CONTACT}" rel="noopener">お問い合わせ</a>' in help_page
    assert COMPANY in help_page

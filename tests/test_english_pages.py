"""English for customers who ask (SPEC §7): every customer page of the OP, and
every mail, in English once the customer picks 「English」 — with no Japanese
left (tests/english.py), and no page left unvisited."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from flask import template_rendered

from idp.accounts import create_account
from idp.clients import create_client
from idp.extensions import db
from idp.mail import deliver_due
from idp.models import Passkey

from .english import japanese_in, japanese_in_text
from .helpers import csrf_token, walk_second_factor
from .mailserver import body_of
from .passkeys import SoftAuthenticator, enrolment_options, passkey_login
from .registration.helpers import Registrant

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# Every customer page of the OP: the templates of these folders.
CUSTOMER_FOLDERS = ("login", "registration", "recovery", "account_settings", "oauth", "errors")
NAMES = ("逸 太郎", "山田 太郎", "鈴木 花子", "田中 一郎")  # contract holders' names: their own, in kanji


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url}


class EnglishBrowser:
    """A test client that picked 「English」 and checks every page it is shown."""

    def __init__(self, app, client) -> None:
        self.app, self.client = app, client
        self.pages: list[str] = []
        self.problems: list[str] = []
        chosen = client.get("/language/en?next=/login")
        assert chosen.status_code == 303 and chosen.location == "/login"

    def look(self, response, where: str = ""):
        if response.mimetype == "text/html" and response.status_code < 300:
            html = response.get_data(as_text=True)
            assert '<html lang="en">' in html, where
            self.problems += [f"{where or response.request.path}: {text}" for text in japanese_in(html)]
        return response

    def get(self, path: str):
        return self.look(self.client.get(path), path)

    def post(self, path: str, data: dict, form_on: str | None = None):
        page = self.get(form_on or path)
        return self.look(self.client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)), **data}),
                         f"POST {path}")

    def follow(self, response):
        return self.get(urlsplit(response.location).path + ("?" + urlsplit(response.location).query
                                                            if urlsplit(response.location).query else ""))

    def mail(self, mail_server, to: str):
        with self.app.app_context():
            deliver_due()
        message = mail_server.inbox.last_to(to)
        self.problems += [f"mail to {to}: {line}" for line in japanese_in_text(message["Subject"] + "\n" + body_of(message),
                                                                             *NAMES)]
        return message


def customer_templates() -> set[str]:
    return {f"{folder}/{p.name}" for folder in CUSTOMER_FOLDERS for p in (TEMPLATES / folder).glob("[!_]*.html")}


def test_every_customer_page_and_mail_in_english(app, client, account, mail_server, clock):
    rendered: set[str] = set()

    def note(sender, template, **extra):
        rendered.add(template.name)

    template_rendered.connect(note, app)
    en = EnglishBrowser(app, client)
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025",
                       contact_email="yamada.mobile@example.com", contact_confirmed=False)
        partner, _ = create_client("iTSCOM パートナー", ["https://partner.example.test/cb"],
                                   ["https://partner.example.test/bye"], english_name="iTSCOM Partner")
        db.session.commit()
        partner_id = partner.client_id

    # Login: the page, a wrong password, then the account page with its forms.
    en.get("/login")
    en.post("/login", {"login_id": "taro.itsu@example.jp", "password": "wrong-password"})
    assert en.post("/login", {"login_id": "taro.itsu@example.jp", "password": "itscom-demo1"}).status_code == 303
    en.get("/account/")
    en.post("/account/password", {"current_password": "x", "password": "a", "password_confirm": "b"}, form_on="/account/")
    en.post("/account/secret", {"question": "ペットの名前", "answer": "pochi!", "current_password": "itscom-demo1"}, form_on="/account/")
    en.post("/account/secret", {"question": "ペットの名前", "answer": "ぽち", "current_password": "itscom-demo1"}, form_on="/account/")
    # Passkeys: one added (its page, a refused answer, its mail), then removed (its mail).
    options, page = enrolment_options(client, name="My phone")
    en.look(page)
    token = csrf_token(page.get_data(as_text=True))
    en.look(client.post("/account/passkeys", data={"csrf_token": token, "credential": "{}"}))
    en.follow(client.post("/account/passkeys", data={"csrf_token": token, "credential": SoftAuthenticator().create(options)}))
    en.mail(mail_server, "taro.itsu@example.jp")
    with app.app_context():
        passkey_id = db.session.scalar(db.select(Passkey.id))
    en.follow(en.post(f"/account/passkeys/{passkey_id}/remove", {}, form_on="/account/"))
    en.mail(mail_server, "taro.itsu@example.jp")
    en.look(passkey_login(app.test_client(), SoftAuthenticator()))
    en.post("/account/contact", {"contact_email": "taro.new@example.jp", "current_password": "itscom-demo1"}, form_on="/account/")
    en.get("/account/")  # the flashed messages
    link = re.search(r"https?://\S+(/account/contact/\S+)", body_of(en.mail(mail_server, "taro.new@example.jp"))).group(1)
    en.post(link, {})
    en.mail(mail_server, "taro.itsu@example.jp")  # the old address is told
    en.get("/account/contact/unknown-token")

    # 2段階認証: its pages, and its mail (turned on, then off).
    walk_second_factor(app, client, look=en.look)
    en.mail(mail_server, "taro.new@example.jp")

    # Consent for a third-party site, its answer by form_post, a request refused, logout.
    params = {"client_id": partner_id, "response_type": "code", "scope": "openid profile email phone contract",
              "redirect_uri": "https://partner.example.test/cb", "state": "s"}
    consent = en.get("/authorize?" + urlencode(params)).get_data(as_text=True)
    assert "iTSCOM Partner" in consent
    form = {"csrf_token": csrf_token(consent), "request": re.search(r'name="request" value="([^"]+)"', consent).group(1),
            "decision": "approve"}
    en.follow(client.post("/authorize/consent", data=form))
    en.get("/authorize?" + urlencode({**params, "response_mode": "form_post"}))
    en.get("/authorize?client_id=unknown&response_type=code")
    en.get("/session/end")
    en.post("/session/end", {})
    en.get("/nowhere")
    en.look(client.post("/login", data={"login_id": "x"}), "POST /login without a CSRF token")

    # Registration, with an additional item, a refused step and the mail.
    registrant = Registrant(app, client, mail_server)
    registrant.client = _Looking(en)
    registrant.verify(name_kana="Suzuki")
    tanaka = {"name_kana": "タナカイチロウ", "phone": "0355550000", "payment_type": "card_last4", "payment_value": "2718"}
    registrant.verify(**tanaka)
    en.get("/registration/additional")
    en.post("/registration/additional", {"payment_type": "bank_last4", "payment_value": "12"})
    en.post("/registration/additional", {"payment_type": "stb_id", "payment_value": "ffee00112233"})
    en.post("/registration/terms", {"agreement": "disagree"})
    registrant.agree()
    registrant.choose("ichiro", password="a", confirm="b")
    assert registrant.choose("ichiro.en@example.jp").location == "/registration/sent"
    en.get("/registration/sent")
    mail = en.mail(mail_server, "ichiro.en@example.jp")
    assert mail["Subject"] == "Complete your My Page registration"
    assert body_of(mail).startswith("Dear 田中 一郎,")
    confirm = urlsplit(re.search(r"https?://\S+/registration/confirm/\S+", body_of(mail)).group(0)).path
    assert registrant.confirm(confirm, contact="ichiro.second@example.jp").location == "/registration/complete"
    en.get("/registration/complete")
    en.get("/registration/confirm/used-or-unknown")

    # Recovery 3-B (code) and 3-A (secret question, mailed link), and a used-up procedure.
    en.get("/recovery/")
    en.post("/recovery/", {})
    en.post("/recovery/", {"unknown": "password"})
    en.post("/recovery/identify", {"login_id": "taro.itsu@example.jp"})
    code = re.search(r"Verification code: (\d{6})", body_of(en.mail(mail_server, "taro.new@example.jp"))).group(1)
    en.post("/recovery/code", {"code": "000000" if code != "000000" else "111111"})
    en.post("/recovery/code", {"code": code})
    en.post("/recovery/password", {"password": "short", "password_confirm": "other"})
    en.post("/recovery/password", {"password": "Taro-2027", "password_confirm": "Taro-2027"})
    en.get("/recovery/done")
    en.mail(mail_server, "taro.new@example.jp")  # 「パスワード変更のお知らせ」
    en.post("/recovery/", {"unknown": "password"})
    en.post("/recovery/identify", {"login_id": "yamada@example.jp"})
    en.post("/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"})
    en.get("/recovery/secret/sent")
    path = urlsplit(re.search(r"https?://\S+/recovery/link/\S+",
                              body_of(en.mail(mail_server, "yamada.mobile@example.com"))).group(0)).path
    en.post(path, {"question": "母親の旧姓", "answer": "ぽち"})
    en.post(path, {"question": "ペットの名前", "answer": "ポチ"})
    en.get("/recovery/reissue")
    en.post("/recovery/", {"unknown": "password"})
    en.post("/recovery/identify", {"login_id": "taro.itsu@example.jp"})
    for _ in range(5):
        en.post("/recovery/code", {"code": "999999" if code != "999999" else "888888"})
    en.get("/recovery/password")

    template_rendered.disconnect(note, app)
    assert not en.problems, "Japanese on English pages:\n" + "\n".join(en.problems)
    missing = customer_templates() - rendered
    assert not missing, f"customer pages never visited in English: {sorted(missing)}"


class _Looking:
    """The Registrant helper's client, checking every page it is shown."""

    def __init__(self, browser: EnglishBrowser) -> None:
        self.browser = browser

    def get(self, path, **kwargs):
        return self.browser.look(self.browser.client.get(path, **kwargs), path)

    def post(self, path, **kwargs):
        return self.browser.look(self.browser.client.post(path, **kwargs), f"POST {path}")


def test_japanese_stays_the_default_with_a_link_to_english(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="ja">' in html and "<h1>ログイン</h1>" in html
    assert '<a href="/language/en?next=/login" lang="en" hreflang="en">English</a>' in html


def test_each_mail_speaks_the_language_of_the_request_that_sent_it(app, client, contracts, mail_server):
    """Each mail speaks the language of the request that sent it: the same
    customer, Japanese one time and English the next."""
    registrant = Registrant(app, client, mail_server)
    registrant.up_to_mail("hanako.ja@example.jp")
    japanese = mail_server.inbox.last_to("hanako.ja@example.jp")
    assert japanese["Subject"] == "マイページ本登録のご案内" and body_of(japanese).startswith("鈴木 花子 様\n")
    client.get("/language/en?next=/registration/")
    registrant.up_to_mail("hanako.en@example.jp")
    english = mail_server.inbox.last_to("hanako.en@example.jp")
    assert english["Subject"] == "Complete your My Page registration"
    assert not japanese_in_text(english["Subject"] + "\n" + body_of(english), "鈴木 花子")
    assert "Please open the URL below to complete your My Page registration." in body_of(english)


def test_an_english_page_with_japanese_is_caught():
    """The check itself: Japanese counts unless it is marked as Japanese."""
    assert japanese_in('<p>Log in</p><a lang="ja" href="/x">日本語</a><span lang="ja">逸 太郎</span>') == []
    assert japanese_in("<p>ログイン</p>") == ["ログイン"]
    assert japanese_in('<td data-label="ログイン日時">1</td>') == ["<td> ログイン日時"]
    assert japanese_in('<input type="submit" value="次へ">') == ["<input> 次へ"]
    assert japanese_in("<p>（this device）</p>") == ["（this device）"]


"""Every customer page of the OP: a title of its own that names its step, and
a way on to the home site in its header (issue 12, points 2 and 3).

One walk through every procedure records which template drew each page; the
walk must reach every customer template, so a new page without a title of
its own fails here.
"""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

import pytest
from flask import g, template_rendered

from idp.accounts import create_account
from idp.extensions import db
from idp.mail import deliver_due

from .helpers import RelyingParty, csrf_token, submit, walk_second_factor
from .mailserver import body_of
from .passkeys import enrolment_options
from .recovery.test_recovery import mailed_code, mailed_link, start_3b
from .registration.helpers import Registrant

HOME = "https://mypage.example.test/"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# One format, defined once in base.html: the step, then the procedure.
TITLE = re.compile(r"^(?P<step>[^|]+) \| iTSCOM ID(?: (?P<procedure>新規登録|パスワード再発行|アカウント設定))?$")


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url, "HOME_URL": HOME}


def customer_templates() -> set[str]:
    """Every page template a customer can see: not layouts, partials, mails or the operator's console."""
    names = {p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")}
    return {n for n in names if n != "base.html" and not n.split("/")[-1].startswith("_")
            and not n.startswith(("admin/", "mail/"))}


@pytest.fixture
def pages(app):
    """(template, title, html) of every HTML page the OP answers in the test."""
    pages: list[tuple[str, str, str]] = []

    def rendered(sender, template, context, **extra):
        if template.name.endswith(".html"):
            g.setdefault("page_templates", []).append(template.name)

    template_rendered.connect(rendered, app, weak=False)

    @app.after_request
    def remember(response):
        if response.mimetype == "text/html" and g.get("page_templates"):
            body = response.get_data(as_text=True)
            title = re.search(r"<title>(.*?)</title>", body, re.S)
            pages.append((g.page_templates[-1], html_lib.unescape(title.group(1)) if title else "", body))
        return response

    yield pages
    template_rendered.disconnect(rendered, app)


def walk_every_procedure(app, mail_server) -> None:
    """The manual's procedures and the OP's own pages, as customers meet them."""
    browser = app.test_client()

    # Registration with 追加認証情報 (p.11–16), then its used URL again.
    registrant = Registrant(app, app.test_client(), mail_server)
    tanaka = {"name_kana": "タナカイチロウ", "phone": "0355550000", "payment_type": "card_last4", "payment_value": "2718"}
    assert registrant.verify(**tanaka).location == "/registration/additional"
    assert registrant.post("/registration/additional", {"payment_type": "stb_id",
                                                        "payment_value": "ffee00112233"}).location == "/registration/terms"
    assert registrant.agree().location == "/registration/account"
    assert registrant.choose("ichiro.two@example.jp").location == "/registration/sent"
    registrant.client.get("/registration/sent")
    path = registrant.mailed_path("ichiro.two@example.jp")
    assert registrant.confirm(path, contact="ichiro.second@example.jp").location == "/registration/complete"
    registrant.client.get("/registration/complete")
    assert registrant.client.get(path).status_code == 400

    # A site asks: login, consent, an answer by form_post, logout; a bad request.
    third = RelyingParty.register(app, browser, first_party=False)
    browser.get(third.authorize().location)
    browser.get(third.login().location)  # the consent page
    first = RelyingParty.register(app, browser, first_party=True)
    assert first.authorize(response_mode="form_post").status_code == 200
    assert browser.get("/authorize?client_id=nobody&response_type=code").status_code == 400
    confirm = browser.get("/session/end")
    browser.post("/session/end", data={"csrf_token": csrf_token(confirm.get_data(as_text=True))})
    assert browser.get("/no-such-page").status_code == 404

    # アカウント設定 and its mailed confirmation link.
    first.login()
    settings = browser.get("/account/").get_data(as_text=True)
    assert browser.post("/account/contact", data={"csrf_token": csrf_token(settings), "contact_email": "taro.new@example.jp",
                                                  "current_password": "itscom-demo1"}).status_code == 303
    with app.app_context():
        deliver_due()
    link = re.search(r"/account/contact/\S+", body_of(mail_server.inbox.last_to("taro.new@example.jp"))).group(0)
    reader = app.test_client()
    page = reader.get(link)
    assert reader.post(link, data={"csrf_token": csrf_token(page.get_data(as_text=True))}).status_code == 200

    # 2段階認証: set up on the account page (the codes shown once), then a
    # login that asks for it, and its page after the sign-in is over.
    walk_second_factor(app, browser)

    # パスキー: its name and the current password lead to the page that creates it.
    assert enrolment_options(browser, name="私のスマートフォン")[0] is not None

    # Recovery 3-B (p.22–23), then a page of it opened too late.
    recovering = app.test_client()
    recovering.get("/recovery/")
    assert start_3b(recovering).location == "/recovery/code"
    code = mailed_code(app, mail_server, to="taro.new@example.jp")
    assert submit(recovering, "/recovery/code", {"code": code}).location == "/recovery/password"
    assert submit(recovering, "/recovery/password", {"password": "Taro-new-2026",
                                                   "password_confirm": "Taro-new-2026"}).location == "/recovery/done"
    recovering.get("/recovery/done")
    assert recovering.get("/recovery/reissue").status_code == 400

    # Recovery 3-A (p.19–21): 合言葉 登録, the mailed link, 合言葉入力, a new password.
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025",
                       contact_email="yamada.mobile@example.com", contact_confirmed=False)
        db.session.commit()
    asking = app.test_client()
    assert start_3b(asking, "yamada@example.jp").location == "/recovery/secret"
    assert submit(asking, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"}).location == "/recovery/secret/sent"
    asking.get("/recovery/secret/sent")
    link = mailed_link(app, mail_server, "yamada.mobile@example.com")
    form = asking.get(link).get_data(as_text=True)
    assert asking.post(link, data={"csrf_token": csrf_token(form), "question": "ペットの名前",
                                   "answer": "ポチ"}).location == "/recovery/reissue"
    asking.get("/recovery/reissue")


def test_every_customer_page_has_a_title_of_its_own_naming_its_step(app, pages, account, contracts, mail_server):
    walk_every_procedure(app, mail_server)

    missed = customer_templates() - {template for template, _, _ in pages}
    assert not missed, f"the walk does not reach {sorted(missed)}: add them to it"
    owners: dict[str, set[str]] = {}
    for template, title, _ in pages:
        assert TITLE.match(title), f"{template}: {title!r} is not 'step | iTSCOM ID[ procedure]'"
        owners.setdefault(title, set()).add(template)
    shared = {title: templates for title, templates in owners.items() if len(templates) > 1}
    assert not shared, f"titles used by more than one page: {shared}"
    titles = set(owners)
    for expected in ["ログイン | iTSCOM ID", "契約者情報 認証 | iTSCOM ID 新規登録",
                     "ID・パスワード設定 | iTSCOM ID 新規登録", "認証コード入力 | iTSCOM ID パスワード再発行",
                     "合言葉登録 | iTSCOM ID パスワード再発行", "アカウント設定 | iTSCOM ID"]:
        assert expected in titles, expected
    # The two ways to a new password (3-B, 3-A) are two steps, with two titles.
    assert len({title for template, title, _ in pages if template == "recovery/password.html"}) == 2


def test_every_customer_page_links_to_the_home_site_in_its_header(app, pages, account, contracts, mail_server):
    walk_every_procedure(app, mail_server)
    for template, _, body in pages:
        header = re.search(r'<header class="site-header">.*?</header>', body, re.S)
        assert header and f'<a href="{HOME}">マイページへ</a>' in header.group(0), template


"""はじめてのログイン (manual p.11–16): given a contract, when the customer
enters …, then they see … — against a real SMTP server."""

import base64
import json
import re
import threading
import zlib

import pytest

from idp.extensions import db
from idp.mail import deliver_due
from idp.models import Account, AuditEvent, OutboxMail, PendingRegistration

from ..faults import audit_rows_refused
from ..helpers import RelyingParty, csrf_token, query_of
from ..mailserver import MailServer, body_of, free_port
from ..passkeys import SoftAuthenticator, enrol, passkey_login
from .helpers import Registrant


def events(app):
    with app.app_context():
        return [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def test_first_registration_to_a_working_login(app, client, registrant, mail_server):
    login_page = client.get("/login").get_data(as_text=True)
    assert 'href="/registration/">iTSCOM IDの新規登録</a>' in login_page.replace(' class="button primary"', "")
    path = registrant.up_to_mail("hanako.new@example.jp")

    mail = mail_server.inbox.last_to("hanako.new@example.jp")
    assert mail["Subject"] == "マイページ本登録のご案内"
    assert mail["From"] == "mypage@itscom.jp"
    body = body_of(mail)
    assert body.startswith("鈴木 花子 様\n")
    assert "このURLの有効期限は、マイページで登録受付してから30分です。" in body
    assert "イッツ・コミュニケーションズ株式会社" in body
    # Nothing is active before completion.
    with app.app_context():
        assert db.session.scalar(db.select(Account)) is None

    confirm_page = client.get(path).get_data(as_text=True)
    assert "hanako.new@example.jp" in confirm_page and "鈴木 花子" in confirm_page
    contact_page_post = client.post(path, data={"csrf_token": csrf_token(confirm_page)})
    assert contact_page_post.location == "/registration/contact"
    contact_page = client.get("/registration/contact").get_data(as_text=True)
    assert "連絡先メールアドレス(※)を選択してください。" in contact_page
    assert "hanako@example.jp" in contact_page  # the contract's candidate address
    done = client.post("/registration/contact", data={"csrf_token": csrf_token(contact_page),
                                                      "contact_email": "hanako@example.jp"})
    assert done.status_code == 303 and done.location == "/registration/complete"
    assert "これでiTSCOM IDの登録は完了です。" in client.get("/registration/complete").get_data(as_text=True)

    rp = RelyingParty.register(app, client)
    rp.login = lambda **kw: RelyingParty.login(rp, "hanako.new@example.jp", "Hanako-2026")
    tokens = rp.tokens(claims='{"id_token": {"email": null}}')
    assert rp.verify_id_token(tokens["id_token"])["email"] == "hanako.new@example.jp"
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        assert account.contact_email == "hanako@example.jp" and not account.contact_email_verified
        mail_row = db.session.scalar(db.select(OutboxMail))
        assert mail_row.sent_at is not None and mail_row.body is None  # the URL is not kept
    assert {"registration.verified", "registration.mail_queued", "registration.completed"} <= set(events(app))


def test_contract_without_candidate_addresses_completes_on_confirm(app, client, registrant):
    path = registrant.up_to_mail("yuri@example.jp", name_kana="ワタナベユリ", phone="0459990001",
                                 payment_type="stb_id", payment_value="00112233AABB")
    response = registrant.confirm(path)
    assert response.location == "/registration/complete"
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        assert account.contact_email == "yuri@example.jp" and account.contact_email_verified


@pytest.mark.parametrize(
    "answers",
    [
        {"name_kana": "ｽｽﾞｷ ﾊﾅｺ"},  # half-width katakana with a space
        {"name_kana": "スズキ　ハナコ"},  # full-width space
        {"name_kana": "すずきはなこ"},  # hiragana is converted
        {"phone": "044-987-6543"},
        {"phone": "０４４９８７６５４３"},  # full-width digits
        {"payment_type": "stb_id", "payment_value": "1c:3e:5a:7b:9d:0f"},
        {"payment_type": "stb_id", "payment_value": "1C-3E-5A-7B-9D-10"},
        {"payment_type": "customer_number", "payment_value": "２００５１２８４６４"},
        {"payment_type": "card_last4", "payment_value": "5599"},
    ],
)
def test_input_is_normalised_not_rejected(registrant, answers):
    assert registrant.verify(**answers).location == "/registration/terms"


def test_non_kana_name_gets_a_clear_message(registrant):
    response = registrant.verify(name_kana="Suzuki Hanako")
    assert response.status_code == 200
    assert "カタカナで入力してください。" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "answers",
    [
        {"name_kana": "スズキタロウ"},
        {"phone": "0449876544"},
        {"payment_value": "0078"},
        {"payment_type": "card_last4", "payment_value": "0077"},
    ],
)
def test_wrong_answers_never_say_which_field(registrant, answers):
    response = registrant.verify(**answers)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "入力された内容ではご契約を確認できませんでした。" in html
    assert 'class="error"' not in html  # no field singled out


def test_additional_item_when_answers_match_two_contracts(app, registrant):
    tanaka = {"name_kana": "タナカイチロウ", "phone": "0355550000", "payment_type": "card_last4", "payment_value": "2718"}
    assert registrant.verify(**tanaka).location == "/registration/additional"
    page = registrant.client.get("/registration/additional").get_data(as_text=True)
    assert "追加認証情報" in page and 'value="card_last4"' not in page  # a different item
    # Still ambiguous or wrong: refused without detail.
    wrong = registrant.post("/registration/additional", {"payment_type": "bank_last4", "payment_value": "9999"})
    assert "入力された内容ではご契約を確認できませんでした。" in wrong.get_data(as_text=True)
    right = registrant.post("/registration/additional", {"payment_type": "stb_id", "payment_value": "ffee00112233"})
    assert right.location == "/registration/terms"
    registrant.agree()
    registrant.choose("ichiro.two@example.jp")
    registrant.confirm(registrant.mailed_path("ichiro.two@example.jp"), contact="ichiro.second@example.jp")
    with app.app_context():
        account = db.session.scalar(db.select(Account))
        assert account.contract.customer_number == "2005128468"


def test_flagged_contract_always_asks_for_an_additional_item(registrant):
    sato = {"name_kana": "サトウジロウ", "phone": "0337771234", "payment_type": "card_last4", "payment_value": "8888"}
    assert registrant.verify(**sato).location == "/registration/additional"
    right = registrant.post("/registration/additional", {"payment_type": "customer_number", "payment_value": "2005128465"})
    assert right.location == "/registration/terms"


def test_later_steps_cannot_be_reached_by_typing_their_url(client, contracts):
    for path in ["/registration/additional", "/registration/terms", "/registration/account", "/registration/sent"]:
        response = client.get(path)
        assert response.status_code == 302 and response.location == "/registration/", path


def test_back_keeps_entered_values_but_not_passwords(registrant, client):
    registrant.verify()
    registrant.agree()
    page = client.get("/registration/account").get_data(as_text=True)
    back = client.post("/registration/account", data={
        "csrf_token": csrf_token(page), "login_id": "kept@example.jp", "password": "Secret-123", "back": "1",
    })
    assert back.location == "/registration/terms"
    terms = client.get("/registration/terms").get_data(as_text=True)
    assert 'value="agree" checked' in terms or 'checked value="agree"' in terms or 'checked' in terms
    account_page = client.get("/registration/account").get_data(as_text=True)
    assert 'value="kept@example.jp"' in account_page and "Secret-123" not in account_page
    first = client.get("/registration/").get_data(as_text=True)
    assert 'value="スズキハナコ"' in first and 'value="0449876543"' in first and 'value="0077"' in first


@pytest.mark.parametrize(
    "login_id, password, confirm, message",
    [
        ("a@b", "Hanako-2026", None, "iTSCOM IDは4～100文字で入力してください。"),
        ("x" * 95 + "@example.jp", "Hanako-2026", None, "iTSCOM IDは4～100文字で入力してください。"),
        ("hanako!@example.jp", "Hanako-2026", None, "iTSCOM IDに使用できるのは半角英数字と「@」「_」「-」「.」です。"),
        ("hanako.example.jp", "Hanako-2026", None, "iTSCOM IDはメールアドレス形式で入力してください。"),
        ("hanako@example.jp", "abc12", None, "パスワードは6～32文字で入力してください。"),
        ("hanako@example.jp", "a" * 33, None, "パスワードは6～32文字で入力してください。"),
        ("hanako@example.jp", "pass word!", None, "パスワードに使用できるのは半角英数字と"),
        ("hanako@example.jp", "hanako@example.jp", None, "iTSCOM IDと同じパスワードは使用できません。"),
        ("hanako@example.jp", "password1", None, "このパスワードは推測されやすいため使用できません。"),
        ("hanako@example.jp", "Hanako-2026", "Hanako-2027", "パスワードとパスワード再入力が一致しません。"),
    ],
)
def test_each_broken_rule_is_named_next_to_its_field(app, registrant, login_id, password, confirm, message):
    registrant.verify()
    registrant.agree()
    response = registrant.choose(login_id, password, confirm)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and message in html
    assert password not in html.replace(login_id, "")  # passwords are never echoed
    with app.app_context():
        assert db.session.scalar(db.select(OutboxMail)) is None


def test_login_id_of_another_contract_is_refused_without_revealing_it(registrant, account):
    registrant.verify()
    registrant.agree()
    html = registrant.choose("taro.itsu@example.jp").get_data(as_text=True)
    assert "このiTSCOM IDはご利用いただけません。" in html
    assert "2005128462" not in html and "逸" not in html


def test_verification_is_throttled_then_reset_after_the_window(app, registrant, clock):
    for _ in range(5):
        assert registrant.verify(payment_value="0000").status_code == 200
    refused = registrant.verify()  # even the right answers now
    assert refused.status_code == 429
    assert "30分後に再度お試しください。" in refused.get_data(as_text=True)
    clock.advance(29 * 60)
    assert registrant.verify().status_code == 429
    clock.advance(60)
    assert registrant.verify().location == "/registration/terms"
    assert "registration.verify_throttled" in events(app)


def test_throttle_per_client_address_across_identities(app, registrant):
    app.config["REGISTRATION_VERIFY_FAILURES_PER_ADDRESS"] = 3
    for name in ["アアア", "イイイ", "ウウウ"]:
        registrant.verify(name_kana=name)
    refused = registrant.verify()
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"


SUZUKI_CUSTOMER_NUMBER = {"payment_type": "customer_number", "payment_value": "2005128464"}
USE_ANOTHER_ITEM = "お客さま番号またはセットトップボックス (STB/Hit pot) のIDで認証いただくか、30分後に再度お試しください。"


def test_a_strangers_bank_digit_guesses_do_not_keep_the_holder_from_registering(app, contracts, mail_server):
    stranger = Registrant(app, app.test_client(), address="198.51.100.7")
    for digits in ["1111", "2222", "3333", "4444", "5555"]:
        assert stranger.verify(payment_value=digits).status_code == 200

    holder = Registrant(app, app.test_client(), mail_server, address="192.0.2.50")
    refused = holder.verify()  # the right 口座番号 下4桁, but those are locked for this name and phone
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"
    assert USE_ANOTHER_ITEM in refused.get_data(as_text=True)
    # The お客さま番号 printed on every bill still works, all the way through.
    path = holder.up_to_mail("hanako.new@example.jp", **SUZUKI_CUSTOMER_NUMBER)
    assert holder.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"


def test_four_digit_guessing_stays_refused_after_five_tries(app, registrant, clock):
    for digits in ["1111", "2222", "3333", "4444", "5555"]:
        assert registrant.verify(payment_value=digits).status_code == 200
    elsewhere = Registrant(app, app.test_client(), address="203.0.113.9")
    for answers in [{}, {"payment_type": "card_last4", "payment_value": "5599"}]:  # right digits, any address
        refused = elsewhere.verify(**answers)
        assert refused.status_code == 429 and USE_ANOTHER_ITEM in refused.get_data(as_text=True)
    # A name and phone of no contract answer the same: nothing tells whether it exists.
    nobody = {"name_kana": "ダレモイナイ", "phone": "0300000000"}
    for digits in ["1111", "2222", "3333", "4444", "5555"]:
        assert elsewhere.verify(payment_value=digits, **nobody).status_code == 200
    ghost = elsewhere.verify(**nobody)
    assert ghost.status_code == 429 and USE_ANOTHER_ITEM in ghost.get_data(as_text=True)
    clock.advance(30 * 60)
    assert registrant.verify().location == "/registration/terms"


def test_customer_number_guesses_are_budgeted_per_address_only(app, registrant):
    guesser = Registrant(app, app.test_client(), address="198.51.100.7")
    for n in range(30):  # a shared NAT's worth of mistakes, not a lock on anybody
        assert guesser.verify(payment_type="customer_number", payment_value=f"{2005000000 + n}").status_code == 200
    refused = guesser.verify(**SUZUKI_CUSTOMER_NUMBER)
    assert refused.status_code == 429 and "受付を一時停止しています。1秒後に再度お試しください。" in refused.get_data(as_text=True)
    assert registrant.verify(**SUZUKI_CUSTOMER_NUMBER).location == "/registration/terms"


def test_expired_url(registrant, clock):
    path = registrant.up_to_mail("hanako.new@example.jp")
    clock.advance(30 * 60 + 1)
    response = registrant.client.get(path)
    assert response.status_code == 400
    assert "手続きをはじめからやり直してください" in response.get_data(as_text=True)


def test_url_works_until_30_minutes(registrant, clock):
    path = registrant.up_to_mail("hanako.new@example.jp")
    clock.advance(30 * 60 - 1)
    assert registrant.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"


def test_reused_and_altered_urls(registrant):
    path = registrant.up_to_mail("hanako.new@example.jp")
    assert registrant.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"
    again = registrant.client.get(path)
    assert again.status_code == 400 and "手続きをはじめからやり直してください" in again.get_data(as_text=True)
    altered = registrant.client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB"))
    assert altered.status_code == 400


def test_concurrent_completions_of_one_login_id_one_wins(app, contracts, mail_server):
    paths = []
    for answers in [{}, {"name_kana": "ヤマダタロウ", "phone": "09012345678", "payment_type": "card_last4",
                         "payment_value": "1234"}]:
        browser = Registrant(app, app.test_client(), mail_server)
        paths.append((browser, browser.up_to_mail("same@example.jp", **answers)))
    barrier = threading.Barrier(2)
    results = []

    def complete(browser, path):
        page = browser.client.get(path)
        token = csrf_token(page.get_data(as_text=True))
        barrier.wait()
        response = browser.client.post(path, data={"csrf_token": token})
        if response.location == "/registration/contact":
            contact = browser.client.get("/registration/contact").get_data(as_text=True)
            response = browser.client.post("/registration/contact", data={
                "csrf_token": csrf_token(contact), "contact_email": "same@example.jp"})
        results.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=complete, args=pair) for pair in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [303, 409], results
    loser = next(body for status, body in results if status == 409)
    assert "このiTSCOM IDは既に登録されています。" in loser
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Account)) == 1


def test_mail_survives_an_smtp_outage(app, client, contracts, clock):
    port = free_port()
    app.config["MAIL_URL"] = f"smtp://127.0.0.1:{port}"
    from idp.mail.transports import make_transport

    app.extensions["idp.mail"] = make_transport(app.config["MAIL_URL"])
    down = MailServer(port)
    registrant = Registrant(app, client, down)
    registrant.verify()
    registrant.agree()
    assert registrant.choose("hanako.new@example.jp").location == "/registration/sent"
    from idp.mail import deliver_due

    with app.app_context():
        assert deliver_due() == (0, 1)  # nobody listens: kept for later
        row = db.session.scalar(db.select(OutboxMail))
        assert row.attempts == 1 and row.sent_at is None and row.next_attempt_at > clock.now()
    down.start()
    try:
        with app.app_context():
            assert deliver_due() == (0, 0)  # not due yet: backoff
        clock.advance(61)
        path = registrant.mailed_path("hanako.new@example.jp")
    finally:
        down.stop()
    assert registrant.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"


def test_re_registration_replaces_the_id_and_ends_the_old_login(app, client, registrant, mail_server):
    with app.app_context():
        from idp.accounts import create_account

        create_account("2005128464", "hanako.old@example.jp", "Hanako-2025")
        db.session.commit()
    rp = RelyingParty.register(app, client)
    rp.login = lambda **kw: RelyingParty.login(rp, "hanako.old@example.jp", "Hanako-2025")
    old = rp.tokens()
    old_sub = rp.verify_id_token(old["id_token"])["sub"]
    phone = SoftAuthenticator()
    assert enrol(client, phone, password="Hanako-2025").status_code == 303

    other_browser = Registrant(app, app.test_client(), mail_server)
    path = other_browser.up_to_mail("hanako.new@example.jp")
    assert other_browser.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"

    introspection = client.post("/introspect", data={"token": old["access_token"]}, headers=rp.auth()).get_json()
    assert introspection["active"] is False
    refresh = rp.token_request({"grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
    assert refresh.get_json()["error"] == "invalid_grant"
    # The browser's OP session ended too.
    assert query_of(rp.authorize(prompt="none").location)["error"] == "login_required"
    # The old login stops working; the new one has the same sub.
    assert RelyingParty.login(rp, "hanako.old@example.jp", "Hanako-2025").status_code == 200
    assert passkey_login(app.test_client(), phone).status_code == 400  # so do its passkeys
    rp.login = lambda **kw: RelyingParty.login(rp, "hanako.new@example.jp", "Hanako-2026")
    assert rp.verify_id_token(rp.tokens()["id_token"])["sub"] == old_sub
    assert "registration.replaced" in events(app)


def test_development_outbox_page_shows_mails_without_smtp(app, client, contracts):
    from idp import create_app

    dev = create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                      "ISSUER": app.config["ISSUER"]}, clock=app.extensions["idp.clock"])
    browser = Registrant(dev, dev.test_client())
    browser.verify()
    browser.agree()
    browser.choose("hanako.new@example.jp")
    page = browser.client.get("/dev/mail").get_data(as_text=True)
    with dev.app_context():
        db.engine.dispose()
    assert "マイページ本登録のご案内" in page and "/registration/confirm/" in page and "鈴木 花子 様" in page
    assert client.get("/dev/mail").status_code == 404  # with IDP_MAIL_URL set there is no such page


def test_step4_answers_are_budgeted(app, registrant, account):
    registrant.verify()
    registrant.agree()
    statuses = [registrant.choose("taro.itsu@example.jp", "Hanako-2026").status_code for _ in range(6)]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429


def test_registration_mails_are_budgeted_per_contract(app, registrant):
    for i in range(7):
        registrant.verify()
        registrant.agree()
        registrant.choose(f"someone{i}@example.org")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(OutboxMail)) == 5
        assert db.session.scalar(db.select(db.func.count()).select_from(PendingRegistration)) == 5


def test_one_bad_mail_does_not_block_the_outbox(app, registrant, mail_server):
    registrant.verify()
    registrant.agree()
    registrant.choose("first@example.jp")
    with app.app_context():
        db.session.scalar(db.select(OutboxMail)).body = b"sealed under an old secret key"
        db.session.commit()
    second = Registrant(app, app.test_client(), mail_server)
    second.verify(name_kana="イツタロウ", phone="0312345678", payment_type="bank_last4", payment_value="4821")
    second.agree()
    second.choose("second@example.jp")
    with app.app_context():
        assert deliver_due() == (1, 1)
    assert mail_server.inbox.last_to("second@example.jp")


def test_flow_cookie_does_not_carry_contract_answers(registrant, client):
    registrant.verify()
    raw = client.get_cookie("idp_flow").value
    compressed = raw.startswith(".")
    payload = raw.split(".")[1]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    flow = json.loads((zlib.decompress(data) if compressed else data).decode())
    # What the cookie may hold besides opaque values: the CSRF token (hex)
    # and the step's state sealed under the server's key (a Fernet token);
    # either may contain "0077" by chance, so the answers are looked for in
    # everything else, and the two are checked to be opaque.
    assert re.fullmatch(r"[0-9a-f]{40}", flow.pop("csrf_token"))
    assert flow.pop("registration").startswith("gAAAAA")
    text = json.dumps(flow, ensure_ascii=False)
    assert "0077" not in text and "0449876543" not in text and "スズキ" not in text


def test_completion_voids_other_pending_urls_of_the_contract(app, registrant, mail_server):
    first = registrant.up_to_mail("hanako.one@example.jp")
    other = Registrant(app, app.test_client(), mail_server)
    second = other.up_to_mail("hanako.two@example.jp")
    assert other.confirm(second, contact="hanako.two@example.jp").location == "/registration/complete"
    assert registrant.confirm(first, contact="hanako.one@example.jp").status_code == 400


def test_each_step_commits_with_its_audit_row_or_not_at_all(app, registrant, mail_server):
    """When the database refuses the audit rows, step 4 keeps nothing aside
    and mails nothing, and completion activates nothing: an error page, and
    the same steps work once the database takes the rows again."""
    assert registrant.verify().location == "/registration/terms"
    assert registrant.agree().location == "/registration/account"
    with audit_rows_refused(app):
        assert registrant.choose("hanako.new@example.jp").status_code == 500
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(PendingRegistration)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(OutboxMail)) == 0
    assert registrant.choose("hanako.new@example.jp").location == "/registration/sent"
    path = registrant.mailed_path("hanako.new@example.jp")

    with audit_rows_refused(app):
        refused = registrant.confirm(path, contact="hanako.new@example.jp")
    assert refused.status_code == 500 and "registration/complete" not in (refused.location or "")
    with app.app_context():
        assert db.session.scalar(db.select(Account)) is None
        assert db.session.scalar(db.select(PendingRegistration)).completed_at is None
    assert registrant.confirm(path, contact="hanako.new@example.jp").location == "/registration/complete"

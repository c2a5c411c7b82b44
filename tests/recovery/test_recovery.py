"""iTSCOM ID・パスワードが分からなくなったら (manual p.17–24), against a real SMTP server."""

import re
from urllib.parse import urlsplit

import pytest

from idp.accounts import create_account
from idp.extensions import db
from idp.mail import deliver_due
from idp.models import Account, AuditEvent
from idp.security.passwords import verify_password

from ..faults import audit_rows_refused
from ..helpers import RelyingParty, csrf_token, submit
from ..mailserver import body_of


def deliver(app):
    with app.app_context():
        deliver_due()


def mailed_code(app, mail_server, to="taro.itsu@example.jp") -> str:
    deliver(app)
    mail = mail_server.inbox.last_to(to)
    assert mail["Subject"] == "認証コードのお知らせ" and mail["From"] == "mypage@itscom.jp"
    return re.search(r"認証コード：(\d{6})", body_of(mail)).group(1)


def mailed_link(app, mail_server, to) -> str:
    deliver(app)
    mail = mail_server.inbox.last_to(to)
    assert mail["Subject"] == "本人認証確認用メール"
    return urlsplit(re.search(r"https?://\S+/recovery/link/\S+", body_of(mail)).group(0)).path


@pytest.fixture
def yamada(app, contracts):
    """An account whose contact address is not confirmed: procedure 3-A."""
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025",
                       contact_email="yamada.mobile@example.com", contact_confirmed=False)
        db.session.commit()


def start_3b(client, login_id="taro.itsu@example.jp"):
    assert submit(client, "/recovery/", {"unknown": "password"}).location == "/recovery/identify"
    return submit(client, "/recovery/identify", {"login_id": login_id})


def test_choice_page_and_id_unknown_goes_to_registration(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/recovery/">ID、またはパスワードをお忘れですか？</a>' in html
    page = client.get("/recovery/").get_data(as_text=True)
    for words in ["iTSCOM ID・パスワードがご不明なお客様", "パスワードがご不明な場合",
                  "iTSCOM IDがご不明な場合 (iTSCOM ID新規登録)", "次へ", "戻る",
                  "iTSCOM ID・パスワードを忘れた場合の再発行手続き方法はこちら"]:
        assert words in page, words
    assert submit(client, "/recovery/", {"unknown": "id"}).location == "/registration/"


def test_3b_code_to_a_new_password(app, client, account, mail_server):
    rp = RelyingParty.register(app, client)
    old = rp.tokens()
    response = start_3b(client)
    assert response.location == "/recovery/code"
    page = client.get("/recovery/code").get_data(as_text=True)
    assert "認証コード入力" in page and "連絡先メールアドレスに認証コードを送信しました。" in page
    code = mailed_code(app, mail_server)
    body = body_of(mail_server.inbox.last_to("taro.itsu@example.jp"))
    assert body.startswith("逸 太郎 様\n") and "お客様からの「パスワード 再発行」を受付しました。" in body

    assert submit(client, "/recovery/code", {"code": code}).location == "/recovery/password"
    weak = submit(client, "/recovery/password", {"password": "taro.itsu@example.jp",
                                               "password_confirm": "taro.itsu@example.jp"})
    assert "iTSCOM IDと同じパスワードは使用できません。" in weak.get_data(as_text=True)
    common = submit(client, "/recovery/password", {"password": "password1", "password_confirm": "password1"})
    assert "推測されやすい" in common.get_data(as_text=True)
    mistyped = submit(client, "/recovery/password", {"password": "Taro-new-2026", "password_confirm": "Taro-new-2025"})
    assert "パスワードとパスワード再入力が一致しません。" in mistyped.get_data(as_text=True)
    done = submit(client, "/recovery/password", {"password": "Taro-new-2026", "password_confirm": "Taro-new-2026"})
    assert done.location == "/recovery/done"
    assert "これでパスワードの再発行は完了です。" in client.get("/recovery/done").get_data(as_text=True)

    # Everything of the old login is gone; the new password works, the old one not.
    assert client.post("/introspect", data={"token": old["access_token"]}, headers=rp.auth()).get_json()["active"] is False
    assert rp.token_request({"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}).status_code == 400
    assert RelyingParty.login(rp, "taro.itsu@example.jp", "itscom-demo1").status_code == 200
    assert RelyingParty.login(rp, "taro.itsu@example.jp", "Taro-new-2026").status_code == 303
    deliver(app)
    assert mail_server.inbox.last_to("taro.itsu@example.jp")["Subject"] == "パスワード変更のお知らせ"
    with app.app_context():
        events = {e.event for e in db.session.scalars(db.select(AuditEvent))}
    assert {"recovery.started", "recovery.code_verified", "account.password_reset", "recovery.completed"} <= events


def unknown_ids(app, method: str, count: int = 1, has_secret: bool = False) -> list[str]:
    """Unknown IDs that take the given path (fixed per ID by the OP's secret);
    on 3-A, those that act as an account with (or without) a 合言葉."""
    from idp.recovery.service import _method_for_unknown, _unknown_has_secret

    def takes(login_id: str) -> bool:
        if _method_for_unknown(login_id) != method:
            return False
        return method == "code" or _unknown_has_secret(login_id) == has_secret

    with app.app_context():
        return [i for i in (f"nobody{n}@example.jp" for n in range(400)) if takes(i)][:count]


def test_unknown_id_looks_like_a_known_one_and_sends_nothing(app, account, mail_server):
    known, unknown = app.test_client(), app.test_client()
    [nobody] = unknown_ids(app, "code")
    a, b = start_3b(known), start_3b(unknown, nobody)
    assert (a.status_code, a.location) == (b.status_code, b.location)
    page_a = known.get("/recovery/code").get_data(as_text=True)
    page_b = unknown.get("/recovery/code").get_data(as_text=True)
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731 - CSRF tokens differ
    assert strip(page_a) == strip(page_b)
    deliver(app)
    assert [m["To"] for m in mail_server.inbox.messages] == ["taro.itsu@example.jp"]
    for guess in ["000000", "123456"]:
        assert "認証コードが正しくありません。" in submit(unknown, "/recovery/code", {"code": guess}).get_data(as_text=True)


def test_five_wrong_codes_then_even_the_right_one_is_refused(app, client, account, mail_server):
    start_3b(client)
    code = mailed_code(app, mail_server)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    token = csrf_token(client.get("/recovery/code").get_data(as_text=True))
    for _ in range(4):
        assert client.post("/recovery/code", data={"csrf_token": token, "code": wrong}).status_code == 200
    assert client.post("/recovery/code", data={"csrf_token": token, "code": wrong}).status_code == 400  # the fifth
    response = client.post("/recovery/code", data={"csrf_token": token, "code": code})
    assert response.status_code == 400 and "手続きをはじめからやり直してください" in response.get_data(as_text=True)


def test_expired_code(app, client, account, mail_server, clock):
    start_3b(client)
    code = mailed_code(app, mail_server)
    token = csrf_token(client.get("/recovery/code").get_data(as_text=True))
    clock.advance(30 * 60 + 1)
    assert client.post("/recovery/code", data={"csrf_token": token, "code": code}).status_code == 400


def test_code_entered_in_another_browser_is_refused(app, client, account, mail_server):
    start_3b(client)
    code = mailed_code(app, mail_server)
    other = app.test_client()
    assert other.get("/recovery/code").status_code == 400
    token = csrf_token(other.get("/login").get_data(as_text=True))
    response = other.post("/recovery/code", data={"csrf_token": token, "code": code})
    assert response.status_code == 400
    assert other.get("/recovery/password").status_code == 400


def test_password_page_needs_the_code_first(app, client, account):
    start_3b(client)
    assert client.get("/recovery/password").location == "/recovery/code"


def test_3a_secret_question_and_link_to_a_new_password(app, client, yamada, mail_server):
    rp = RelyingParty.register(app, client)
    rp.login = lambda **kw: RelyingParty.login(rp, "yamada@example.jp", "Yamada-2025")
    old = rp.tokens()
    assert start_3b(client, "yamada@example.jp").location == "/recovery/secret"
    page = client.get("/recovery/secret").get_data(as_text=True)
    assert "合言葉登録" in page and "ペットの名前" in page and "※半角記号不可" in page
    symbols = submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "pochi!"})
    assert "答えに半角記号は使用できません。" in symbols.get_data(as_text=True)
    assert submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"}).location == "/recovery/secret/sent"
    sent = client.get("/recovery/secret/sent").get_data(as_text=True)
    for words in ["本人認証が完了しました。", "連絡先メールアドレスに確認用メールを送信しました。",
                  "確認用メールの有効期限は30分です。", "メールが届かない場合"]:
        assert words in sent
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    body = body_of(mail_server.inbox.last_to("yamada.mobile@example.com"))
    assert body.startswith("山田 太郎 様\n") and "下記URLからiTSCOM ID/パスワードを確認してください。" in body

    phone = app.test_client()  # mail is often read on a phone
    assert phone.get("/recovery/reissue").status_code == 400  # the link alone resets nothing
    form = phone.get(path).get_data(as_text=True)
    assert "合言葉入力" in form and "ID・パスワード再発行" in form
    wrong = phone.post(path, data={"csrf_token": csrf_token(form), "question": "母親の旧姓", "answer": "ぽち"})
    assert "秘密の質問または答えが正しくありません。" in wrong.get_data(as_text=True)
    right = phone.post(path, data={"csrf_token": csrf_token(form), "question": "ペットの名前", "answer": "ポチ"})
    assert right.location == "/recovery/reissue"
    reissue = phone.get("/recovery/reissue").get_data(as_text=True)
    assert "ID・パスワード再発行" in reissue and "yamada@example.jp" in reissue
    done = phone.post("/recovery/reissue", data={"csrf_token": csrf_token(reissue),
                                                 "password": "Yamada-2026", "password_confirm": "Yamada-2026"})
    assert done.location == "/recovery/done"
    with app.app_context():
        assert db.session.scalar(db.select(Account).filter_by(login_id="yamada@example.jp")).contact_email_verified
    # Replayed link: the procedure is over.
    assert phone.get(path).status_code == 400
    # The old refresh token is dead, the old password refused, the new one works.
    assert rp.token_request({"grant_type": "refresh_token", "refresh_token": old["refresh_token"]}).status_code == 400
    assert RelyingParty.login(rp, "yamada@example.jp", "Yamada-2025").status_code == 200
    assert RelyingParty.login(rp, "yamada@example.jp", "Yamada-2026").status_code == 303


def test_3a_five_wrong_answers_end_the_procedure(app, client, yamada, mail_server):
    start_3b(client, "yamada@example.jp")
    submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"})
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    for _ in range(5):
        form = client.get(path).get_data(as_text=True)
        client.post(path, data={"csrf_token": csrf_token(form), "question": "ペットの名前", "answer": "たま"})
    assert client.get(path).status_code == 400


def test_3a_expired_link(app, client, yamada, mail_server, clock):
    start_3b(client, "yamada@example.jp")
    submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"})
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    clock.advance(30 * 60 + 1)
    assert client.get(path).status_code == 400
    assert client.get(path[:-3] + "xyz").status_code == 400


def test_repeated_requests_for_one_id_are_throttled(app, account, mail_server):
    for _ in range(3):
        assert start_3b(app.test_client()).status_code == 303
    refused = start_3b(app.test_client())
    assert refused.status_code == 429 and "30分後に再度お試しください。" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"] == "1800"
    deliver(app)
    assert len(mail_server.inbox.messages) == 3
    # An unknown ID is throttled the same way.
    for _ in range(3):
        start_3b(app.test_client(), "nobody@example.jp")
    assert start_3b(app.test_client(), "nobody@example.jp").status_code == 429


def test_unknown_ids_also_take_the_secret_question_path_without_mail(app, client, yamada, mail_server):
    """Otherwise 3-A would tell that an ID exists (with an unconfirmed address)."""
    [nobody] = unknown_ids(app, "secret")
    assert start_3b(client, nobody).location == "/recovery/secret"
    assert submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"}).location == "/recovery/secret/sent"
    assert "本人認証が完了しました。" in client.get("/recovery/secret/sent").get_data(as_text=True)
    deliver(app)
    assert mail_server.inbox.messages == []


def test_parallel_code_guesses_stay_within_five(app, client, account, mail_server):
    import threading

    start_3b(client)
    code = mailed_code(app, mail_server)
    token = csrf_token(client.get("/recovery/code").get_data(as_text=True))
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    barrier = threading.Barrier(8)

    def guess():
        barrier.wait()
        client.post("/recovery/code", data={"csrf_token": token, "code": wrong})

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.post("/recovery/code", data={"csrf_token": token, "code": code}).status_code == 400
    with app.app_context():
        from idp.models import RecoveryProcedure

        assert db.session.scalar(db.select(RecoveryProcedure)).failures == 5


# --- one 合言葉 per account: set on the account page or at 3-A-1 ------------

def set_secret_on_account_page(app, question="好きな食べ物", answer="カレー"):
    browser = app.test_client()
    rp = RelyingParty.register(app, browser)
    rp.login = lambda **kw: RelyingParty.login(rp, "yamada@example.jp", "Yamada-2025")
    rp.sign_in_and_get_code()
    token = csrf_token(browser.get("/account/").get_data(as_text=True))
    response = browser.post("/account/secret", data={"csrf_token": token, "question": question, "answer": answer,
                                                      "current_password": "Yamada-2025"})
    assert response.status_code == 303, response.get_data(as_text=True)


def reissue_through_link(app, path, question, answer, password="Yamada-2026"):
    phone = app.test_client()
    form = phone.get(path).get_data(as_text=True)
    response = phone.post(path, data={"csrf_token": csrf_token(form), "question": question, "answer": answer})
    if response.status_code != 303:
        return response
    reissue = phone.get(response.location).get_data(as_text=True)
    return phone.post("/recovery/reissue", data={"csrf_token": csrf_token(reissue), "password": password,
                                                 "password_confirm": password})


def test_3a_with_the_accounts_secret_skips_registration_and_the_link_asks_it(app, client, yamada, mail_server):
    set_secret_on_account_page(app)
    response = start_3b(client, "yamada@example.jp")
    assert response.location == "/recovery/secret/sent"  # no 合言葉登録
    assert "本人認証が完了しました。" in client.get("/recovery/secret/sent").get_data(as_text=True)
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    refused = reissue_through_link(app, path, "ペットの名前", "カレー")
    assert "秘密の質問または答えが正しくありません。" in refused.get_data(as_text=True)
    assert reissue_through_link(app, path, "好きな食べ物", "かれー").location == "/recovery/done"


def test_the_secret_registered_at_3a_becomes_the_accounts_one(app, client, yamada, mail_server):
    start_3b(client, "yamada@example.jp")
    submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"})
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    assert reissue_through_link(app, path, "ペットの名前", "ぽち").location == "/recovery/done"
    with app.app_context():
        assert db.session.scalar(db.select(Account).filter_by(login_id="yamada@example.jp")).secret_question == "ペットの名前"
        # The link confirmed the contact address; the next 3-A needs it unconfirmed again.
        account = db.session.scalar(db.select(Account).filter_by(login_id="yamada@example.jp"))
        account.contact_email_verified = False
        db.session.commit()
    again = app.test_client()
    assert start_3b(again, "yamada@example.jp").location == "/recovery/secret/sent"
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    assert reissue_through_link(app, path, "ペットの名前", "ポチ", "Yamada-2027").location == "/recovery/done"


def test_a_secret_registered_by_someone_who_never_completes_is_not_kept(app, client, yamada, mail_server):
    """Whoever types an ID can reach 合言葉登録; only the mailbox's owner completes."""
    start_3b(client, "yamada@example.jp")
    submit(client, "/recovery/secret", {"question": "母親の旧姓", "answer": "すずき"})
    with app.app_context():
        assert db.session.scalar(db.select(Account).filter_by(login_id="yamada@example.jp")).secret_answer_hash is None
    assert start_3b(app.test_client(), "yamada@example.jp").location == "/recovery/secret"


def test_unknown_ids_also_skip_registration_as_accounts_with_a_secret_do(app, client, yamada, mail_server):
    [nobody] = unknown_ids(app, "secret", has_secret=True)
    assert start_3b(client, nobody).location == "/recovery/secret/sent"
    assert "本人認証が完了しました。" in client.get("/recovery/secret/sent").get_data(as_text=True)
    deliver(app)
    assert mail_server.inbox.messages == []


def test_a_code_issued_before_a_reset_is_dead_after_it(app, client, account, mail_server):
    rp = RelyingParty.register(app, client)
    code = rp.sign_in_and_get_code()["code"]
    victim = app.test_client()
    start_3b(victim)
    submit(victim, "/recovery/code", {"code": mailed_code(app, mail_server)})
    done = submit(victim, "/recovery/password", {"password": "Taro-new-2026", "password_confirm": "Taro-new-2026"})
    assert done.location == "/recovery/done"
    assert rp.exchange(code).status_code == 400


def test_a_new_password_commits_with_its_audit_rows_or_not_at_all(app, client, account, mail_server):
    start_3b(client)
    assert submit(client, "/recovery/code", {"code": mailed_code(app, mail_server)}).location == "/recovery/password"
    new = {"password": "Taro-new-2026", "password_confirm": "Taro-new-2026"}
    with audit_rows_refused(app):
        assert submit(client, "/recovery/password", new).status_code == 500
    with app.app_context():
        assert verify_password(db.session.get(Account, account).password_hash, "itscom-demo1")
    assert submit(client, "/recovery/password", new).location == "/recovery/done"

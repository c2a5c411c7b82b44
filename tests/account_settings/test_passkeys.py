"""アカウント設定 › パスキー: enrol one after the current password, see the
list, remove one; each change is mailed to the contact address."""

from __future__ import annotations

import pytest

from idp.accounts import create_account
from idp.extensions import db
from idp.mail import deliver_due
from idp.models import Account, AuditEvent, Passkey

from ..helpers import csrf_token, login
from ..mailserver import body_of
from ..passkeys import SoftAuthenticator, b64, enrol, enrolment_options

CONTACT = "taro.itsu@example.jp"


@pytest.fixture
def signed_in(client, account):
    assert login(client).status_code == 303
    return client


def stored(app) -> list[Passkey]:
    with app.app_context():
        rows = db.session.scalars(db.select(Passkey).order_by(Passkey.id)).all()
        db.session.expunge_all()
        return rows


def refusals(app) -> list[str]:
    with app.app_context():
        return [e.details["reason"] for e in db.session.scalars(
            db.select(AuditEvent).filter_by(event="account.passkey_refused").order_by(AuditEvent.id))]


def test_enrol_list_and_remove_with_a_notice_each_time(app, signed_in, mail_server, clock):
    client = signed_in
    assert "パスキーは登録されていません。" in client.get("/account/").get_data(as_text=True)
    phone = SoftAuthenticator()
    options, page = enrolment_options(client, name="私のスマートフォン")
    assert "パスキーを作成する" in page.get_data(as_text=True)
    assert options["rp"] == {"id": "id.example.test", "name": "iTSCOM ID"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    answer = phone.create(options)
    done = client.post("/account/passkeys", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                  "credential": answer})
    assert done.status_code == 303 and done.location == "/account/"
    html = client.get("/account/").get_data(as_text=True)
    assert "パスキー「私のスマートフォン」を登録しました。" in html and "未使用" in html
    [passkey] = stored(app)
    assert passkey.credential_id == phone.credential_id and passkey.created_at == clock.now()
    assert passkey.transports == "internal hybrid" and not passkey.backup_eligible
    with app.app_context():
        assert phone.user_handle == db.session.scalar(db.select(Account.subject)).encode()
    with app.app_context():
        deliver_due()
    notice = mail_server.inbox.last_to(CONTACT)
    assert notice["Subject"] == "パスキー登録のお知らせ" and "「私のスマートフォン」" in body_of(notice)

    # A second one; the first cannot be enrolled twice (the browser is told to exclude it).
    options, _ = enrolment_options(client, name="ノートPC")
    assert [c["id"] for c in options["excludeCredentials"]] == [b64(phone.credential_id)]
    assert enrol(client, SoftAuthenticator(backup_eligible=True), name="ノートPC").status_code == 303
    assert enrol(client, phone, name="同じもの").status_code == 400
    assert refusals(app) == ["already enrolled"]
    first, second = stored(app)
    assert (first.name, second.name, second.backup_eligible) == ("私のスマートフォン", "ノートPC", True)

    page = client.get("/account/").get_data(as_text=True)
    removed = client.post(f"/account/passkeys/{first.id}/remove", data={"csrf_token": csrf_token(page)})
    assert removed.status_code == 303
    assert "パスキー「私のスマートフォン」を削除しました。" in client.get("/account/").get_data(as_text=True)
    assert [p.name for p in stored(app)] == ["ノートPC"]
    with app.app_context():
        deliver_due()
    notice = mail_server.inbox.last_to(CONTACT)
    assert notice["Subject"] == "パスキー削除のお知らせ" and "「私のスマートフォン」" in body_of(notice)
    again = client.post(f"/account/passkeys/{first.id}/remove", data={"csrf_token": csrf_token(page)})
    assert again.status_code == 303
    assert "そのパスキーは既に削除されています。" in client.get("/account/").get_data(as_text=True)
    with app.app_context():
        events = [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert events.count("account.passkey_added") == 2 and events.count("account.passkey_removed") == 1


def test_enrolment_needs_the_current_password_and_a_name(app, signed_in):
    options, page = enrolment_options(signed_in, password="not-the-password")
    assert options is None and page.status_code == 400
    assert "現在のパスワードが正しくありません。" in page.get_data(as_text=True)
    options, page = enrolment_options(signed_in, name="")
    assert options is None and page.status_code == 400
    options, page = enrolment_options(signed_in, name="x" * 65)
    assert options is None and page.status_code == 400


@pytest.mark.parametrize("answer, reason", [
    ({"origin": "https://evil.example.test"}, "origin"),
    ({"rp_id": "evil.example.test"}, "RP ID"),
    ({"uv": False}, "verif"),
], ids=["other-origin", "other-rp-id", "no-user-verification"])
def test_a_wrong_origin_rp_id_or_unverified_user_enrols_nothing(app, signed_in, answer, reason):
    response = enrol(signed_in, SoftAuthenticator(), **answer)
    assert response.status_code == 400
    assert "パスキーを登録できませんでした。" in response.get_data(as_text=True)
    assert stored(app) == [] and reason in refusals(app)[-1]


def test_an_enrolment_answer_is_taken_once_and_only_from_its_own_session(app, signed_in, account, clock):
    client = signed_in
    phone = SoftAuthenticator()
    options, page = enrolment_options(client)
    token = csrf_token(page.get_data(as_text=True))
    answer = phone.create(options)
    cookie = client.get_cookie("idp_flow").value
    # Another signed-in browser of the same customer cannot use it.
    other = app.test_client()
    login(other)
    other_token = csrf_token(other.get("/account/").get_data(as_text=True))
    assert other.post("/account/passkeys", data={"csrf_token": other_token, "credential": answer}).status_code == 400
    assert client.post("/account/passkeys", data={"csrf_token": token, "credential": answer}).status_code == 303
    # Replayed, with the flow cookie from before.
    client.set_cookie("idp_flow", cookie, domain="localhost")
    assert client.post("/account/passkeys", data={"csrf_token": token, "credential": answer}).status_code == 400
    assert len(stored(app)) == 1
    # And an enrolment left open too long expires.
    options, page = enrolment_options(client, name="遅い")
    clock.advance(app.config["PASSKEY_CEREMONY_LIFETIME"] + 1)
    late = client.post("/account/passkeys", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                  "credential": SoftAuthenticator().create(options)})
    assert late.status_code == 400 and len(stored(app)) == 1


def test_an_enrolment_opened_in_one_session_cannot_finish_in_another(app, signed_in, contracts):
    options, page = enrolment_options(signed_in)
    token, cookie = csrf_token(page.get_data(as_text=True)), signed_in.get_cookie("idp_flow").value
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025")
        db.session.commit()
    other = app.test_client()
    assert login(other, "yamada@example.jp", "Yamada-2025").status_code == 303
    other.set_cookie("idp_flow", cookie, domain="localhost")  # taro's open enrolment, in yamada's session
    answer = SoftAuthenticator().create(options)
    response = other.post("/account/passkeys", data={"csrf_token": token, "credential": answer})
    assert response.status_code == 400 and stored(app) == []


def test_malformed_answers_enrol_nothing_and_never_500(app, signed_in):
    _, page = enrolment_options(signed_in)
    token = csrf_token(page.get_data(as_text=True))
    for credential in ["", "{}", "[1]", "not json", '{"id": "AA", "rawId": "AA", "type": "public-key", '
                       '"response": {"clientDataJSON": "AA", "attestationObject": "AA"}}', "x" * 20000]:
        assert signed_in.post("/account/passkeys", data={"csrf_token": token, "credential": credential}
                              ).status_code == 400, credential[:30]
    assert stored(app) == []


def test_one_cannot_remove_anothers_passkey(app, signed_in, contracts):
    assert enrol(signed_in, SoftAuthenticator()).status_code == 303
    [passkey] = stored(app)
    with app.app_context():
        create_account("2005128463", "yamada@example.jp", "Yamada-2025")
        db.session.commit()
    stranger = app.test_client()
    assert login(stranger, "yamada@example.jp", "Yamada-2025").status_code == 303
    page = stranger.get("/account/").get_data(as_text=True)
    assert stranger.post(f"/account/passkeys/{passkey.id}/remove", data={"csrf_token": csrf_token(page)}
                         ).status_code == 303
    assert "そのパスキーは既に削除されています。" in stranger.get("/account/").get_data(as_text=True)
    assert len(stored(app)) == 1


def test_the_notice_is_in_the_language_of_the_request(app, signed_in, mail_server):
    signed_in.get("/language/en")
    assert enrol(signed_in, SoftAuthenticator(), name="My phone").status_code == 303
    with app.app_context():
        deliver_due()
    notice = mail_server.inbox.last_to(CONTACT)
    assert notice["Subject"] == "A passkey was added to your iTSCOM ID"
    assert "My phone" in body_of(notice) and "パスキー" not in body_of(notice)

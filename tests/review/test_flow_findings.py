"""Regressions for defects a review of registration and recovery found
(each failed before its fix)."""

import base64
import json
import zlib

import pytest

from idp.accounts import create_account
from idp.extensions import db
from idp.mail import deliver_due
from idp.models import OutboxMail, PendingRegistration

from ..helpers import RelyingParty, csrf_token
from ..recovery.test_recovery import mailed_code, post, start_3b
from ..registration.helpers import Registrant


@pytest.fixture
def registrant(app, client, contracts, mail_server):
    return Registrant(app, client, mail_server)


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
    text = (zlib.decompress(data) if compressed else data).decode()
    assert "0077" not in text and "0449876543" not in text and "スズキ" not in json.loads(text).__repr__()


def test_completion_voids_other_pending_urls_of_the_contract(app, registrant, mail_server):
    first = registrant.up_to_mail("hanako.one@example.jp")
    other = Registrant(app, app.test_client(), mail_server)
    second = other.up_to_mail("hanako.two@example.jp")
    assert other.confirm(second, contact="hanako.two@example.jp").location == "/registration/complete"
    assert registrant.confirm(first, contact="hanako.one@example.jp").status_code == 400


@pytest.mark.parametrize("path", ["/recovery/identify", "/login", "/registration/"])
def test_nul_characters_are_refused_not_a_500(client, contracts, path):
    page = client.get(path)
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                       "login_id": "taro\x00@example.jp", "name_kana": "イツ\x00", "password": "x"})
    assert response.status_code == 400


def test_a_code_issued_before_a_reset_is_dead_after_it(app, client, account, mail_server):
    rp = RelyingParty.register(app, client)
    code = rp.sign_in_and_get_code()["code"]
    victim = app.test_client()
    start_3b(victim)
    post(victim, "/recovery/code", {"code": mailed_code(app, mail_server)})
    done = post(victim, "/recovery/password", {"password": "Taro-new-2026", "password_confirm": "Taro-new-2026"})
    assert done.location == "/recovery/done"
    assert rp.exchange(code).status_code == 400

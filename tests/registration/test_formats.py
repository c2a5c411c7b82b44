"""契約者情報 認証 (p.12–13): a malformed answer is named next to its field,
with the reason, before any contract is looked at; it spends no throttle
budget and tells nothing about contracts. Numbers are taken as Japanese
keyboards type them."""

import re

import pytest

from idp.contracts import import_contracts, normalise_phone
from idp.extensions import db
from idp.models import AuditEvent, Contract, ThrottleCounter

from .helpers import Registrant

NOT_VERIFIED = "入力された内容ではご契約を確認できませんでした。"


def field_errors(html: str) -> list[str]:
    return re.findall(r'<p class="error" role="alert">([^<]+)</p>', html)


def verification_events(app) -> list[str]:
    with app.app_context():
        return [e for e in db.session.scalars(db.select(AuditEvent.event)) if e.startswith("registration.verif")]


@pytest.mark.parametrize(
    "answers, message",
    [
        ({"payment_type": "customer_number", "payment_value": "20051284"},
         "お客さま番号は10桁の数字でご入力ください。"),
        ({"payment_type": "customer_number", "payment_value": "200512846A"},
         "お客さま番号は10桁の数字でご入力ください。"),
        ({"payment_type": "bank_last4", "payment_value": "077"}, "口座番号 下4桁は4桁の数字でご入力ください。"),
        ({"payment_type": "bank_last4", "payment_value": "00777"}, "口座番号 下4桁は4桁の数字でご入力ください。"),
        ({"payment_type": "card_last4", "payment_value": "55a9"},
         "クレジットカード番号 下4桁は4桁の数字でご入力ください。"),
        ({"payment_type": "stb_id", "payment_value": "1C3E5A7B9D0"},
         "セットトップボックス (STB/Hit pot) のIDは12桁の英数字（0～9、A～F）でご入力ください。"),
        ({"payment_type": "stb_id", "payment_value": "1C3E5A7B9D0G"},
         "セットトップボックス (STB/Hit pot) のIDは12桁の英数字（0～9、A～F）でご入力ください。"),
        ({"phone": "044987654"}, "登録済みの電話番号は、0から始まる10桁または11桁の数字でご入力ください。"),
        ({"phone": "4498765430"}, "登録済みの電話番号は、0から始まる10桁または11桁の数字でご入力ください。"),
        ({"phone": "044-987-654x"}, "登録済みの電話番号は、0から始まる10桁または11桁の数字でご入力ください。"),
    ],
)
def test_a_malformed_answer_is_named_next_to_its_field_before_verification(app, registrant, answers, message):
    response = registrant.verify(**answers)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert field_errors(html) == [message]
    assert NOT_VERIFIED not in html
    # What the customer typed is still there to correct.
    assert f'value="{answers.get("payment_value", answers.get("phone"))}"' in html
    assert verification_events(app) == []  # no contract was looked at


def test_malformed_answers_spend_no_budget(app, registrant):
    app.config["REGISTRATION_VERIFY_FAILURES_PER_ADDRESS"] = 3
    for value in ["1", "12", "123", "12345", "abcd", "００７", "0-0-7"] * 2:  # 14 slips, far over both budgets
        assert registrant.verify(payment_value=value).status_code == 200
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ThrottleCounter)) == 0
    assert registrant.verify().location == "/registration/terms"  # the right 口座番号 下4桁 at once


def test_additional_item_is_checked_by_format_too(app, registrant):
    sato = {"name_kana": "サトウジロウ", "phone": "0337771234", "payment_type": "card_last4", "payment_value": "8888"}
    assert registrant.verify(**sato).location == "/registration/additional"
    for _ in range(6):
        slip = registrant.post("/registration/additional", {"payment_type": "customer_number",
                                                            "payment_value": "200512846"})
        assert field_errors(slip.get_data(as_text=True)) == ["お客さま番号は10桁の数字でご入力ください。"]
    right = registrant.post("/registration/additional", {"payment_type": "customer_number",
                                                         "payment_value": "2005128465"})
    assert right.location == "/registration/terms"


@pytest.mark.parametrize(
    "answers",
    [
        {"payment_value": "0078"},
        {"payment_type": "customer_number", "payment_value": "2005128463"},  # another contract's number
        {"payment_type": "stb_id", "payment_value": "A1B2C3D4E5F6"},
        {"phone": "0312345678"},
    ],
)
def test_a_wrong_but_well_formed_answer_still_never_says_which_field(registrant, answers):
    html = registrant.verify(**answers).get_data(as_text=True)
    assert NOT_VERIFIED in html and field_errors(html) == []


@pytest.mark.parametrize(
    "phone",
    [
        "044-987-6543",  # ASCII hyphen
        "044－987－6543",  # full-width hyphen-minus
        "044−987−6543",  # minus sign
        "044‐987‐6543",  # hyphen
        "044ー987ー6543",  # 長音 (an IME's dash)
        "044ｰ987ｰ6543",  # half-width 長音
        "044―987―6543",  # horizontal bar
        "044–987–6543",  # en dash
        "０４４９８７６５４３",  # full-width digits
        "(044) 987-6543",
        "（０４４）９８７ー６５４３",
        "044 987 6543",
        "044　987　6543",  # ideographic spaces
    ],
)
def test_phone_numbers_are_taken_as_japanese_keyboards_type_them(registrant, phone):
    assert registrant.verify(phone=phone).location == "/registration/terms"


@pytest.mark.parametrize("value", ["1c:3e:5a:7b:9d:0f", "１Ｃ：３Ｅ：５Ａ：７Ｂ：９Ｄ：０Ｆ", "1C-3E-5A-7B-9D-0F",
                                   "1c 3e 5a 7b 9d 0f", "1c3e5a7b9d0f"])
def test_stb_ids_are_normalised_then_checked(registrant, value):
    assert registrant.verify(payment_type="stb_id", payment_value=value).location == "/registration/terms"


def test_import_reads_phones_as_billing_exports_write_them(app, client, mail_server):
    csv = ("customer_number,name_kanji,name_kana,phones,bank_last4,card_last4,stb_ids,contact_emails,additional_auth\n"
           "2005120001,伊藤 健,イトウ ケン,０３－１２３４－５６７８;(090) 1234-5678,1357,,,,false\n")
    with app.app_context():
        import_contracts(csv)
        db.session.commit()
        assert db.session.scalar(db.select(Contract.phones)) == ["0312345678", "09012345678"]
    registrant = Registrant(app, client, mail_server)
    answers = {"name_kana": "イトウケン", "phone": "090ー1234ー5678", "payment_type": "bank_last4",
               "payment_value": "1357"}
    assert registrant.verify(**answers).location == "/registration/terms"


def test_normalise_phone_is_the_one_rule():
    assert normalise_phone("（０３）１２３４−５６７８") == "0312345678"
    assert normalise_phone("03-1234-567x") == "031234567x"  # left for the format check to refuse

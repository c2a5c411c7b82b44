"""No targeted lockout (SPEC §6) in 契約者情報 認証 (p.12–13): strangers'
guesses never keep the holder from registering, and the 4-digit items stay
infeasible to guess — per contract, however the contract is named."""

import pytest

from .helpers import Registrant

# 佐藤 次郎 (2005128465): asks for an additional item; a card, no bank account, no STB.
SATO = {"name_kana": "サトウ ジロウ", "phone": "0337771234"}
SATO_NUMBER = {**SATO, "payment_type": "customer_number", "payment_value": "2005128465"}
SATO_CARD = {"payment_type": "card_last4", "payment_value": "8888"}
# 山田 太郎 (2005128463): two phones, card 1234.
YAMADA = {"name_kana": "ヤマダタロウ", "payment_type": "card_last4"}
YAMADA_PHONES = ["0451234567", "09012345678"]
DIGITS_PAUSED = "口座番号 下4桁・クレジットカード番号 下4桁による認証は、一定回数以上失敗したため一時停止しています。"


@pytest.fixture
def someone(app, contracts):
    """A browser at an address of its own, each call."""
    count = iter(range(1, 255))
    return lambda: Registrant(app, app.test_client(), address=f"203.0.113.{next(count)}")


def test_card_guesses_do_not_lock_out_a_holder_who_must_give_two_items(app, someone, mail_server):
    for n in range(5):  # strangers guess the card at step 1, from five addresses
        assert someone().post("/registration/", {**SATO, "payment_type": "card_last4",
                                                  "payment_value": f"{1000 + n}"}).status_code == 200
    holder = Registrant(app, app.test_client(), mail_server, address="198.51.100.9")
    assert holder.post("/registration/", {**SATO, **SATO_CARD}).status_code == 429  # step 1's card budget is spent
    # With the お客さま番号 from the bill the holder is asked for a second item: the card, the only one, works.
    assert holder.post("/registration/", SATO_NUMBER).location == "/registration/additional"
    assert holder.post("/registration/additional", SATO_CARD).location == "/registration/terms"
    assert holder.agree().location == "/registration/account"
    assert holder.choose("jiro@example.jp").location == "/registration/sent"


def test_whoever_knows_the_first_item_still_has_only_five_guesses_at_the_second(app, clock, someone):
    knows_the_number = someone()
    assert knows_the_number.post("/registration/", SATO_NUMBER).location == "/registration/additional"
    for n in range(5):
        answer = knows_the_number.post("/registration/additional", {"payment_type": "card_last4",
                                                                    "payment_value": f"{1000 + n}"})
        assert answer.status_code == 200
    # Right digits now, from any browser and address that proves the number again: refused for 30 minutes.
    again = someone()
    assert again.post("/registration/", SATO_NUMBER).location == "/registration/additional"
    refused = again.post("/registration/additional", SATO_CARD)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"
    # It names what the customer has not entered yet, never the お客さま番号 just used.
    message = (DIGITS_PAUSED + "セットトップボックス (STB/Hit pot) のIDをお持ちの場合はそちらで認証いただくか、"
               "30分後に再度お試しください。")
    assert message in refused.get_data(as_text=True)
    clock.advance(30 * 60)
    assert again.post("/registration/additional", SATO_CARD).location == "/registration/terms"


def test_a_contract_named_by_two_phones_gets_five_guesses_not_ten(app, someone):
    for n in range(5):  # alternating between the contract's two phones
        answer = someone().verify(**YAMADA, phone=YAMADA_PHONES[n % 2], payment_value=f"{2000 + n}")
        assert answer.status_code == 200
    for phone in YAMADA_PHONES:
        refused = someone().verify(**YAMADA, phone=phone, payment_value="1234")  # the right card
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"
        assert DIGITS_PAUSED in refused.get_data(as_text=True)
    # The お客さま番号 still works by either phone.
    assert someone().verify(**{**YAMADA, "phone": YAMADA_PHONES[1], "payment_type": "customer_number",
                               "payment_value": "2005128463"}).location == "/registration/terms"


def test_a_name_and_phone_of_no_contract_are_answered_alike(app, someone):
    answers = {}
    for who in [{**YAMADA, "phone": YAMADA_PHONES[0]}, {**YAMADA, "phone": "0300000000"}]:
        for n in range(5):
            assert someone().verify(**who, payment_value=f"{2000 + n}").status_code == 200
        refused = someone().verify(**who, payment_value="1234")
        answers[who["phone"]] = (refused.status_code, refused.headers["Retry-After"],
                                 DIGITS_PAUSED in refused.get_data(as_text=True))
    assert answers[YAMADA_PHONES[0]] == answers["0300000000"] == (429, "1800", True)


NAT = "100.64.0.1"
SUZUKI_NUMBER = {"payment_type": "customer_number", "payment_value": "2005128464"}


def test_other_customers_mistakes_behind_a_shared_address_leave_a_right_customer_number_through(app, contracts):
    """A mobile carrier's NAT: 30 customers mistype their お客さま番号 within the half hour."""
    for n in range(30):
        neighbour = Registrant(app, app.test_client(), address=NAT)
        assert neighbour.verify(name_kana=f"タナカ{chr(0x30a2 + n)}", **SUZUKI_NUMBER).status_code == 200
    holder = Registrant(app, app.test_client(), address=NAT)
    assert holder.verify(**SUZUKI_NUMBER).location == "/registration/terms"
    # Who keeps guessing one name's number from one address is still slowed.
    for n in range(30):
        assert holder.verify(payment_type="customer_number", payment_value=f"{2005000000 + n}").status_code == 200
    refused = holder.verify(**SUZUKI_NUMBER)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"


def test_one_address_still_cannot_try_numbers_without_end(app, contracts):
    app.config["REGISTRATION_VERIFY_STRONG_FAILURES_PER_ADDRESS"] = 5
    for n in range(5):
        Registrant(app, app.test_client(), address=NAT).verify(name_kana=f"タナカ{chr(0x30a2 + n)}", **SUZUKI_NUMBER)
    refused = Registrant(app, app.test_client(), address=NAT).verify(**SUZUKI_NUMBER)  # right, but not checked
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "受付を一時停止しています。1秒後に再度お試しください。" in refused.get_data(as_text=True)


def test_four_digit_mistakes_behind_a_shared_address_point_to_the_customer_number(app, contracts):
    for n in range(30):
        Registrant(app, app.test_client(), address=NAT).verify(name_kana=f"タナカ{chr(0x30a2 + n)}")
    holder = Registrant(app, app.test_client(), address=NAT)
    refused = holder.verify()  # the right 口座番号 下4桁
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert (DIGITS_PAUSED + "お客さま番号またはセットトップボックス (STB/Hit pot) のIDで認証いただくか、1秒後に再度お試しください。"
            in refused.get_data(as_text=True))
    assert holder.verify(**SUZUKI_NUMBER).location == "/registration/terms"


def test_four_digit_guesses_are_capped_in_the_long_run_not_only_per_window(app, clock, someone, mail_server):
    """Five a window would be 240 guesses a day, the whole 4-digit space in six
    weeks. After 20 failures the contract's 4-digit items are refused for 30
    days after the last; the holder still registers with the お客さま番号."""
    for window in range(4):
        for n in range(5):
            assert someone().post("/registration/", {**SATO, "payment_type": "card_last4",
                                                      "payment_value": f"{1000 + 5 * window + n}"}).status_code == 200
        clock.advance(30 * 60)
    refused = someone().post("/registration/", {**SATO, "payment_type": "card_last4", "payment_value": "8888"})
    assert refused.status_code == 429 and "30日後" in refused.get_data(as_text=True)
    clock.advance(29 * 24 * 3600)
    assert someone().post("/registration/", {**SATO, **SATO_CARD}).status_code == 429
    holder = Registrant(app, app.test_client(), mail_server, address="198.51.100.9")
    assert holder.post("/registration/", SATO_NUMBER).location == "/registration/additional"
    clock.advance(24 * 3600)
    assert someone().post("/registration/", {**SATO, **SATO_CARD}).status_code == 303

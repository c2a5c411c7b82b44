"""認証コード入力 (3-B) and 合言葉入力 (3-A): a wrong entry says how many tries
remain; the last one says that the limit was reached and what to do next."""

import re

from ..helpers import csrf_token, submit
from .test_recovery import mailed_code, mailed_link, start_3b, unknown_ids, yamada  # noqa: F401

CODE_LIMIT = "認証コードの入力回数が上限に達したため、このお手続きは続けることができません。"
SECRET_LIMIT = "秘密の質問と答えの入力回数が上限に達したため、このお手続きは続けることができません。"
START_AGAIN = "お手数ですが、本人認証から手続きをはじめからやり直してください。"


def errors(html: str) -> list[str]:
    return re.findall(r'<p class="error" role="alert">([^<]+)</p>', html)


def next_steps(html: str) -> dict[str, str]:
    """The links of the limit page, by their words."""
    return {words: href for href, words in re.findall(r'<a class="button[^"]*" href="([^"]+)">([^<]+)</a>', html)}


def test_wrong_codes_count_down_then_the_limit_page_says_what_to_do(app, client, account, mail_server):
    start_3b(client)
    code = mailed_code(app, mail_server)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    token = csrf_token(client.get("/recovery/code").get_data(as_text=True))
    for left in [4, 3, 2, 1]:
        response = client.post("/recovery/code", data={"csrf_token": token, "code": wrong})
        assert response.status_code == 200
        assert errors(response.get_data(as_text=True)) == [f"認証コードが正しくありません。あと{left}回入力できます。"]

    limit = client.post("/recovery/code", data={"csrf_token": token, "code": wrong})  # the fifth
    html = limit.get_data(as_text=True)
    assert limit.status_code == 400
    assert CODE_LIMIT in html and START_AGAIN in html
    assert "認証コードが受信できない場合、パスワードのみの再設定はできません。" in html
    assert next_steps(html) == {"本人認証からやり直す": "/recovery/identify", "iTSCOM IDの新規登録": "/registration/"}
    # Coming back to the page, even with the right code, says the same, not a generic restart.
    again = client.post("/recovery/code", data={"csrf_token": token, "code": code})
    assert again.status_code == 400 and CODE_LIMIT in again.get_data(as_text=True)
    assert CODE_LIMIT in client.get("/recovery/code").get_data(as_text=True)
    # Starting again from 本人認証 works.
    assert start_3b(client).location == "/recovery/code"
    assert submit(client, "/recovery/code", {"code": mailed_code(app, mail_server)}).location == "/recovery/password"


def test_an_unknown_id_counts_down_alike(app, account, mail_server):
    browser = app.test_client()
    [nobody] = unknown_ids(app, "code")
    start_3b(browser, nobody)
    assert errors(submit(browser, "/recovery/code", {"code": "000000"}).get_data(as_text=True)) == [
        "認証コードが正しくありません。あと4回入力できます。"]
    for _ in range(3):
        submit(browser, "/recovery/code", {"code": "000000"})
    token = csrf_token(browser.get("/login").get_data(as_text=True))  # the code page is gone after this one
    limit = browser.post("/recovery/code", data={"csrf_token": token, "code": "000000"})
    assert CODE_LIMIT in limit.get_data(as_text=True)


def test_wrong_answers_count_down_then_the_limit_page_says_what_to_do(app, client, yamada, mail_server):  # noqa: F811
    start_3b(client, "yamada@example.jp")
    submit(client, "/recovery/secret", {"question": "ペットの名前", "answer": "ぽち"})
    path = mailed_link(app, mail_server, "yamada.mobile@example.com")
    phone = app.test_client()
    form = phone.get(path).get_data(as_text=True)
    for left in [4, 3, 2, 1]:
        response = phone.post(path, data={"csrf_token": csrf_token(form), "question": "ペットの名前", "answer": "たま"})
        assert response.status_code == 200
        assert errors(response.get_data(as_text=True)) == [f"秘密の質問または答えが正しくありません。あと{left}回入力できます。"]

    limit = phone.post(path, data={"csrf_token": csrf_token(form), "question": "ペットの名前", "answer": "たま"})
    html = limit.get_data(as_text=True)
    assert limit.status_code == 400
    assert SECRET_LIMIT in html and START_AGAIN in html
    assert "秘密の質問と答えがご不明な場合、パスワードのみの再設定はできません。" in html
    assert next_steps(html) == {"本人認証からやり直す": "/recovery/identify", "iTSCOM IDの新規登録": "/registration/"}
    again = phone.get(path)
    assert again.status_code == 400 and SECRET_LIMIT in again.get_data(as_text=True)


def test_an_expired_procedure_still_gets_the_plain_restart_page(app, client, account, mail_server, clock):
    start_3b(client)
    token = csrf_token(client.get("/recovery/code").get_data(as_text=True))
    clock.advance(30 * 60)
    html = client.post("/recovery/code", data={"csrf_token": token, "code": "000000"}).get_data(as_text=True)
    assert "このお手続きは有効期限が切れたか、続けることができません。" in html and CODE_LIMIT not in html

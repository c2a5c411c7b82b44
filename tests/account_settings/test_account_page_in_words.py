"""アカウント設定 in words (issue 12, point 4): labels, scopes, devices, confirmations."""

import re
import subprocess
import sys
from collections import Counter

import pytest

from ..helpers import RelyingParty, csrf_token, submit

HOME = "https://mypage.example.test/"
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.fixture
def config_overrides(mail_server):
    return {"MAIL_URL": mail_server.url, "HOME_URL": HOME}


def signed_in(app, user_agent: str):
    """A browser of its own, signed in with this User-Agent."""
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = user_agent
    page = browser.get("/login").get_data(as_text=True)
    assert browser.post("/login", data={"csrf_token": csrf_token(page), "login_id": "taro.itsu@example.jp",
                                        "password": "itscom-demo1"}).status_code == 303
    return browser


def page(browser) -> str:
    return browser.get("/account/").get_data(as_text=True)


def notices(html: str) -> list[str]:
    return re.findall(r'<p class="notice" role="status">(.*?)</p>', html)


def test_every_input_has_its_own_id_and_its_own_label(app, account):
    html = page(signed_in(app, CHROME_WINDOWS))
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    fields = re.findall(r'<(?:input|select|textarea)\b[^>]*>', html)
    visible = [f for f in fields if 'type="hidden"' not in f]
    assert len(visible) == 10  # 3 password change, 2 contact, 3 合言葉, 2 passkey
    for tag in visible:
        field_id = re.search(r'\sid="([^"]+)"', tag).group(1)
        assert len(re.findall(rf'<label[^>]*for="{field_id}"', html)) == 1, field_id
    assert len(re.findall(r'<label[^>]*>現在のパスワード</label>', html)) == 4


def test_connected_sites_show_their_scopes_in_japanese_as_the_consent_page_does(app, client, account):
    third = RelyingParty.register(app, client, first_party=False, name="iTSCOM サポート")
    third.login()
    consent = third.authorize(scope="openid profile email phone contract offline_access").get_data(as_text=True)
    words = ["基本情報", "メールアドレス", "電話番号", "ご契約情報", "ログアウト後も続く利用"]
    assert all(w in consent for w in words)
    digest = re.search(r'name="request" value="([^"]+)"', consent).group(1)
    client.post("/authorize/consent", data={"csrf_token": csrf_token(consent), "request": digest, "decision": "approve"})
    row = re.search(r"<td>iTSCOM サポート</td>.*?</tr>", page(client), re.S).group(0)
    assert re.findall(r"<li>(.*?)</li>", row) == words  # openid is the sign-in itself: not listed
    assert "offline_access" not in row and "contract" not in row


def test_devices_read_as_browser_and_system_and_this_one_is_marked(app, account):
    windows = signed_in(app, CHROME_WINDOWS)
    signed_in(app, SAFARI_IPHONE)
    signed_in(app, "")
    html = page(windows)
    assert "Chrome / Windows" in html and "Mobile Safari / iOS" in html and "不明な端末" in html
    assert "Mozilla/5.0" not in html
    current = re.findall(r'<tr class="current" aria-current="true">.*?</tr>', html, re.S)
    assert len(current) == 1 and "Chrome / Windows<strong class=\"this-device\">（この端末）</strong>" in current[0]
    assert "ログアウトする" in current[0] and html.count("ログアウトさせる") == 2


def test_user_agents_are_read_without_the_network(tmp_path):
    script = ("import socket\n"
              "def refuse(*a, **k): raise OSError('no network in this test')\n"
              "socket.socket.connect = refuse\nsocket.create_connection = refuse\nsocket.getaddrinfo = refuse\n"
              "from idp.account_settings.user_agents import device_of\n"
              f"print(device_of({CHROME_WINDOWS!r}).label)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Chrome / Windows"


def test_reading_devices_builds_browser_and_system_rules_only(tmp_path):
    # The device list costs a worker what reading browsers and systems
    # needs (11.5 MiB measured), not uap-core's device rules too (25.8 MiB).
    script = ("def rss():\n"
              "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')) / 1024\n"
              "from idp.account_settings.user_agents import device_of\n"
              "before = rss()\n"
              f"labels = [device_of(ua).label for ua in ({CHROME_WINDOWS!r}, {SAFARI_IPHONE!r})]\n"
              "print(round(rss() - before), *labels, sep='|')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    grown, *labels = done.stdout.strip().split("|")
    assert labels == ["Chrome / Windows", "Mobile Safari / iOS"]
    assert int(grown) < 18, f"{grown} MiB to read two User-Agent headers"


def test_each_action_says_what_happened(app, client, account, mail_server):
    windows = signed_in(app, CHROME_WINDOWS)
    iphone = signed_in(app, SAFARI_IPHONE)
    other = next(s for s in re.findall(r"/account/sessions/([^/]+)/end", page(windows))
                 if s not in re.findall(r'aria-current="true">.*?/account/sessions/([^/]+)/end', page(windows), re.S))
    submit(windows, f"/account/sessions/{other}/end", page="/account/", data={})
    assert notices(page(windows)) == ["Mobile Safari / iOS の端末をログアウトさせました。"]
    assert iphone.get("/account/").status_code == 303

    submit(windows, "/account/contact", page="/account/", data={"contact_email": "taro.new@example.jp", "current_password": "itscom-demo1"})
    assert notices(page(windows)) == ["taro.new@example.jp に確認用メールを送信しました。"
                                      "メールに記載されたURLを開くと、連絡先メールアドレスの変更が完了します。"]
    submit(windows, "/account/secret", page="/account/", data={"question": "ペットの名前", "answer": "ポチ", "current_password": "itscom-demo1"})
    assert notices(page(windows)) == ["合言葉を登録しました（秘密の質問: ペットの名前）。"]

    third = RelyingParty.register(app, windows, first_party=False, name="iTSCOM サポート")
    consent = third.authorize(scope="openid email").get_data(as_text=True)
    digest = re.search(r'name="request" value="([^"]+)"', consent).group(1)
    windows.post("/authorize/consent", data={"csrf_token": csrf_token(consent), "request": digest, "decision": "approve"})
    submit(windows, f"/account/sites/{third.client_id}/revoke", page="/account/", data={})
    assert notices(page(windows)) == ["「iTSCOM サポート」との連携を解除しました。"]

    submit(windows, "/account/password", page="/account/", data={"current_password": "itscom-demo1", "password": "Taro-2026x",
                                        "password_confirm": "Taro-2026x"})
    assert notices(page(windows)) == ["パスワードを変更しました。ほかの端末はログアウトしました。"]

    this = re.search(r'aria-current="true">.*?/account/sessions/([^/]+)/end', page(windows), re.S).group(1)
    ended = submit(windows, f"/account/sessions/{this}/end", page="/account/", data={})
    assert ended.location == "/login"
    assert notices(windows.get("/login").get_data(as_text=True)) == ["この端末からログアウトしました。"]


def test_the_account_page_leads_back_to_my_page(app, account):
    assert f'<a class="button" href="{HOME}">マイページへ戻る</a>' in page(signed_in(app, CHROME_WINDOWS))

"""Login, registration and recovery by keyboard alone (SPEC §7, WCAG 2.1.1).

The customer presses only Tab, Shift+Tab, Space and Enter and types into
whatever has the focus: no clicks, no filling of fields by selector.
Locators only say where the focus should arrive. At every stop the focused
element must show a clear focus indicator (an outline of at least 2 px,
WCAG 2.4.7) and be in view (WCAG 2.4.11).
"""

import re
from contextlib import suppress

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from idp.mail import deliver_due

from ..mailserver import body_of, url_in

FOCUS = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    what: `<${el.tagName.toLowerCase()}> ${(el.innerText || el.name || '').trim().slice(0, 30)}`,
    outline: style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth),
    inView: box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth,
  };
}"""


class Keyboard:
    def __init__(self, page) -> None:
        self.page = page

    def tab_to(self, target, backwards: bool = False, limit: int = 40) -> None:
        """Tab (or Shift+Tab) until ``target`` has the focus."""
        for _ in range(limit):
            self.page.keyboard.press("Shift+Tab" if backwards else "Tab")
            with suppress(PlaywrightTimeoutError):  # a loaded machine may restyle the focus a frame late
                self.page.wait_for_function(f"() => ({FOCUS})().outline >= 2", timeout=2000)
            focus = self.page.evaluate(FOCUS)
            assert focus["outline"] >= 2, f"no clear focus indicator on {focus['what']} ({self.page.url})"
            assert focus["inView"], f"{focus['what']} has the focus but is out of view"
            if target.evaluate("el => el === document.activeElement"):
                return
        raise AssertionError(f"{target} not reached with {'Shift+' if backwards else ''}Tab on {self.page.url}")

    def type_into(self, target, text: str) -> None:
        self.tab_to(target)
        self.page.keyboard.type(text)

    def press_on(self, target, key: str = "Enter") -> None:
        self.tab_to(target)
        self.page.keyboard.press(key)


def signed_in(page, live_server, name: str) -> None:
    """Wait until the login has led on and the page greets the customer."""
    page.wait_for_url(lambda url: not url.startswith(f"{live_server}/login"))
    page.get_by_text(name).first.wait_for()


def log_in(page, keys, live_server, login_id, password, name) -> None:
    keys.type_into(page.get_by_label("iTSCOM ID"), login_id)
    keys.type_into(page.get_by_label("パスワード", exact=True), password)
    keys.press_on(page.get_by_role("button", name="ログイン", exact=True))
    signed_in(page, live_server, name)


def test_login_by_keyboard(page, live_server, account):
    keys = Keyboard(page)
    page.goto(f"{live_server}/login")
    keys.type_into(page.get_by_label("iTSCOM ID"), "taro.itsu@example.jp")
    keys.type_into(page.get_by_label("パスワード", exact=True), "itscom-demo1")
    keys.press_on(page.get_by_label("パスワードを表示"), "Space")
    assert page.get_by_label("パスワード", exact=True).get_attribute("type") == "text"
    # Back to the ID with Shift+Tab, as a customer checking what they typed.
    keys.tab_to(page.get_by_label("iTSCOM ID"), backwards=True)
    assert page.get_by_label("iTSCOM ID").input_value() == "taro.itsu@example.jp"
    keys.press_on(page.get_by_role("button", name="ログイン", exact=True))
    signed_in(page, live_server, "逸 太郎")


def test_registration_by_keyboard(app, page, live_server, contracts, mail_server):
    keys = Keyboard(page)
    page.goto(f"{live_server}/login")
    keys.press_on(page.get_by_role("link", name="iTSCOM IDの新規登録"))
    page.get_by_role("heading", name="契約者情報 認証").wait_for()
    keys.type_into(page.get_by_label("ご契約者氏名（カナ）"), "スズキハナコ")
    keys.type_into(page.get_by_label("登録済みの電話番号"), "0449876543")
    keys.press_on(page.get_by_label("お客さま番号"), "Space")  # the first item of the group
    keys.type_into(page.get_by_label("お支払情報等", exact=True), "2005128464")
    keys.press_on(page.get_by_role("button", name="確認"))

    page.get_by_role("heading", name="利用規約").wait_for()
    keys.press_on(page.get_by_label("承諾する", exact=True), "Space")
    keys.press_on(page.get_by_role("button", name="確認"))

    page.get_by_role("heading", name="iTSCOM ID 新規登録").wait_for()
    keys.type_into(page.get_by_label("iTSCOM ID"), "hanako.k@example.jp")
    keys.type_into(page.get_by_label("パスワード", exact=True), "Hanako-2026")
    keys.type_into(page.get_by_label("パスワード再入力"), "Hanako-2026")
    keys.press_on(page.get_by_role("button", name="次へ"))
    page.get_by_text("確認メールを送信しました").wait_for()

    with app.app_context():
        deliver_due()
    page.goto(url_in(mail_server.inbox.last_to("hanako.k@example.jp")))  # opened from the mail
    keys.press_on(page.get_by_role("button", name="次へ"))
    page.get_by_text("連絡先メールアドレス(※)を選択してください。").wait_for()
    keys.press_on(page.get_by_role("radio").first, "Space")
    keys.press_on(page.get_by_role("button", name="次へ"))
    page.get_by_text("これでiTSCOM IDの登録は完了です。").wait_for()

    keys.press_on(page.get_by_role("link", name="ログイントップへ"))
    page.get_by_role("heading", name="ログイン", exact=True).wait_for()
    log_in(page, keys, live_server, "hanako.k@example.jp", "Hanako-2026", "鈴木 花子")


def test_recovery_by_keyboard(app, page, live_server, account, mail_server):
    keys = Keyboard(page)
    page.goto(f"{live_server}/login")
    keys.press_on(page.get_by_role("link", name="ID、またはパスワードをお忘れですか？"))
    page.get_by_role("heading", name="iTSCOM ID・パスワードがご不明なお客様").wait_for()
    keys.press_on(page.get_by_label("パスワードがご不明な場合"), "Space")
    keys.press_on(page.get_by_role("button", name="次へ"))

    page.get_by_role("heading", name="本人認証").wait_for()
    keys.type_into(page.get_by_label("iTSCOM ID"), "taro.itsu@example.jp")
    keys.press_on(page.get_by_role("button", name="次へ"))

    page.get_by_role("heading", name="認証コード入力").wait_for()
    with app.app_context():
        deliver_due()
    code = re.search(r"認証コード：(\d{6})", body_of(mail_server.inbox.last_to("taro.itsu@example.jp"))).group(1)
    keys.type_into(page.get_by_label("認証コード"), code)
    keys.press_on(page.get_by_role("button", name="次へ"))

    page.get_by_role("heading", name="パスワード再発行").wait_for()
    keys.type_into(page.get_by_label("パスワード", exact=True), "Taro-new-2026")
    keys.type_into(page.get_by_label("パスワード再入力"), "Taro-new-2026")
    keys.press_on(page.get_by_role("button", name="次へ"))
    page.get_by_text("これでパスワードの再発行は完了です。").wait_for()

    keys.press_on(page.get_by_role("link", name="ログイントップへ"))
    page.get_by_role("heading", name="ログイン", exact=True).wait_for()
    log_in(page, keys, live_server, "taro.itsu@example.jp", "Taro-new-2026", "逸 太郎")


def test_login_with_the_second_factor_by_keyboard(app, page, live_server, account):
    import pyotp

    from ..helpers import enrol_totp

    secret, _ = enrol_totp(app, account)
    keys = Keyboard(page)
    page.goto(f"{live_server}/login")
    keys.type_into(page.get_by_label("iTSCOM ID"), "taro.itsu@example.jp")
    keys.type_into(page.get_by_label("パスワード", exact=True), "itscom-demo1")
    keys.press_on(page.get_by_role("button", name="ログイン", exact=True))
    page.wait_for_url(f"{live_server}/login/factor*")
    keys.type_into(page.get_by_label("確認コード"), pyotp.TOTP(secret).now())
    keys.press_on(page.get_by_role("button", name="次へ"))
    signed_in(page, live_server, "逸 太郎")

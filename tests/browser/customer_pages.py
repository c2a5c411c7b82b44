"""What every customer page must do in a browser (SPEC §7), checked page by page.

A test walks a procedure the way a customer does and calls ``pages.check(page)``
on each page it reaches. The page is then measured, without reloading it, at
every size of its device:

- a phone (390×844, mobile emulation with touch), then resized to 360×640:
  no sideways scrolling, every tap target at least 44×44 px, and axe-core;
- a desktop (1280×800), then resized to 640×400 and 320×200 — what a
  1280×800 window shows at 200 % and at 400 % zoom (zoom divides the CSS
  width; WCAG 1.4.10's 320 px): no sideways scrolling, and axe-core at
  1280×800.

"No sideways scrolling" (reflow) means: the document is no wider than the
viewport, no element reaches past its right edge, and no element clips or
scrolls its content sideways (a menu that scrolls sideways hides its items).

axe-core is the copy bundled inside axe-playwright-python (no network);
serious and critical violations fail. Problems are collected over the whole
walk and reported together; ``pages.assert_clean(expected)`` also fails when
a template in ``expected`` was never checked, so a new page cannot slip
through without a walk that reaches it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from flask import template_rendered

from idp.extensions import db
from idp.models import BackchannelLogout

ROOT = Path(__file__).resolve().parents[2]
TAP_TARGET = 44  # CSS px, both ways (WCAG 2.5.5; Apple's and Google's guides)
AXE = Axe()
FAILING_IMPACTS = {"serious", "critical"}
# IDP_TEST_SCREENSHOTS=DIR keeps a full-page screenshot of every page at every size, to look at.
SCREENSHOTS = Path(os.environ["IDP_TEST_SCREENSHOTS"]) if os.environ.get("IDP_TEST_SCREENSHOTS") else None


@dataclass(frozen=True)
class Device:
    name: str
    context: dict  # Browser.new_context() options
    sizes: tuple[tuple[int, int], ...]  # the first is the device's own; axe runs there
    taps: bool  # whether tap target sizes are checked


PHONE = Device(
    "phone",
    {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True},
    sizes=((390, 844), (360, 640)),
    taps=True,
)
DESKTOP = Device(
    "desktop",
    {"viewport": {"width": 1280, "height": 800}},
    sizes=((1280, 800), (640, 400), (320, 200)),
    taps=False,
)
DEVICES = [PHONE, DESKTOP]

# One evaluate per size: everything that sticks out, clips, or is too small to tap.
MEASURE = """({width, taps, minimum}) => {
  const problems = [];
  const name = el => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().replace(/\\s+/g, ' ');
    const id = el.id ? '#' + el.id : '';
    const cls = el.classList.length ? '.' + [...el.classList].join('.') : '';
    return `<${el.tagName.toLowerCase()}${id}${cls}> "${text.slice(0, 30)}"`;
  };
  const shown = el => {
    const style = getComputedStyle(el);
    return style.display !== 'none' && style.visibility !== 'hidden' && el.getClientRects().length > 0;
  };
  const root = document.documentElement;
  if (root.scrollWidth > width) problems.push(`the page is ${root.scrollWidth}px wide`);
  let past = 0;
  for (const el of document.body.querySelectorAll('*')) {
    if (!shown(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 && box.height <= 1) continue;  // visually hidden, for screen readers only
    if (box.right > width + 0.5 && past++ < 3) problems.push(`${name(el)} reaches ${Math.round(box.right)}px`);
    const overflow = getComputedStyle(el).overflowX;
    const control = ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName);
    if (!control && overflow !== 'visible' && el.scrollWidth > el.clientWidth + 1)
      problems.push(`${name(el)} ${overflow === 'hidden' || overflow === 'clip' ? 'cuts off' : 'scrolls'} ` +
                    `${el.scrollWidth - el.clientWidth}px sideways`);
  }
  if (taps) {
    const targets = 'a[href], button, input:not([type=hidden]), select, textarea, summary';
    for (const el of document.querySelectorAll(targets)) {
      if (!shown(el)) continue;
      // A radio button or checkbox is tapped through its label.
      const boxes = ['radio', 'checkbox'].includes(el.type)
        ? [...el.labels].filter(shown).map(label => label.getBoundingClientRect())
        : [...el.getClientRects()];  // each line of a wrapped link on its own
      const small = boxes.length === 0 || boxes.some(b => b.width < minimum - 0.01 || b.height < minimum - 0.01);
      const sizes = boxes.map(b => `${Math.round(b.width)}×${Math.round(b.height)}`).join(', ');
      if (small) problems.push(`tap target ${name(el)} is ${sizes || 'without a label'}`);
    }
  }
  return problems;
}"""


# Template folders of the OP that hold no customer page.
NOT_CUSTOMER_PAGES = {"admin", "mail"}


def customer_templates(*folders: str) -> set[str]:
    """The pages a walk must check: every template of the OP in ``folders``
    ("registration", …), or of a relying party ("sites/mypage"), without
    partials and base layouts."""
    names = set()
    for folder in folders:
        if folder.startswith("sites/"):
            app = folder.replace("/", ".")
            names |= {f"{app}:{p.name}" for p in (ROOT / folder / "templates").glob("*.html") if p.name != "base.html"}
        else:
            names |= {f"idp:{folder}/{p.name}" for p in (ROOT / "templates" / folder).glob("[!_]*.html")}
    return names


@dataclass
class PageChecks:
    device: Device
    rendered: list[str] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def listen(self):
        """Note which template each page was rendered from (in any app of this process)."""

        def note(sender, template, **extra):
            if template.name.endswith(".html"):
                self.rendered.append(f"{sender.name}:{template.name}")

        template_rendered.connect(note)
        return note

    def check(self, page) -> None:
        """Measure the page the browser shows now, at each size of the device."""
        page.wait_for_load_state("load")
        where = self.rendered[-1] if self.rendered else page.url
        self.checked.add(where)
        own = self.device.sizes[0]
        for width, height in self.device.sizes:
            if (width, height) != own:
                page.set_viewport_size({"width": width, "height": height})
            found = page.evaluate(MEASURE, {"width": width, "taps": self.device.taps, "minimum": TAP_TARGET})
            if SCREENSHOTS:
                name = f"{self.device.name}-{len(self.rendered)}-{where.replace('/', '-')}-{width}x{height}.png"
                page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
            self.problems += [f"{where} at {width}×{height}: {p}" for p in found]
        page.set_viewport_size({"width": own[0], "height": own[1]})
        for violation in AXE.run(page).response["violations"]:
            if violation["impact"] in FAILING_IMPACTS:
                targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:4])
                self.problems.append(f"{where} at {own[0]}×{own[1]}: axe {violation['impact']} "
                                     f"{violation['id']} ({violation['help']}): {targets}")

    def assert_clean(self, expected: set[str]) -> None:
        missing = [f"{name}: never checked" for name in sorted(expected - self.checked)]
        problems = missing + self.problems
        assert not problems, f"{len(problems)} problems on {self.device.name}:\n" + "\n".join(problems)


def sign_in(page, login_id: str = "taro.itsu@example.jp", password: str = "itscom-demo1") -> None:
    """On the OP's login page, as the demo customer."""
    page.get_by_label("iTSCOM ID").fill(login_id)
    page.get_by_label("パスワード", exact=True).fill(password)
    page.get_by_role("button", name="ログイン", exact=True).click()


def wait_for_backchannel(app, expected: int, timeout: float = 10.0) -> None:
    """Notices leave on the OP's sender threads; wait (bounded) until they arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            done = db.session.scalar(db.select(db.func.count()).select_from(BackchannelLogout)
                                     .where(BackchannelLogout.delivered_at.is_not(None)))
        if done >= expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"{expected} back-channel logout notices not delivered within {timeout}s")


def second_factor_pages(page, pages, live_server: str) -> None:
    """2段階認証 as a signed-in customer meets it: set up on the account page
    (QR code, key, the first code), the recovery codes shown once, a login
    asking for the factor (a wrong code, then a recovery code), that page
    once the sign-in is over, and turning it off. Each page is checked."""
    import pyotp

    page.goto(f"{live_server}/account/")
    page.get_by_role("link", name="2段階認証を設定する").click()
    page.get_by_role("heading", name="2段階認証の設定").wait_for()
    pages.check(page)
    key = "".join(page.locator("code.key").inner_text().split())
    page.get_by_label("確認コード").fill(pyotp.TOTP(key).now())
    page.get_by_label("現在のパスワード").fill("itscom-demo1")
    page.get_by_role("button", name="設定する").click()
    page.get_by_role("heading", name="リカバリーコード").wait_for()
    pages.check(page)
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="アカウント設定へ戻る").click()
    page.get_by_text("2段階認証は設定済みです。").wait_for()
    pages.check(page)

    page.goto(f"{live_server}/login")
    sign_in(page)
    page.get_by_role("heading", name="2段階認証").wait_for()
    pages.check(page)
    page.get_by_label("確認コード").fill("12345x")
    page.get_by_role("button", name="次へ").click()
    page.get_by_role("alert").first.wait_for()
    pages.check(page)  # with the error
    page.get_by_label("確認コード").fill(codes[0])
    page.get_by_role("button", name="次へ").click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{live_server}/login/factor")
    page.get_by_text("ログインからやり直してください").wait_for()
    pages.check(page)

    page.goto(f"{live_server}/account/")
    page.locator("#off-code").fill(codes[1])
    page.get_by_role("button", name="2段階認証を解除する").click()
    page.get_by_text("2段階認証は設定されていません。").wait_for()

"""No targeted lockout (SPEC §6) in 本人認証 (p.18): anybody who knows an
iTSCOM ID (an e-mail address) may ask for recovery mails, so the ID's budget
is anybody's to spend; the holder's own browser, signed in before, has a
budget of its own, and a shared address is slowed, not locked."""

import pytest

from idp.extensions import db
from idp.mail import deliver_due
from idp.models import AuditEvent

from ..helpers import csrf_token, submit

OWNER, PASSWORD = "taro.itsu@example.jp", "itscom-demo1"
HOME = "198.51.100.7"
FALLBACK = "お待ちいただけない場合は、改めてiTSCOM ID新規登録からID・パスワードの両方を設定してください。"


def browser(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def identify(client, login_id=OWNER):
    return submit(client, "/recovery/identify", {"login_id": login_id})


def page_without_token(response) -> str:
    return response.get_data(as_text=True).replace(csrf_token(response.get_data(as_text=True)), "")


def mails_to(app, mail_server, to=OWNER) -> int:
    with app.app_context():
        deliver_due()
    return sum(1 for mail in mail_server.inbox.messages if mail["To"] == to)


@pytest.fixture
def holder(app, account):
    """The holder's everyday browser: it signed in once, some time ago."""
    client = browser(app, HOME)
    assert submit(client, "/login", {"login_id": OWNER, "password": PASSWORD}).status_code == 303
    return client


def test_strangers_cannot_lock_the_holder_out_of_password_recovery(app, clock, holder, mail_server):
    for _ in range(4):  # the attack goes on: three requests every half hour, from ever new addresses
        for n in range(3):
            assert identify(browser(app, f"203.0.113.{n + 1}")).status_code == 303
        refused = identify(browser(app, "203.0.113.99"))
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"
        # The holder forgets the password and asks from the browser they always use.
        assert identify(holder).location == "/recovery/code"
        clock.advance(30 * 60)
    # Every answer took its procedure: the strangers' mails and the holder's own.
    assert mails_to(app, mail_server) == 4 * (3 + 1)


def test_anyone_else_is_told_how_long_to_wait_and_what_to_do_meanwhile(app, account, mail_server):
    for n in range(3):
        identify(browser(app, f"203.0.113.{n + 1}"))
    refused = identify(browser(app, "192.0.2.44"))  # the holder on a new phone: an unknown browser
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"
    assert "お手続きの回数が上限に達しました。30分後に再度お試しください。" in html
    assert FALLBACK in html and "※ 再度、新規登録をしていただくことにより、現在のご登録情報が更新されます。" in html
    assert '<a class="button" href="/registration/">iTSCOM IDの新規登録</a>' in html
    # An ID nobody holds is refused in the same words.
    for n in range(3):
        identify(browser(app, f"203.0.113.{n + 1}"), "nobody@example.jp")
    ghost = identify(browser(app, "192.0.2.44"), "nobody@example.jp")
    assert ghost.status_code == 429 and ghost.headers["Retry-After"] == "1800"
    assert page_without_token(ghost).replace("nobody@example.jp", OWNER) == page_without_token(refused)


def test_the_holders_browser_still_cannot_flood_the_mailbox(app, clock, holder, mail_server):
    for _ in range(3):
        assert identify(holder).status_code == 303
    refused = identify(holder)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1800"
    # Those were the browser's own requests: the ID's budget is untouched.
    assert identify(browser(app, "192.0.2.44")).status_code == 303
    assert mails_to(app, mail_server) == 4
    clock.advance(30 * 60)
    assert identify(holder).status_code == 303


def test_a_cookie_for_another_id_or_a_malformed_one_is_no_way_around_the_budget(app, holder, mail_server):
    for n in range(3):
        identify(browser(app, f"203.0.113.{n + 1}"), "someone@example.jp")
    # The holder's cookie is bound to the holder's ID, not to someone else's.
    assert identify(holder, "someone@example.jp").status_code == 429
    # Cookies that are not the holder's count as unknown browsers, against the ID's budget.
    value = holder.get_cookie("idp_device").value
    for junk in ["nonce.\u00b2.mac", "x.1.\u00e9\u00e9", value[:-2] + ("AA" if not value.endswith("AA") else "BB")]:
        forged = browser(app, "203.0.113.50")
        forged.set_cookie("idp_device", junk)
        assert identify(forged).status_code == 303
    assert identify(forged).status_code == 429
    assert identify(holder).status_code == 303


def test_a_shared_address_is_slowed_for_seconds_not_locked_for_half_an_hour(app, clock, account, mail_server):
    """A mobile carrier's NAT: many customers, one address."""
    nat = "100.64.0.1"
    for n in range(10):
        assert identify(browser(app, nat), f"customer{n}@example.jp").status_code == 303
    refused = identify(browser(app, nat))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert "1秒後に再度お試しください。" in refused.get_data(as_text=True)
    waits = []
    for n in range(12):  # the busy NAT goes on; each customer waits what they are told
        answer = identify(browser(app, nat), f"later{n}@example.jp")
        if answer.status_code == 429:
            waits.append(int(answer.headers["Retry-After"]))
            clock.advance(waits[-1])
            answer = identify(browser(app, nat), f"later{n}@example.jp")
        assert answer.status_code == 303
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60, 60]
    # The holder behind the NAT, from their own browser, is not made to wait at all.
    holder = browser(app, nat)
    assert submit(holder, "/login", {"login_id": OWNER, "password": PASSWORD}).status_code == 303
    assert identify(holder).status_code == 303


def test_a_refused_request_leaves_its_audit_row(app, account, mail_server):
    for n in range(3):
        identify(browser(app, f"203.0.113.{n + 1}"))
    assert identify(browser(app, "192.0.2.44")).status_code == 429
    with app.app_context():
        refused = db.session.scalars(db.select(AuditEvent).filter_by(event="recovery.throttled")).all()
    assert [(row.outcome, row.details["retry_after"]) for row in refused] == [("failure", 1800)]

"""管理コンソール: administrators, TOTP, and each page's action, audited."""

import re

import pyotp
import pytest

from idp import clients
from idp.extensions import db
from idp.models import Account, Admin, AuditEvent, Client, Contract, SigningKey

from ..conftest import FIXTURE_CONTRACTS
from ..faults import audit_rows_refused
from ..helpers import RelyingParty, csrf_token


@pytest.fixture
def admin(app, runner):
    result = runner.invoke(args=["admins", "create", "--username", "ops", "--password", "Correct-horse-77"])
    assert result.exit_code == 0, result.output
    return re.search(r"TOTP secret: (\w+)", result.output).group(1)


def code_at(secret, clock, offset=0):
    return pyotp.TOTP(secret).at(clock.now() + offset)


def sign_in(client, secret, clock, **overrides):
    page = client.get("/admin/login").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "username": "ops", "password": "Correct-horse-77",
            "code": code_at(secret, clock), **overrides}
    return client.post("/admin/login", data=data)


def post(client, path, data=None, files=None, **kwargs):
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})}, content_type="multipart/form-data"
                       if files else None, **kwargs)


def events(app):
    with app.app_context():
        return [e.event for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


PARTNER = {"name": "Partner", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
           "scope": "openid", "auth_method": "client_secret_basic"}
# One contract the fixtures do not hold, as a billing CSV.
NEW_CONTRACT_CSV = (FIXTURE_CONTRACTS.read_text(encoding="utf-8").splitlines()[0]
                    + "\n2005120001,一 郎,イチ ロウ,0311112222,,,,,false\n")


def register_partner(client, **changes) -> str:
    """Register a client in the console; its client ID."""
    html = post(client, "/admin/clients/new", {**PARTNER, **changes}).get_data(as_text=True)
    return re.search(r"クライアントID: <code>([^<]+)</code>", html).group(1)


@pytest.mark.parametrize("password, problem", [
    ("short", "パスワードが12文字未満です。"),
    ("password123", "よく使われるパスワードです。"),
    ("ops-is-my-admin-77", "パスワードにユーザー名が含まれています。"),
])
def test_admins_need_a_strong_password_and_are_told_the_rules_in_japanese(runner, password, problem):
    weak = runner.invoke(args=["admins", "create", "--username", "ops", "--password", password])
    assert weak.exit_code != 0
    assert "管理者のパスワードは12文字以上で、よく使われるパスワードやユーザー名を含むものは使用できません。" in weak.output
    assert problem in weak.output


def test_password_and_totp_are_both_required(app, client, admin, clock):
    assert client.get("/admin/").location == "/admin/login"
    assert sign_in(client, admin, clock, password="wrong-password-1").status_code == 401
    wrong_code = f"{(int(code_at(admin, clock)) + 1) % 10**6:06d}"
    assert sign_in(client, admin, clock, code=wrong_code).status_code == 401
    assert sign_in(client, admin, clock, password="").status_code == 401
    assert sign_in(client, admin, clock).status_code == 303
    assert client.get("/admin/").status_code == 200
    assert "admin.login" in events(app) and "admin.login_failure" in events(app)


def test_a_totp_code_works_once(app, client, admin, clock):
    assert sign_in(client, admin, clock).status_code == 303
    other = app.test_client()
    assert sign_in(other, admin, clock).status_code == 401


def test_a_customer_session_is_no_admin_session(app, client, rp):
    rp.login()
    assert client.get("/admin/clients").location == "/admin/login"


def test_idle_admin_session_ends(app, client, admin, clock):
    sign_in(client, admin, clock)
    clock.advance(15 * 60 + 1)
    assert client.get("/admin/").location == "/admin/login"


def test_admin_forms_need_csrf(app, client, admin, clock):
    sign_in(client, admin, clock)
    assert client.post("/admin/clients/new", data={"name": "X"}).status_code == 400


def test_client_created_in_the_console_logs_a_customer_in(app, client, admin, clock, account):
    sign_in(client, admin, clock)
    response = post(client, "/admin/clients/new", {
        "name": "Partner", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid email", "auth_method": "client_secret_basic", "first_party": "1",
    })
    html = response.get_data(as_text=True)
    client_id = re.search(r"クライアントID: <code>([^<]+)</code>", html).group(1)
    secret = re.search(r"クライアントシークレット: <code>([^<]+)</code>", html).group(1)
    rp = RelyingParty(app, app.test_client(), client_id, secret, "https://partner.example/cb")
    assert rp.tokens(scope="openid email")["access_token"]
    bad = post(client, f"/admin/clients/{client_id}", {"name": "Partner", "redirect_uris": "http://evil.example/cb",
                                                       "grant_types": "authorization_code", "scope": "openid"})
    assert bad.status_code == 400
    assert ("リダイレクトURI「http://evil.example/cb」は「https://」で始まるURLにしてください"
            "（暗号化しないURLはループバックアドレスにだけ使えます）。" in bad.get_data(as_text=True))
    assert post(client, f"/admin/clients/{client_id}/disable").status_code == 303
    assert rp.token_request({"grant_type": "client_credentials"}).status_code == 401
    assert {"admin.client_created", "admin.client_disabled"} <= set(events(app))


def test_the_console_can_require_dpop_of_a_client(app, client, admin, clock, account):
    """RFC 9449 5.2 (dpop_bound_access_tokens): set, shown, and kept by an edit."""
    sign_in(client, admin, clock)
    form = {"name": "Partner", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
            "scope": "openid", "auth_method": "client_secret_basic", "first_party": "1"}
    html = post(client, "/admin/clients/new", {**form, "dpop_bound_access_tokens": "1"}).get_data(as_text=True)
    client_id = re.search(r"クライアントID: <code>([^<]+)</code>", html).group(1)
    secret = re.search(r"クライアントシークレット: <code>([^<]+)</code>", html).group(1)
    rp = RelyingParty(app, app.test_client(), client_id, secret, "https://partner.example/cb")
    refused = rp.exchange(rp.sign_in_and_get_code(scope="openid")["code"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"
    page = client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert re.search(r'<input checked id="dpop_bound_access_tokens"', page)
    assert post(client, f"/admin/clients/{client_id}", form).status_code == 303  # unticked
    assert rp.exchange(rp.sign_in_and_get_code(scope="openid")["code"]).status_code == 200


def field_of(html: str, field_id: str) -> str:
    """The markup of one form field: its label, input and errors."""
    return re.search(r'<(div|fieldset) class="field[^"]*">(?:(?!</\1>).)*?id="' + field_id + r'".*?</\1>',
                     html, re.S).group(0)


def test_the_console_names_what_is_wrong_next_to_its_field(app, client, admin, clock):
    sign_in(client, admin, clock)
    refused = post(client, "/admin/clients/new", {
        **PARTNER, "redirect_uris": "https://partner.example/cb\nhttp://partner.example/cb"})
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    redirect_uris = field_of(html, "redirect_uris")
    assert 'class="field has-error"' in redirect_uris
    assert "リダイレクトURI「http://partner.example/cb」は「https://」で始まるURLにしてください" in redirect_uris
    assert "https://partner.example/cb\nhttp://partner.example/cb</textarea>" in redirect_uris  # kept as typed
    assert "has-error" not in field_of(html, "name")
    nameless = post(client, "/admin/clients/new", {"name": " ", "redirect_uris": "https://partner.example/cb"})
    assert "名前を入力してください。" in field_of(nameless.get_data(as_text=True), "name")

    bad = client.get("/admin/audit?since_date=2031-03-01&until_date=2031-13-01")
    assert bad.status_code == 400
    assert "日付は「2026-01-31」、時刻は「09:30」" in field_of(bad.get_data(as_text=True), "until_date")
    assert "has-error" not in field_of(bad.get_data(as_text=True), "since_date")


def test_the_console_refuses_a_back_channel_uri_inside_our_network(app, client, admin, clock):
    sign_in(client, admin, clock)
    response = post(client, "/admin/clients/new", {
        "name": "Partner", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid", "auth_method": "client_secret_basic",
        "backchannel_logout_uri": "https://169.254.169.254/latest/meta-data/",
    })
    assert response.status_code == 400
    assert ("バックチャネルログアウトURI「https://169.254.169.254/latest/meta-data/」はインターネット上の公開アドレスにしてください"
            in response.get_data(as_text=True))
    assert "admin.client_created" not in events(app)


def test_contract_import_previews_then_imports(app, client, admin, clock):
    sign_in(client, admin, clock)
    from io import BytesIO

    token = csrf_token(client.get("/admin/contracts").get_data(as_text=True))
    csv = FIXTURE_CONTRACTS.read_bytes()
    preview = client.post("/admin/contracts", data={"csrf_token": token, "csv": (BytesIO(csv), "c.csv")},
                          content_type="multipart/form-data").get_data(as_text=True)
    assert "新規 8件 / 更新 0件" in preview
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Contract)) == 0
    text = re.search(r"<textarea name=\"csv_text\" hidden>(.*?)</textarea>", preview, re.S).group(1)
    import html as html_lib

    done = client.post("/admin/contracts", data={"csrf_token": token, "csv_text": html_lib.unescape(text),
                                                 "confirm": "1"})
    assert done.status_code == 303
    found = client.get("/admin/contracts?customer_number=2005128462").get_data(as_text=True)
    assert "逸 太郎" in found
    bad = client.post("/admin/contracts", data={"csrf_token": token, "csv": (BytesIO(csv + b"1,x,y,z,,,,,maybe\n"),
                                                "c.csv")}, content_type="multipart/form-data")
    assert "10行目: お客さま番号は10桁の数字にしてください。" in bad.get_data(as_text=True)


def test_account_lock_and_revoke(app, client, admin, clock, rp):
    tokens = rp.tokens()
    sign_in(client, admin, clock)
    page = client.get("/admin/accounts?q=2005128462").get_data(as_text=True)
    assert "taro.itsu@example.jp" in page
    with app.app_context():
        account_id = db.session.scalar(db.select(Account.id))
    post(client, f"/admin/accounts/{account_id}/lock")
    assert rp.login().status_code == 200  # locked: refused
    assert client.post("/introspect", data={"token": tokens["access_token"]},
                       headers=rp.auth()).get_json()["active"] is False
    post(client, f"/admin/accounts/{account_id}/lock")  # unlock
    assert rp.login().status_code == 303
    assert {"admin.account_locked", "admin.account_unlocked"} <= set(events(app))


def test_keys_page_rotates(app, client, admin, clock):
    sign_in(client, admin, clock)
    assert post(client, "/admin/keys", {"alg": "ES256"}).status_code == 303
    page = client.get("/admin/keys").get_data(as_text=True)
    assert "<td>公開済み（署名開始前）</td>" in page and "<td>署名に使用中</td>" in page
    assert "key.rotated" in events(app)
    with app.app_context():
        from idp.models import SigningKey

        db.session.execute(db.delete(SigningKey))
        db.session.commit()


def test_each_action_writes_one_audit_row_naming_its_administrator(app, client, admin, clock, account):
    sign_in(client, admin, clock)
    with app.app_context():
        admin_id = db.session.scalar(db.select(Admin.id))
        seen = db.session.scalar(db.select(db.func.max(AuditEvent.id)))

    def rows_since():
        nonlocal seen
        with app.app_context():
            rows = db.session.scalars(db.select(AuditEvent).where(AuditEvent.id > seen).order_by(AuditEvent.id)).all()
            seen = rows[-1].id if rows else seen
            return [(row.event, row.account_id, row.client_id, row.details.get("admin_id")) for row in rows]

    client_id = register_partner(client, auth_method="none")
    assert rows_since() == [("admin.client_created", None, client_id, admin_id)]
    post(client, f"/admin/clients/{client_id}", PARTNER)  # a public client becomes confidential: it gets a secret
    assert rows_since() == [("admin.client_updated", None, client_id, admin_id)]
    for action, event in [("rotate-secret", "admin.client_secret_rotated"), ("disable", "admin.client_disabled"),
                          ("disable", "admin.client_enabled"), ("delete", "admin.client_deleted")]:
        post(client, f"/admin/clients/{client_id}/{action}")
        assert rows_since() == [(event, None, client_id, admin_id)]
    for action, event in [("lock", "admin.account_locked"), ("lock", "admin.account_unlocked"),
                          ("revoke", "admin.account_revoked")]:
        post(client, f"/admin/accounts/{account}/{action}")
        assert rows_since() == [(event, account, None, admin_id)]
    post(client, "/admin/contracts", {"csv_text": NEW_CONTRACT_CSV, "confirm": "1"})
    assert rows_since() == [("admin.contracts_imported", None, None, admin_id)]
    post(client, "/admin/keys", {"alg": "ES256"})
    assert rows_since() == [("key.rotated", None, None, admin_id)]
    post(client, "/admin/logout")
    assert rows_since() == [("admin.logout", None, None, admin_id)]
    with app.app_context():
        db.session.execute(db.delete(SigningKey))  # the rotated key must not outlive this test
        db.session.commit()


def test_each_action_commits_with_its_audit_row(app, client, admin, clock, account):
    """An action and its audit row commit together: when the database
    refuses the audit row, the action left nothing behind either."""
    sign_in(client, admin, clock)
    client_id = register_partner(client)

    def state():
        with app.app_context():
            rows = [db.session.scalar(db.select(db.func.count()).select_from(model))
                    for model in (SigningKey, Contract, Client, AuditEvent)]
            partner = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
            return rows, partner.disabled, partner.client_secret_digest, db.session.get(Account, account).status

    before = state()
    with audit_rows_refused(app):
        for path, data in [
            ("/admin/keys", {"alg": "ES256"}),
            ("/admin/contracts", {"csv_text": NEW_CONTRACT_CSV, "confirm": "1"}),
            ("/admin/clients/new", {**PARTNER, "name": "Other"}),
            (f"/admin/clients/{client_id}", {**PARTNER, "name": "Renamed"}),
            (f"/admin/clients/{client_id}/rotate-secret", None),
            (f"/admin/clients/{client_id}/disable", None),
            (f"/admin/clients/{client_id}/delete", None),
            (f"/admin/accounts/{account}/lock", None),
            (f"/admin/accounts/{account}/revoke", None),
        ]:
            assert post(client, path, data).status_code == 500, path
    assert state() == before


def shown_events(page: str) -> list[str]:
    """The audit rows of a page, by event name (each row's label carries it as its title)."""
    return re.findall(r'<td><span title="([^"]+)">', page)


def test_audit_log_filters_and_pages(app, client, admin, clock, rp):
    rp.tokens()
    sign_in(client, admin, clock)
    page = client.get("/admin/audit?event=login.success").get_data(as_text=True)
    assert shown_events(page) == ["login.success"]
    assert '<span title="login.success">ログイン成功</span>' in page and "<td>成功</td>" in page
    assert "admin.login" in shown_events(client.get("/admin/audit").get_data(as_text=True))


def test_audit_log_is_filtered_by_date_and_time_in_japan_time(app, client, admin, clock):
    from datetime import datetime

    from idp import audit
    from idp.security.clock import JAPAN

    clock.current = int(datetime(2031, 3, 1, 23, 55, tzinfo=JAPAN).timestamp())  # 14:55 UTC
    sign_in(client, admin, clock)  # admin.login, 23:55 on 1 March in Japan
    clock.advance(10 * 60)
    with app.app_context():
        audit.record("login.failure", "failure")  # 00:05 on 2 March
        db.session.commit()

    form = client.get("/admin/audit").get_data(as_text=True)
    for name in ("since_date", "until_date"):
        assert f'name="{name}" type="date"' in form
    for name in ("since_time", "until_time"):
        assert f'name="{name}" type="time"' in form
    assert "epoch" not in form

    def shown(**args):
        response = client.get("/admin/audit", query_string=args)
        assert response.status_code == 200
        return shown_events(response.get_data(as_text=True))

    assert shown(since_date="2031-03-01", until_date="2031-03-01") == ["admin.login"]
    assert shown(since_date="2031-03-02") == ["login.failure"]
    assert shown(since_date="2031-03-01", since_time="23:56") == ["login.failure"]
    assert shown(since_date="2031-03-01", until_date="2031-03-02", until_time="00:04") == ["admin.login"]
    assert shown(since_date="2031-03-01", until_date="2031-03-02", until_time="00:05") == ["login.failure",
                                                                                           "admin.login"]
    assert "2031年03月01日 23:55" in client.get("/admin/audit?since_date=2031-03-01").get_data(as_text=True)
    bad = client.get("/admin/audit?since_date=2031-13-01")
    assert bad.status_code == 400
    assert "日付は「2026-01-31」、時刻は「09:30」の形式で入力してください。" in bad.get_data(as_text=True)
    assert client.get("/admin/audit?since_time=10:00").status_code == 400  # a time needs its date


def test_every_recorded_event_has_a_japanese_name():
    """The audit log names events in Japanese: a new event needs its words (admin/words.py)."""
    from pathlib import Path

    from idp.admin.words import EVENTS

    source = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "idp").rglob("*.py"))
    # audit.record(), audit.action() and the console's record() and action()
    recorded = set(re.findall(r'\b(?:record|action)\(\s*"([a-z_.]+)"', source))
    recorded |= set(re.findall(r'\b(?:record|action)\(\s*"[a-z_.]+" if [^\n]*? else "([a-z_.]+)"', source))
    recorded |= {name for pair in re.findall(r'_verdict\([^)\n]*"([a-z_.]+)", "([a-z_.]+)"\)', source) for name in pair}
    assert {"registration.verified", "admin.account_unlocked", "recovery.code_failed", "logout"} <= recorded
    assert recorded - set(EVENTS) == set()


# Words that may stay as they are on a Japanese page: the brand, and names
# of standards an operator types into other systems.
NOT_ENGLISH = {"iTSCOM", "ID", "URI", "URL", "CSV", "IP", "STB", "RS", "ES", "JWT", "PKCE", "DPoP", "Basic", "POST"}


def english_words(html: str) -> set[str]:
    """English words a reader sees: tags, code, form values, URLs and e-mail addresses aside."""
    text = re.sub(r"<(script|style|code|textarea|title)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\S+@\S+|\S*https?://\S*", " ", text)
    return set(re.findall(r"[A-Za-z]{2,}", text)) - NOT_ENGLISH


def test_every_console_page_is_japanese(app, client, admin, clock, account):
    assert english_words(client.get("/admin/login").get_data(as_text=True)) == set()
    sign_in(client, admin, clock)
    created = post(client, "/admin/clients/new", {
        "name": "提携サイト", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid", "auth_method": "client_secret_basic",
    }).get_data(as_text=True)
    client_id = re.search(r"<code>([^<]+)</code>", created).group(1)
    rotated = post(client, "/admin/keys", {"alg": "ES256"}, follow_redirects=True)
    saved = post(client, f"/admin/clients/{client_id}", {
        "name": "提携サイト", "redirect_uris": "https://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid", "auth_method": "client_secret_basic",
    }, follow_redirects=True)
    refused = post(client, "/admin/clients/new", {
        "name": "提携サイト", "redirect_uris": "http://partner.example/cb", "grant_types": "authorization_code",
        "scope": "openid", "auth_method": "client_secret_basic",
    })
    from io import BytesIO

    bad_csv = FIXTURE_CONTRACTS.read_bytes() + b"1,x,y,z,,,,,maybe\n2005128462,x,x,1,,,,,true\n"
    not_imported = post(client, "/admin/contracts", {"csv": (BytesIO(bad_csv), "c.csv")}, files=True)
    pages = {"created": created, "rotated": rotated.get_data(as_text=True), "saved": saved.get_data(as_text=True),
             "refused": refused.get_data(as_text=True), "not imported": not_imported.get_data(as_text=True)}
    assert "10行目: お客さま番号は10桁の数字にしてください。" in pages["not imported"]
    assert "11行目: ご契約者氏名カナはカタカナにしてください。" in pages["not imported"]
    for path in ["/admin/", "/admin/clients", "/admin/clients/new", f"/admin/clients/{client_id}",
                 "/admin/contracts", "/admin/contracts?customer_number=2005128462", "/admin/contracts?customer_number=1",
                 "/admin/accounts?q=2005128462", "/admin/accounts?q=nobody", "/admin/keys", "/admin/audit",
                 "/admin/audit?since_date=x"]:
        pages[path] = client.get(path).get_data(as_text=True)
    assert {name: english_words(html) for name, html in pages.items() if english_words(html)} == {}
    with app.app_context():
        from idp.models import SigningKey

        db.session.execute(db.delete(SigningKey))  # the rotated key must not outlive this test
        db.session.commit()


def test_the_console_sets_par_and_pairwise_subjects(app, client, admin, clock):
    sign_in(client, admin, clock)
    response = post(client, "/admin/clients/new", {**PARTNER, "require_par": "1", "subject_type": "pairwise"})
    client_id = re.search(r"クライアントID: <code>([^<]+)</code>", response.get_data(as_text=True)).group(1)
    with app.app_context():
        stored = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        assert stored.requires_pushed_authorization_requests and stored.sector_identifier == "partner.example"
    form = client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert 'id="require_par" name="require_par" type="checkbox" value="y"' in form
    assert '<option selected value="pairwise">' in form
    refused = post(client, f"/admin/clients/{client_id}", {**PARTNER, "subject_type": "pairwise", "first_party": "1"})
    assert refused.status_code == 400
    assert ("ファーストパーティのクライアントは、お客さま識別子の種類を「共通」にしてください。"
            in field_of(refused.get_data(as_text=True), "subject_type"))


def test_editing_a_client_keeps_the_english_name_it_registered(app, client, admin, clock):
    """client_name#en (RFC 7591 2.2) is not on the console's form: saving
    the form must not drop it, or English pages would name the site in
    Japanese from then on."""
    sign_in(client, admin, clock)
    with app.app_context():
        partner, _ = clients.create_client("パートナー", ["https://partner.example/cb"], english_name="Partner Site")
        client_id = partner.client_id
        db.session.commit()
    assert post(client, f"/admin/clients/{client_id}", {**PARTNER, "name": "パートナー（新）"}).status_code == 303
    with app.app_context():
        stored = db.session.scalar(db.select(Client).filter_by(client_id=client_id)).client_metadata
    assert stored["client_name"] == "パートナー（新）" and stored["client_name#en"] == "Partner Site"


def test_an_account_id_larger_than_any_row_is_not_found(client, admin, clock):
    sign_in(client, admin, clock)
    for number in [str(2**31), "9" * 40]:
        assert client.get(f"/admin/accounts/{number}/second-factor").status_code == 404
        assert post(client, f"/admin/accounts/{number}/lock").status_code == 404

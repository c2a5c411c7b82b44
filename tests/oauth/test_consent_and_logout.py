"""Consent for third-party clients, and RP-initiated logout."""

import re
from urllib.parse import urlencode

from idp.accounts import create_account
from idp.extensions import db
from idp.models import AuditEvent, Consent

from ..helpers import ISSUER, RelyingParty, csrf_token, login, query_of


def third_party(app, client):
    return RelyingParty.register(app, client, first_party=False)


def answer_consent(rp, page, decision):
    request_digest = re.search(r'name="request" value="([^"]+)"', page).group(1)
    return rp.client.post("/authorize/consent", data={
        "csrf_token": csrf_token(page), "request": request_digest, "decision": decision,
    })


def test_third_party_asks_once_and_remembers(app, client, account):
    rp = third_party(app, client)
    rp.login()
    page = rp.authorize(scope="openid email")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "許可する" in html and "iTSCOM ID（メールアドレス）" in html
    assert page.headers["X-Frame-Options"] == "DENY"
    back = rp.client.get(answer_consent(rp, html, "approve").location)
    assert "code" in query_of(back.location)
    # Remembered: the same scopes no longer ask.
    assert "code" in query_of(rp.authorize(scope="openid email").location)
    # More scopes ask again; prompt=consent always asks.
    assert rp.authorize(scope="openid email phone").status_code == 200
    assert rp.authorize(scope="openid email", prompt="consent").status_code == 200


def test_denied_consent_is_access_denied_with_iss(app, client, account):
    rp = third_party(app, client)
    rp.login()
    html = rp.authorize(scope="openid").get_data(as_text=True)
    back = rp.client.get(answer_consent(rp, html, "deny").location)
    params = query_of(back.location)
    assert params["error"] == "access_denied" and params["iss"] == ISSUER and params["state"] == rp.state


def test_prompt_none_needing_consent_is_consent_required(app, client, account):
    rp = third_party(app, client)
    rp.login()
    assert query_of(rp.authorize(prompt="none").location)["error"] == "consent_required"


def test_consent_post_without_csrf_is_refused(app, client, account):
    rp = third_party(app, client)
    rp.login()
    rp.authorize(scope="openid")
    response = client.post("/authorize/consent", data={"decision": "approve"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(Consent)) is None


def test_first_party_never_asks(rp):
    rp.login()
    assert rp.authorize().status_code == 302


def test_logout_with_id_token_hint_ends_session_and_redirects(rp, client, app):
    tokens = rp.tokens()
    response = client.get("/session/end?" + "&".join([
        f"id_token_hint={tokens['id_token']}",
        "post_logout_redirect_uri=https://rp.example.test/bye",
        "state=s1",
    ]))
    assert response.status_code == 302
    assert response.location == "https://rp.example.test/bye?state=s1"
    # The OP session is over: prompt=none now needs a login.
    assert query_of(rp.authorize(prompt="none").location)["error"] == "login_required"
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).filter_by(event="logout")) is not None


def test_logout_to_unregistered_uri_does_not_redirect(rp, client):
    tokens = rp.tokens()
    response = client.get(f"/session/end?id_token_hint={tokens['id_token']}&post_logout_redirect_uri=https://evil.example/")
    assert response.status_code == 200 and "ログアウトしました" in response.get_data(as_text=True)


def test_logout_without_hint_asks_first(rp, client):
    rp.login()
    page = client.get("/session/end")
    assert page.status_code == 200 and "ログアウトしますか" in page.get_data(as_text=True)
    assert rp.authorize(prompt="none").status_code == 302 and "code" in query_of(rp.authorize(prompt="none").location)
    done = client.post("/session/end", data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert "ログアウトしました" in done.get_data(as_text=True)
    assert query_of(rp.authorize(prompt="none").location)["error"] == "login_required"


def test_logout_with_a_forged_hint_is_refused(rp, client):
    rp.login()
    response = client.get("/session/end?id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
    assert response.status_code == 400
    assert "code" in query_of(rp.authorize(prompt="none").location), "still signed in"


def test_consent_pages_in_several_tabs_keep_the_latest_three(app, client, account):
    """Four tabs each show a consent page: the three opened last can still be
    answered, the first was let go, whatever their requests' digests."""
    rp = third_party(app, client)
    rp.login()
    pages = [rp.authorize(scope="openid email", state=f"tab{n}").get_data(as_text=True) for n in range(4)]
    assert answer_consent(rp, pages[0], "approve").status_code == 400
    for page in pages[1:]:
        assert answer_consent(rp, page, "deny").status_code == 303


def test_consent_answers_the_request_its_page_showed(app, client, account):
    good = RelyingParty.register(app, client, first_party=False, redirect_uris=("https://good.example/cb",))
    evil = RelyingParty.register(app, client, first_party=False, redirect_uris=("https://evil.example/cb",))
    good.login()
    page_good = good.authorize(scope="openid").get_data(as_text=True)  # tab 1
    evil.authorize(scope="openid profile email phone contract offline_access")  # tab 2, opened by another site
    back = client.get(answer_consent(good, page_good, "approve").location)
    assert back.location.startswith("https://good.example/cb")
    assert evil.authorize(scope="openid", prompt="none").status_code == 302
    assert query_of(evil.authorize(scope="openid", prompt="none").location)["error"] == "consent_required"


def test_confirmed_logout_with_client_id_returns_to_the_registered_uri(rp, client):
    rp.login()
    params = {"client_id": rp.client_id, "post_logout_redirect_uri": "https://rp.example.test/bye", "state": "s1"}
    page = client.get("/session/end?" + urlencode(params)).get_data(as_text=True)
    done = client.post("/session/end", data={"csrf_token": csrf_token(page), **params})
    assert done.status_code == 302 and done.location == "https://rp.example.test/bye?state=s1"


def test_confirmed_logout_keeps_a_valid_hint_for_another_customer(app, client, account):
    with app.app_context():
        create_account("2005128464", "hanako@example.jp", "hanako-pass9")
        db.session.commit()
    rp = RelyingParty.register(app, client)
    hint = rp.tokens()["id_token"]  # taro's
    login(client, "hanako@example.jp", "hanako-pass9")  # the same browser, now hanako
    params = {"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example.test/bye", "state": "s1"}
    page = client.get("/session/end?" + urlencode(params)).get_data(as_text=True)
    assert "ログアウトしますか" in page
    done = client.post("/session/end", data={"csrf_token": csrf_token(page), **params})
    assert done.status_code == 302 and done.location == "https://rp.example.test/bye?state=s1"


def test_an_access_token_is_no_id_token_hint(rp, client):
    tokens = rp.tokens()
    response = client.get("/session/end", query_string={
        "id_token_hint": tokens["access_token"], "post_logout_redirect_uri": "https://rp.example.test/bye"})
    assert response.status_code == 400

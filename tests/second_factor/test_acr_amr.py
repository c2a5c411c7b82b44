"""acr and amr in ID tokens, acr_values and step-up (issue 15, point 4)."""

import json

import pytest
from urllib.parse import urlsplit

from ..helpers import enrol_totp, give_factor, query_of, totp_code

MFA = "urn:itscom:acr:mfa"
PWD = "urn:itscom:acr:pwd"


def _id_token(rp, location) -> dict:
    exchanged = rp.exchange(query_of(location)["code"])
    assert exchanged.status_code == 200, exchanged.get_json()
    return rp.verify_id_token(exchanged.get_json()["id_token"])


def test_discovery_lists_the_acr_values(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["acr_values_supported"] == [PWD, MFA]
    assert {"acr", "amr"} <= set(document["claims_supported"])


def test_a_password_sign_in_says_pwd(rp):
    claims = rp.verify_id_token(rp.tokens()["id_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == PWD


def test_a_sign_in_with_the_factor_says_mfa(rp, app, account, clock):
    secret, _ = enrol_totp(app, account)
    response = rp.authorize(acr_values=MFA)
    assert urlsplit(response.location).path == "/login"
    factor_page = rp.login()
    assert urlsplit(factor_page.location).path == "/login/factor"
    done = give_factor(rp.client, totp_code(secret, clock), factor_page.location)
    assert done.status_code == 303 and urlsplit(done.location).path == "/authorize", "on to the request that asked"
    back = rp.client.get(done.location)
    claims = _id_token(rp, back.location)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == MFA


def test_a_site_asking_for_mfa_steps_a_password_session_up(rp, app, account, clock):
    first = rp.verify_id_token(rp.tokens()["id_token"])  # signed in before the factor was set up
    secret, _ = enrol_totp(app, account)
    clock.advance(40)
    assert rp.authorize().status_code == 302, "a site that does not ask is not bothered"
    response = rp.authorize(acr_values=MFA)
    assert response.status_code == 303 and urlsplit(response.location).path == "/login/factor"
    page = rp.client.get(response.location).get_data(as_text=True)
    assert "2段階認証による確認を求めています" in page
    done = give_factor(rp.client, totp_code(secret, clock), response.location)
    back = rp.client.get(done.location)
    claims = _id_token(rp, back.location)
    assert claims["acr"] == MFA and claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["sid"] == first["sid"], "the same session, stepped up"
    assert claims["auth_time"] == first["auth_time"] + 40, "auth_time: the factor, the latest authentication"
    again = rp.authorize(acr_values=MFA)
    assert again.status_code == 302, "once stepped up, no second ask"


def test_prompt_none_with_unmet_acr_is_login_required(rp, app, account):
    rp.tokens()
    enrol_totp(app, account)
    response = rp.authorize(acr_values=MFA, prompt="none")
    assert response.status_code == 302
    assert query_of(response.location)["error"] == "login_required"
    assert query_of(response.location)["state"] == rp.state


def test_prompt_none_with_acr_met_issues_a_code(rp, app, account, clock):
    secret, _ = enrol_totp(app, account)
    response = rp.authorize(acr_values=MFA)
    factor_page = rp.login()
    rp.client.get(give_factor(rp.client, totp_code(secret, clock), factor_page.location).location)
    quiet = rp.authorize(acr_values=MFA, prompt="none")
    assert "code" in query_of(quiet.location)
    assert _id_token(rp, quiet.location)["acr"] == MFA
    del response


def test_a_list_that_accepts_pwd_is_met_by_the_password(rp, app, account):
    rp.tokens()
    enrol_totp(app, account)
    response = rp.authorize(acr_values=f"{PWD} {MFA}", prompt="none")
    assert _id_token(rp, response.location)["acr"] == PWD


def test_without_a_factor_acr_values_are_voluntary(rp):
    rp.tokens()
    response = rp.authorize(acr_values=MFA, prompt="none")
    claims = _id_token(rp, response.location)
    assert claims["acr"] == PWD and claims["amr"] == ["pwd"]


def test_an_essential_acr_claim_that_cannot_be_met_is_an_error(rp):
    rp.tokens()
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [MFA]}}})
    response = rp.authorize(claims=claims)
    assert response.status_code == 302
    assert query_of(response.location)["error"] == "unmet_authentication_requirements"


def test_an_essential_acr_claim_steps_up_an_account_with_a_factor(rp, app, account, clock):
    rp.tokens()
    secret, _ = enrol_totp(app, account)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "value": MFA}}})
    response = rp.authorize(claims=claims)
    assert urlsplit(response.location).path == "/login/factor"
    back = rp.client.get(give_factor(rp.client, totp_code(secret, clock), response.location).location)
    assert _id_token(rp, back.location)["acr"] == MFA


def test_max_age_signs_in_again_with_the_factor(rp, app, account, clock):
    secret, _ = enrol_totp(app, account)
    rp.authorize()
    factor_page = rp.login()
    first_back = rp.client.get(give_factor(rp.client, totp_code(secret, clock), factor_page.location).location)
    first = _id_token(rp, first_back.location)
    clock.advance(120)
    response = rp.authorize(max_age="60", acr_values=MFA)
    assert urlsplit(response.location).path == "/login"
    factor_page = rp.login()
    assert urlsplit(factor_page.location).path == "/login/factor", "the password alone is not enough"
    back = rp.client.get(give_factor(rp.client, totp_code(secret, clock), factor_page.location).location)
    claims = _id_token(rp, back.location)
    assert claims["auth_time"] == first["auth_time"] + 120 and claims["acr"] == MFA


def test_a_step_up_for_another_session_is_refused(rp, app, account, clock):
    """The held step-up names its session: after a logout in between it is over."""
    rp.tokens()
    secret, _ = enrol_totp(app, account)
    response = rp.authorize(acr_values=MFA)
    page = rp.client.get(response.location).get_data(as_text=True)
    rp.client.delete_cookie("idp_session", domain="localhost")
    from ..helpers import csrf_token

    refused = rp.client.post(response.location, data={"csrf_token": csrf_token(page), "code": totp_code(secret, clock)})
    assert refused.status_code == 400


@pytest.mark.parametrize("extra", [
    {"acr_values": "x" * 1500},
    {"acr_values": "urn:itscom:acr:mfa\x00"},
    {"acr_values": "  "},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": "urn:itscom:acr:mfa"}}})},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": [1, None, {"a": 1}]}}})},
    {"claims": json.dumps({"id_token": {"acr": {"essential": "yes", "value": MFA}}})},
    {"claims": json.dumps({"id_token": {"acr": [MFA]}})},
    {"claims": json.dumps({"id_token": {"acr": None}})},
])
def test_odd_acr_requests_never_500(rp, app, account, extra):
    rp.tokens()
    enrol_totp(app, account)
    response = rp.authorize(**extra)
    assert response.status_code < 500


def test_a_nul_in_the_code_is_refused_not_a_500(app, account, clock):
    from ..helpers import login

    secret, _ = enrol_totp(app, account)
    browser = app.test_client()
    login(browser)
    assert give_factor(browser, totp_code(secret, clock) + "\x00").status_code == 400


def test_setting_the_factor_up_steps_this_session_up(rp, app, clock):
    import re

    from ..helpers import csrf_token

    rp.tokens()
    setup = rp.client.get("/account/factor").get_data(as_text=True)
    key = re.sub(r"<[^>]+>|\s", "", re.search(r'<code class="key" translate="no">(.*?)</code>', setup).group(1))
    done = rp.client.post("/account/factor", data={"csrf_token": csrf_token(setup), "current_password": "itscom-demo1",
                                                   "code": totp_code(key, clock)})
    assert done.status_code == 303
    quiet = rp.authorize(acr_values=MFA, prompt="none")
    assert _id_token(rp, quiet.location)["acr"] == MFA

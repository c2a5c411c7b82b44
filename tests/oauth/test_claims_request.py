"""The claims request parameter on its own (OIDC Core 5.5; idp/claims.py):
what is accepted, what is refused, and what a client may be given. The
authorization flow that uses it is tested through HTTP in test_code_flow."""

import json
from types import SimpleNamespace

import pytest

from idp.claims import allowed_claims_request, parse_claims_request, scopes_implied


def test_no_claims_parameter_is_no_request():
    assert parse_claims_request(None) is None and parse_claims_request("") is None


def test_only_the_userinfo_and_id_token_members_are_kept():
    raw = json.dumps({"userinfo": {"email": None}, "id_token": {"name": {"essential": True}}, "other": {}})
    assert parse_claims_request(raw) == {"userinfo": {"email": None}, "id_token": {"name": {"essential": True}}}


@pytest.mark.parametrize(("raw", "why"), [
    ("[]", "must be a JSON object"),
    ('"userinfo"', "must be a JSON object"),
    ('{"userinfo": []}', "claims.userinfo must be a JSON object"),
    ('{"id_token": "email"}', "claims.id_token must be a JSON object"),
    ('{"userinfo": {"email": NaN}}', "NaN"),
    ('{"userinfo": {"email": Infinity}}', "Infinity"),
    ('{"userinfo": {"email": "\\ud800"}}', "not UTF-8"),
    ("[" * 5000 + "]" * 5000, "too long"),
    ("{not json", "Expecting property name"),
])
def test_malformed_requests_are_refused_with_a_reason(raw, why):
    with pytest.raises(ValueError, match=why):
        parse_claims_request(raw)


def test_a_client_gets_only_claims_of_its_registered_scopes():
    client = SimpleNamespace(scope="openid profile")
    raw = json.dumps({"userinfo": {"name": None, "email": None, "customer_number": None},
                      "id_token": {"locale": {"essential": True}, "phone_number": None}})
    assert allowed_claims_request(raw, client) == {"userinfo": {"name": None},
                                                   "id_token": {"locale": {"essential": True}}}


def test_a_malformed_request_gives_a_client_nothing_extra():
    assert allowed_claims_request('{"userinfo": []}', SimpleNamespace(scope="openid email")) is None


def test_requested_claims_imply_the_scopes_that_cover_them():
    assert scopes_implied({"userinfo": {"email": None, "unknown_claim": None}, "id_token": {"name": None}}) == {
        "email", "profile"}
    assert scopes_implied(None) == set()

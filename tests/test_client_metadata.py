"""Client metadata on its own (idp/clients.build_metadata): the rules every
way of registering a client shares — the CLI, the console and RFC 7591 —
each refusal naming its rule and field. Those three are tested through
their own doors in tests/cli, tests/admin and tests/oauth."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from idp.clients import DEFAULT_SCOPES, ClientError, build_metadata

CB = ["https://rp.example.test/cb"]


@pytest.fixture
def context(app):
    with app.app_context():
        yield


def refusal(**arguments) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        build_metadata(**{"name": "RP", "redirect_uris": CB, "resolve_names": False, **arguments})
    return refused.value.rule, refused.value.field


def test_defaults_make_a_confidential_code_flow_client(context):
    assert build_metadata(" My RP ", CB + CB) == {
        "client_name": "My RP", "redirect_uris": CB, "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "scope": " ".join(DEFAULT_SCOPES), "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
    }


def test_what_is_given_is_kept_once_and_in_order(context):
    metadata = build_metadata("RP", CB, grant_types=["client_credentials", "authorization_code", "client_credentials"],
                              scopes=["openid", "email", "openid"], english_name=" Support ",
                              backchannel_logout_uri="https://rp.example.test/bc", resolve_names=False)
    assert metadata["grant_types"] == ["client_credentials", "authorization_code"]
    assert metadata["scope"] == "openid email"
    assert metadata["client_name#en"] == "Support"
    assert metadata["backchannel_logout_session_required"] is True


def test_a_client_credentials_only_client_needs_no_redirect_uri(context):
    metadata = build_metadata("Batch", [], grant_types=["client_credentials"])
    assert metadata["response_types"] == [] and metadata["redirect_uris"] == []


@pytest.mark.parametrize(("arguments", "rule", "field"), [
    ({"name": "  "}, "name_required", "client_name"),
    ({"auth_method": "client_secret_jwt"}, "unsupported", "token_endpoint_auth_method"),
    ({"grant_types": ["implicit"]}, "unsupported", "grant_types"),
    ({"redirect_uris": []}, "redirect_uri_required", "redirect_uris"),
    ({"auth_method": "none", "grant_types": ["client_credentials"]}, "public_client_credentials", "grant_types"),
    ({"scopes": ["openid", "admin"]}, "unsupported", "scope"),
    ({"id_token_signed_response_alg": "none"}, "unsupported", "id_token_signed_response_alg"),
    ({"redirect_uris": ["http://rp.example.test/cb"]}, "http_not_loopback", "redirect_uris"),
    ({"redirect_uris": ["/cb"]}, "not_absolute_https", "redirect_uris"),
    ({"redirect_uris": ["https://rp.example.test/cb#x"]}, "fragment", "redirect_uris"),
    ({"redirect_uris": ["https://rp.example.test:99999/cb"]}, "invalid_url", "redirect_uris"),
    ({"post_logout_redirect_uris": ["ftp://rp.example.test/"]}, "not_absolute_https", "post_logout_redirect_uris"),
    ({"backchannel_logout_uri": "https://127.0.0.1/bc"}, "not_public", "backchannel_logout_uri"),
    ({"auth_method": "private_key_jwt"}, "keys_required", "jwks"),
    ({"auth_method": "private_key_jwt", "jwks": {"keys": [{"kty": "nonsense"}]}}, "invalid_jwks", "jwks"),
    ({"auth_method": "private_key_jwt", "jwks_uri": "https://[fd00::1]/jwks"}, "not_public", "jwks_uri"),
    ({"token_endpoint_auth_signing_alg": "HS256"}, "unsupported", "token_endpoint_auth_signing_alg"),
])
def test_each_broken_rule_is_named_with_its_field(context, arguments, rule, field):
    assert refusal(**arguments) == (rule, field)


def test_a_private_key_in_jwks_is_refused(context):
    private = ECKey.import_key(ec.generate_private_key(ec.SECP256R1())).as_dict(private=True)
    assert refusal(auth_method="private_key_jwt", jwks={"keys": [private]}) == ("private_jwks", "jwks")

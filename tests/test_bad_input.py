"""Bad input anywhere: a 4xx with an OAuth error body or a Japanese page, never a 500."""

import pytest

from idp.extensions import db
from idp.models import AuditEvent, Token

from .helpers import csrf_token


@pytest.mark.parametrize(
    "path",
    [
        "/authorize?client_id=%ff%fe&response_type=code",
        "/authorize?client_id=" + "a" * 5000,
        "/authorize?client_id=1%27%20OR%201=1--&response_type=code&redirect_uri=x",
        "/authorize?response_type=code&client_id=<script>alert(1)</script>",
        "/authorize",
        "/session/end?id_token_hint=%00%01",
        "/session/end?id_token_hint=a.b.c&post_logout_redirect_uri=https://x",
        "/nope",
        "/login?next=https://evil.example",
    ],
)
def test_bad_get_requests_never_500(client, path):
    response = client.get(path)
    assert response.status_code < 500
    assert "Traceback" not in response.get_data(as_text=True)
    if response.status_code == 400 and response.mimetype == "text/html":
        assert "<script>alert(1)</script>" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect", "/userinfo", "/par"])
@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"\xff\xfe\xfd", "application/x-www-form-urlencoded"),
        (b'{"grant_type": "client_credentials"}', "application/json"),
        (b"grant_type=authorization_code&code=' OR 1=1 --", "application/x-www-form-urlencoded"),
        (b"x" * 200_000, "application/x-www-form-urlencoded"),
        (b"", "text/plain"),
    ],
)
def test_bad_bodies_on_api_endpoints_get_oauth_errors(rp, client, app, path, body, content_type):
    response = client.post(path, data=body, content_type=content_type, headers=rp.auth())
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    if path == "/userinfo" and response.status_code == 401:
        # A client's Basic credentials are no access token: RFC 6750 3.1's
        # challenge, without an error code (tests/oauth/test_userinfo_and_scopes.py).
        assert response.headers["WWW-Authenticate"].startswith("Bearer, DPoP ")
    else:
        assert "error" in response.get_json()
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Token)) == 0


def test_wrong_methods(client):
    assert client.get("/token").status_code == 405
    assert client.get("/token").get_json()["error"] == "invalid_request"
    assert client.delete("/login").status_code == 405


def test_oversized_login_form_is_refused(client):
    response = client.post("/login", data={"login_id": "x" * 100_000, "password": "y"})
    assert response.status_code == 413
    assert "大きすぎます" in response.get_data(as_text=True)


def test_html_in_login_id_is_escaped(client, account, app):
    from .helpers import csrf_token

    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token, "login_id": "<script>x</script>", "password": "p"})
    html = response.get_data(as_text=True)
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).filter_by(event="login.failure")) is not None


@pytest.mark.parametrize("path", ["/recovery/identify", "/login", "/registration/"])
def test_nul_characters_are_refused_not_a_500(client, contracts, path):
    page = client.get(path)
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                       "login_id": "taro\x00@example.jp", "name_kana": "イツ\x00", "password": "x"})
    assert response.status_code == 400


@pytest.mark.parametrize("headers", [{"X-Note": "a\x00b"}, {"User-Agent": "\x00"}, {"X-\x00": "a"}])
def test_nul_characters_in_headers_are_refused(client, headers):
    # The check reads the WSGI environ (errors._nul_in_headers), not request.headers.
    assert client.get("/login", headers=headers).status_code == 400


@pytest.mark.parametrize("method, path", [
    ("GET", "/login"), ("GET", "/authorize"), ("POST", "/healthz"), ("POST", "/token"), ("GET", "/no-such-page"),
])
def test_raw_bytes_in_the_query_string_are_read_as_their_percent_form(client, method, path):
    """A client may send a query string's bytes raw, and WSGI hands them over
    as latin-1: not UTF-8, Werkzeug failed on every read of the parameters
    (the error page's too)."""
    raw = client.open(path, method=method, environ_overrides={"QUERY_STRING": "next=\xff\xfe&client_id=\xff"})
    encoded = client.open(path, method=method, query_string="next=%FF%FE&client_id=%FF")
    assert raw.status_code == encoded.status_code < 500
    assert raw.mimetype == encoded.mimetype


def test_a_host_header_werkzeug_cannot_use_gets_the_error_page(client):
    """A host label over 63 characters cannot be IDNA-encoded (BadHost): the
    error page is built all the same, its links plain paths."""
    response = client.get("/login", headers={"Host": "a" * 64 + ".example"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "リクエストの内容が正しくありません。" in html and 'href="/login"' in html


@pytest.mark.parametrize("path", ["/authorize", "/session/end"])
def test_a_body_too_large_for_a_page_that_reads_ui_locales_is_refused(client, path):
    """The page saying so is in the customer's language, chosen without
    reading the body again (ui_locales may come in the form)."""
    response = client.post(path, data="ui_locales=en&state=" + "x" * 70_000,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert "送信された内容が大きすぎます。" in response.get_data(as_text=True)


@pytest.mark.parametrize("body", ["[1]", '"x"', "1e400", '{"login_id": 5, "password": ["x"]}'])
@pytest.mark.parametrize("path", ["/login", "/recovery/identify", "/session/end"])
def test_a_json_body_to_a_page_is_refused(client, contracts, path, body):
    """Our pages take HTML forms; a JSON body (with the CSRF token in its
    header) is no form of theirs, and writes nothing."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post(path, data=body, content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code == 415
    assert "送信された形式には対応していません。" in response.get_data(as_text=True)

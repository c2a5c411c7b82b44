"""Test helpers: a settable clock and a relying party that speaks to the OP."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import secrets
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt as pyjwt  # PyJWT: an independent JOSE implementation to check our tokens
import pytest

from idp.clients import create_client
from idp.extensions import db

ISSUER = "https://id.example.test"
REDIRECT_URI = "https://rp.example.test/callback"

# Tests that need PostgreSQL itself run in make test's second pass only.
needs_postgresql = pytest.mark.skipif(
    not os.environ.get("IDP_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="needs PostgreSQL (set IDP_TEST_DATABASE_URL; make test's second pass does)",
)


class FrozenClock:
    def __init__(self, start: int) -> None:
        self.current = start

    def now(self) -> int:
        return self.current

    def advance(self, seconds: int) -> None:
        self.current += seconds


class FakeDNS:
    """Answers for made-up host names, as ``socket.getaddrinfo`` (the boundary
    we do not own); every other name resolves as usual.

    ``answer(host, *addresses)`` sets what the next lookups return;
    ``hang(host)`` makes lookups of ``host`` block until ``release()``."""

    def __init__(self, real) -> None:
        self.real = real
        self.answers: dict[str, list[str] | None] = {}
        self.lookups: list[str] = []
        self.released = threading.Event()

    def answer(self, host: str, *addresses: str) -> None:
        self.answers[host] = list(addresses)

    def hang(self, host: str) -> None:
        self.answers[host] = None

    def release(self) -> None:
        self.released.set()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        if host not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(host)
        addresses = self.answers[host]
        if addresses is None:
            self.released.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ipaddress.ip_address(a).version == 6
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def submit(client, path: str, data: dict | None = None, *, page: str | None = None, **options):
    """A form as a browser sends it: GET ``page`` (``path`` unless given),
    take its CSRF token, POST ``data`` to ``path``. ``options`` (headers,
    environ_base) go with both requests."""
    html = client.get(page or path, **options).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(html), **(data or {})}, **options)


def login(client, login_id: str = "taro.itsu@example.jp", password: str = "itscom-demo1", **options):
    """Sign in on the OP's login page."""
    return submit(client, "/login", {"login_id": login_id, "password": password}, **options)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


@dataclass
class RelyingParty:
    app: object
    client: object  # Flask test client: the customer's browser and the RP's back channel
    client_id: str
    client_secret: str | None
    redirect_uri: str = REDIRECT_URI
    verifier: str = ""
    nonce: str = ""
    state: str = ""
    last: dict = field(default_factory=dict)

    @classmethod
    def register(cls, app, client, *, first_party=True, auth_method="client_secret_basic",
                 grant_types=("authorization_code", "refresh_token", "client_credentials"),
                 redirect_uris=(REDIRECT_URI,), post_logout=("https://rp.example.test/bye",), name="Test RP", **kwargs):
        if auth_method == "none":
            grant_types = [g for g in grant_types if g != "client_credentials"]
        with app.app_context():
            registered, secret = create_client(
                name, list(redirect_uris), list(post_logout), grant_types=list(grant_types),
                auth_method=auth_method, first_party=first_party, **kwargs,
            )
            db.session.commit()
            return cls(app, client, registered.client_id, secret, redirect_uris[0])

    # --- front channel -------------------------------------------------

    def authorize_params(self, **overrides) -> dict:
        self.verifier, challenge = pkce_pair()
        self.nonce, self.state = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email phone contract offline_access",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        return self.client.get("/authorize?" + urlencode(self.authorize_params(**overrides)))

    def login(self, login_id="taro.itsu@example.jp", password="itscom-demo1"):
        return login(self.client, login_id, password)

    def sign_in_and_get_code(self, **overrides) -> dict:
        """authorize -> login page -> login -> back to authorize -> redirect with code."""
        return self.sign_in_from(self.authorize(**overrides))

    def sign_in_from(self, response) -> dict:
        """From /authorize's answer: the login page, login, back to
        authorize, the redirect with a code (its parameters)."""
        if response.status_code == 303 and urlsplit(response.location).path == "/login":
            login = self.login()
            assert login.status_code == 303, login.get_data(as_text=True)
            response = self.client.get(login.location)
        assert response.status_code == 302, response.get_data(as_text=True)
        assert response.location.startswith(self.redirect_uri)
        self.last = query_of(response.location)
        return self.last

    # --- back channel --------------------------------------------------

    def auth(self) -> dict:
        if self.client_secret is None:
            return {}
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def token_request(self, data: dict, headers: dict | None = None):
        if self.client_secret is None:
            data = {"client_id": self.client_id, **data}
        return self.client.post("/token", data=data, headers=headers if headers is not None else self.auth())

    def exchange(self, code: str, verifier: str | None = None):
        return self.token_request({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier if verifier is not None else self.verifier,
        })

    def tokens(self, **overrides) -> dict:
        code = self.sign_in_and_get_code(**overrides)["code"]
        response = self.exchange(code)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def verify_id_token(self, id_token: str) -> dict:
        jwks = self.client.get("/jwks").get_json()
        header = pyjwt.get_unverified_header(id_token)
        key = pyjwt.PyJWKSet.from_dict(jwks)[header["kid"]]
        return pyjwt.decode(
            id_token, key=key, algorithms=[header["alg"]], audience=self.client_id, issuer=ISSUER,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )


# --- the second factor ------------------------------------------------------------


def enrol_totp(app, account_id: int) -> tuple[str, list[str]]:
    """Turn the customer's authenticator on as the account page does, directly:
    returns its (plain) secret and the recovery codes."""
    from idp import second_factor
    from idp.models import Account, TotpFactor
    from idp.security import sealed, totp

    with app.test_request_context():
        account = db.session.get(Account, account_id)
        secret = totp.new_secret()
        db.session.add(TotpFactor(account_id=account_id, secret=sealed.seal_text(secret), last_step=0, created_at=0))
        codes = second_factor._new_recovery_codes(account)
        db.session.commit()
    return secret, codes


def totp_code(secret: str, clock, offset_steps: int = 0) -> str:
    """The authenticator's code at the test clock's time (± steps)."""
    import pyotp

    return pyotp.TOTP(secret).at(clock.now() + 30 * offset_steps)


def give_factor(client, code: str, path: str = "/login/factor", **options):
    """Answer the 2段階認証 page (``path``: its URL, with ?request=)."""
    return submit(client, path, {"code": code}, **options)


def walk_second_factor(app, browser, look=lambda response: response) -> list[str]:
    """The second factor's pages as a signed-in customer meets them (the page
    walks): set up with a wrong code first, the recovery codes, the account
    page with it on, a login asking for it (a wrong code, then a recovery
    code), its page once the sign-in is over, then turning it off. ``look``
    sees every answer. Returns the recovery codes."""
    import pyotp

    setup = look(browser.get("/account/factor")).get_data(as_text=True)
    key = re.search(r'<code class="key" translate="no">(.*?)</code>', setup).group(1)
    key = re.sub(r"<[^>]+>|\s", "", key)
    now = app.extensions["idp.clock"].now()
    code = pyotp.TOTP(key).at(now)
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    for typed in (wrong, code):
        look(browser.post("/account/factor", data={"csrf_token": csrf_token(setup), "code": typed,
                                                   "current_password": "itscom-demo1"}))
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>",
                       look(browser.get("/account/factor/codes")).get_data(as_text=True))
    assert len(codes) == 10
    look(browser.get("/account/"))
    factor = look(submit(browser, "/login", {"login_id": "taro.itsu@example.jp", "password": "itscom-demo1"}))
    page = look(browser.get(factor.location)).get_data(as_text=True)
    look(browser.post(factor.location, data={"csrf_token": csrf_token(page), "code": wrong}))
    assert look(browser.post(factor.location, data={"csrf_token": csrf_token(page), "code": codes[0]})).status_code == 303
    look(browser.get(factor.location))  # over: log in again
    settings = look(browser.get("/account/")).get_data(as_text=True)
    assert look(browser.post("/account/factor/off", data={"csrf_token": csrf_token(settings),
                                                          "off-code": codes[1]})).status_code == 303
    return codes

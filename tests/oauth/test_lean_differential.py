"""The lean path (idp/oauth/lean.py) against Flask's, request by request.

Issue 14, point 4: a request answered below Flask must be answered as
Flask answers it. Each case below is a request to /token, /userinfo,
/introspect or /revoke — plain ones the lean path answers itself, and
near-plain or hostile ones it must hand on — sent twice, each time with
credentials of its own prepared the same way: once to the whole app (the
lean middleware first) and once to Flask's own WSGI app beneath it, which
is what answered every request before the lean path existed. The two must
agree on the status, every header but Content-Length, the body (JWTs
compared by their verified header and claims, with the values each issue
makes its own — jti, at_hash, the opaque refresh token — put aside), and
what each request wrote to the database (new and changed tokens, codes,
revocations and audit rows) and counted in the metrics. The clock is
frozen, so times are compared as they are. One app serves the whole module,
so the lean path's held PostgreSQL connections see hundreds of requests.

Cases marked ``lean`` are plain: the lean path must answer them itself (or
the comparison would be Flask's against Flask's)."""

from __future__ import annotations

import base64
import io
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode, urlsplit

import pytest
from joserfc import jwt
from prometheus_client import REGISTRY
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, select
from werkzeug.test import Client

from flask import request
from idp.accounts import create_account
from idp.cache import Cache
from idp.claims import SUPPORTED_CLAIMS
from idp.contracts import import_contracts
from idp.extensions import db
from idp.models import Account, AuditEvent, AuthorizationCode, RevokedAccessToken, Token
from idp.models import Client as Registered
from idp.oauth.lean import LeanEndpoints

from ..conftest import FIXTURE_CONTRACTS, empty_tables, make_test_app
from ..helpers import FrozenClock, RelyingParty, csrf_token, login, query_of
from .dpop_client import DPoPKey

FORM = "application/x-www-form-urlencoded"
ALL = "openid profile email phone contract offline_access"
EVERY_CLAIM = json.dumps({"userinfo": dict.fromkeys(SUPPORTED_CLAIMS), "id_token": dict.fromkeys(SUPPORTED_CLAIMS)})
NONCE = "differential-nonce"
ENVIRON = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "differential/1.0"}
REGISTERED_ORIGIN = "https://rp.example.test"
OTHER_ORIGIN = "https://evil.example.test"
REDIRECT = "https://rp.example.test/callback"


# --- the world the cases run in ------------------------------------------------------------
#
# One app for every case of the module, as a server process runs: the lean
# path's held PostgreSQL connections and prepared statements (lean._Database)
# serve hundreds of requests, as in production, rather than a few each.
# Cases do not share credentials; a case that changes what others see (the
# customer locked, a client disabled) undoes it, and the clock only moves on.


class World:
    """The app, its two entrances, and what a case needs of it, made when
    first asked for."""

    def __init__(self, app, browser, clock, flask_saw: list) -> None:
        self.app, self.browser, self.clock, self.flask_saw = app, browser, clock, flask_saw
        self.lean = Client(app.wsgi_app, app.response_class, use_cookies=False)  # the whole app
        # Flask without the lean middleware: what answered before it, and what it hands requests to.
        assert isinstance(app.wsgi_app, LeanEndpoints)
        self.flask = Client(app.wsgi_app.wsgi_app, app.response_class, use_cookies=False)
        self.clients = _Clients(self)
        self._keys = self._dpop_key = None

    def for_a_case(self) -> World:
        """The world as a new case finds it: a DPoP key of its own, the keys as published now."""
        self._keys = self._dpop_key = None
        return self

    @property
    def dpop_key(self) -> DPoPKey:
        """The one DPoP key of the case's client (both paths' tokens bound to it)."""
        if self._dpop_key is None:
            self._dpop_key = DPoPKey(self.clock)
        return self._dpop_key

    @property
    def keys(self) -> KeySet:
        """The OP's published keys."""
        if self._keys is None:
            self._keys = KeySet.import_key_set(self.lean.get("/jwks").get_json())
        return self._keys


CLIENTS = {  # name -> RelyingParty.register's arguments (first-party unless said)
    "rp": {},  # every grant, client_secret_basic, https://rp.example.test/callback
    "other": {"name": "Other RP"},
    "service": {"name": "Service", "grant_types": ["client_credentials"]},
    "narrow": {"name": "Narrow", "scopes": ["openid", "profile", "offline_access"]},
    "site": {"name": "Site", "grant_types": ["authorization_code", "refresh_token"]},
    "once": {"name": "Code only", "grant_types": ["authorization_code"]},
    "pairwise": {"name": "Pairwise", "first_party": False, "subject_type": "pairwise"},
    "poster": {"name": "Poster", "auth_method": "client_secret_post"},
    "public": {"name": "Public", "auth_method": "none"},
    "bound": {"name": "Bound", "dpop_bound_access_tokens": True},
    "es256": {"name": "ES256", "id_token_signed_response_alg": "ES256"},
}


class _Clients(dict):
    """The clients by name, registered when first named, each in the app's
    client cache at once, as after its first request."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def __missing__(self, name: str) -> RelyingParty:
        w, options = self.world, dict(CLIENTS[name])
        if name != "rp":
            options["redirect_uris"] = (f"https://{name}.example.test/callback",)
        rp = self[name] = RelyingParty.register(w.app, w.browser, **options)
        if rp.client_secret is not None:
            w.lean.post("/introspect", data={"token": "warm-up"}, headers=rp.auth(), environ_base=ENVIRON)
        return rp


@pytest.fixture(scope="module")
def shared_world(_schema):
    """The OP (as tests/conftest.py's ``app``, but for the module), its
    customer, and the paths of the requests Flask's pipeline saw."""
    clock = FrozenClock(int(time.time()) - 600)
    app = make_test_app(_schema, clock)
    # The client cache expires by the case's clock, not the wall's: an entry
    # that expired between a case's two requests (CLIENT_CACHE_SECONDS is 5
    # s of real time; a slow run crosses it) would send the lean one to Flask,
    # which loads a client the lean path finds uncached. Changes of a client
    # still clear it (models.client._forget_cached_clients).
    app.extensions["idp.clients"] = Cache(app.config["CLIENT_CACHE_SECONDS"], maxsize=10_000, timer=clock.now)
    flask_saw = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: flask_saw.append(request.path) and None)
    with app.app_context():
        import_contracts(FIXTURE_CONTRACTS.read_text(encoding="utf-8"))
        create_account("2005128462", "taro.itsu@example.jp", "itscom-demo1")
        db.session.commit()
    yield World(app, app.test_client(), clock, flask_saw)
    empty_tables(app)


@pytest.fixture
def world(shared_world):
    return shared_world.for_a_case()


# --- preparing credentials (once for each path) ---------------------------------------------


def code_of(w: World, name: str = "rp", **overrides) -> dict:
    """A code of the signed-in customer for client ``name``, and what exchanges it."""
    rp = w.clients[name]
    params = rp.authorize_params(nonce=NONCE, state="s", **overrides)
    response = w.browser.get("/authorize?" + urlencode(params))
    if response.status_code == 303 and urlsplit(response.location).path == "/login":  # not yet, or no longer
        response = w.browser.get(login(w.browser).location)
    if response.status_code == 200:  # a third party's consent page
        html = response.get_data(as_text=True)
        digest = html.split('name="request" value="')[1].split('"')[0]
        response = w.browser.get(w.browser.post("/authorize/consent", data={
            "csrf_token": csrf_token(html), "request": digest, "decision": "approve"}).location)
    assert response.status_code == 302, response.get_data(as_text=True)
    return {"grant_type": "authorization_code", "code": query_of(response.location)["code"],
            "redirect_uri": rp.redirect_uri, "code_verifier": rp.verifier}


def post_token(w: World, name: str, data: dict) -> dict:
    response = w.lean.post("/token", data=data, headers=w.clients[name].auth(), environ_base=ENVIRON)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def issued(scope: str = ALL, name: str = "rp", **overrides):
    """Tokens bought with a code."""
    return lambda w: post_token(w, name, code_of(w, name, scope=scope, **overrides))


def client_token(name: str = "rp", scope: str | None = "openid"):
    """A client_credentials token (self-contained)."""
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return lambda w: post_token(w, name, data)


def rotated(scope: str = ALL, name: str = "rp"):
    """Tokens, then refreshed: "old" the first tokens, "new" their successors."""
    def prepare(w):
        old = issued(scope, name)(w)
        new = post_token(w, name, {"grant_type": "refresh_token", "refresh_token": old["refresh_token"]})
        return {**old, "old": old, "new": new}
    return prepare


def replayed(scope: str = ALL, name: str = "rp"):
    """Tokens refreshed, then the first refresh token presented again: the family is revoked."""
    def prepare(w):
        state = rotated(scope, name)(w)
        replay = {"grant_type": "refresh_token", "refresh_token": state["old"]["refresh_token"]}
        answer = w.lean.post("/token", data=replay, headers=w.clients[name].auth(), environ_base=ENVIRON)
        assert answer.status_code == 400
        return state
    return prepare


def revoked(kind: str, prepare=None):
    """Tokens with one of them (``kind``) revoked."""
    def prepared(w):
        state = (prepare or issued())(w)
        answer = w.lean.post("/revoke", data={"token": state[kind]}, headers=w.clients["rp"].auth(),
                             environ_base=ENVIRON)
        assert answer.status_code == 200
        return state
    return prepared


def code(name: str = "rp", **overrides):
    return lambda w: {"form": code_of(w, name, **overrides)}


def spent_code(name: str = "rp"):
    """A code exchanged once already: presenting it again is reuse."""
    def prepare(w):
        form = code_of(w, name)
        return {"form": form, "bought": post_token(w, name, form)}
    return prepare


def dpop_bound(name: str = "rp", scope: str = ALL):
    """Tokens bought with a code and a DPoP proof (RFC 9449): the access token
    bound to the key, a confidential client's refresh token not."""
    def prepare(w):
        response = w.lean.post("/token", data=code_of(w, name, scope=scope), environ_base=ENVIRON, headers={
            **w.clients[name].auth(), "DPoP": w.dpop_key.proof("POST", "/token")})
        assert response.status_code == 200 and response.get_json()["token_type"] == "DPoP", response.get_json()
        return response.get_json()
    return prepare


def dpop_client_token(w):
    """A client_credentials token of a client that must use DPoP: bound (cnf.jkt)."""
    response = w.lean.post("/token", data={"grant_type": "client_credentials", "scope": "openid"},
                           environ_base=ENVIRON, headers={**w.clients["bound"].auth(),
                                                          "DPoP": w.dpop_key.proof("POST", "/token")})
    assert response.status_code == 200 and response.get_json()["token_type"] == "DPoP", response.get_json()
    return response.get_json()


def nothing(w):
    return {}


# --- what happens between preparing and sending ---------------------------------------------


def advance(setting: str, less: int = 0):
    """The clock moved on by a lifetime (a second short of it with ``less=1``)."""
    return lambda w: w.clock.advance(w.app.config[setting] - less)


def customer(**values):
    """The customer's account changed (undone after the case)."""
    def between(w):
        def change(values):
            with w.app.app_context():
                account = db.session.scalar(db.select(Account))
                before = {name: getattr(account, name) for name in values}
                for name, value in values.items():
                    setattr(account, name, value)
                db.session.commit()
                return before
        before = change(values)
        return lambda: change(before)
    return between


lock_customer = customer(status="locked")


def disable(name: str):
    """The client disabled (enabled again after the case)."""
    def between(w):
        def set_disabled(disabled: bool):
            with w.app.app_context():
                db.session.scalar(db.select(Registered).filter_by(
                    client_id=w.clients[name].client_id)).disabled = disabled
                db.session.commit()
        set_disabled(True)
        return lambda: set_disabled(False)
    return between


# --- the requests ---------------------------------------------------------------------------


def basic(name: str = "rp", secret: str | None = None):
    def headers(w):
        rp = w.clients[name]
        return RelyingParty(w.app, None, rp.client_id, secret or rp.client_secret).auth()
    return headers


def as_header(value: str):
    return lambda w: {"Authorization": value}


def no_auth(w):
    return {}


def userinfo(token=lambda s: s["access_token"], scheme="Bearer ", after="", method="GET", headers=None,
             **options):
    def request(w, s):
        authorization = {} if scheme is None else {"Authorization": f"{scheme}{token(s)}{after}"}
        return {"method": method, "path": "/userinfo", "headers": {**authorization, **(headers or {})}, **options}
    return request


def form_post(path: str, fields, auth=basic(), headers=None, **options):
    """A POST of ``fields(state)``: a dict (form-encoded) or a str (raw, as FORM unless told)."""
    def request(w, s):
        data = fields(s)
        if isinstance(data, str):
            options.setdefault("content_type", FORM)
        return {"method": "POST", "path": path, "data": data, "headers": {**auth(w), **(headers or {})}, **options}
    return request


def token_field(key="access_token", hint=None, **extra):
    def fields(s):
        return {"token": s[key] if key in s else key, **({"token_type_hint": hint} if hint is not None else {}),
                **extra}
    return fields


def introspect(key="access_token", hint=None, **options):
    return form_post("/introspect", token_field(key, hint), **options)


def revoke(key="access_token", hint=None, **options):
    return form_post("/revoke", token_field(key, hint), **options)


def grant(fields, **options):
    return form_post("/token", lambda s: fields(s) if callable(fields) else fields, **options)


def refresh(key="refresh_token", **extra):
    def fields(s):
        return {"grant_type": "refresh_token", "refresh_token": s[key] if key in s else key, **extra}
    return fields


def refresh_of(generation: str, **extra):
    return lambda s: {"grant_type": "refresh_token", "refresh_token": s[generation]["refresh_token"], **extra}


def exchange(**change):
    """The prepared code's form, with ``change`` (None drops a field)."""
    def fields(s):
        form = {**s["form"], **change}
        return {k: v for k, v in form.items() if v is not None}
    return fields


# Host headers werkzeug does not take (get_host: none at all; Map.bind: BadHost),
# each over the scheme that would otherwise make the request plain.
HOSTS = {
    "host-bad-port": ("http://localhost", "localhost:abc"),
    "host-port-out-of-range": ("https://id.example.test", "id.example.test:99999"),
    "host-underscore": ("https://id.example.test", "id_op.example.test"),
    "host-space": ("https://id.example.test", "id example.test"),
    "host-empty": ("https://id.example.test", ""),
    "host-label-too-long": ("https://id.example.test", "a" * 64 + ".example.test"),
    "host-empty-label": ("https://id.example.test", "id..example.test"),
}


WEBSOCKET = {"Connection": "Upgrade", "Upgrade": "websocket"}


def host_cases(prepare, request) -> list:
    """``request`` with each of HOSTS: Flask refuses them (400)."""
    def on(base_url, host):
        def changed(w, s):
            options = request(w, s)
            return {**options, "base_url": base_url, "headers": {**options.get("headers", {}), "Host": host}}
        return changed
    return [case(name, prepare, on(*HOSTS[name])) for name in HOSTS]


@dataclass(frozen=True)
class Case:
    id: str
    prepare: Callable  # (w) -> the state of one path's request
    request: Callable  # (w, state) -> werkzeug Client.open's keyword arguments
    lean: bool = False  # plain: the lean path answers it itself
    between: Callable | None = None  # (w), once both paths' states are prepared; may return an undo


def case(id, prepare, request, lean=False, between=None):
    return pytest.param(Case(id, prepare, request, lean, between), id=id)


def with_cookies(request):
    """``request`` as a browser signed in to the OP sends it: its cookies along."""
    def changed(w, s):
        options = request(w, s)
        cookies = "; ".join(f"{c.key}={c.value}" for c in w.browser._cookies.values())
        return {**options, "headers": {**options.get("headers", {}), "Cookie": cookies}}
    return changed


def userinfo_cases():
    ui = userinfo
    return [
        case("openid", issued("openid"), ui(), lean=True),
        case("all-scopes", issued(), ui(), lean=True),
        case("all-scopes-post", issued(), ui(method="POST"), lean=True),
        case("email-only", issued("openid email"), ui(), lean=True),
        case("claims-request", issued(claims=json.dumps({"userinfo": {"customer_number": None,
                                                                      "email": {"essential": True}}})),
             ui(), lean=True),
        case("every-claim-asked", issued(claims=EVERY_CLAIM), ui(), lean=True),
        case("every-claim-asked-openid-only", issued("openid", claims=EVERY_CLAIM), ui(), lean=True),
        case("pairwise", issued(name="pairwise"), ui(), lean=True),
        case("es256-client", issued(name="es256"), ui(), lean=True),
        case("english-customer", issued(claims=EVERY_CLAIM), ui(), lean=True, between=customer(locale="en")),
        case("address-unverified", issued(claims=EVERY_CLAIM), ui(), lean=True,
             between=customer(login_id_verified=False)),
        case("dpop-bound-as-bearer", dpop_bound(), ui()),
        case("dpop-bound-as-dpop-without-proof", dpop_bound(), ui(scheme="DPoP ")),
        case("narrow-client", issued("openid profile email", name="narrow"), ui(), lean=True),
        case("lowercase-bearer", issued(), ui(scheme="bearer "), lean=True),
        case("uppercase-bearer", issued(), ui(scheme="BEARER "), lean=True),
        case("https", issued(), ui(base_url="https://id.example.test"), lean=True),
        case("browser-cookies", issued(), with_cookies(ui()), lean=True),
        case("browser-cookies-post", issued(), with_cookies(ui(method="POST")), lean=True),
        case("after-rotation", rotated(), ui(token=lambda s: s["old"]["access_token"]), lean=True),
        case("rotated-successor", rotated(), ui(token=lambda s: s["new"]["access_token"]), lean=True),
        case("two-spaces", issued(), ui(scheme="Bearer  ")),
        case("trailing-space", issued(), ui(after=" ")),
        case("trailing-junk", issued(), ui(after=" extra")),
        case("dpop-scheme-no-proof", issued(), ui(scheme="DPoP ")),
        case("basic-scheme", issued(), ui(scheme="Basic ")),
        case("bearer-alone", issued(), ui(token=lambda s: "", scheme="Bearer")),
        case("no-authorization", issued(), ui(scheme=None)),
        case("token-in-body", issued(), ui(scheme=None, method="POST",
                                           data="access_token=", content_type=FORM)),
        case("token-in-body-and-header", issued(), lambda w, s: ui(method="POST")(w, s) | {
            "data": {"access_token": s["access_token"]}}),
        case("token-in-body-only", issued(), lambda w, s: {"method": "POST", "path": "/userinfo",
                                                           "data": {"access_token": s["access_token"]}}),
        case("empty-form-body", issued(), ui(method="POST", data="", content_type=FORM)),
        case("json-body", issued(), ui(method="POST", data="{}", content_type="application/json")),
        # A GET with a body: Flask's hooks read a form or JSON one.
        case("get-form-body-nul", issued(), ui(data="x=%00", content_type=FORM)),
        case("get-form-body-too-long", issued(), ui(data="x=" + "a" * 70_000, content_type=FORM)),
        case("get-json-body-nul", issued(), ui(data='{"x": "\\u0000"}', content_type="application/json")),
        case("get-json-body-too-deep", issued(), ui(data="[" * 5000 + "]" * 5000, content_type="application/json")),
        case("get-form-body", issued(), ui(data="access_token=x", content_type=FORM)),
        case("get-body-without-type", issued(), ui(data="x=%00")),
        case("get-empty-form", issued(), ui(data="", content_type=FORM), lean=True),
        case("get-empty-json", issued(), ui(data="", content_type="application/json"), lean=True),
        case("get-content-type-nul", issued(), ui(headers={"Content-Type": "text/plain\x00"})),
        case("get-content-type-non-ascii", issued(), ui(headers={"Content-Type": "text/pl\u00e9in"})),
        case("header-name-nul", issued(), ui(environ_overrides={"HTTP_X_A\x00B": "1"})),
        case("token-in-query", issued(), lambda w, s: ui()(w, s) | {"query_string": {"access_token": "x"}}),
        case("query-string", issued(), ui(query_string="x=1")),
        case("registered-origin", issued(), ui(headers={"Origin": REGISTERED_ORIGIN})),
        case("unregistered-origin", issued(), ui(headers={"Origin": OTHER_ORIGIN})),
        case("plain-http", issued(), ui(base_url="http://op.example.test")),
        case("non-ascii-agent", issued(), ui(headers={"User-Agent": "r\u00e9p"})),
        case("put", issued(), ui(method="PUT")),
        case("head", issued(), ui(method="HEAD")),
        case("unknown-token", nothing, ui(token=lambda s: "unknown-token")),
        case("refresh-token", issued(), ui(token=lambda s: s["refresh_token"])),
        case("id-token", issued(), ui(token=lambda s: s["id_token"])),
        case("client-credentials-token", client_token(), ui()),
        case("revoked", revoked("access_token"), ui()),
        case("family-revoked", revoked("refresh_token"), ui()),
        case("replayed-family", replayed(), ui(token=lambda s: s["new"]["access_token"])),
        case("expired", issued(), ui(), between=advance("ACCESS_TOKEN_LIFETIME")),
        case("last-second", issued(), ui(), lean=True, between=advance("ACCESS_TOKEN_LIFETIME", 1)),
        case("locked-customer", issued(), ui(), between=lock_customer),
        case("disabled-client", issued(), ui(), between=disable("rp")),
        case("without-openid", issued("profile email"), ui()),
        case("host-loopback-ipv6", issued(), ui(headers={"Host": "[::1]:8080"}), lean=True),
        case("host-trailing-dot", issued(), ui(base_url="https://id.example.test", headers={"Host": "id.example.test."}),
             lean=True),
        *host_cases(issued(), ui()),
        case("websocket-upgrade", issued(), ui(headers=WEBSOCKET)),
    ]


def introspection_cases():
    it = introspect
    return [
        case("access", issued(), it(), lean=True),
        case("access-hint-access", issued(), it(hint="access_token"), lean=True),
        case("access-hint-refresh", issued(), it(hint="refresh_token"), lean=True),
        case("refresh", issued(), it("refresh_token"), lean=True),
        case("refresh-hint-refresh", issued(), it("refresh_token", "refresh_token"), lean=True),
        case("refresh-hint-access", issued(), it("refresh_token", "access_token"), lean=True),
        case("email-scope-username", issued("openid email offline_access"), it(), lean=True),
        case("client-credentials", client_token(), it(), lean=True),
        case("client-credentials-no-scope", client_token(scope=None), it(), lean=True),
        case("other-clients-client-credentials", client_token("other"), it(), lean=True),
        case("other-clients-token", issued(name="other"), it(), lean=True),
        case("pairwise", issued(name="pairwise"), it(auth=basic("pairwise")), lean=True),
        case("dpop-bound", dpop_bound(), it(), lean=True),
        case("dpop-bound-refresh", dpop_bound(), it("refresh_token"), lean=True),
        case("dpop-bound-client-credentials", dpop_client_token, it(auth=basic("bound")), lean=True),
        case("pairwise-refresh", issued(name="pairwise"), it("refresh_token", auth=basic("pairwise")), lean=True),
        case("unknown", nothing, it("unknown-token"), lean=True),
        case("id-token", issued(), it("id_token"), lean=True),
        case("revoked-access", revoked("access_token"), it(), lean=True),
        case("revoked-family-refresh", revoked("refresh_token"), it("refresh_token"), lean=True),
        case("revoked-client-credentials", revoked("access_token", client_token()), it(), lean=True),
        case("rotated-refresh", rotated(), it("refresh_token"), lean=True),
        case("access-after-rotation", rotated(), it(), lean=True),
        case("expired-access", issued(), it(), lean=True, between=advance("ACCESS_TOKEN_LIFETIME")),
        case("access-last-second", issued(), it(), lean=True, between=advance("ACCESS_TOKEN_LIFETIME", 1)),
        case("refresh-last-second", issued(), it("refresh_token"), lean=True,
             between=advance("REFRESH_TOKEN_IDLE_LIFETIME", 1)),
        case("refresh-after-access-expiry", issued(), it("refresh_token"), lean=True,
             between=advance("ACCESS_TOKEN_LIFETIME")),
        case("expired-refresh", issued(), it("refresh_token"), lean=True,
             between=advance("REFRESH_TOKEN_IDLE_LIFETIME")),
        case("expired-client-credentials", client_token(), it(), lean=True,
             between=advance("ACCESS_TOKEN_LIFETIME")),
        case("locked-customer", issued(), it(), lean=True, between=lock_customer),
        case("https", issued(), it(base_url="https://id.example.test"), lean=True),
        case("browser-cookies", issued(), with_cookies(it()), lean=True),
        case("hint-id-token", issued(), it(hint="id_token")),
        case("hint-empty", issued(), it(hint="")),
        case("wrong-secret", issued(), it(auth=basic("rp", "wrong"))),
        case("other-clients-secret", issued(), it(auth=lambda w: basic("rp")(w) | {
            "Authorization": basic("other")(w)["Authorization"]})),
        case("unknown-client", issued(), it(auth=lambda w: RelyingParty(w.app, None, "nobody", "x").auth())),
        case("lowercase-basic", issued(), it(auth=lambda w: {
            "Authorization": "basic " + basic()(w)["Authorization"][6:]})),
        case("post-client-with-basic", issued(), it(auth=basic("poster"))),
        case("post-client-in-body", issued(), form_post("/introspect", lambda s: s["poster_form"], auth=no_auth)),
        case("basic-client-in-body", issued(), form_post("/introspect", lambda s: s["rp_form"], auth=no_auth)),
        case("public-client", issued(), form_post("/introspect", lambda s: {"token": s["access_token"],
                                                                            "client_id": s["public_id"]},
                                                  auth=no_auth)),
        case("no-authentication", issued(), it(auth=no_auth)),
        case("disabled-client", issued(), it(), between=disable("rp")),
        case("repeated-token", issued(), form_post("/introspect", lambda s: f"token={s['access_token']}&token=x")),
        case("extra-field", issued(), form_post("/introspect", token_field(foo="bar"))),
        case("client-id-field", issued(), form_post("/introspect", lambda s: {
            "token": s["access_token"], "client_id": s["rp_id"]})),
        case("empty-pairs", issued(), form_post("/introspect", lambda s: f"&&token={s['access_token']}&&"), lean=True),
        case("many-empty-pairs", issued(), form_post("/introspect", lambda s: f"token={s['access_token']}" + "&" * 3000),
             lean=True),
        case("percent-encoded-name", issued(), form_post("/introspect", lambda s: f"%74oken={s['access_token']}"),
             lean=True),
        case("plus-in-value", issued(), form_post("/introspect", lambda s: f"token={s['access_token']}+"), lean=True),
        case("semicolon", issued(), form_post("/introspect", lambda s: f"token={s['access_token']};x=1"), lean=True),
        case("utf8-value", issued(), form_post("/introspect", lambda s: "token=%E3%83%88"), lean=True),
        case("not-utf8-value", issued(), form_post("/introspect", lambda s: "token=%FF")),
        case("empty-token", issued(), form_post("/introspect", lambda s: "token=")),
        case("no-token", issued(), form_post("/introspect", lambda s: "token_type_hint=access_token")),
        case("charset", issued(), it(content_type=FORM + "; charset=utf-8")),
        case("json", issued(), form_post("/introspect", lambda s: json.dumps({"token": s["access_token"]}),
                                         content_type="application/json")),
        case("query-string", issued(), it(query_string="x=1")),
        case("registered-origin", issued(), it(headers={"Origin": REGISTERED_ORIGIN})),
        case("dpop-header", issued(), it(headers={"DPoP": "not-a-proof"})),
        case("header-name-nul", issued(), it(environ_overrides={"HTTP_X_A\x00B": "1"})),
        case("get", issued(), lambda w, s: {"method": "GET", "path": "/introspect", "headers": basic()(w)}),
        *host_cases(issued(), it()),
        case("websocket-upgrade", issued(), it(headers=WEBSOCKET)),
    ]


def revocation_cases():
    rv = revoke
    long_agent = {"User-Agent": "agent/" + "x" * 600}
    return [
        case("access", issued(), rv(), lean=True),
        case("access-hint-refresh", issued(), rv(hint="refresh_token"), lean=True),
        case("refresh", issued(), rv("refresh_token"), lean=True),
        case("refresh-hint-refresh", issued(), rv("refresh_token", "refresh_token"), lean=True),
        case("refresh-hint-access", issued(), rv("refresh_token", "access_token"), lean=True),
        case("client-credentials", client_token(), rv(), lean=True),
        case("client-credentials-again", revoked("access_token", client_token()), rv(), lean=True),
        case("already-revoked", revoked("access_token"), rv(), lean=True),
        case("family-revoked", revoked("refresh_token"), rv("refresh_token"), lean=True),
        case("rotated-refresh", rotated(), rv("refresh_token"), lean=True),
        case("access-after-rotation", rotated(), rv(), lean=True),
        case("unknown", nothing, rv("unknown-token"), lean=True),
        case("id-token", issued(), rv("id_token"), lean=True),
        case("expired-access", issued(), rv(), lean=True, between=advance("ACCESS_TOKEN_LIFETIME")),
        case("expired-client-credentials", client_token(), rv(), lean=True, between=advance("ACCESS_TOKEN_LIFETIME")),
        case("locked-customer", issued(), rv(), lean=True, between=lock_customer),
        case("pairwise", issued(name="pairwise"), rv("refresh_token", auth=basic("pairwise")), lean=True),
        case("dpop-bound", dpop_bound(), rv(), lean=True),
        case("dpop-bound-client-credentials", dpop_client_token, rv(auth=basic("bound")), lean=True),
        case("long-user-agent", issued(), rv(headers=long_agent), lean=True),
        case("empty-user-agent", issued(), rv(headers={"User-Agent": ""}), lean=True),
        case("https", issued(), rv(base_url="https://id.example.test"), lean=True),
        case("browser-cookies", issued(), with_cookies(rv()), lean=True),
        case("other-clients-token", issued(name="other"), rv()),
        case("other-clients-client-credentials", client_token("other"), rv()),
        case("wrong-secret", issued(), rv(auth=basic("rp", "wrong"))),
        case("hint-id-token", issued(), rv(hint="id_token")),
        case("registered-origin", issued(), rv(headers={"Origin": REGISTERED_ORIGIN})),
        case("unregistered-origin", issued(), rv(headers={"Origin": OTHER_ORIGIN})),
        case("non-ascii-agent", issued(), rv(headers={"User-Agent": "r\u00e9p"})),
        case("extra-field", issued(), form_post("/revoke", token_field(foo="bar"))),
        case("repeated-token", issued(), form_post("/revoke", lambda s: f"token={s['access_token']}&token=x")),
        case("empty-token", issued(), form_post("/revoke", lambda s: "token=")),
        case("post-client-in-body", issued(), form_post("/revoke", lambda s: s["poster_form"], auth=no_auth)),
        case("query-string", issued(), rv(query_string="x=1")),
        case("dpop-header", issued(), rv(headers={"DPoP": "not-a-proof"})),
        case("header-name-nul", issued(), rv(environ_overrides={"HTTP_X_A\x00B": "1"})),
        *host_cases(issued(), rv()),
    ]


def client_credentials_cases():
    def cc(scope=None, name="rp", **options):
        return grant({"grant_type": "client_credentials", **({"scope": scope} if scope is not None else {})},
                     auth=basic(name), **options)

    return [
        case("no-scope", nothing, cc(), lean=True),
        case("openid", nothing, cc("openid"), lean=True),
        case("reordered", nothing, cc("profile openid"), lean=True),
        case("service", nothing, cc("openid profile", "service"), lean=True),
        case("offline-access", nothing, cc("offline_access openid", "service"), lean=True),
        case("pairwise-client", nothing, cc("openid", "pairwise"), lean=True),
        case("narrow-client-wider-scope", nothing, cc("openid email", "narrow"), lean=True),
        case("narrow-client-only-unregistered", nothing, cc("email phone", "narrow"), lean=True),
        case("narrow-client-within", nothing, cc("profile openid", "narrow"), lean=True),
        case("https", nothing, cc("openid", base_url="https://id.example.test"), lean=True),
        case("browser-cookies", issued(), with_cookies(cc("openid")), lean=True),
        case("unknown-scope", nothing, cc("openid admin")),
        case("repeated-scope-value", nothing, cc("openid openid")),
        case("empty-scope", nothing, cc("")),
        case("double-space", nothing, cc("openid  profile")),
        case("not-allowed", nothing, cc("openid", "site")),
        case("wrong-secret", nothing, grant({"grant_type": "client_credentials"}, auth=basic("rp", "wrong"))),
        case("unknown-client", nothing, grant({"grant_type": "client_credentials"},
                                              auth=lambda w: RelyingParty(w.app, None, "nobody", "x").auth())),
        case("post-client-in-body", nothing, form_post("/token", lambda s: {"grant_type": "client_credentials",
                                                                            **s["poster_form"]}, auth=no_auth)),
        case("post-client-with-basic", nothing, cc("openid", "poster")),
        case("public-client", nothing, form_post("/token", lambda s: {"grant_type": "client_credentials",
                                                                      "client_id": s["public_id"]}, auth=no_auth)),
        case("dpop-bound-client", nothing, cc("openid", "bound")),
        case("registered-origin", nothing, cc("openid", headers={"Origin": REGISTERED_ORIGIN})),
        case("unregistered-origin", nothing, cc("openid", headers={"Origin": OTHER_ORIGIN})),
        case("dpop-header", nothing, cc("openid", headers={"DPoP": "not-a-proof"})),
        case("header-name-nul", nothing, cc("openid", environ_overrides={"HTTP_X_A\x00B": "1"})),
        case("extra-field", nothing, grant({"grant_type": "client_credentials", "resource": "https://api.test"})),
        case("client-id-field", nothing, form_post("/token", lambda s: {"grant_type": "client_credentials",
                                                                        "client_id": s["rp_id"]})),
        case("repeated-grant-type", nothing, form_post("/token", lambda s: "grant_type=client_credentials"
                                                                           "&grant_type=client_credentials")),
        case("unknown-grant", nothing, grant({"grant_type": "password", "username": "a", "password": "b"})),
        case("no-grant-type", nothing, grant({"scope": "openid"})),
        case("get", nothing, lambda w, s: {"method": "GET", "path": "/token", "headers": basic()(w)}),
        case("json", nothing, form_post("/token", lambda s: '{"grant_type": "client_credentials"}',
                                        content_type="application/json")),
        *host_cases(nothing, cc("openid")),
        case("websocket-upgrade", nothing, cc("openid", headers=WEBSOCKET)),
    ]


def refresh_cases():
    rf = refresh
    return [
        case("plain", issued(), grant(rf()), lean=True),
        case("narrower", issued(), grant(rf(scope="openid offline_access")), lean=True),
        case("without-offline-access", issued(), grant(rf(scope="openid profile")), lean=True),
        case("same-scope-reordered", issued(), grant(rf(scope="offline_access contract phone email profile openid")),
             lean=True),
        case("successor", rotated(), grant(refresh_of("new")), lean=True),
        case("pairwise", issued(name="pairwise"), grant(rf(), auth=basic("pairwise")), lean=True),
        case("narrow-client", issued("openid profile offline_access", name="narrow"), grant(rf(), auth=basic("narrow")),
             lean=True),
        case("site-client", issued(name="site"), grant(rf(), auth=basic("site")), lean=True),
        case("claims-asked", issued(claims=EVERY_CLAIM), grant(rf()), lean=True),
        case("dpop-bound-family", dpop_bound(), grant(rf()), lean=True),
        case("after-access-expiry", issued(), grant(rf()), lean=True, between=advance("ACCESS_TOKEN_LIFETIME")),
        case("https", issued(), grant(rf(), base_url="https://id.example.test"), lean=True),
        case("browser-cookies", issued(), with_cookies(grant(rf())), lean=True),
        case("wider", issued("openid profile offline_access"), grant(rf(scope="openid email offline_access"))),
        case("unknown-scope-value", issued(), grant(rf(scope="openid admin"))),
        case("empty-scope", issued(), grant(rf(scope=""))),
        case("double-space-scope", issued(), grant(rf(scope="openid  offline_access"))),
        case("replayed", rotated(), grant(refresh_of("old"))),
        case("replayed-narrower", rotated(), grant(refresh_of("old", scope="openid offline_access"))),
        case("revoked-family", revoked("refresh_token"), grant(rf())),
        case("access-revoked", revoked("access_token"), grant(rf())),
        case("expired", issued(), grant(rf()), between=advance("REFRESH_TOKEN_IDLE_LIFETIME")),
        case("last-second", issued(), grant(rf()), lean=True, between=advance("REFRESH_TOKEN_IDLE_LIFETIME", 1)),
        case("other-clients", issued(name="other"), grant(rf())),
        case("unknown", nothing, grant(rf("unknown-token"))),
        case("access-token-as-refresh", issued(), grant(rf("access_token"))),
        case("locked-customer", issued(), grant(rf()), between=lock_customer),
        case("client-without-refresh-grant", issued(), grant(rf(), auth=basic("once"))),
        case("wrong-secret", issued(), grant(rf(), auth=basic("rp", "wrong"))),
        case("empty-refresh-token", issued(), grant({"grant_type": "refresh_token", "refresh_token": ""})),
        case("no-refresh-token", issued(), grant({"grant_type": "refresh_token"})),
        case("repeated-refresh-token", issued(), form_post("/token", lambda s: "grant_type=refresh_token"
                                                                               f"&refresh_token={s['refresh_token']}"
                                                                               f"&refresh_token={s['refresh_token']}")),
        case("registered-origin", issued(), grant(rf(), headers={"Origin": REGISTERED_ORIGIN})),
        case("extra-field", issued(), grant(rf(resource="https://api.test"))),
        case("client-id-field", issued(), grant(lambda s: {**rf()(s), "client_id": s["rp_id"]})),
        case("replayed-family-successor", replayed(), grant(refresh_of("new"))),
        case("disabled-client", issued(), grant(rf()), between=disable("rp")),
        *host_cases(issued(), grant(rf())),
    ]


def code_cases():
    ex = exchange
    return [
        case("openid", code(scope="openid"), grant(ex()), lean=True),
        case("all-scopes", code(scope=ALL), grant(ex()), lean=True),
        case("email-offline", code(scope="openid email offline_access"), grant(ex()), lean=True),
        case("without-openid", code(scope="profile email"), grant(ex()), lean=True),
        case("claims-request", code(scope=ALL, claims=json.dumps({"id_token": {"name": None, "customer_number": None},
                                                                  "userinfo": {"email": None}})),
             grant(ex()), lean=True),
        case("every-claim-asked", code(scope=ALL, claims=EVERY_CLAIM), grant(ex()), lean=True),
        case("every-claim-asked-openid-only", code(scope="openid", claims=EVERY_CLAIM), grant(ex()), lean=True),
        case("es256-client", code("es256", scope=ALL), grant(ex(), auth=basic("es256")), lean=True),
        case("english-customer", code(scope=ALL, claims=EVERY_CLAIM), grant(ex()), lean=True,
             between=customer(locale="en", login_id_verified=False)),
        case("max-age", code(scope="openid", max_age="3600"), grant(ex()), lean=True),
        case("pairwise", code("pairwise", scope=ALL), grant(ex(), auth=basic("pairwise")), lean=True),
        case("narrow-client", code("narrow", scope=ALL), grant(ex(), auth=basic("narrow")), lean=True),
        case("client-without-refresh-grant", code("once", scope=ALL), grant(ex(), auth=basic("once")), lean=True),
        case("https", code(scope=ALL), grant(ex(), base_url="https://id.example.test"), lean=True),
        case("browser-cookies", code(), with_cookies(grant(ex())), lean=True),
        case("wrong-verifier", code(), grant(ex(code_verifier="x" * 43))),
        case("short-verifier", code(), grant(ex(code_verifier="short"))),
        case("verifier-bad-characters", code(), grant(ex(code_verifier="!" * 43))),
        case("no-verifier", code(), grant(ex(code_verifier=None))),
        case("wrong-redirect-uri", code(), grant(ex(redirect_uri="https://rp.example.test/other"))),
        case("no-redirect-uri", code(), grant(ex(redirect_uri=None))),
        case("authorized-without-redirect-uri", code(redirect_uri=None), grant(ex(redirect_uri=REDIRECT))),
        case("authorized-without-redirect-uri-none-sent", code(redirect_uri=None), grant(ex(redirect_uri=None))),
        case("reused", spent_code(), grant(ex())),
        case("expired", code(), grant(ex()), between=advance("AUTHORIZATION_CODE_LIFETIME")),
        case("last-second", code(), grant(ex()), lean=True, between=advance("AUTHORIZATION_CODE_LIFETIME", 1)),
        case("other-clients-code", code("other"), grant(ex(redirect_uri=REDIRECT))),
        case("unknown", code(), grant(ex(code="unknown-code"))),
        case("empty-code", code(), grant(ex(code=""))),
        case("locked-customer", code(), grant(ex()), between=lock_customer),
        case("dpop-key", code(dpop_jkt="A" * 43), grant(ex())),
        case("client-id-field", code(), grant(lambda s: {**ex()(s), "client_id": s["rp_id"]})),
        case("extra-field", code(), grant(ex(scope="openid"))),
        case("wrong-secret", code(), grant(ex(), auth=basic("rp", "wrong"))),
        case("registered-origin", code(), grant(ex(), headers={"Origin": REGISTERED_ORIGIN})),
        case("unregistered-origin", code(), grant(ex(), headers={"Origin": OTHER_ORIGIN})),
        case("dpop-header", code(), grant(ex(), headers={"DPoP": "not-a-proof"})),
        case("repeated-code", code(), form_post("/token", lambda s: urlencode(ex()(s)) + f"&code={s['form']['code']}")),
        *host_cases(code(), grant(ex())),
    ]


ENDPOINTS = {"userinfo": userinfo_cases(), "introspection": introspection_cases(), "revocation": revocation_cases(),
             "client_credentials": client_credentials_cases(), "refresh_token": refresh_cases(),
             "authorization_code": code_cases()}
CASES = [pytest.param(p.values[0], id=f"{endpoint}-{p.id}") for endpoint, params in ENDPOINTS.items()
         for p in params]


# --- comparing ------------------------------------------------------------------------------


class State(dict):
    """A path's prepared credentials, and what several requests name: client
    IDs, client_secret_post's form (looked up when asked for)."""

    def __init__(self, world: World, prepared: dict) -> None:
        super().__init__(prepared)
        self.world = world

    def __missing__(self, key: str):
        clients, token = self.world.clients, self.get("access_token", "unknown")
        if key in ("rp_id", "public_id"):
            return clients[key[:-3]].client_id
        if key in ("poster_form", "rp_form"):
            rp = clients[key[:-5]]
            return {"token": token, "client_id": rp.client_id, "client_secret": rp.client_secret}
        raise KeyError(key)


def jwt_view(w: World, value: str, access_token: str | None = None):
    """A JWT by its verified header and claims; the values an issue makes its own put aside."""
    try:
        token = jwt.decode(value, w.keys, algorithms=["RS256", "ES256", "PS256", "EdDSA"])
    except (JoseError, ValueError) as error:
        return f"<not verified: {type(error).__name__}>"
    claims = dict(token.claims)
    if "jti" in claims:
        claims["jti"] = "<jti>"
    if "at_hash" in claims:  # OIDC Core 3.1.3.6: of the access token answered with it
        digest = hashlib.sha256(access_token.encode()).digest() if access_token else b""
        right = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode() == claims["at_hash"]
        claims["at_hash"] = "<the access token's>" if right else "<not the access token's>"
    return {"header": dict(token.header), "claims": claims}


def body_view(w: World, response):
    data = response.get_data()
    if response.mimetype == "application/json" and data:
        body = json.loads(data)
        if isinstance(body, dict):
            access_token = body.get("access_token")
            for field in ("access_token", "id_token"):
                if isinstance(body.get(field), str) and body[field].count(".") == 2:
                    body[field] = jwt_view(w, body[field], access_token)
            if isinstance(body.get("refresh_token"), str):
                body["refresh_token"] = f"<opaque, {len(body['refresh_token'])} characters>"
        return body
    if response.mimetype == "application/jwt":
        return jwt_view(w, data.decode())
    return data.decode(errors="replace")


def header_view(response) -> list:
    return sorted((name, value) for name, value in response.headers.items() if name != "Content-Length")


TABLES = {"tokens": Token, "authorization_codes": AuthorizationCode, "audit_events": AuditEvent,
          "revoked_access_tokens": RevokedAccessToken}
# What a request could change of a row older than its case, counted.
STATES = {"tokens": ("revoked_at", "rotated_at"), "authorization_codes": ("used_at", "expires_at"),
          "audit_events": ()}


def watermarks(app) -> dict:
    """Per table, the first id a row of the case will have: older rows are earlier cases'."""
    with app.app_context():
        marks = {name: (db.session.scalar(select(func.max(model.__table__.c.id))) or 0) + 1
                 for name, model in TABLES.items() if name in STATES}
        db.session.remove()
        return marks


def snapshot(app, marks: dict) -> dict:
    """The case's rows, whole; of older rows, how many there are and how many
    have each state column set (a request that touched one shows)."""
    with app.app_context():
        tables = {}
        for name, model in TABLES.items():
            table = model.__table__
            key = table.primary_key.columns.values()[0]
            query = select(table) if name not in STATES else select(table).where(key >= marks[name])
            tables[name] = {row[key.name]: dict(row) for row in db.session.execute(query).mappings()}
            if name in STATES:
                older = select(func.count(), *(func.count(table.c[column]) for column in STATES[name]),
                               *(func.sum(table.c[column]) for column in STATES[name])).where(key < marks[name])
                tables[f"older {name}"] = tuple(db.session.execute(older).one())
        db.session.remove()
        return tables


def row_view(row: dict, families: set) -> tuple:
    """A row with what differs between two equal requests put aside: ids,
    digests, secrets; a family only as old or new."""
    view = {}
    for column, value in row.items():
        if column == "id":
            continue
        if value is not None and (column.endswith("_digest") or column in ("jti", "code_challenge")):
            value = f"<{column}>"
        elif column == "family_id" and value is not None:
            value = "<an existing family>" if value in families else "<a new family>"
        elif column == "authorization_code_id" and value is not None:
            value = "<a code>"
        view[column] = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
    return tuple(sorted(view.items()))


def changes(before: dict, after: dict) -> list:
    """What one request wrote: new, changed and removed rows, by table."""
    families = {row["family_id"] for row in before["tokens"].values()}
    found = []
    for table in STATES:
        if before[f"older {table}"] != after[f"older {table}"]:
            found.append((table, "older rows changed", before[f"older {table}"], after[f"older {table}"]))
    for table in TABLES:
        old, new = before[table], after[table]
        for key, row in new.items():
            if key not in old:
                found.append((table, "new", row_view(row, families)))
            elif old[key] != row:
                found.append((table, "changed", row_view(old[key], families), row_view(row, families)))
        found += [(table, "removed", row_view(old[key], families)) for key in old.keys() - new.keys()]
    return sorted(found, key=repr)


def counted() -> dict:
    """The OP's counters (ops), and how many requests each latency series has seen."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in REGISTRY.collect() if metric.name.startswith("idp_")
            for sample in metric.samples if sample.name.endswith(("_total", "_count"))}


def increments(before: dict, after: dict) -> dict:
    return {key: value - before.get(key, 0) for key, value in after.items() if value != before.get(key, 0)}


@pytest.mark.parametrize("case", CASES)
def test_both_paths_answer_alike(world, case):
    w = world
    marks = watermarks(w.app)
    states = [State(w, case.prepare(w)) for _ in range(2)]  # Flask's, the lean path's
    undo = case.between(w) if case.between is not None else None
    try:
        seen = {}
        for path, state in (("flask", states[0]), ("lean", states[1])):
            options = case.request(w, state)
            before, metrics = snapshot(w.app, marks), counted()
            del w.flask_saw[:]
            response = getattr(w, path).open(**options, environ_base=ENVIRON)
            # Byte for byte where no token is issued; UserInfo's members may come in another order (lean.py).
            seen[path] = {"raw": response.get_data() if options["path"] in ("/introspect", "/revoke") else None,
                          "status": response.status, "headers": header_view(response),
                          "body": body_view(w, response), "writes": changes(before, snapshot(w.app, marks)),
                          "counted": increments(metrics, counted()), "flask saw": list(w.flask_saw)}
    finally:
        if undo is not None:
            undo()
    if case.lean:
        assert seen["lean"]["flask saw"] == [], "a plain request the lean path should answer itself"
    del seen["lean"]["flask saw"], seen["flask"]["flask saw"]
    assert seen["lean"] == seen["flask"]


def wsgi_call(application, environ) -> tuple:
    """``application``'s answer to a WSGI request built by hand: status, headers but Content-Length, body."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, headers

    body = b"".join(application(environ, start_response))
    return answer["status"], sorted(h for h in answer["headers"] if h[0] != "Content-Length"), json.loads(body)


@pytest.mark.parametrize("server_name, server_port", [
    ("id.example.test", "443"),  # the server's name stands in for the host
    ("/run/idp.sock", ""),  # a Unix socket: no host at all, Authlib's insecure_transport
    ("a" * 64 + ".example.test", "443"),  # a name werkzeug cannot route by: BadHost
])
def test_a_request_without_a_host_header(world, server_name, server_port):
    """HTTP/1.0 has no Host header: werkzeug takes the server's name and
    port for it, and a Unix socket gives none. The lean path takes the host
    as the Flask path does."""
    w = world
    body = b"grant_type=client_credentials&scope=openid"
    answers = [wsgi_call(application, {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/token", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.0", "SERVER_NAME": server_name, "SERVER_PORT": server_port,
        "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(body), "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "CONTENT_TYPE": FORM, "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": w.clients["rp"].auth()["Authorization"], **ENVIRON,
    }) for application in (w.flask.application, w.lean.application)]
    flask, lean = ((status, headers, {**body, "access_token": jwt_view(w, body["access_token"])}
                    if "access_token" in body else body) for status, headers, body in answers)
    assert lean == flask

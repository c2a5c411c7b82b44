"""Two OP processes on different loopback ports sharing PostgreSQL and Redis,
as behind a load balancer: whatever one node does, the other knows."""

import os
import re
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp import keys
from idp.extensions import db

from ..helpers import RelyingParty, needs_postgresql, pkce_pair
from ..mailserver import free_port
from ..servers import stop_process

pytestmark = needs_postgresql


@pytest.fixture
def nodes(app, redis_url, account):
    ports = [free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"
    env = {
        **os.environ,
        "IDP_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "IDP_REDIS_URL": redis_url,
        "IDP_SECRET_KEY": app.secret_key,
        "IDP_ISSUER": issuer,
        "IDP_KEY_CACHE_SECONDS": "1",
        "IDP_CLIENT_CACHE_SECONDS": "1",
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", "flask", "--app", "idp", "run", "--host", "127.0.0.1",
                          "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            _wait_until(lambda url=url: _ready(url), f"{url} did not start")
        yield urls
    finally:
        for p in processes:
            p.terminate()
        for p in processes:
            stop_process(p)


def _ready(url):
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def _wait_until(condition, message, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(message)


def _login(browser, node, login_id="taro.itsu@example.jp", password="itscom-demo1"):
    page = browser.get(f"{node}/login", allow_redirects=False).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    return browser.post(f"{node}/login", data={"csrf_token": token, "login_id": login_id, "password": password},
                        allow_redirects=False)


def test_two_nodes_share_everything(app, client, nodes):
    a, b = nodes
    rp = RelyingParty.register(app, client)
    basic = (rp.client_id, rp.client_secret)

    # Log in on node A ...
    browser = requests.Session()
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
              "scope": "openid offline_access", "state": "s", "nonce": "n",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    assert browser.get(f"{a}/authorize", params=params, allow_redirects=False).status_code == 303
    back = _login(browser, a)
    assert back.status_code == 303
    redirect = browser.get(f"{a}{back.headers['Location']}", allow_redirects=False)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]

    # ... exchange the code on node B, refresh on A, revoke on B: A sees it inactive.
    tokens = requests.post(f"{b}/token", auth=basic, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier}).json()
    assert "refresh_token" in tokens, tokens
    refreshed = requests.post(f"{a}/token", auth=basic, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}).json()
    assert "access_token" in refreshed, refreshed
    assert requests.post(f"{b}/revoke", auth=basic, data={"token": refreshed["access_token"]}).status_code == 200
    assert requests.post(f"{a}/introspect", auth=basic, data={"token": refreshed["access_token"]}).json() == {
        "active": False}
    # A client_credentials token, which no node stores: issued by A, revoked on B, inactive on A.
    service = requests.post(f"{a}/token", auth=basic, data={"grant_type": "client_credentials"}).json()
    assert requests.post(f"{a}/introspect", auth=basic, data={"token": service["access_token"]}).json()["active"]
    assert requests.post(f"{b}/revoke", auth=basic, data={"token": service["access_token"]}).status_code == 200
    assert requests.post(f"{a}/introspect", auth=basic, data={"token": service["access_token"]}).json() == {
        "active": False}

    # Failed logins on both nodes count against one budget (Redis): five are
    # free, the sixth must wait 1 s after the fifth and the seventh 2 s after
    # the sixth, so one of those two is refused (the delay is counted in
    # whole seconds of the nodes' real clocks). Neither node alone sees more
    # than four failures.
    answers = [_login(requests.Session(), node, password="wrong-pass").status_code for node in (a, b) * 3 + (a,)]
    assert answers[:5] == [200] * 5, answers
    assert 429 in answers[5:], answers

    # A key rotated through one node's database is in the other's JWKS.
    with app.app_context():
        new_kid = keys.rotate("ES256").kid
        db.session.commit()
    _wait_until(lambda: new_kid in {k["kid"] for k in requests.get(f"{b}/jwks").json()["keys"]},
                "node B never published the rotated key")
    with app.app_context():
        from idp.models import SigningKey

        db.session.execute(db.delete(SigningKey))
        db.session.commit()

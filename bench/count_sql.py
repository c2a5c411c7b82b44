"""Count the SQL round trips of each kind of token request, and of each step
of the full password login (bench/logins.mjs), on the bench database.

    IDP_DATABASE_URL=... IDP_SECRET_KEY=... python bench/count_sql.py

Runs the app in-process (Flask test client, same configuration as the
benchmark server) and counts, per request, what the driver sends and waits
for (tests/roundtrips.py, the counter tests/oauth/test_round_trips.py
asserts with): the pool's pre-ping, every statement, BEGIN before the first
statement of a transaction, COMMIT or ROLLBACK when a transaction is open. The first
request of each kind is a warm-up (key ring load) and is not counted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from idp import create_app  # noqa: E402
from idp.extensions import db  # noqa: E402
from tests.roundtrips import RoundTrips  # noqa: E402

CLIENT_ID = os.environ.get("BENCH_CLIENT_ID", "mypage-demo")
CLIENT_SECRET = os.environ["BENCH_CLIENT_SECRET"]
REDIRECT_URI = "http://127.0.0.1:5001/auth/callback"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()}

app = create_app()
with app.app_context():
    engine = db.engine


def measured(label: str, send, prepare=None) -> dict:
    send()  # warm-up
    if prepare is not None:
        prepare()
    with RoundTrips(engine) as trips:
        response = send()
    assert response.status_code == 200, (label, response.status_code, response.get_data(as_text=True)[:300])
    print(f"{label}: {json.dumps({'round_trips': trips.count})}")
    for line in trips.log:
        print(f"    {line}")
    return response


client = app.test_client()


def login() -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"login_id": "taro.itsu@example.jp", "password": "itscom-demo1",
                                         "csrf_token": token})
    assert answer.status_code == 303, answer.status_code


def code_and_verifier() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
              "scope": "openid profile email offline_access", "state": "s", "nonce": "n",
              "code_challenge": challenge, "code_challenge_method": "S256"}
    answer = client.get("/authorize?" + urlencode(params))
    assert answer.status_code == 302, answer.status_code
    return parse_qs(urlsplit(answer.location).query)["code"][0], verifier


login()
results = {}
measured("client_credentials", lambda: client.post("/token", headers=BASIC, data={"grant_type": "client_credentials"}))


def exchange():
    code, verifier = exchange.next
    answer = client.post("/token", headers=BASIC, data={"grant_type": "authorization_code", "code": code,
                                                        "redirect_uri": REDIRECT_URI, "code_verifier": verifier})
    exchange.last = answer.get_json()
    return answer


def next_code() -> None:  # /authorize runs outside the counted request
    exchange.next = code_and_verifier()


next_code()
measured("authorization_code", exchange, prepare=next_code)
refresh = {"token": exchange.last["refresh_token"]}


def refresh_once():
    answer = client.post("/token", headers=BASIC, data={"grant_type": "refresh_token", "refresh_token": refresh["token"]})
    if answer.status_code == 200:
        refresh["token"] = answer.get_json()["refresh_token"]
    return answer


measured("refresh_token", refresh_once)
access = exchange.last["access_token"]
measured("userinfo", lambda: client.get("/userinfo", headers={"Authorization": f"Bearer {access}"}))
measured("introspection", lambda: client.post("/introspect", headers=BASIC, data={"token": access}))
# Revocation of a live access token (a new one for the counted request:
# the warm-up spends one), then of that token again, as the benchmark's
# revocation scenario does after its first request.
live = {}


def new_access_token() -> None:
    next_code()
    live["token"] = exchange().get_json()["access_token"]


def revoke_live():
    return client.post("/revoke", headers=BASIC, data={"token": live["token"]})


new_access_token()
measured("revocation", revoke_live, prepare=new_access_token)
measured("revocation_again", revoke_live)


# The full password login as bench/logins.mjs makes it, step by step, for a
# new browser each time (the second flow is counted: the first warms up).
def login_flow(counted: bool) -> None:
    browser = app.test_client()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
              "scope": "openid profile email offline_access", "state": "s", "nonce": "n",
              "code_challenge": challenge, "code_challenge_method": "S256"}

    def step(label: str, send, status: int):
        with RoundTrips(engine) as trips:
            response = send()
        assert response.status_code == status, (label, response.status_code)
        if counted:
            print(f"{label}: {json.dumps({'round_trips': trips.count})}")
            for line in trips.log:
                print(f"    {line}")
        return response

    login_url = step("login_flow_authorize", lambda: browser.get("/authorize?" + urlencode(params)), 303).location
    page = step("login_flow_login_page", lambda: browser.get(login_url), 200).get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    back = step("login_flow_login_post", lambda: browser.post(login_url, data={
        "login_id": "taro.itsu@example.jp", "password": "itscom-demo1", "csrf_token": token}), 303).location
    answer = step("login_flow_authorize_again", lambda: browser.get(back), 302)
    code = parse_qs(urlsplit(answer.location).query)["code"][0]
    tokens = step("login_flow_token", lambda: browser.post("/token", headers=BASIC, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier}), 200).get_json()
    step("login_flow_userinfo", lambda: browser.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}), 200)


login_flow(counted=False)
login_flow(counted=True)

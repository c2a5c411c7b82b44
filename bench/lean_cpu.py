"""CPU per request of the endpoints served below Flask (idp/oauth/lean.py),
in-process, on the bench database: what a worker spends, without granian's
share or the network's. Not a test, not a throughput figure.

    IDP_DATABASE_URL=... IDP_SECRET_KEY=... BENCH_CLIENT_SECRET=... \
        python bench/lean_cpu.py [REQUESTS] [SCENARIO]

Signs in the demo customer through the Flask test client, obtains tokens by
the code flow, then calls the app's WSGI callable directly, as granian
does, REQUESTS times per scenario (after 50 to warm up), and prints the
process's CPU time (time.process_time: user + system, this process only),
the CPU time of this database's PostgreSQL backends (from /proc, where the
server runs on this machine: the statements' own cost) and the wall time
per request. With SCENARIO, runs only that one (for
py-spy: ``py-spy record --gil -- python bench/lean_cpu.py 8000 refresh_token``).
Every answer must be 200, or the run stops; it counts those Flask gave.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import secrets
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from idp import create_app  # noqa: E402
from idp.extensions import db  # noqa: E402

CLIENT_ID = os.environ.get("BENCH_CLIENT_ID", "mypage-demo")
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{os.environ['BENCH_CLIENT_SECRET']}".encode()).decode()
REDIRECT_URI = "http://127.0.0.1:5001/auth/callback"

app = create_app()
browser = app.test_client()
page = browser.get("/login").get_data(as_text=True)
csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
signed_in = browser.post("/login", data={"login_id": "taro.itsu@example.jp", "password": "itscom-demo1",
                                         "csrf_token": csrf})
assert signed_in.status_code == 303, signed_in.status_code


def code_flow() -> dict:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer = browser.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access", "state": "s", "nonce": "n",
        "code_challenge": challenge, "code_challenge_method": "S256"}))
    code = parse_qs(urlsplit(answer.location).query)["code"][0]
    return browser.post("/token", headers={"Authorization": BASIC}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier}).get_json()


def environ(path: str, body: bytes = b"", method: str = "POST", authorization: str = BASIC) -> dict:
    """A request as granian gives it to the app."""
    request = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
               "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "wrk",
               "HTTP_AUTHORIZATION": authorization, "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr}
    if body:
        request.update(CONTENT_TYPE="application/x-www-form-urlencoded", CONTENT_LENGTH=str(len(body)))
    return request


statuses: list[str] = []
to_flask: list[str] = []  # requests the lean path handed on (a client cache expiry: one per 5 s)
lean = app.wsgi_app
behind = lean.wsgi_app
lean.wsgi_app = lambda request, start_response: to_flask.append(request["PATH_INFO"]) or behind(request, start_response)


def call(request: dict) -> bytes:
    return b"".join(app.wsgi_app(request, lambda status, headers, exc_info=None: statuses.append(status)))


tokens = code_flow()
revoked = code_flow()["access_token"]
rotating = {"refresh_token": tokens["refresh_token"]}


def refresh() -> bytes:
    body = call(environ("/token", f"grant_type=refresh_token&refresh_token={rotating['refresh_token']}".encode()))
    rotating["refresh_token"] = json.loads(body)["refresh_token"]
    return body


SCENARIOS = {
    "client_credentials": lambda: call(environ("/token", b"grant_type=client_credentials")),
    "userinfo": lambda: call(environ("/userinfo", method="GET", authorization=f"Bearer {tokens['access_token']}")),
    "introspection": lambda: call(environ("/introspect", f"token={tokens['access_token']}".encode())),
    "refresh_token": refresh,
    "revocation": lambda: call(environ("/revoke", f"token_type_hint=access_token&token={revoked}".encode())),
}

def database_ticks() -> int | None:
    """CPU clock ticks (user + system) the backends serving this database have used so far."""
    with app.app_context():
        pids = db.session.scalars(db.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).all()
        db.session.rollback()
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None  # not on this machine
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
chosen = sys.argv[2:] or list(SCENARIOS)
for name in chosen:
    send = SCENARIOS[name]
    for _ in range(50):
        send()
    statuses.clear()
    to_flask.clear()
    ticks = database_ticks()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        send()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = database_ticks()
    assert set(statuses) == {"200 OK"}, (name, set(statuses))
    database = (f"{(after - ticks) * 1e6 / os.sysconf('SC_CLK_TCK') / count:.0f} µs"
                if ticks is not None and after is not None else "?")
    print(f"{name}: {cpu * 1e6 / count:.0f} µs CPU, PostgreSQL {database} CPU, {wall * 1e6 / count:.0f} µs wall"
          f" per request ({len(to_flask)} of {count} answered by Flask)")

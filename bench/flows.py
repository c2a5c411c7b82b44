"""Browser-side OIDC flows for the benchmark (loopback only, bounded).

    python bench/flows.py tokens  --out DIR --count N      # refresh-token pool + one access token

``tokens``: signs in once (one argon2 verification), then reuses the OP
session cookie for N authorize -> code -> token round trips. Each exchange
starts a new refresh-token family, so the N refresh tokens are independent
and each may be used exactly once (rotation: reuse revokes the family).

The full password login as flows/s is measured by bench/logins.mjs, a
generator that costs the shared CPUs far less than this one would.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing as mp
import os
import re
import secrets
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

BASE = os.environ.get("BENCH_BASE", "http://127.0.0.1:8000")
CLIENT_ID = os.environ.get("BENCH_CLIENT_ID", "mypage-demo")
CLIENT_SECRET = os.environ.get("BENCH_CLIENT_SECRET", "")
REDIRECT_URI = os.environ.get("BENCH_REDIRECT_URI", "http://127.0.0.1:5001/auth/callback")
LOGIN_ID = os.environ.get("BENCH_LOGIN_ID", "taro.itsu@example.jp")
PASSWORD = os.environ.get("BENCH_PASSWORD", "itscom-demo1")
SCOPE = "openid profile email offline_access"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')

assert urlsplit(BASE).hostname in ("127.0.0.1", "localhost", "::1"), "benchmark traffic stays on loopback"


def basic() -> dict:
    raw = f"{CLIENT_ID}:{CLIENT_SECRET}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(http: requests.Session) -> tuple[requests.Response, str]:
    verifier, challenge = pkce()
    params = {
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": SCOPE,
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }
    return http.get(f"{BASE}/authorize?{urlencode(params)}", allow_redirects=False), verifier


def login(http: requests.Session) -> requests.Response:
    page = http.get(f"{BASE}/login", allow_redirects=False)
    match = CSRF.search(page.text)
    if not match:
        raise RuntimeError(f"no csrf_token on the login page ({page.status_code})")
    form = {"login_id": LOGIN_ID, "password": PASSWORD, "csrf_token": match.group(1) or match.group(2)}
    answer = http.post(f"{BASE}/login", data=form, allow_redirects=False)
    if answer.status_code != 303:
        raise RuntimeError(f"POST /login answered {answer.status_code}")
    return answer


def code_from(response: requests.Response) -> str:
    if response.status_code not in (302, 303):
        raise RuntimeError(f"/authorize answered {response.status_code}, not a redirect with a code")
    location = response.headers["Location"]
    if not location.startswith(REDIRECT_URI):
        raise RuntimeError(f"unexpected redirect {location}")
    return parse_qs(urlsplit(location).query)["code"][0]


def peer_login(http: requests.Session, interaction: str) -> requests.Response:
    """The login step of the peer (bench/peer/server.mjs): its interaction page."""
    url = absolute(interaction)
    page = http.get(url, allow_redirects=False)
    if page.status_code != 200:
        raise RuntimeError(f"peer interaction page answered {page.status_code}")
    answer = http.post(f"{url}/login", data={"login_id": LOGIN_ID, "password": PASSWORD}, allow_redirects=False)
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"peer login answered {answer.status_code}")
    return answer


def absolute(location: str) -> str:
    return location if location.startswith("http") else BASE + location


def follow_to_client(http: requests.Session, response: requests.Response) -> requests.Response:
    """Follow the OP's own redirects until one leads to the client."""
    for _ in range(5):
        location = response.headers.get("Location", "")
        if response.status_code not in (302, 303) or location.startswith(REDIRECT_URI):
            return response
        response = http.get(absolute(location), allow_redirects=False)
    raise RuntimeError("too many redirects before the client's redirect URI")


def exchange(http: requests.Session, code: str, verifier: str) -> dict:
    answer = http.post(f"{BASE}/token", headers=basic(), allow_redirects=False, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier,
    })
    if answer.status_code != 200:
        raise RuntimeError(f"token exchange answered {answer.status_code}: {answer.text[:200]}")
    return answer.json()


def full_flow(http: requests.Session) -> dict:
    """authorize -> login page -> login POST -> authorize -> code -> token -> userinfo."""
    first, verifier = authorize(http)
    location = first.headers.get("Location", "")
    if first.status_code == 303 and urlsplit(location).path == "/login":
        back = login(http)
    elif first.status_code in (302, 303) and "/interaction/" in location:
        back = peer_login(http, location)
    else:
        raise RuntimeError(f"/authorize answered {first.status_code} without a session, not a redirect to a login")
    tokens = exchange(http, code_from(follow_to_client(http, back)), verifier)
    info = http.get(f"{BASE}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    if info.status_code != 200:
        raise RuntimeError(f"userinfo answered {info.status_code}")
    return tokens


# --- tokens: the refresh-token pool ------------------------------------


def _pool_worker(args) -> list[str]:
    count, deadline = args
    http = requests.Session()
    tokens = full_flow(http)  # one login; the OP session cookie serves the rest
    refresh = [tokens["refresh_token"]]
    while len(refresh) < count and time.monotonic() < deadline:
        response, verifier = authorize(http)
        refresh.append(exchange(http, code_from(follow_to_client(http, response)), verifier)["refresh_token"])
    return refresh


def make_tokens(out: str, count: int, procs: int, seconds: float) -> None:
    os.makedirs(out, exist_ok=True)
    http = requests.Session()
    tokens = full_flow(http)
    with open(os.path.join(out, "access_token"), "w") as f:
        f.write(tokens["access_token"] + "\n")
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    share = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    with mp.Pool(procs) as pool:
        parts = pool.map(_pool_worker, [(n, deadline) for n in share])
    refresh = [t for part in parts for t in part]
    with open(os.path.join(out, "refresh_tokens"), "w") as f:
        f.write("\n".join(refresh) + "\n")
    took = time.monotonic() - started
    print(f"pool: {len(refresh)} refresh tokens in {took:.1f}s ({len(refresh) / took:.0f} code exchanges/s)", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tokens")
    t.add_argument("--out", required=True)
    t.add_argument("--count", type=int, default=12000)
    t.add_argument("--procs", type=int, default=8)
    t.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    make_tokens(args.out, args.count, args.procs, args.seconds)


if __name__ == "__main__":
    main()

"""Worker CPU per step of the full password login (bench/logins.mjs), in-process.

    IDP_DATABASE_URL=... IDP_SECRET_KEY=... BENCH_CLIENT_SECRET=... \
        python bench/login_cpu.py [--flows 300] [--profile STEP] [--sort tottime]

Runs the six requests of a flow (authorize, login page, login POST,
authorize again, token, UserInfo) through the Flask test client, a new
browser per flow as logins.mjs makes them (its cookies go to every request,
/token and /userinfo included), and prints the CPU time (time.process_time:
this process only, not PostgreSQL's or Redis's) each step took, as the mean
and the median over the flows, after warm-up flows that are not counted. No
wall-clock time: the number does not move with other load on the machine
as throughput does. ``--profile STEP`` runs cProfile around that step
(``all`` for every step) and prints the top functions.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import hashlib
import os
import pstats
import re
import secrets
import statistics
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from idp import create_app  # noqa: E402

CLIENT_ID = os.environ.get("BENCH_CLIENT_ID", "mypage-demo")
CLIENT_SECRET = os.environ["BENCH_CLIENT_SECRET"]
REDIRECT_URI = "http://127.0.0.1:5001/auth/callback"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()}
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
STEPS = ("authorize", "login_page", "login_post", "authorize_again", "token", "userinfo")


def flow(app, times: dict[str, list[float]], profiler: cProfile.Profile | None, profiled: str | None) -> None:
    browser = app.test_client()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
              "scope": "openid profile email offline_access", "state": secrets.token_urlsafe(8),
              "nonce": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256"}

    def step(name: str, send, status: int):
        on = profiler is not None and profiled in (name, "all")
        if on:
            profiler.enable()
        started = time.process_time()
        response = send()
        times[name].append(time.process_time() - started)
        if on:
            profiler.disable()
        assert response.status_code == status, (name, response.status_code, response.get_data(as_text=True)[:300])
        return response

    login_url = step("authorize", lambda: browser.get("/authorize?" + urlencode(params)), 303).location
    page = step("login_page", lambda: browser.get(login_url), 200).get_data(as_text=True)
    form = {"login_id": "taro.itsu@example.jp", "password": "itscom-demo1", "csrf_token": CSRF.search(page).group(1)}
    back = step("login_post", lambda: browser.post(login_url, data=form), 303).location
    answer = step("authorize_again", lambda: browser.get(back), 302)
    code = parse_qs(urlsplit(answer.location).query)["code"][0]
    tokens = step("token", lambda: browser.post("/token", headers=BASIC, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier}), 200).get_json()
    step("userinfo", lambda: browser.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}),
         200)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--profile", choices=(*STEPS, "all"))
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--no-gc", action="store_true",
                        help="collect garbage between flows, untimed: no step pays for another's garbage")
    args = parser.parse_args()
    app = create_app()
    warm = {name: [] for name in STEPS}
    for _ in range(args.warmup):
        flow(app, warm, None, None)
    times = {name: [] for name in STEPS}
    profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waiting
    if args.no_gc:
        gc.disable()
    for _ in range(args.flows):
        flow(app, times, profiler, args.profile)
        if args.no_gc:
            gc.collect()
    print(f"CPU per step, µs (mean / median of {args.flows} flows{', profiled' if profiler else ''}):")
    total = 0.0
    for name in STEPS:
        mean = statistics.fmean(times[name]) * 1e6
        total += mean
        print(f"  {name:16} {mean:8.0f} {statistics.median(times[name]) * 1e6:8.0f}")
    print(f"  {'flow':16} {total:8.0f}")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()

"""A granian worker's memory, request kind by request kind (issue 14).

    granian --interface wsgi --factory --workers 1 --blocking-threads 1 \
        --host 127.0.0.1 --port 5611 idp:create_app &       # IDP_* and MALLOC_ARENA_MAX=2 set
    BENCH_BASE=http://127.0.0.1:5611 BENCH_CLIENT_SECRET=... python bench/worker_rss.py <granian pid>

Sends the first request of each kind bench/run.sh measures (discovery,
JWKS, client_credentials, the login flow, introspection, refresh, UserInfo,
revocation), then a few more logins, and prints the worker's RSS from
/proc after each step and what it added: where a worker's peak comes from,
which run.sh's 0.5 s samples only bound. The last line is the kernel's high
water mark (VmHWM), the true peak. Start a fresh server for each run: every
step's cost is paid once per worker.
"""

from __future__ import annotations

import os
import subprocess
import sys

import requests

sys.path.insert(0, os.path.dirname(__file__))
import flows  # noqa: E402


def status(pid: int, field: str) -> float:
    """A /proc/<pid>/status size, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def main() -> None:
    master = int(sys.argv[1])
    workers = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    if len(workers) != 1:
        raise SystemExit(f"expected one worker under {master}, found {workers}: start granian with --workers 1")
    pid = int(workers[0])
    last = status(pid, "VmRSS")

    def step(label: str) -> None:
        nonlocal last
        now = status(pid, "VmRSS")
        print(f"{now:6.1f} MiB  {now - last:+5.1f}  {label}")
        last = now

    base, basic = flows.BASE, flows.basic()
    step("as found (a readiness check may have asked for discovery already)")
    requests.get(f"{base}/.well-known/openid-configuration").raise_for_status()
    step("discovery")
    requests.get(f"{base}/jwks").raise_for_status()
    step("JWKS (first database connection, mappers, key ring)")
    requests.post(f"{base}/token", headers=basic,
                  data={"grant_type": "client_credentials", "scope": "openid"}).raise_for_status()
    step("client_credentials")
    browser = requests.Session()
    response, verifier = flows.authorize(browser)
    step("authorize, no session")
    back = flows.login(browser)
    step("login page and POST (the first argon2 block is unmapped after the hash)")
    tokens = flows.exchange(browser, flows.code_from(flows.follow_to_client(browser, back)), verifier)
    step("authorize with the session, code exchange")
    requests.post(f"{base}/introspect", headers=basic, data={"token": tokens["access_token"]}).raise_for_status()
    step("introspection")
    refreshed = requests.post(f"{base}/token", headers=basic,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    refreshed.raise_for_status()
    step("refresh")
    bearer = {"Authorization": "Bearer " + refreshed.json()["access_token"]}
    requests.get(f"{base}/userinfo", headers=bearer).raise_for_status()
    step("UserInfo")
    requests.post(f"{base}/revoke", headers=basic, data={"token": refreshed.json()["access_token"]}).raise_for_status()
    step("revocation")
    for _ in range(3):
        flows.full_flow(requests.Session())
    step("3 more logins (argon2's block now stays in the heap)")
    print(f"{status(pid, 'VmHWM'):6.1f} MiB  peak (VmHWM)")


if __name__ == "__main__":
    main()

"""Bounded soak on two OP nodes (issue 7 item 6): load without loss.

    .venv/bin/python bench/soak.py     # SOAK_SECONDS=60 SOAK_LOAD=0.7 by default

Two OP processes (granian, one worker each) on loopback ports share one
PostgreSQL database (idp_soak, recreated) and Redis db 2, with a mail sender
process and a real SMTP sink (aiosmtpd). First wrk measures the capacity of
the two nodes for a mix of discovery, JWKS, client_credentials and
introspection requests plus /healthz (bench/lua/mix.lua, one wrk per node,
closed loop, 10 s). Then, for SOAK_SECONDS, wrk sends the same mix at
SOAK_LOAD (70 %) of that capacity, paced by wrk's delay(), while customers
register through the registration flow on alternating nodes. Afterwards it
checks: no errors; every registration's mail arrived, its URL completes the
registration on the other node and the new iTSCOM ID signs in; and the
nodes' memory stayed flat. Traffic goes to 127.0.0.1 only; everything stops by itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import csrf_token  # noqa: E402
from tests.mailserver import MailServer, free_port  # noqa: E402 - a real SMTP sink

SECONDS = int(os.environ.get("SOAK_SECONDS", "60"))
LOAD = float(os.environ.get("SOAK_LOAD", "0.7"))
CONNECTIONS = 16  # per node
CAPACITY_SECONDS = 10
DB = "idp_soak"
# Registrations: one per contract, on contracts made for the soak (imported
# with `flask contracts import`), so that every one can be completed.
REGISTRATIONS = 16
CUSTOMERS = [("ソーク タロウ", f"03{5550000 + n:08d}", "bank_last4", f"{1000 + n}") for n in range(REGISTRATIONS)]
WARM_UP = max(5, SECONDS // 4)


def main() -> int:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    smtp = MailServer(free_port())
    smtp.start()
    ports = [free_port(), free_port()]
    env = {**os.environ, "IDP_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{DB}",
           "IDP_REDIS_URL": "redis://127.0.0.1:6379/2", "IDP_ISSUER": f"http://127.0.0.1:{ports[0]}",
           "IDP_SECRET_KEY": "soak-secret-key-0123456789abcdefghijklmnop", "IDP_MAIL_URL": smtp.url,
           # Production setting (README): argon2 needs 19 MiB per hash, and every
           # malloc arena of a worker thread would keep one such block.
           "MALLOC_ARENA_MAX": "2"}
    env.pop("IDP_ENV", None)
    flask = [sys.executable, "-m", "flask", "--app", "idp"]
    subprocess.run(["redis-cli", "-n", "2", "flushdb"], check=True, capture_output=True)
    subprocess.run([*flask, "db", "upgrade"], env=env, check=True, capture_output=True)
    demo = subprocess.run([*flask, "demo"], env={**env, "IDP_ALLOW_PRIVATE_OUTBOUND": "1"},  # its sites: loopback
                          check=True, capture_output=True, text=True).stdout
    contracts = ROOT / "instance" / "soak-contracts.csv"
    contracts.parent.mkdir(exist_ok=True)
    contracts.write_text("customer_number,name_kanji,name_kana,phones,bank_last4,card_last4,stb_ids,"
                         "contact_emails,additional_auth\n" + "".join(
                             f"{3000000000 + n},負荷 太郎,{kana},{phone},{value},,,soak.contact{n}@example.jp,false\n"
                             for n, (kana, phone, _, value) in enumerate(CUSTOMERS)), encoding="utf-8")
    subprocess.run([*flask, "contracts", "import", str(contracts)], env=env, check=True, capture_output=True)
    secret = re.search(r"client_id: mypage-demo\s+client_secret: (\S+)", demo).group(1)
    granian = str(Path(sys.executable).parent / "granian")
    nodes = [subprocess.Popen([granian, "--interface", "wsgi", "--workers", "1", "--blocking-threads", "1",
                               "--host", "127.0.0.1", "--port", str(port), "--factory", "idp:create_app"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
    sender = subprocess.Popen([*flask, "mail", "send", "--loop", "--interval", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            _wait(lambda url=url: _up(url))
        # Memory is compared from WARM_UP seconds into the soak (imports,
        # template and key caches, an argon2 block per malloc arena) to the end.
        series = []
        sampling = threading.Event()

        def sample():
            while not sampling.wait(10):
                series.append((time.monotonic(), _rss(nodes)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        errors, done, rate, capacity, login_ids, started = _run(urls, secret)
        sampling.set()
        sampler.join()
        rss_start = next((rss for t, rss in series if t >= started + WARM_UP), series[-1][1])
        _wait(lambda: len(smtp.inbox.messages) >= len(login_ids), timeout=60)
        rss_end = _rss(nodes)
        # A registration is not lost when its mailed URL completes it (on the
        # other node) and the new iTSCOM ID then signs in.
        completed = [login_id for n, login_id in enumerate(login_ids)
                     if _complete(urls[(n + 1) % 2], smtp.inbox.messages, login_id)]
    finally:
        for p in [*nodes, sender]:
            p.terminate()
        for p in [*nodes, sender]:
            p.wait(timeout=10)
        smtp.stop()
    received = {m["To"] for m in smtp.inbox.messages}
    lost = [i for i in login_ids if i not in received or i not in completed]
    growth = max((rss_end[k] - rss_start[k]) / rss_start[k] for k in rss_start)
    print(f"capacity of the mix on two nodes: {capacity:.0f} requests/s (wrk, closed loop)")
    print(f"{done} requests in {SECONDS}s: {rate:.0f}/s = {rate / capacity:.0%} of capacity; errors: {errors}")
    print(f"registrations: {len(login_ids)}, mails received: {len(received)}, "
          f"completed from the mail and signed in: {len(completed)}, lost: {lost}")
    print("RSS MiB every 10 s, per node: " + " | ".join(
        ", ".join(f"{v:.0f}" for v in point.values()) for _, point in series))
    print(f"RSS MiB {WARM_UP}s into the soak / at the end, per node: " + ", ".join(f"{rss_start[k]:.0f}/{rss_end[k]:.0f}" for k in rss_start))
    ok = errors == 0 and not lost and growth < 0.25
    print("soak:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def _run(urls, secret):
    """Measure the mix's capacity, then hold LOAD of it for SECONDS while
    customers register: (errors, requests, rate, capacity, login ids, start)."""
    token = requests.post(f"{urls[0]}/token", auth=("mypage-demo", secret),
                          data={"grant_type": "client_credentials"}).json()["access_token"]
    env = {**os.environ, "BENCH_LUA_DIR": str(ROOT / "bench" / "lua"), "BENCH_CLIENT_ID": "mypage-demo",
           "BENCH_CLIENT_SECRET": secret, "BENCH_ACCESS_TOKEN": token}
    capacity = sum(r["rate"] for r in _wrk(urls, env, CAPACITY_SECONDS, delay_ms=0))
    # Each connection pauses before every request, so that CONNECTIONS per
    # node send CONNECTIONS / (pause + latency) requests/s. A 5 s probe at a
    # first guess (latency = one request's service time) measures the latency
    # at about that load; the soak's pause is corrected by it.
    per_node = capacity / len(urls)
    target_ms = 1000 * CONNECTIONS / (LOAD * per_node)  # pause + latency per request
    delay_ms = target_ms - 1000 / per_node
    probed = sum(r["rate"] for r in _wrk(urls, env, 5, delay_ms=max(1, round(delay_ms)))) / len(urls)
    latency_ms = 1000 * CONNECTIONS / probed - delay_ms
    delay_ms = target_ms - latency_ms
    login_ids: list[str] = []
    failed_registrations = 0
    def registrations():
        nonlocal failed_registrations
        spacing = SECONDS / (len(CUSTOMERS) + 1)
        stop_at = started + SECONDS
        for n, (kana, phone, item, value) in enumerate(CUSTOMERS):
            if time.monotonic() >= stop_at:
                return
            login_id = f"soak{n}@example.jp"
            if _register(urls[n % 2], kana, phone, item, value, login_id):
                login_ids.append(login_id)
            else:
                failed_registrations += 1
            time.sleep(spacing)

    registering = threading.Thread(target=registrations)
    started = time.monotonic()
    registering.start()
    results = _wrk(urls, env, SECONDS, delay_ms=max(1, round(delay_ms)))
    registering.join()
    errors = failed_registrations + sum(r["errors"] for r in results)
    return errors, sum(r["requests"] for r in results), sum(r["rate"] for r in results), capacity, login_ids, started


def _wrk(urls, env, seconds: int, delay_ms: int) -> list[dict]:
    """One wrk per node at once with the mix; requests, rate and errors of each."""
    runs = [subprocess.Popen(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
                              "-s", str(ROOT / "bench" / "lua" / "mix.lua"), url],
                             env={**env, "BENCH_DELAY_MS": str(delay_ms)}, stdout=subprocess.PIPE, text=True)
            for url in urls]
    results = []
    for run in runs:
        out = run.communicate(timeout=seconds + 30)[0]
        errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
        errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
        results.append({"requests": int(re.search(r"(\d+) requests in", out).group(1)),
                        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "errors": errors})
    return results


def _submit(s: requests.Session, url: str, path: str, fill) -> requests.Response:
    """Open a form page, then post it with its CSRF token; ``fill`` is the
    form data, or a function of the page that returns it. No redirect is followed."""
    page = s.get(f"{url}{path}").text
    data = fill(page) if callable(fill) else fill
    return s.post(f"{url}{path}", data={"csrf_token": csrf_token(page), **data}, allow_redirects=False)


def _register(url, kana, phone, item, value, login_id) -> bool:
    s = requests.Session()
    steps = [
        ("/registration/", {"name_kana": kana, "phone": phone, "payment_type": item, "payment_value": value}),
        ("/registration/terms", {"agreement": "agree"}),
        ("/registration/account", {"login_id": login_id, "password": "Soak-pass-2026",
                                   "password_confirm": "Soak-pass-2026"}),
    ]
    for path, data in steps:
        response = _submit(s, url, path, data)
        if response.status_code != 303:
            print(f"registration step {path} answered {response.status_code}")
            return False
    return True


def _complete(url, messages, login_id) -> bool:
    """Open the URL mailed to ``login_id``, finish the registration there and
    sign in with the new iTSCOM ID."""
    mail = next((m for m in messages if m["To"] == login_id), None)
    link = mail and re.search(r"https?://\S+/registration/confirm/[\w-]+", mail.get_body(("plain",)).get_content())
    if not link:
        print(f"no registration URL in the mail to {login_id}")
        return False
    s = requests.Session()
    answer = _submit(s, url, urlsplit(link.group(0)).path, {})
    if answer.status_code == 303 and answer.headers["Location"].endswith("/registration/contact"):
        answer = _submit(s, url, "/registration/contact", lambda page: {
            "contact_email": re.search(r'name="contact_email"[^>]*value="([^"]+)"', page).group(1)})
    if answer.status_code != 303 or not answer.headers["Location"].endswith("/registration/complete"):
        print(f"completing the registration of {login_id} answered {answer.status_code}")
        return False
    login = _submit(s, url, "/login", {"login_id": login_id, "password": "Soak-pass-2026"})
    if login.status_code != 303:
        print(f"signing in as {login_id} answered {login.status_code}")
        return False
    return True


def _up(url) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise SystemExit("soak: a condition was not met in time")


def _rss(processes) -> dict[int, float]:
    """Resident memory (MiB) of each node and its worker children."""
    result = {}
    for p in processes:
        out = subprocess.run(["ps", "--ppid", str(p.pid), "-o", "rss="], capture_output=True, text=True).stdout
        own = subprocess.run(["ps", "-p", str(p.pid), "-o", "rss="], capture_output=True, text=True).stdout
        result[p.pid] = sum(int(x) for x in (out + own).split()) / 1024
    return result


if __name__ == "__main__":
    sys.exit(main())

"""One OP served by granian with two worker processes and no Redis: a budget
holds exactly, whichever worker each attempt reaches (SPEC §6)."""

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from idp.extensions import db
from idp.models import AuditEvent

from ..mailserver import free_port
from ..registration.helpers import SUZUKI
from ..servers import stop_process


@pytest.fixture
def workers(app, contracts):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("IDP_")}
    env.update(IDP_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], IDP_SECRET_KEY=app.secret_key,
               IDP_ISSUER=f"http://127.0.0.1:{port}")
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "2", "--blocking-threads", "1",
         "--host", "127.0.0.1", "--port", str(port), "--factory", "idp:create_app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            assert process.poll() is None and time.monotonic() < deadline, "granian did not start"
            time.sleep(0.1)
        yield url
    finally:
        stop_process(process)


def _ready(url) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def _guess(url: str, digits: str) -> int:
    """One browser: open step 1, send Suzuki's name and phone with a wrong 口座番号 下4桁."""
    with requests.Session() as browser:
        page = browser.get(f"{url}/registration/").text
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        answer = browser.post(f"{url}/registration/", data={**SUZUKI, "payment_value": digits, "csrf_token": token},
                              allow_redirects=False)
        return answer.status_code


def test_two_workers_allow_exactly_five_guesses_of_four_digits(app, workers):
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda n: _guess(workers, f"{n:04d}"), range(1, 13)))
    assert sorted(statuses) == [200] * 5 + [429] * 7, statuses
    with app.app_context():
        failed = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)
                                   .filter_by(event="registration.verify_failed"))
    assert failed == 5

"""A real Chromium (Debian's, driven by Playwright) against the OP on a loopback port.

Without /usr/bin/chromium these tests skip locally with how to install it;
under CI (CI set) a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import template_rendered
from werkzeug.serving import make_server

from .customer_pages import DEVICES, Device, PageChecks

CHROMIUM = os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _port() -> int:
    return _free_port()


@pytest.fixture
def config_overrides(_port, mail_server):
    # The sites' back-channel logout URIs are on loopback. A login no site
    # asked for lands on the home site: here the OP's own account page, so
    # that no test browser leaves loopback (My Page runs only with `sites`).
    return {"ISSUER": f"http://127.0.0.1:{_port}", "MAIL_URL": mail_server.url, "ALLOW_PRIVATE_OUTBOUND": True,
            "HOME_URL": f"http://127.0.0.1:{_port}/account/"}


@pytest.fixture
def clock():
    """Real time: across processes (an RP checking a logout token's exp),
    a clock other than the wall clock would be a lie."""
    from idp.security.clock import SystemClock

    return SystemClock()


@pytest.fixture
def live_server(app, _port):
    server = make_server("127.0.0.1", _port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="session")
def browser():
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium fonts-ipafont-gothic"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def _page_in(browser, request, **options):
    context = browser.new_context(locale="ja-JP", **options)
    page = context.new_page()
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def page(browser, request):
    with _page_in(browser, request) as page:
        yield page


@pytest.fixture(params=DEVICES, ids=[d.name for d in DEVICES])
def device(request) -> Device:
    """Each customer-page walk runs once on a phone and once on a desktop."""
    return request.param


@pytest.fixture
def device_page(browser, request, device):
    with _page_in(browser, request, **device.context) as page:
        yield page


@pytest.fixture
def pages(device):
    """Checks each page a walk reaches (customer_pages.PageChecks)."""
    checks = PageChecks(device)
    listener = checks.listen()
    yield checks
    template_rendered.disconnect(listener)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def sites(app, live_server, account, tmp_path):
    """My Page and the support site, each registered with the OP and serving
    on its own loopback port, knowing only the issuer and its credentials."""
    from idp.clients import create_client
    from idp.extensions import db
    from sites import mypage, support

    made = {}
    for name, module in [("mypage", mypage), ("support", support)]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        with app.app_context():
            client, secret = create_client(name, [f"{base}/auth/callback"], [f"{base}/logged-out"],
                                           backchannel_logout_uri=f"{base}/backchannel-logout", first_party=True)
            db.session.commit()
            client_id = client.client_id
        rp_app = module.create_app({"ISSUER": live_server, "CLIENT_ID": client_id, "CLIENT_SECRET": secret,
                                    "SECRET_KEY": "rp-secret-" + name, "DATABASE": str(tmp_path / f"{name}.sqlite3")})
        server = make_server("127.0.0.1", port, rp_app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        made[name] = (base, server, thread)
    yield {name: base for name, (base, _, _) in made.items()}
    for _, server, thread in made.values():
        server.shutdown()
        thread.join()

"""A database outage is an outage, not a crash (SPEC §6): while PostgreSQL is
unreachable the OP answers 503 with Retry-After — OAuth JSON to clients, a
Japanese page to customers — logs one line per request instead of a
traceback, and serves again as soon as the database is back, without a
restart.

These tests run a PostgreSQL cluster of their own (tests/servers.py), so
that they can stop and start it."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections import defaultdict

import pytest
import requests
import sqlalchemy as sa

from idp import create_app
from idp.accounts import create_account
from idp.clients import create_client
from idp.contracts import import_contracts
from idp.extensions import db, unhurried

from ..conftest import FIXTURE_CONTRACTS, ISSUER
from ..helpers import csrf_token, needs_postgresql
from ..servers import Granian, PostgresCluster, wait_until

pytestmark = needs_postgresql

SECRET_KEY = "outage-secret-key-" + "x" * 32
OUTAGE_PAGE = "ただいまサービスを一時的にご利用いただけません"
LOGIN = {"login_id": "taro.itsu@example.jp", "password": "itscom-demo1"}


@pytest.fixture(scope="module")
def cluster():
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def outage_db(cluster) -> dict:
    """A migrated database on the private cluster with the demo customer and
    a confidential client; its URL and the client's credentials."""
    from flask_migrate import upgrade

    url = cluster.create_database("idp")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "ISSUER": ISSUER, "MIGRATIONS": True})
    with app.app_context():
        upgrade()
        import_contracts(FIXTURE_CONTRACTS.read_text(encoding="utf-8"))
        create_account("2005128462", LOGIN["login_id"], LOGIN["password"])
        client, secret = create_client("Outage RP", ["https://rp.example.test/cb"], [],
                                       grant_types=["authorization_code", "client_credentials"],
                                       auth_method="client_secret_basic")
        found = {"url": url, "client_id": client.client_id, "client_secret": secret}
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return found


@pytest.fixture
def op(cluster, outage_db):
    """The OP in this process on the private cluster (the cluster running)."""
    app = create_app({"DATABASE_URL": outage_db["url"], "SECRET_KEY": SECRET_KEY, "ISSUER": ISSUER,
                      "DATABASE_CONNECT_TIMEOUT": 2})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def database_down(cluster):
    """Stop the cluster for the test; start it again afterwards."""
    cluster.stop()
    yield
    cluster.start()


def _basic(outage_db) -> dict:
    raw = f"{outage_db['client_id']}:{outage_db['client_secret']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def _outage_lines(caplog) -> list[str]:
    """What the OP logged, each record one line without a traceback."""
    records = [r for r in caplog.records if r.name == "idp"]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records), records
    return [r.getMessage() for r in records if r.getMessage().startswith("database unavailable")]


def _assert_outage(response, json: bool) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    if json:
        assert response.get_json() == {"error": "temporarily_unavailable"}
    else:
        assert response.mimetype == "text/html" and OUTAGE_PAGE in response.get_data(as_text=True)


API_REQUESTS = {
    "token": ("POST", "/token", {"data": {"grant_type": "client_credentials"}}),
    # The view fails, then the CORS hook fails again on the 503 it answered.
    "token from a browser": ("POST", "/token", {"data": {"grant_type": "client_credentials"},
                                                "headers": {"Origin": "https://rp.example.test"}}),
    "userinfo": ("GET", "/userinfo", {"headers": {"Authorization": "Bearer some-access-token"}}),
    "revoke": ("POST", "/revoke", {"data": {"token": "some-token"}}),
    "introspect": ("POST", "/introspect", {"data": {"token": "some-token"}}),
    "register": ("POST", "/register", {"json": {"redirect_uris": ["https://rp.example.test/cb"]},
                                       "headers": {"Authorization": "Bearer some-initial-token"}}),
    "client configuration": ("GET", "/register/some-client", {"headers": {"Authorization": "Bearer x"}}),
    # Served below Flask while its keys are cached; these are not yet.
    "jwks": ("GET", "/jwks", {}),
    # The document needs no database, but CORS asks which origins are
    # registered in an after_request hook.
    "discovery with CORS": ("GET", "/.well-known/openid-configuration",
                            {"headers": {"Origin": "https://rp.example.test"}}),
}


@pytest.mark.parametrize("name", API_REQUESTS)
def test_clients_get_oauth_json_503_while_the_database_is_down(op, outage_db, database_down, caplog, name):
    method, path, options = API_REQUESTS[name]
    if path in ("/token", "/revoke", "/introspect"):
        options = {**options, "headers": {**options.get("headers", {}), **_basic(outage_db)}}
    _assert_outage(op.test_client().open(path, method=method, **options), json=True)
    assert len(_outage_lines(caplog)) == 1


def test_customers_get_a_japanese_page_while_the_database_is_down(op, outage_db, cluster, caplog):
    browser = op.test_client()
    page = browser.get("/login").get_data(as_text=True)
    assert browser.post("/login", data={"csrf_token": csrf_token(page), **LOGIN}).status_code == 303
    cluster.stop()
    try:
        page = browser.get("/login")  # needs no database: the customer can still type
        assert page.status_code == 200
        token = csrf_token(page.get_data(as_text=True))
        _assert_outage(browser.get("/account/"), json=False)
        _assert_outage(browser.post("/login", data={"csrf_token": token, **LOGIN}), json=False)
        _assert_outage(browser.get(f"/authorize?client_id={outage_db['client_id']}&response_type=code"
                                   "&redirect_uri=https://rp.example.test/cb&scope=openid"), json=False)
        _assert_outage(browser.post("/registration/", data={
            "csrf_token": token, "name_kana": "スズキハナコ", "phone": "0449876543",
            "payment_type": "bank_last4", "payment_value": "0077"}), json=False)
        _assert_outage(browser.post("/recovery/identify", data={"csrf_token": token, "login_id": LOGIN["login_id"]}),
                       json=False)
        assert len(_outage_lines(caplog)) == 5
    finally:
        cluster.start()
    assert browser.get("/account/").status_code == 200  # the same session: nothing was lost


def test_a_connection_lost_before_teardown_spoils_no_finished_answer(op, outage_db, caplog):
    """A read-only request's transaction is rolled back at teardown; if the
    server dropped the connection meanwhile, the answer stands."""
    @op.route("/test/read-then-lose-the-connection")
    def read_then_lose_the_connection():
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        killer = sa.create_engine(outage_db["url"], poolclass=sa.pool.NullPool)
        with killer.begin() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        return "read"

    response = op.test_client().get("/test/read-then-lose-the-connection")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "read")
    [line] = _outage_lines(caplog)
    assert line.startswith("database unavailable after the answer: GET /test/read-then-lose-the-connection: ")
    assert op.test_client().get("/readyz").status_code == 200


def test_an_outage_seen_by_a_before_request_hook_is_an_outage_too(op, database_down, caplog):
    @op.before_request
    def read_first():
        db.session.execute(sa.text("SELECT 1"))

    _assert_outage(op.test_client().get("/account/"), json=False)
    _assert_outage(op.test_client().post("/token"), json=True)
    assert len(_outage_lines(caplog)) == 2


def test_a_silent_server_costs_the_connect_timeout_not_forever(op, caplog):
    """A server that accepts connections and never answers (hung, or a
    half-open network path): the request gives up after the connect timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever answers
        port = silent.getsockname()[1]
        app = create_app({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/idp", "SECRET_KEY": SECRET_KEY,
                          "ISSUER": ISSUER, "DATABASE_CONNECT_TIMEOUT": 2})
        browser, answers = app.test_client(), []
        browser.set_cookie("idp_session", "some-session")
        thread = threading.Thread(target=lambda: answers.append(browser.get("/account/")), daemon=True)
        thread.start()
        thread.join(timeout=60)
    assert not thread.is_alive(), "the request was still waiting for the database after 60 s"
    _assert_outage(answers[0], json=False)
    assert len(_outage_lines(caplog)) == 1


def test_a_pool_with_no_free_connection_costs_the_pool_timeout(outage_db, caplog):
    """Every pooled connection busy (the database too slow for the load):
    a request waits DATABASE_POOL_TIMEOUT for one, then answers 503."""
    app = create_app({"DATABASE_URL": outage_db["url"], "SECRET_KEY": SECRET_KEY, "ISSUER": ISSUER,
                      "DATABASE_POOL_TIMEOUT": 1})
    with app.app_context():
        engine = db.engine
    held = []
    try:
        while True:
            held.append(engine.connect())
    except sa.exc.TimeoutError:
        pass
    try:
        response = app.test_client().post("/token", data={"grant_type": "client_credentials"},
                                          headers=_basic(outage_db))
    finally:
        for connection in held:
            connection.close()
        engine.dispose()
    _assert_outage(response, json=True)
    [line] = _outage_lines(caplog)
    assert "QueuePool limit" in line


def _sign_in(base: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10).text
    answer = browser.post(f"{base}/login", allow_redirects=False, timeout=10,
                          data={"csrf_token": csrf_token(page), **LOGIN})
    assert answer.status_code == 303, answer.text
    return browser


class Load:
    """Client threads that repeat one request until stopped, recording every answer."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[float, requests.Response]]] = defaultdict(list)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run(self, kind: str, threads: int, send) -> None:
        for _ in range(threads):
            thread = threading.Thread(target=self._repeat, args=(kind, send), daemon=True)
            thread.start()
            self._threads.append(thread)

    def count(self, kind: str, status: int, since: float = 0.0) -> int:
        return sum(1 for at, r in list(self.answers[kind]) if r.status_code == status and at >= since)

    def first(self, kind: str, status: int, since: float) -> float:
        return min(at for at, r in self.answers[kind] if r.status_code == status and at >= since)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _repeat(self, kind: str, send) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                response = send(session)
            except requests.RequestException as error:  # no answer at all is a failure too
                self.failures.append(f"{kind}: {error!r}")
                continue
            self.answers[kind].append((time.monotonic(), response))


def test_a_database_restart_under_load_answers_503_and_recovers(cluster, outage_db, tmp_path):
    server = Granian({"IDP_DATABASE_URL": outage_db["url"], "IDP_SECRET_KEY": SECRET_KEY,
                      "IDP_ISSUER": "http://127.0.0.1"}, workers=2, log_path=tmp_path / "op.log")
    load = Load()
    try:
        base = server.url
        cookies = _sign_in(base).cookies
        basic = (outage_db["client_id"], outage_db["client_secret"])
        load.run("token", 16, lambda s: s.post(f"{base}/token", data={"grant_type": "client_credentials"},
                                               auth=basic, timeout=30))
        load.run("account", 4, lambda s: s.get(f"{base}/account/", cookies=cookies, allow_redirects=False,
                                               timeout=30))
        wait_until(lambda: load.count("token", 200) >= 50 and load.count("account", 200) >= 5,
                   "the OP did not serve before the outage")

        cluster.stop()
        down = time.monotonic()
        wait_until(lambda: load.count("token", 503, down) >= 50 and load.count("account", 503, down) >= 5,
                   "no 503 while the database was down")
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 503

        cluster.start()
        up = time.monotonic()
        wait_until(lambda: load.count("token", 200, up) >= 1 and load.count("account", 200, up) >= 1,
                   "the OP did not serve again after the database came back")
        assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
    finally:
        load.stop()
        server.stop()

    assert not load.failures, load.failures[:5]
    log = server.log()
    unavailable = 0
    for kind, answers in load.answers.items():
        assert {r.status_code for _, r in answers} == {200, 503}, (kind, log[-3000:])
        for _, r in answers:
            if r.status_code == 503:
                unavailable += 1
                assert int(r.headers["Retry-After"]) > 0
                if kind == "token":
                    assert r.json() == {"error": "temporarily_unavailable"}
                else:
                    assert r.headers["Content-Type"].startswith("text/html") and OUTAGE_PAGE in r.text
    back = max(load.first(kind, 200, up) - up for kind in ("token", "account"))
    assert back < 5, f"served again only {back:.1f} s after the database was up"
    # One line per refused request, never a traceback. (A read-only request
    # whose connection died after it had answered logs "... after the answer".)
    assert "Traceback" not in log, log[log.find("Traceback") - 500:][:4000]
    assert log.count("database unavailable: ") == unavailable


def _answer_within(seconds: float, request):
    """Run ``request`` in a thread; fail if it has not answered in ``seconds``."""
    answers = []
    thread = threading.Thread(target=lambda: answers.append(request()), daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert not thread.is_alive(), f"the request was still waiting for the database after {seconds} s"
    return answers[0]


@pytest.fixture
def impatient_op(cluster, outage_db):
    """The OP with the shortest statement and lock timeouts its settings allow."""
    app = create_app({"DATABASE_URL": outage_db["url"], "SECRET_KEY": SECRET_KEY, "ISSUER": ISSUER,
                      "DATABASE_CONNECT_TIMEOUT": 2, "DATABASE_STATEMENT_TIMEOUT": 1,
                      "DATABASE_LOCK_TIMEOUT": 1})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_lock_held_in_the_database_is_an_outage_not_a_hang(impatient_op, outage_db, caplog):
    """A session that holds a lock and never lets go (a stuck job, an
    operator's ALTER TABLE waiting on its own transaction): requests that
    need the locked rows answer 503 after the lock timeout, and serve again
    once the lock is gone."""
    browser = impatient_op.test_client()
    page = browser.get("/login").get_data(as_text=True)
    assert browser.post("/login", data={"csrf_token": csrf_token(page), **LOGIN}).status_code == 303
    holder = sa.create_engine(outage_db["url"], poolclass=sa.pool.NullPool)
    with holder.connect() as held:
        held.execute(sa.text("LOCK TABLE accounts, clients IN ACCESS EXCLUSIVE MODE"))
        _assert_outage(_answer_within(15, lambda: browser.get("/account/")), json=False)
        _assert_outage(_answer_within(15, lambda: impatient_op.test_client().post(
            "/token", data={"grant_type": "client_credentials"}, headers=_basic(outage_db))), json=True)
        held.rollback()
    holder.dispose()
    assert len(_outage_lines(caplog)) == 2
    assert browser.get("/account/").status_code == 200


def test_a_statement_that_runs_too_long_is_cancelled(impatient_op, caplog):
    @impatient_op.route("/test/slow-statement")
    def slow_statement():
        db.session.execute(sa.text("SELECT pg_sleep(30)"))
        return "finished"

    _assert_outage(_answer_within(15, lambda: impatient_op.test_client().get("/test/slow-statement")), json=False)
    [line] = _outage_lines(caplog)
    assert "statement timeout" in line


def test_a_frozen_database_costs_a_deadline_not_forever(impatient_op, cluster, caplog):
    """A server that stopped answering but whose kernel still acknowledges
    every packet: TCP never gives up and the server cannot cancel anything,
    so only our own deadline ends the wait."""
    browser = impatient_op.test_client()
    page = browser.get("/login").get_data(as_text=True)
    assert browser.post("/login", data={"csrf_token": csrf_token(page), **LOGIN}).status_code == 303
    cluster.freeze()
    try:
        _assert_outage(_answer_within(30, lambda: browser.get("/account/")), json=False)
    finally:
        cluster.thaw()
    assert len(_outage_lines(caplog)) == 1
    assert browser.get("/account/").status_code == 200  # the pool replaced the dropped connection


def test_operators_long_jobs_are_not_held_to_a_requests_deadline(impatient_op):
    """Migrations and 'flask audit prune' lift the statement timeout for
    their own transaction, and only for it."""
    with impatient_op.app_context():
        connection = db.session.connection()
        with unhurried(connection):
            assert db.session.execute(sa.text("SELECT 'done' FROM pg_sleep(1.5)")).scalar_one() == "done"
        db.session.commit()
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            db.session.execute(sa.text("SELECT pg_sleep(1.5)"))
        db.session.rollback()

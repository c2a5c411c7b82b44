"""The first start of several workers on an empty database: they agree on one
signing key per algorithm, and the first requests all succeed."""

import threading

import requests

from idp import keys
from idp.extensions import db
from idp.models import SigningKey

from ..helpers import RelyingParty, needs_postgresql
from ..servers import Granian

pytestmark = needs_postgresql

PARALLEL = 16


def test_four_workers_starting_together_create_one_key_per_algorithm(app, client, tmp_path):
    rp = RelyingParty.register(app, client, grant_types=["client_credentials"])
    with app.app_context():  # a freshly migrated database: no signing key yet
        db.session.execute(db.delete(SigningKey))
        db.session.commit()
    server = Granian({"IDP_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "IDP_SECRET_KEY": app.secret_key,
                      "IDP_ISSUER": app.config["ISSUER"]}, workers=4, log_path=tmp_path / "op.log")
    answers, start = [], threading.Barrier(PARALLEL)

    def first_request(n: int) -> None:
        start.wait()
        if n % 2:
            answer = requests.get(f"{server.url}/jwks", timeout=30)
        else:
            answer = requests.post(f"{server.url}/token", data={"grant_type": "client_credentials"},
                                   auth=(rp.client_id, rp.client_secret), timeout=30)
        answers.append((answer.request.path_url, answer.status_code, answer.content))

    try:
        threads = [threading.Thread(target=first_request, args=(n,)) for n in range(PARALLEL)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Every worker answers with the same key set (each has its own cache):
        # new connections spread over the workers.
        later = [requests.get(f"{server.url}/jwks", headers={"Connection": "close"}, timeout=30).content
                 for _ in range(4 * PARALLEL)]
    finally:
        server.stop()

    assert sorted(status for _, status, _ in answers) == [200] * PARALLEL, (answers, server.log()[-3000:])
    with app.app_context():
        stored = db.session.scalars(db.select(SigningKey)).all()
        assert sorted(k.alg for k in stored) == ["ES256", "RS256"]
        keys.forget_cached_keys()
        published = keys.keyring().jwks_bytes
    assert {body for path, _, body in answers if path == "/jwks"} | set(later) == {published}

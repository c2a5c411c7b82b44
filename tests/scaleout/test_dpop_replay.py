"""A DPoP proof (RFC 9449 11.1) is accepted once however many nodes serve:
its jti is remembered in Redis when configured, in the database without it,
and in the database again while Redis is silent."""

import pytest
import redis

from idp import create_app
from idp.extensions import db
from idp.models import UsedDPoPProof

from ..helpers import RelyingParty
from ..oauth.dpop_client import DPoPKey


def node(app, clock, **config):
    return create_app({"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": app.secret_key,
                       "ISSUER": app.config["ISSUER"], **config}, clock=clock)


@pytest.fixture
def redis_nodes(app, clock, redis_url):
    nodes = [node(app, clock, REDIS_URL=redis_url) for _ in range(2)]
    yield nodes
    for other in nodes:
        with other.app_context():
            db.engine.dispose()


def token_request(app, rp, proof):
    return app.test_client().post("/token", data={"grant_type": "client_credentials"},
                                  headers={**rp.auth(), "DPoP": proof})


def stored_in_database(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(UsedDPoPProof))


def test_a_proof_replayed_to_another_node_sharing_redis_is_refused(app, client, clock, redis_nodes, redis_url):
    rp = RelyingParty.register(app, client)
    proof = DPoPKey(clock).proof("POST", "/token")
    assert token_request(redis_nodes[0], rp, proof).status_code == 200
    second = token_request(redis_nodes[1], rp, proof)
    assert second.status_code == 400 and second.get_json()["error"] == "invalid_dpop_proof"
    assert stored_in_database(app) == 0  # Redis held it
    keys = redis.Redis.from_url(redis_url).keys("dpop:*")
    assert len(keys) == 1 and 0 < redis.Redis.from_url(redis_url).ttl(keys[0]) <= 2 * 60 + 1


def test_while_redis_is_silent_proofs_are_remembered_in_the_database(app, client, clock, silent_redis, caplog):
    silent = node(app, clock, REDIS_URL=f"redis://127.0.0.1:{silent_redis.port}/0", REDIS_TIMEOUT_MS=200)
    rp = RelyingParty.register(app, client)
    proof = DPoPKey(clock).proof("POST", "/token")
    assert token_request(silent, rp, proof).status_code == 200
    assert stored_in_database(app) == 1
    assert "Redis did not answer: DPoP proofs checked in the database" in caplog.text
    assert token_request(app, rp, proof).get_json()["error"] == "invalid_dpop_proof"  # a node without Redis sees it
    with silent.app_context():
        db.engine.dispose()

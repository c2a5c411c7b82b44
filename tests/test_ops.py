"""Operating the OP: health, readiness, metrics, the audit log's export and retention."""

import json

from idp.extensions import db
from idp.models import AuditEvent


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_readiness_fails_without_the_database(app):
    from idp import create_app

    broken = create_app({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "SECRET_KEY": "x" * 40,
                         "ISSUER": app.config["ISSUER"]})
    assert broken.test_client().get("/readyz").status_code == 503


def test_metrics_count_logins_and_tokens_and_are_restricted(rp, client):
    rp.tokens()
    body = client.get("/metrics").get_data(as_text=True)
    assert 'idp_logins_total{outcome="success"}' in body
    assert 'idp_tokens_issued_total{grant_type="authorization_code"}' in body
    assert "idp_request_seconds_bucket" in body
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert outside.status_code == 403


def test_metrics_with_a_bearer_token_from_elsewhere(app, client):
    app.config["METRICS_TOKEN"] = "scrape-token-0123456789"
    remote = {"REMOTE_ADDR": "203.0.113.5"}
    assert client.get("/metrics", environ_base=remote,
                      headers={"Authorization": "Bearer scrape-token-0123456789"}).status_code == 200
    assert client.get("/metrics", environ_base=remote, headers={"Authorization": "Bearer wrong"}).status_code == 403


def test_audit_export_and_prune(app, rp, runner, clock):
    rp.tokens()
    lines = [json.loads(line) for line in runner.invoke(args=["audit", "export"]).output.splitlines()]
    assert "login.success" in {line["event"] for line in lines}
    only = runner.invoke(args=["audit", "export", "--event", "login.success"]).output.splitlines()
    assert len(only) == 1 and json.loads(only[0])["account_id"] is not None
    clock.advance(401 * 86400)
    assert "removed" in runner.invoke(args=["audit", "prune"]).output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == 0

"""What operators watch: liveness, readiness, Prometheus metrics.

/healthz answers while the process serves; /readyz also needs the database.
/metrics (Prometheus text) is served only to addresses in
IDP_METRICS_ALLOW (CIDRs; loopback by default) or with IDP_METRICS_TOKEN as
a bearer token. Under several worker processes set PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode) so that every worker is counted.
"""

from __future__ import annotations

import ipaddress
import os
import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from .extensions import db
from .security.secrets import digest, matches

bp = Blueprint("ops", __name__)

REQUESTS = Counter("idp_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram("idp_request_seconds", "Request latency", ["endpoint"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
LOGINS = Counter("idp_logins_total", "Login attempts", ["outcome"])
TOKENS = Counter("idp_tokens_issued_total", "Tokens issued", ["grant_type"])
THROTTLED = Counter("idp_throttled_total", "Requests refused by a throttle", ["what"])

# Audit events that are also counted.
EVENT_METRICS = {
    "login.success": (LOGINS, ("success",)),
    "login.failure": (LOGINS, ("failure",)),
    "login.throttled": (THROTTLED, ("login",)),
    "registration.verify_throttled": (THROTTLED, ("registration",)),
    "registration.step4_throttled": (THROTTLED, ("registration_mail",)),
    "recovery.throttled": (THROTTLED, ("recovery",)),
}


def count_event(event: str, details: dict) -> None:
    if event in EVENT_METRICS:
        metric, labels = EVENT_METRICS[event]
        metric.labels(*labels).inc()


@bp.route("/healthz")
def healthz():
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@bp.route("/readyz")
def readyz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any database failure means: not ready
        db.session.rollback()
        return {"status": "database unavailable"}, 503, {"Cache-Control": "no-store"}
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@bp.route("/metrics")
def metrics():
    if not _metrics_allowed():
        return {"error": "forbidden"}, 403
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def init_app(app) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer():
        g.idp_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        endpoint = request.endpoint or "unrouted"
        if endpoint != "ops.metrics" and "idp_started" in g:
            LATENCY.labels(endpoint).observe(time.perf_counter() - g.idp_started)
            REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        return response


def _metrics_allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header[:7].lower() == "bearer " and matches(header[7:].strip(), digest(token)):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr.strip(), strict=False)
               for cidr in current_app.config["METRICS_ALLOW"].split(","))

"""A private_key_jwt client's side: its keys, its jwks_uri server, its assertions."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt  # PyJWT makes the assertions: an independent JOSE implementation
from cryptography.hazmat.primitives.asymmetric import rsa

from ..helpers import ISSUER

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def new_key(kid):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "alg": "RS256", "use": "sig"}


class JwksServer:
    """A client's jwks_uri on a loopback port. It answers ``jwks`` with
    ``status``; while ``gate`` is clear, it holds each answer until the gate opens."""

    def __init__(self):
        self.jwks = {"keys": []}
        self.status = 200
        self.fetches = 0
        self.counted = threading.Condition()
        self.gate = threading.Event()
        self.gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.counted:
                    outer.fetches += 1
                    outer.counted.notify_all()
                outer.gate.wait(30)
                body = json.dumps(outer.jwks).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reached(self, fetches: int) -> bool:
        """Whether ``fetches`` fetches arrive (within a generous bound)."""
        with self.counted:
            return self.counted.wait_for(lambda: self.fetches >= fetches, timeout=30)

    def close(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def assertion(client_id, private, kid, now=None, algorithm="RS256", **overrides):
    """A client assertion issued now by the wall clock, expiring a minute after
    ``now`` (default: the wall clock; the OP's clock when a test moves it on)."""
    issued = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": f"{ISSUER}/token", "iat": issued,
              "exp": (issued if now is None else now) + 60,
              "jti": str(uuid.uuid4()), **overrides}
    claims = {name: value for name, value in claims.items() if value is not None}
    return pyjwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid})


def token(client, client_id, signed):
    return client.post("/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    })

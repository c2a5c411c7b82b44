"""A DPoP client's side (RFC 9449) for the tests: a key pair and the proofs
it signs, each part settable so that every rule can be broken on purpose."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

from joserfc import jws
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

ISSUER = "https://id.example.test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(token: str) -> str:
    return _b64(hashlib.sha256(token.encode()).digest())


class DPoPKey:
    def __init__(self, clock, alg: str = "ES256") -> None:
        self.clock, self.alg = clock, alg
        self.key = {
            "ES256": lambda: ECKey.generate_key("P-256"),
            "ES384": lambda: ECKey.generate_key("P-384"),
            "RS256": lambda: RSAKey.generate_key(2048),
            "PS256": lambda: RSAKey.generate_key(2048),
            "Ed25519": lambda: OKPKey.generate_key("Ed25519"),
        }[alg]()
        self.public = self.key.as_dict(private=False)
        self.jkt = self.key.thumbprint()

    def proof(self, method: str, url: str, *, token: str | None = None, nonce: str | None = None,
              iat: int | None = None, jti: str | None = None, header: dict | None = None,
              claims: dict | None = None, drop: tuple = (), signer=None) -> str:
        """A proof for ``method`` ``url`` (a path is under the issuer); ``header``
        and ``claims`` override or add members (a header member set to None
        is left out), ``drop`` removes claims."""
        head = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public, **(header or {})}
        head = {name: value for name, value in head.items() if value is not None}  # None: left out
        body = {"jti": jti or secrets.token_urlsafe(16), "htm": method,
                "htu": url if url.startswith("http") else ISSUER + url,
                "iat": self.clock.now() if iat is None else iat}
        if token is not None:
            body["ath"] = ath(token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        payload = json.dumps(body)
        if head["alg"] == "none":
            return f"{_b64(json.dumps(head).encode())}.{_b64(payload.encode())}."
        if head["alg"].startswith("HS"):
            secret = OctKey.import_key(b"k" * 32)
            return jws.serialize_compact(head, payload, secret, algorithms=[head["alg"]])
        return jws.serialize_compact(head, payload, signer or self.key, algorithms=[head["alg"]])

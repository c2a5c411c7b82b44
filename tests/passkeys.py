"""A software authenticator for the tests: real WebAuthn answers, built and
signed here (EC P-256), as a browser and its authenticator would send them;
and the customer's steps with it on the OP (enrol on the account page, sign
in on the login page).

Each answer can be made wrong on purpose: another origin, another RP ID, a
signature counter that goes back (a clone), no user verification."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import struct
from dataclasses import dataclass, field

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .helpers import ISSUER, csrf_token

RP_ID = "id.example.test"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One discoverable credential, like a phone's platform authenticator."""

    backup_eligible: bool = False
    counts: bool = True  # synced passkeys often leave the counter at 0
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(16))
    sign_count: int = 0
    user_handle: bytes | None = None

    def _flags(self, *, uv: bool = True, attested: bool = False) -> bytes:
        bits = 0x01 | (0x04 if uv else 0) | (0x08 if self.backup_eligible else 0) | (0x40 if attested else 0)
        return bytes([bits])

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    @staticmethod
    def _client_data(kind: str, options: dict, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": options["challenge"], "origin": origin,
                           "crossOrigin": False}).encode()

    def create(self, options: dict, *, origin: str = ISSUER, rp_id: str = RP_ID, uv: bool = True) -> str:
        """navigator.credentials.create(): the registration answer (attestation "none")."""
        self.user_handle = unb64(options["user"]["id"])
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + self._flags(uv=uv, attested=True)
                     + struct.pack(">I", self.sign_count) + bytes(16)
                     + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_key())
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64(self._client_data("webauthn.create", options, origin)),
                         "attestationObject": b64(attestation), "transports": ["internal", "hybrid"]},
        })

    def get(self, options: dict, *, origin: str = ISSUER, rp_id: str = RP_ID, uv: bool = True,
            sign_count: int | None = None) -> str:
        """navigator.credentials.get(): a signed assertion."""
        if sign_count is None:
            if self.counts:
                self.sign_count += 1
            sign_count = self.sign_count if self.counts else 0
        auth_data = hashlib.sha256(rp_id.encode()).digest() + self._flags(uv=uv) + struct.pack(">I", sign_count)
        client_data = self._client_data("webauthn.get", options, origin)
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps({
            "id": b64(self.credential_id), "rawId": b64(self.credential_id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64(client_data), "authenticatorData": b64(auth_data),
                         "signature": b64(signature),
                         "userHandle": b64(self.user_handle) if self.user_handle is not None else None},
        })


# --- the customer's steps on the OP ---------------------------------------------------


def enrolment_options(client, name: str = "私のスマートフォン", password: str = "itscom-demo1"):
    """On the account page: name and current password; returns (options, page of the next step)."""
    page = client.get("/account/").get_data(as_text=True)
    response = client.post("/account/passkeys/new", data={"csrf_token": csrf_token(page), "name": name,
                                                            "current_password": password})
    page = response.get_data(as_text=True)
    if response.status_code != 200:
        return None, response
    options = json.loads(html.unescape(_attribute(page, "data-options")))
    return options, response


def enrol(client, authenticator: SoftAuthenticator, name: str = "私のスマートフォン", password: str = "itscom-demo1",
          **answer):
    """Enrol ``authenticator`` as a passkey of the signed-in customer; the response of the last POST."""
    options, page = enrolment_options(client, name, password)
    assert options is not None, page.get_data(as_text=True)
    return client.post("/account/passkeys", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                                  "credential": authenticator.create(options, **answer)})


def login_options(client, path: str = "/login", **request) -> tuple[dict, str]:
    """The login page's passkey options, as passkey.js asks for them; (options, CSRF token).
    ``request`` (environ_base …) goes with both requests."""
    token = csrf_token(client.get(path, **request).get_data(as_text=True))
    response = client.post("/login/passkey/options", headers={"X-CSRFToken": token}, **request)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json(), token


def post_assertion(client, credential: str, token: str, key: str | None = None, **request):
    path = "/login/passkey" + (f"?request={key}" if key else "")
    return client.post(path, data={"csrf_token": token, "credential": credential}, **request)


def passkey_login(client, authenticator: SoftAuthenticator, key: str | None = None, *,
                  request: dict | None = None, **answer):
    """パスキーでログイン on the login page (of the sign-in ``key`` waits for)."""
    options, token = login_options(client, f"/login?request={key}" if key else "/login", **(request or {}))
    return post_assertion(client, authenticator.get(options, **answer), token, key, **(request or {}))


def _attribute(page: str, name: str) -> str:
    start = page.index(f'{name}="') + len(name) + 2
    return page[start:page.index('"', start)]

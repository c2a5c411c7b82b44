"""Signing-key rotation without breaking anyone (publish, sign, retire, remove)."""

import json
import time

import jwt as pyjwt
import pytest

from idp import keys
from idp.extensions import db
from idp.models import SigningKey

from ..helpers import FrozenClock


@pytest.fixture
def config_overrides():
    return {"KEY_PUBLISH_DELAY": 300}


@pytest.fixture(autouse=True)
def _drop_keys_afterwards(app):
    """Signing keys outlive a test (see conftest); these tests change them,
    so they leave none behind: the next test starts with fresh keys."""
    yield
    with app.app_context():
        db.session.execute(db.delete(SigningKey))
        db.session.commit()


def kids(client, alg="RS256"):
    return {k["kid"] for k in client.get("/jwks").get_json()["keys"] if k["alg"] == alg}


def test_rotation_publishes_first_signs_later_and_keeps_old_tokens_valid(app, rp, client, clock, runner):
    before = rp.tokens()
    old_kid = pyjwt.get_unverified_header(before["id_token"])["kid"]

    result = runner.invoke(args=["keys", "rotate", "--alg", "RS256"])
    assert result.exit_code == 0, result.output
    listed = {k["kid"]: k["state"] for k in json.loads(runner.invoke(args=["keys", "list", "--json"]).output)}
    new_kid = next(k for k, state in listed.items() if state == "next")
    assert listed[old_kid] == "active"
    assert {old_kid, new_kid} <= kids(client)  # published before it signs
    assert pyjwt.get_unverified_header(rp.tokens()["id_token"])["kid"] == old_kid

    clock.advance(301)
    with app.app_context():
        keys.forget_cached_keys()
    after = rp.tokens()
    assert pyjwt.get_unverified_header(after["id_token"])["kid"] == new_kid
    assert {old_kid, new_kid} <= kids(client)
    rp.verify_id_token(before["id_token"])  # the old key still verifies tokens from before
    rp.verify_id_token(after["id_token"])

    clock.advance(3600)
    with app.app_context():
        keys.forget_cached_keys()
    assert old_kid not in kids(client) and new_kid in kids(client)


def test_private_keys_are_encrypted_at_rest_with_a_kek(app, client):
    app.config["KEY_ENCRYPTION_KEY"] = "a long random key-encryption key for tests"
    with app.app_context():
        row = keys.rotate("ES256")
        db.session.commit()
        stored = db.session.get(SigningKey, row.id).private_jwk
        assert stored.startswith("fernet:") and '"d"' not in stored
        keys.forget_cached_keys()
    assert row.kid in kids(client, "ES256")


class TickingClock(FrozenClock):
    """A clock that moves on a second every time it is read: whatever reads
    the time twice sees two instants."""

    def now(self) -> int:
        self.current += 1
        return self.current


def _first_start(app) -> None:
    """As on a freshly migrated database: no signing key yet, none cached."""
    with app.app_context():
        db.session.execute(db.delete(SigningKey))
        db.session.commit()
        keys.forget_cached_keys()


def _stored_algs(app) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(db.select(SigningKey.alg)))


class TestFirstStartWithAClockThatTicks:
    @pytest.fixture
    def clock(self):
        return TickingClock(int(time.time()) - 600)

    def test_jwks(self, app, client):
        _first_start(app)
        response = client.get("/jwks")
        assert response.status_code == 200
        assert sorted(k["alg"] for k in response.get_json()["keys"]) == ["ES256", "RS256"]
        assert _stored_algs(app) == ["ES256", "RS256"]

    def test_token_endpoint(self, app, rp):
        _first_start(app)
        response = rp.token_request({"grant_type": "client_credentials"})
        assert response.status_code == 200, response.get_data(as_text=True)
        header = pyjwt.get_unverified_header(response.get_json()["access_token"])
        assert header["kid"] in {k["kid"] for k in rp.client.get("/jwks").get_json()["keys"]}

    def test_id_token(self, app, rp):
        code = rp.sign_in_and_get_code()["code"]  # signs nothing yet
        _first_start(app)
        response = rp.exchange(code)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert rp.verify_id_token(response.get_json()["id_token"])["aud"] == rp.client_id
        assert _stored_algs(app) == ["ES256", "RS256"]


def test_reloading_the_ring_imports_only_keys_it_has_not_seen(app, runner, monkeypatch):
    """Each worker reloads its ring every KEY_CACHE_SECONDS; importing an RSA
    key costs tens of milliseconds, so a reload reuses what it imported, and
    a rotation imports only the new key."""
    imports = []
    real = keys._import
    monkeypatch.setattr(keys, "_import", lambda row: imports.append(row.kid) or real(row))
    with app.app_context():
        first = keys.keyring()
        loaded = len(imports)
        assert loaded >= len(keys.SUPPORTED_ALGS)
        # A signing key is a published key too: the first load imports it once.
        assert sorted(imports) == sorted({k.kid for k in first.public.keys})
        keys.forget_cached_keys()
        again = keys.keyring()
        assert len(imports) == loaded  # nothing imported twice
        assert again.jwks_bytes == first.jwks_bytes
    assert runner.invoke(args=["keys", "rotate", "--alg", "RS256"]).exit_code == 0
    with app.app_context():
        keys.forget_cached_keys()
        rotated = keys.keyring()
    assert len(imports) == loaded + 1  # the new key only
    assert len(rotated.public.keys) == len(first.public.keys) + 1

"""private_key_jwt client authentication (RFC 7523, OIDC Core 9) through Authlib.

In order: Authlib parses the assertion without verifying it (joserfc's
``extract_compact``) and finds the client named by ``sub``. Before it asks for
that client's keys (``resolve_client_public_key``), ``check_without_key``
checks everything that needs none: the client authenticates this way, the
alg is one it may use (never "none"), iss = sub = client_id, aud names this
OP, exp is present, not past and at most ASSERTION_MAX_LIFETIME ahead, jti
is present. So junk never makes the OP fetch a jwks_uri. Then Authlib checks
the signature and the claims again, and the ``jti`` is accepted once across
every node (a unique row); a few seconds of clock skew are allowed.

The client's public keys come from its registered ``jwks``, or from its
``jwks_uri`` through this app's ``JwksFetcher`` (below): cached, fetched off
the request thread, failures remembered, and fetched again at once when an
assertion names a key the cache does not know (the client rotated).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FetchStillRunning
from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from cachetools import LRUCache, TTLCache
from flask import current_app, g, has_app_context
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db, upsert
from ..keys import SUPPORTED_ALGS
from ..models import Client, FetchedKeySet, UsedAssertion
from ..security import outbound
from ..security.clock import now
from ..security.secrets import digest

SKEW = 5
ASSERTION_MAX_LIFETIME = 600

# --- fetching jwks_uri (see JwksFetcher for why these numbers) ---------------
FETCH_WAIT = 0.1  # seconds a request may wait for one fetch, all its requests together
FETCH_DEADLINE = 3  # seconds a fetch may take in all
FETCH_TIMEOUT = 2  # seconds per socket operation of a fetch
FETCH_THREADS = 4  # fetches under way at once, per process; one per client at most
FAILURE_BACKOFF = 10  # seconds a failed URI is not fetched again; doubles per failure ...
JWKS_CACHE_SECONDS = 300  # ... up to this, which is also how long a fetched set is fresh
JWKS_STALE_SECONDS = 3600  # a set older than fresh is still used while it is refreshed
FAILURE_MEMORY = 2 * JWKS_CACHE_SECONDS  # a quiet URI's failures are forgotten after this
REFETCH_SECONDS = 10  # forced fetches (unknown kid) per URI, at most this often
MAX_JWKS_BYTES = 64 * 1024
MAX_URIS = 4096  # URIs whose failures are remembered, per process
MAX_KEY_BYTES = 8 * 1024 * 1024  # fetched sets kept per process, in bytes of JSON
SHARED_PRUNE_EVERY = 100  # fetched sets shared between removals of stale ones


class PrivateKeyJWT(JWTBearerClientAssertion):
    """One instance serves every request. Authlib hands each hook only part of
    what the others saw: ``extract_assertion`` the assertion's header and
    claims, ``resolve_client_public_key`` the client. So they travel in
    Flask's request-local ``g``: ``idp_assertion_header`` and
    ``idp_assertion_claims`` (read by ``resolve_client_public_key``, to check
    everything that needs no key first) and ``idp_assertion_client`` (read by
    ``process_assertion_claims``, to refetch keys once for an unknown kid)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self):
        super().__init__(validate_jti=True, leeway=SKEW)

    def get_audiences(self):
        issuer = current_app.config["ISSUER"]
        # RFC 9126 2: at the PAR endpoint, its URL is an audience too.
        return [f"{issuer}/token", issuer, f"{issuer}/revoke", f"{issuer}/introspect", f"{issuer}/par"]

    def extract_assertion(self, assertion: str):
        headers, claims = super().extract_assertion(assertion)
        g.idp_assertion_header = headers
        g.idp_assertion_claims = claims
        return headers, claims

    def resolve_client_public_key(self, client):
        self.check_without_key(client, g.idp_assertion_header, g.idp_assertion_claims)
        g.idp_assertion_client = client
        return KeySet.import_key_set(client_jwks(client))

    def check_without_key(self, client, header: dict, claims: dict) -> None:
        """Everything that needs no key, before any key is looked for."""
        if not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token"):
            raise InvalidClientError(description=f"The client cannot authenticate with {self.CLIENT_AUTH_METHOD}.")
        # Registration 1.0 2: a registered signing alg is the only one accepted.
        registered = client.client_metadata.get("token_endpoint_auth_signing_alg")
        allowed = (registered,) if registered else SUPPORTED_ALGS
        if header.get("alg") not in allowed:
            raise InvalidClientError(description=f"The client assertion must be signed with {' or '.join(allowed)}.")
        expected = jwt.JWTClaimsRegistry(
            now=now, leeway=SKEW,
            iss={"essential": True, "value": client.client_id},
            sub={"essential": True, "value": client.client_id},
            aud={"essential": True, "values": self.get_audiences()},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            expected.validate(claims)
        except JoseError as error:
            raise InvalidClientError(description=error.description) from None
        if not isinstance(claims["exp"], int) or claims["exp"] > now() + ASSERTION_MAX_LIFETIME:
            # A long-lived assertion could be replayed for too long.
            raise InvalidClientError(description="The client assertion lives too long.")

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            return super().process_assertion_claims(assertion, resolve_key)
        except InvalidClientError:
            client = g.get("idp_assertion_client")
            kid = g.get("idp_assertion_header", {}).get("kid")
            if client is None or not client.client_metadata.get("jwks_uri") or not kid:
                raise
            if any(key.get("kid") == kid for key in client_jwks(client).get("keys", [])):
                raise  # the key is known: the assertion itself is bad
            # A key the cache does not know yet (the client rotated): fetch once
            # more, at most every REFETCH_SECONDS per URI.
            fresh = KeySet.import_key_set(client_jwks(client, force=True))
            return super().process_assertion_claims(assertion, fresh)

    def validate_jti(self, claims, jti):
        return UsedAssertion.first_use(digest(f"{claims['sub']}\0{jti}"), claims["exp"] + SKEW)


def client_jwks(client, force: bool = False) -> dict:
    """The client's public JWK Set: registered, or from its jwks_uri."""
    metadata = client.client_metadata
    if metadata.get("jwks"):
        return metadata["jwks"]
    uri = metadata.get("jwks_uri")
    if not uri:
        raise InvalidClientError(description="The client has no keys.")
    try:
        return current_app.extensions["idp.jwks"].keys(uri, force=force, client_id=client.client_id)
    except KeysUnavailable as error:
        raise InvalidClientError(description=f"The client's jwks_uri {error}.") from None


class KeysUnavailable(Exception):
    """The keys at a jwks_uri cannot be had now; the message says why."""


@dataclass
class _Fetch:
    client_id: str | None
    future: Future
    wait_until: float  # time.monotonic(): requests may wait for this fetch until then


class JwksFetcher:
    """The JWK Sets at clients' jwks_uri, for one app (one process).

    The production server runs one request thread per worker (granian
    ``--blocking-threads 1``), and a worker whose thread is blocked queues
    everything else it accepts, customers' pages included. A jwks_uri is
    chosen by whoever registered the client, so no request thread may wait
    long for one. Hence:

    - Fetches run on a pool of FETCH_THREADS (4) threads, each ended after
      FETCH_DEADLINE (3 s) in all, and one client has at most one fetch under
      way (one that keeps changing its jwks_uri cannot take the others'
      threads); when none is free a request needing a new fetch fails at
      once instead of queueing.
    - Fetched sets take at most MAX_KEY_BYTES (8 MiB) per process, the least
      recently used going first; shared ones are removed from the database
      once stale or no longer named by a client (now and then as sets are
      shared, and by ``flask audit prune``).
    - Concurrent needs for one URI share one fetch. Requests wait for it
      until FETCH_WAIT (0.1 s) after it started, all of them together: a fetch
      costs a worker at most 0.1 s of its thread however many requests name
      that URI, so a page queued behind it still answers well within 200 ms.
      A fetch that is not done by then goes on in the background and fills
      the cache: a slow but honest jwks_uri works on the client's retry.
    - A failed fetch is remembered: requests naming that URI fail at once for
      FAILURE_BACKOFF (10 s), doubling with each further failure up to
      JWKS_CACHE_SECONDS (300 s). A jwks_uri that never answers therefore sees
      one connection per worker per 13 s at most (3 s + 10 s), then fewer,
      and costs each worker 0.1 s of thread time per fetch.
    - A fetched set is fresh for JWKS_CACHE_SECONDS; after that it is still
      used, up to JWKS_STALE_SECONDS, while a refresh runs in the background
      or after a refresh failed, so honest clients never wait for a refresh.
      An assertion naming a kid the set lacks forces a fetch (the client
      rotated its keys), at most once per REFETCH_SECONDS per URI.
    - A client's keys are fetched as soon as it is registered or changed
      (``prefetch``), so even an honest jwks_uri slower than FETCH_WAIT is
      normally read before the client's first request needs it.
    - On PostgreSQL every fetched set is also kept in the database
      (``FetchedKeySet``), where a worker without a fresh copy looks before
      fetching: one successful fetch serves every worker and node. Not on
      SQLite, whose one writer at a time would make a fetch's write wait for
      (and deadlock with) the request that is waiting for the fetch.

    Cache times follow the app's clock; waits and deadlines are real time.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.clock = clock = app.extensions["idp.clock"]
        self.allow_private = app.config["ALLOW_PRIVATE_OUTBOUND"]
        self.logger = app.logger
        self.shared = app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")
        self.shares = itertools.count(1)
        self.lock = threading.Lock()
        self.sets = LRUCache(maxsize=MAX_KEY_BYTES, getsizeof=_size)  # uri -> (fetched_at, jwks)
        self.failures = TTLCache(maxsize=MAX_URIS, ttl=FAILURE_MEMORY, timer=clock.now)  # uri -> (count, retry_at)
        self.forced = TTLCache(maxsize=MAX_URIS, ttl=REFETCH_SECONDS, timer=clock.now)  # uri -> True
        self.fetching: dict[str, _Fetch] = {}
        self.pool = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="jwks")

    def keys(self, uri: str, force: bool = False, client_id: str | None = None) -> dict:
        """The JWK Set at ``uri``; KeysUnavailable when it cannot be had now."""
        with self.lock:
            t = self.clock.now()
            fetched_at, jwks = self.sets.get(uri, (None, None))
            if jwks is not None and not force and t - fetched_at < JWKS_CACHE_SECONDS:
                return jwks
            failure = self.failures.get(uri)
            failing = (force and uri in self.forced) or (failure and t < failure[1])
            in_flight = uri in self.fetching
        if self.shared and not (force or failing or in_flight):
            shared = self._shared(uri)  # another worker's fetch, or the one made at registration
            if shared is not None and (fetched_at is None or shared[0] > fetched_at):
                fetched_at, jwks = shared
                with self.lock:
                    self.sets[uri] = shared
                if t - fetched_at < JWKS_CACHE_SECONDS:
                    return jwks
        usable = jwks if jwks is not None and t - fetched_at < JWKS_STALE_SECONDS else None
        with self.lock:
            if failing:
                if usable is not None:
                    return usable
                raise KeysUnavailable("could not be read lately; try again later")
            fetch = self.fetching.get(uri) or self._start(uri, client_id)
            if force and fetch is not None:
                self.forced[uri] = True
        if usable is not None and (fetch is None or not force):
            return usable
        if fetch is None:
            raise KeysUnavailable("cannot be read now; try again later")
        try:
            fetched = fetch.future.result(timeout=max(0.0, fetch.wait_until - time.monotonic()))
        except FetchStillRunning:
            raise KeysUnavailable("is being read; try again shortly") from None
        if fetched is None:
            raise KeysUnavailable("could not be read")
        return fetched

    def prefetch(self, uri: str, client_id: str | None = None) -> None:
        """Fetch ``uri`` in the background now, unless it is fresh, being
        fetched or failing (a client was registered or changed)."""
        with self.lock:
            t = self.clock.now()
            fetched_at, _ = self.sets.get(uri, (None, None))
            failure = self.failures.get(uri)
            if uri in self.fetching or (fetched_at is not None and t - fetched_at < JWKS_CACHE_SECONDS) or (
                    failure and t < failure[1]):
                return
            self._start(uri, client_id)

    @staticmethod
    def _shared(uri: str) -> tuple[int, dict] | None:
        row = db.session.get(FetchedKeySet, digest(uri))
        return (row.fetched_at, row.jwks) if row is not None and row.uri == uri else None

    def _share(self, uri: str, fetched_at: int, jwks: dict) -> None:
        """On a pool thread: keep a fetched set for every worker and node."""
        table = FetchedKeySet.__table__
        with self.app.app_context():
            statement = upsert(table).values(uri_digest=digest(uri), uri=uri, jwks=jwks, fetched_at=fetched_at)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.uri_digest],
                set_={"uri": uri, "jwks": statement.excluded.jwks, "fetched_at": statement.excluded.fetched_at})
            try:
                db.session.execute(statement)
                if next(self.shares) % SHARED_PRUNE_EVERY == 0:
                    prune_fetched_key_sets(fetched_at)
                db.session.commit()
            except SQLAlchemyError as error:  # the set still serves this worker
                self.logger.warning("could not share the keys of jwks_uri %s: %s", uri, type(error).__name__)
            finally:
                db.session.remove()

    def _start(self, uri: str, client_id: str | None) -> _Fetch | None:
        """Under the lock: a fetch of ``uri`` on the pool; None when the pool
        is full, or when this client already has a fetch of another URI under
        way (a client that keeps changing its jwks_uri holds one thread, not
        all of them)."""
        if len(self.fetching) >= FETCH_THREADS:
            return None
        if client_id is not None and any(fetch.client_id == client_id for fetch in self.fetching.values()):
            return None
        fetch = _Fetch(client_id, self.pool.submit(self._fetch, uri), time.monotonic() + FETCH_WAIT)
        self.fetching[uri] = fetch
        return fetch

    def _fetch(self, uri: str) -> dict | None:
        """On a pool thread: fetch, then record the set or the failure."""
        try:
            jwks = download_jwks(uri, self.allow_private)
        except (OSError, ValueError) as error:
            self.logger.warning("jwks_uri %s unusable: %s", uri, error)
            jwks = None
        except Exception:  # a pool thread has nobody to report to but the log
            self.logger.exception("fetching jwks_uri %s failed", uri)
            jwks = None
        t = self.clock.now()
        if jwks is not None and self.shared:
            self._share(uri, t, jwks)
        with self.lock:
            if jwks is None:
                count = min(self.failures.get(uri, (0, 0))[0] + 1, 10)
                self.failures[uri] = (count, t + min(JWKS_CACHE_SECONDS, FAILURE_BACKOFF * 2 ** (count - 1)))
            else:
                self.sets[uri] = (t, jwks)
                self.failures.pop(uri, None)
            del self.fetching[uri]
        return jwks


def download_jwks(uri: str, allow_private: bool) -> dict:
    """The JWK Set at ``uri``: OSError when unreachable, ValueError when unusable."""
    status, body = outbound.request("GET", uri, headers={"Accept": "application/json"}, allow_private=allow_private,
                                    timeout=FETCH_TIMEOUT, deadline=FETCH_DEADLINE, max_bytes=MAX_JWKS_BYTES)
    if status != 200:
        raise ValueError(f"status {status}")
    jwks = json.loads(body)
    try:
        KeySet.import_key_set(jwks)
    except (ValueError, TypeError, KeyError, AttributeError, JoseError):
        raise ValueError("not a JWK Set") from None
    return jwks


def init_app(app) -> None:
    app.extensions["idp.jwks"] = JwksFetcher(app)


@event.listens_for(Client, "after_insert")
@event.listens_for(Client, "after_update")
def _prefetch_keys(mapper, connection, target) -> None:
    """A private_key_jwt client registered or changed: read its keys now."""
    metadata = target.client_metadata or {}
    uri = metadata.get("jwks_uri") if metadata.get("token_endpoint_auth_method") == "private_key_jwt" else None
    if uri and has_app_context() and "idp.jwks" in current_app.extensions:
        current_app.extensions["idp.jwks"].prefetch(uri, target.client_id)


def _size(entry: tuple[int, dict]) -> int:
    return len(json.dumps(entry[1]))


def prune_fetched_key_sets(t: int) -> int:
    """Remove fetched sets too old to be used, and those of URIs no client
    names any more; the caller commits. Returns how many."""
    uris = {metadata.get("jwks_uri") for metadata in db.session.scalars(db.select(Client.client_metadata))}
    stale = db.session.execute(
        db.delete(FetchedKeySet).where(FetchedKeySet.fetched_at < t - JWKS_STALE_SECONDS)).rowcount
    unused = db.session.execute(
        db.delete(FetchedKeySet).where(FetchedKeySet.uri.not_in([uri for uri in uris if uri]))).rowcount
    return stale + unused


def prune_used_assertions() -> int:
    return db.session.execute(db.delete(UsedAssertion).where(UsedAssertion.expires_at < now())).rowcount

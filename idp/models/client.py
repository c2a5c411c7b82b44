"""A relying party registered with the OP, answering Authlib's ClientMixin.

Every token, UserInfo and introspection request asks for its client, and a
browser RP's every request for the registered origins (CORS); registrations
change rarely. So both are read through this app's caches (``idp.clients``,
``idp.origins``; see idp/cache.py): changes made in this process clear them
at once, other nodes see them within IDP_CLIENT_CACHE_SECONDS.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from flask import current_app, has_app_context
from sqlalchemy import JSON, BigInteger, Boolean, String, event
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..security.secrets import matches

LOOPBACK_HOSTS = {"127.0.0.1", "::1"}


class Client(db.Model, ClientMixin):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Digest of a 256-bit random secret; None for public clients.
    client_secret_digest: Mapped[str | None] = mapped_column(String(64))
    client_id_issued_at: Mapped[int] = mapped_column(BigInteger)
    # RFC 7592: digest of the token that lets a dynamically registered client
    # read, update and delete its own registration.
    registration_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    # My Page and other iTSCOM sites: no consent page.
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 7591 metadata: client_name, redirect_uris, post_logout_redirect_uris,
    # backchannel_logout_uri, grant_types, response_types, scope,
    # token_endpoint_auth_method, id_token_signed_response_alg,
    # require_pushed_authorization_requests (RFC 9126 6), subject_type and
    # sector_identifier_uri (OIDC Core 8).
    client_metadata: Mapped[dict] = mapped_column(JSON, default=dict)

    @classmethod
    def lookup(cls, client_id: str | None) -> Client | None:
        """The enabled client, from this app's cache: a copy outside any
        session, safe to share between requests and threads."""
        if not client_id or len(client_id) > 64:
            return None

        def load() -> Client | None:
            row = db.session.scalar(db.select(cls).filter_by(client_id=client_id, disabled=False))
            return row._detached() if row is not None else None

        return current_app.extensions["idp.clients"].get(client_id, load)

    @classmethod
    def origins(cls) -> frozenset[str]:
        """Origins of enabled clients' redirect URIs (those CORS is offered to),
        from this app's cache."""

        def load() -> frozenset[str]:
            origins = set()
            for metadata in db.session.scalars(db.select(cls.client_metadata).filter_by(disabled=False)):
                for uri in metadata.get("redirect_uris", []):
                    parts = urlsplit(uri)
                    if parts.scheme in ("http", "https") and parts.netloc:
                        origins.add(f"{parts.scheme}://{parts.netloc}")
            return frozenset(origins)

        return current_app.extensions["idp.origins"].get("origins", load)

    def _detached(self) -> Client:
        return Client(
            id=self.id, client_id=self.client_id, client_secret_digest=self.client_secret_digest,
            client_id_issued_at=self.client_id_issued_at, first_party=self.first_party, disabled=self.disabled,
            client_metadata=dict(self.client_metadata), registration_token_digest=self.registration_token_digest,
        )

    @property
    def name(self) -> str:
        return self.client_metadata.get("client_name", self.client_id)

    def name_in(self, language: str) -> str:
        """The name to show on a page in ``language``: the language-tagged
        client_name (RFC 7591 2.2, e.g. ``client_name#en``) when registered."""
        return self.client_metadata.get(f"client_name#{language}") or self.name

    @property
    def redirect_uris(self) -> list[str]:
        return self.client_metadata.get("redirect_uris", [])

    @property
    def token_endpoint_auth_method(self) -> str:
        return self.client_metadata.get("token_endpoint_auth_method", "client_secret_basic")

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def scope(self) -> str:
        return self.client_metadata.get("scope", "")

    @property
    def id_token_signed_response_alg(self) -> str | None:
        return self.client_metadata.get("id_token_signed_response_alg")

    @property
    def requires_pushed_authorization_requests(self) -> bool:
        return bool(self.client_metadata.get("require_pushed_authorization_requests"))

    @property
    def sector_identifier(self) -> str | None:
        """The host a pairwise client's subjects are derived for (OIDC Core
        8.1): its sector_identifier_uri's, else its redirect URIs' one host;
        None for a client that sees public subjects (first-party sites always do)."""
        if self.first_party or self.client_metadata.get("subject_type") != "pairwise":
            return None
        uri = self.client_metadata.get("sector_identifier_uri") or (self.redirect_uris or [""])[0]
        return urlsplit(uri).hostname or ""

    # --- Authlib's questions -------------------------------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous registration may omit redirect_uri (RFC 6749 3.1.2.3).
        uris = self.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.scope.split())
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match; native (public) clients may vary a loopback port (RFC 8252 7.3)."""
        if redirect_uri in self.redirect_uris:
            return True
        return self.is_public and any(
            _same_except_loopback_port(registered, redirect_uri) for registered in self.redirect_uris
        )

    def check_client_secret(self, client_secret: str) -> bool:
        return matches(client_secret, self.client_secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # One registered method for the token, revocation and introspection endpoints.
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.client_metadata.get("response_types", ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client_metadata.get("grant_types", ["authorization_code"])


@event.listens_for(Client, "after_insert")
@event.listens_for(Client, "after_update")
@event.listens_for(Client, "after_delete")
def _forget_cached_clients(mapper, connection, target) -> None:
    if has_app_context():
        current_app.extensions["idp.clients"].clear()
        current_app.extensions["idp.origins"].clear()


def _same_except_loopback_port(registered: str, presented: str) -> bool:
    try:
        a, b = urlsplit(registered), urlsplit(presented)
        a_port, b_port = a.port, b.port  # may raise on a malformed port
    except ValueError:
        return False
    if a.scheme != "http" or b.scheme != "http" or a.hostname not in LOOPBACK_HOSTS:
        return False
    return (a.hostname, a.path, a.query, a.fragment) == (b.hostname, b.path, b.query, b.fragment) and (
        b_port is not None or a_port is None
    )


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

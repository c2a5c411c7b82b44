"""What a customer granted a client: codes, tokens and remembered consent.

How codes and tokens are stored, spent and revoked: ``idp/tokens.py``.
"""

from authlib.oauth2.rfc6749 import TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin
from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..security.clock import now
from .account import Account
from .client import Client


class AuthorizationCode(db.Model, AuthorizationCodeMixin):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # As sent in the authorization request; None when the sole registered URI was implied.
    redirect_uri: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    # The OIDC "claims" request parameter (Core 5.5), if any.
    claims_request: Mapped[dict | None] = mapped_column(JSON)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    sid: Mapped[str | None] = mapped_column(String(64))
    # The session's authentication methods when the code was issued (the ID
    # token's amr and acr); NULL for codes from before: a password.
    amr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 9449 10: the JWK thumbprint the authorization request named
    # (dpop_jkt); the token request must prove that key.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))

    account: Mapped[Account] = relationship(lazy="joined")

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


class Token(db.Model, TokenMixin):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    # All tokens descended from one authorization share a family id.
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    # The code this family came from, so that code reuse can revoke it.
    authorization_code_id: Mapped[int | None] = mapped_column(Integer, index=True)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    claims_request: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))  # None is SQL NULL, as the ORM leaves it
    issued_at: Mapped[int] = mapped_column(BigInteger)
    access_expires_at: Mapped[int] = mapped_column(BigInteger)
    refresh_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # Absolute end of the family: rotation never extends past it.
    family_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # Set when this refresh token was exchanged for a newer one.
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 9449 6: the JWK thumbprint (SHA-256) of the DPoP key the access
    # token is bound to (None: a Bearer token); a public client's refresh
    # token is bound to it too (RFC 9449 5).
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))

    account: Mapped[Account | None] = relationship(lazy="joined")

    # --- Authlib's questions -------------------------------------------

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.access_expires_at - self.issued_at

    def is_expired(self) -> bool:
        return now() >= self.access_expires_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def get_user(self) -> Account | None:
        return self.account

    def get_client(self) -> Client | None:
        return Client.lookup(self.client_id)

    def is_refresh_usable(self, at: int) -> bool:
        return (
            self.refresh_token_digest is not None
            and self.revoked_at is None
            and self.rotated_at is None
            and self.refresh_expires_at is not None
            and at < self.refresh_expires_at
        )


class Consent(db.Model):
    """Scopes a customer approved for a third-party client, remembered."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)

    def covers(self, scope: str) -> bool:
        return self.revoked_at is None and set(scope.split()) <= set(self.scope.split())


class RevokedAccessToken(db.Model):
    """A client_credentials access token revoked before it expired (RFC 7009).
    Such tokens are self-contained JWTs that are never stored (``idp.tokens``):
    this list is what makes a revocation stick. ``jti``: the token's JWT ID;
    an entry may go once ``expires_at`` has passed (``flask audit prune``)."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
    revoked_at: Mapped[int] = mapped_column(BigInteger)

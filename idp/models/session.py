"""The OP session: one per signed-in browser, shared by every RP (SSO)."""

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .account import Account


class LoginSession(db.Model):
    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of the cookie value; the cookie itself is never stored.
    cookie_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The "sid" claim of ID tokens and back-channel logout tokens.
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    # How the customer authenticated (RFC 8176 values, space-separated, e.g.
    # "pwd" or "pwd otp mfa"); the acr follows from it (idp.second_factor).
    # NULL in sessions from before it was kept: a password.
    amr: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))

    account: Mapped[Account] = relationship(lazy="joined")

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple((self.amr or "pwd").split())

    def is_open(self, now: int) -> bool:
        """Neither ended nor expired: what the session's own columns say."""
        return self.ended_at is None and now < self.expires_at

    def is_live(self, now: int) -> bool:
        return self.is_open(now) and self.account.is_active

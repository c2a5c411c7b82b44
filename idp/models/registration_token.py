"""Initial access tokens for dynamic client registration (RFC 7591 3)."""

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class InitialAccessToken(db.Model):
    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    # Single use: set when a client was registered with it.
    used_at: Mapped[int | None] = mapped_column(BigInteger)

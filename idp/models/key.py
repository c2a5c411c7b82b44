"""Signing keys, stored in the database so that every OP process shares them."""

from sqlalchemy import BigInteger, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

FIRST_KEY = text("activates_at = 0")


class SigningKey(db.Model):
    __tablename__ = "signing_keys"
    __table_args__ = (
        # One first key per algorithm (keys.py: FIRST_KEY_ACTIVATES_AT),
        # however many processes create it at once.
        Index("uq_signing_keys_first_key_alg", "alg", unique=True,
              postgresql_where=FIRST_KEY, sqlite_where=FIRST_KEY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Published in the JWKS from created_at; signs from activates_at (0: the
    # first key of its algorithm, which signs from its creation).
    activates_at: Mapped[int] = mapped_column(BigInteger)
    # Signs no more after retired_at; published until removed_at.
    retired_at: Mapped[int | None] = mapped_column(BigInteger)
    removed_at: Mapped[int | None] = mapped_column(BigInteger)

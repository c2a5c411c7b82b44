"""Signing keys, stored in the database so that every OP process shares them."""

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class SigningKey(db.Model):
    __tablename__ = "signing_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_jwk: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Published in the JWKS from created_at; signs from activates_at.
    activates_at: Mapped[int] = mapped_column(BigInteger)
    # Signs no more after retired_at; published until removed_at.
    retired_at: Mapped[int | None] = mapped_column(BigInteger)
    removed_at: Mapped[int | None] = mapped_column(BigInteger)

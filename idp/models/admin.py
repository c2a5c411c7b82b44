"""Administrators: separate from customers, with a password and a TOTP second factor."""

from sqlalchemy import BigInteger, Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class Admin(db.Model):
    __tablename__ = "admins"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # The TOTP secret, sealed (Fernet) under a key derived from IDP_SECRET_KEY.
    totp_secret: Mapped[str] = mapped_column(Text)
    # The last TOTP time step accepted: a code works once.
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    # Changes at every sign-in and sign-out: admin sessions carrying another
    # value (a copied cookie, a session from before logout) are over.
    session_nonce: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

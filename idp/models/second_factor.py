"""A customer's second factor for password sign-ins: a TOTP authenticator
and the recovery codes that stand in for it (idp/second_factor.py)."""

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class TotpFactor(db.Model):
    """One authenticator app per account; the row exists only once the
    customer confirmed it with a code (enrolment waits in the flow cookie)."""

    __tablename__ = "totp_factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    # The TOTP secret, sealed (Fernet) under a key derived from IDP_SECRET_KEY.
    secret: Mapped[str] = mapped_column(Text)
    # The last time step accepted: a code works once.
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)


class RecoveryCode(db.Model):
    """One single-use code that stands in for the second factor; only its
    digest is stored (the codes carry 50 bits each: no argon2 needed)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    used_at: Mapped[int | None] = mapped_column(BigInteger)

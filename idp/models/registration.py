"""A registration waiting for its mailed URL to be opened (manual p.14–16)."""

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .contract import Contract


class PendingRegistration(db.Model):
    __tablename__ = "pending_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of the 256-bit token in the mailed URL.
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    login_id: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    # Set once, when the registration completes: the URL is single-use.
    completed_at: Mapped[int | None] = mapped_column(BigInteger)

    contract: Mapped[Contract] = relationship(lazy="joined")

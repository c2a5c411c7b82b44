"""A password recovery procedure (manual p.17–24), from 本人認証 to the reset.

One row per procedure, also for an unknown iTSCOM ID (``account_id`` None),
so that known and unknown IDs cost the same and look the same. A procedure
is bound to the browser that started it (``binding_digest``; 3-B) or to the
secret question its starter set (3-A), and dies after ``MAX_FAILURES``.
"""

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .account import Account


class RecoveryProcedure(db.Model):
    __tablename__ = "recovery_procedures"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "code" (3-B, mailed code) or "secret" (3-A, secret question + mailed link).
    method: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    # Digest of a random value kept in the starting browser's session.
    binding_digest: Mapped[str] = mapped_column(String(64), unique=True)
    # 3-B: keyed digest (HMAC with the secret key) of the 6-digit code.
    code_digest: Mapped[str | None] = mapped_column(String(64))
    # 3-A: the question chosen, the argon2 hash of the normalised answer,
    # and the digest of the mailed link's token.
    question: Mapped[str | None] = mapped_column(String(64))
    answer_hash: Mapped[str | None] = mapped_column(String(255))
    link_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # When the code or the answer was right: the password may be set now.
    verified_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)

    account: Mapped[Account | None] = relationship(lazy="joined")

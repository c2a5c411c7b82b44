"""Back-channel logout notices waiting to reach a relying party."""

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class BackchannelLogout(db.Model):
    __tablename__ = "backchannel_logouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    uri: Mapped[str] = mapped_column(Text)
    # What the logout token will say; it is signed afresh at each attempt so
    # that a retry never sends an expired token.
    subject: Mapped[str] = mapped_column(String(64))
    sid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, index=True)
    # A sender holds a row until lease_until; another may take it after.
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)

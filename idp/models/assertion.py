"""JWT IDs of client assertions already used (RFC 7523 3 item 7): replay is refused."""

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class UsedAssertion(db.Model):
    __tablename__ = "used_assertions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of client_id + jti: unique, so two nodes cannot both accept one.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)

"""JWT IDs already used, so that replay is refused: of client assertions
(RFC 7523 3 item 7) and of DPoP proofs (RFC 9449 11.1; in the database when
no Redis is configured, oauth/dpop.py)."""

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class UsedAssertion(db.Model):
    __tablename__ = "used_assertions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of client_id + jti: unique, so two nodes cannot both accept one.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class UsedDPoPProof(db.Model):
    __tablename__ = "used_dpop_proofs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of the key's thumbprint + jti: unique, so two nodes cannot both accept one.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)

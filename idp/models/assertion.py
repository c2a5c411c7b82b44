"""Single-use values already used, so that replay is refused: JWT IDs of
client assertions (RFC 7523 3 item 7), WebAuthn challenges (idp.passkeys),
and DPoP proofs (RFC 9449 11.1; in the database when no Redis is
configured, oauth/dpop.py)."""

from sqlalchemy import BigInteger, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class UsedAssertion(db.Model):
    __tablename__ = "used_assertions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of client_id + jti (or of a challenge): unique, so two nodes cannot both accept one.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)

    @classmethod
    def first_use(cls, digest: str, expires_at: int) -> bool:
        """Note the value as used; False when it was already, and then the
        transaction is rolled back (the request refuses it)."""
        db.session.add(cls(digest=digest, expires_at=expires_at))
        try:
            db.session.flush()
        except IntegrityError:
            db.session.rollback()
            return False
        return True


class UsedDPoPProof(db.Model):
    __tablename__ = "used_dpop_proofs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Digest of the key's thumbprint + jti: unique, so two nodes cannot both accept one.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)

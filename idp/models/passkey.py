"""A passkey: a WebAuthn credential a customer enrolled on the account page."""

from sqlalchemy import BigInteger, Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .account import Account


class Passkey(db.Model):
    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # The authenticator's credential ID (at most 1023 bytes, WebAuthn §5.8.3):
    # unique, so one credential opens one iTSCOM ID.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    # COSE_Key of the credential, as the authenticator gave it at enrolment.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The authenticator's signature counter as last seen; 0 for authenticators
    # (most synced passkeys) that do not count.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # What the browser said the authenticator can be reached by (usb, internal,
    # hybrid …), space separated; a hint for the next ceremony only.
    transports: Mapped[str] = mapped_column(String(200), default="")
    # The customer's own name for it, given at enrolment.
    name: Mapped[str] = mapped_column(String(64))
    # Backup eligible (BE flag): a synced passkey, copied between devices by
    # its provider; otherwise bound to one device's hardware.
    backup_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)

    account: Mapped[Account] = relationship(lazy="joined")

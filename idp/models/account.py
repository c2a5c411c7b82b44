"""An iTSCOM ID: one per contract, the thing a customer signs in with."""

from sqlalchemy import BigInteger, Boolean, ForeignKey, String, false
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .contract import Contract


class Account(db.Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The OIDC "sub": random, stable across re-registration, reveals nothing.
    subject: Mapped[str] = mapped_column(String(64), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), unique=True)
    # The iTSCOM ID (an e-mail address), stored lower-cased: IDs are compared
    # without regard to case so that nobody can register "Taro@" beside "taro@".
    login_id: Mapped[str] = mapped_column(String(100), unique=True)
    # True once mail to the login ID was answered (registration), or for
    # accounts migrated from the old system, whose IDs were verified there.
    login_id_verified: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # 合言葉 set on the account page: the question, and the argon2 hash of the
    # normalised answer (idp.accounts.normalise_answer).
    secret_question: Mapped[str | None] = mapped_column(String(64))
    secret_answer_hash: Mapped[str | None] = mapped_column(String(255))
    # "ja" or "en": the language of the last sign-in, or the one picked with a
    # page's language link while signed in (the locale claim); None: never said.
    locale: Mapped[str | None] = mapped_column(String(8))
    # 2段階認証（パスキー）: password sign-ins ask for one of the account's
    # passkeys (or a recovery code), with or without an authenticator app.
    passkey_factor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # "active", or "locked" by an operator.
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    password_changed_at: Mapped[int] = mapped_column(BigInteger)

    contract: Mapped[Contract] = relationship(lazy="joined")

    @hybrid_property
    def is_active(self) -> bool:
        """On an account, and in a query (``Account.is_active``) alike."""
        return self.status == "active"

    def get_user_id(self) -> str:
        """Authlib asks for the user's id when it builds tokens: the opaque sub."""
        return self.subject

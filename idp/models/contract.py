"""ご契約: a contract as exported by the billing system; never edited by customers."""

from sqlalchemy import JSON, BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class Contract(db.Model):
    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_number: Mapped[str] = mapped_column(String(10), unique=True)  # お客さま番号
    name_kanji: Mapped[str] = mapped_column(String(100))
    # Katakana as exported ("イツ タロウ"); matching uses kana_key.
    name_kana: Mapped[str] = mapped_column(String(100))
    # Full-width katakana without spaces: what registration compares against.
    kana_key: Mapped[str] = mapped_column(String(100), index=True)
    phones: Mapped[list[str]] = mapped_column(JSON, default=list)
    bank_last4: Mapped[str | None] = mapped_column(String(4))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    stb_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    contact_emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    additional_auth: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[int] = mapped_column(BigInteger)

    @property
    def phone_e164(self) -> str | None:
        """The first registered number in E.164 ("0312345678" -> "+81312345678")."""
        if not self.phones:
            return None
        return "+81" + self.phones[0][1:]

"""Throttle counters when no Redis is configured, or while it does not answer.

One row per key (a login ID's digest, a client address, a device cookie, a
contract identity): failures within the window, when the latest came, and the
one before it (so that a refused attempt can be taken back). Rows are only
written by ``idp.security.throttle.DatabaseCounters``, one statement each.
"""

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class ThrottleCounter(db.Model):
    __tablename__ = "throttle_counters"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last: Mapped[int] = mapped_column(BigInteger)
    prev_last: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)

"""Pushed authorization requests (RFC 9126): a client's parameters, waiting
for the browser to bring their request_uri to /authorize (idp/oauth/par.py)."""

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class PushedRequest(db.Model):
    __tablename__ = "pushed_requests"

    # Digest of the random part of the request_uri; the URI itself is never stored.
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The client that pushed it: only that client may use it (RFC 9126 4).
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    # The authorization request's parameters, as [name, value] pairs.
    params: Mapped[list] = mapped_column(JSON)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)

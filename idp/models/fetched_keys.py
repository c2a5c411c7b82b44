"""Clients' public keys as last fetched from their jwks_uri, shared by every
worker and node, so that one successful fetch serves them all."""

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class FetchedKeySet(db.Model):
    __tablename__ = "fetched_key_sets"

    # SHA-256 of the jwks_uri: URIs may be long, and this is the lookup key.
    uri_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    uri: Mapped[str] = mapped_column(String(2048))
    jwks: Mapped[dict] = mapped_column(JSON)
    fetched_at: Mapped[int] = mapped_column(BigInteger)

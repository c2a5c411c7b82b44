"""How a mail leaves: by SMTP to IDP_MAIL_URL.

``smtp://host:port`` plain, ``smtp+starttls://`` upgrades with STARTTLS,
``smtps://`` is TLS from the start; ``user:password@`` authenticates.

Mail leaves from the `flask mail deliver` loop, never from a web worker:
smtplib is imported there, when the first mail is sent.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpTransport:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        import smtplib

        context = ssl.create_default_context()
        if self.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.scheme == "smtp+starttls":
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def make_transport(mail_url: str | None) -> Transport | None:
    """SMTP when IDP_MAIL_URL is set; otherwise None: mails stay in the
    development outbox, read at /dev/mail."""
    return SmtpTransport(mail_url) if mail_url else None

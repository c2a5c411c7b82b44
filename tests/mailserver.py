"""A real SMTP server on a loopback port (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
import re
import socket

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def last_to(self, address: str):
        matching = [m for m in self.messages if m["To"] == address]
        assert matching, f"no mail to {address}; got {[m['To'] for m in self.messages]}"
        return matching[-1]


class MailServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def body_of(message) -> str:
    return message.get_content()


def url_in(message) -> str:
    match = re.search(r"https?://\S+/registration/confirm/\S+", body_of(message))
    assert match, body_of(message)
    return match.group(0)

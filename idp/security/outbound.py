"""HTTP requests the OP itself makes to relying parties (back-channel logout,
jwks_uri): never following redirects, bounded in size, and ended by a
watchdog after ``deadline`` seconds in all (socket timeouts apply per read,
so a trickling server could otherwise hold a sender for ever)."""

from __future__ import annotations

import http.client
import socket
import threading
from urllib.parse import urlsplit


class OutboundError(OSError):
    pass


def request(method: str, url: str, body: str | None = None, headers: dict | None = None, *,
            timeout: float = 5, deadline: float = 10, max_bytes: int = 64 * 1024) -> tuple[int, bytes]:
    """(status, body) of one exchange; OutboundError when it cannot complete."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(f"not an http(s) URL: {url}")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    cut = threading.Event()
    watchdog = threading.Timer(deadline, _cut, args=(connection, cut))
    watchdog.start()
    try:
        connection.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                           body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read(max_bytes + 1)
    except (OSError, http.client.HTTPException) as error:
        raise OutboundError(f"{type(error).__name__}: {error}") from error
    finally:
        watchdog.cancel()
        connection.close()
    if cut.is_set():
        raise OutboundError(f"no complete answer within {deadline} s")
    if len(data) > max_bytes:
        raise OutboundError("answer too large")
    return response.status, data


def _cut(connection, cut: threading.Event) -> None:
    """Wake a read blocked on a trickling server: shut the socket down."""
    cut.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

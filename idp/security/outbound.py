"""HTTP requests the OP itself makes to addresses that clients supplied
(back-channel logout, jwks_uri), and the rule for where they may go.

No SSRF: a client's metadata must not point the OP at its own network (Redis
on 127.0.0.1:6379, a cloud metadata service on 169.254.169.254, a router on
10.0.0.1). So a destination must be a public unicast address: ``request()``
looks the host up once, refuses if any address it resolves to is not public,
and connects to a vetted address itself, never through a second lookup that a
DNS server could answer differently (rebinding). TLS still verifies the
certificate against the host name and sends it as SNI. ``vet_url()`` applies
the same rule at registration, so that whoever registers hears of it early;
only the check at connect time is relied on. ``allow_private`` (the setting
IDP_ALLOW_PRIVATE_OUTBOUND, never in production) lifts the rule for
development and tests, whose servers listen on loopback.

Exchanges never follow redirects, are bounded in size, and end after
``deadline`` seconds in all, the name lookup included: socket timeouts apply
per operation, so a watchdog shuts the socket of a trickling server.

Why not requests-hardened (which filters addresses for requests): it vets only
the first address a name resolves to, allows loopback but no other private
range for development, leaves the lookup unbounded and has no total deadline
(requests' timeouts are per socket operation); what is needed here is small
enough for http.client.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA's special-purpose address registries (RFC 6890 and later), spelled out
# rather than taken from ipaddress's is_global / is_private: those differ
# between Python versions (3.11 calls multicast 224.0.0.0/4 global, and newer
# versions judge ::ffff:0:0/96 by the embedded IPv4 address). First match wins.
FORBIDDEN_IPV4 = [(ipaddress.IPv4Network(net), why) for net, why in [
    ("0.0.0.0/8", "'this network' (reaches the OP's own host)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
]]
# Public IPv6 unicast lies in 2000::/3, except these blocks. 6to4 and Teredo
# embed IPv4 addresses and are relayed to them: refused whole.
GLOBAL_UNICAST_IPV6 = ipaddress.IPv6Network("2000::/3")
FORBIDDEN_GLOBAL_IPV6 = [(ipaddress.IPv6Network(net), why) for net, why in [
    ("2001::/32", "Teredo"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
]]
# Outside 2000::/3, named so that the refusal says what it is.
NON_GLOBAL_IPV6 = [(ipaddress.IPv6Network(net), why) for net, why in [
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
]]
# These carry an IPv4 address in their last 32 bits and reach it (a dual-stack
# socket, a NAT64 gateway): judged by that address.
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Seconds a registration may spend looking up a host name.
VET_LOOKUP_TIMEOUT = 2


class OutboundError(OSError):
    pass


class ForbiddenDestination(OutboundError):
    """The destination is not a public address."""


def forbidden_because(address: IPAddress) -> str | None:
    """Why the OP must not connect to ``address``; None for a public address."""
    if address.version == 6:
        if address in IPV4_MAPPED or address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            why = forbidden_because(embedded)
            return f"{why} (as {embedded})" if why else None
        if address in GLOBAL_UNICAST_IPV6:
            return next((why for net, why in FORBIDDEN_GLOBAL_IPV6 if address in net), None)
        return next((why for net, why in NON_GLOBAL_IPV6 if address in net), "reserved")
    return next((why for net, why in FORBIDDEN_IPV4 if address in net), None)


def vet_url(url: str, *, allow_private: bool, resolve_name: bool = True,
            lookup_timeout: float = VET_LOOKUP_TIMEOUT) -> None:
    """At registration: refuse (ForbiddenDestination) a URL whose host is, or
    (with ``resolve_name``) now resolves to, a non-public address. A name that
    does not resolve, or not in time, passes: ``request()`` looks it up again
    anyway, and that check is the one relied on."""
    host, port, _ = _destination(url)
    if allow_private:
        return
    _vet_name(host)
    if not resolve_name:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        _vet(host, [address])
        return
    try:
        addresses = resolve(host, port, lookup_timeout)
    except OutboundError:
        return
    _vet(host, addresses)


def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """The addresses of ``host``, looked up once, in at most ``timeout`` seconds."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    # getaddrinfo() cannot be interrupted; a daemon thread that outlives the
    # timeout ends with the resolver's own.
    outcome: dict = {}

    def look_up() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            outcome["error"] = error

    lookup = threading.Thread(target=look_up, name="outbound-lookup", daemon=True)
    lookup.start()
    lookup.join(timeout)
    if "infos" not in outcome:
        raise OutboundError(f"cannot resolve {host}: {outcome.get('error', f'no answer within {timeout} s')}")
    addresses = [ipaddress.ip_address(info[4][0]) for info in outcome["infos"]
                 if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise OutboundError(f"{host} has no IP address")
    return list(dict.fromkeys(addresses))


def request(method: str, url: str, body: str | None = None, headers: dict | None = None, *,
            allow_private: bool = False, timeout: float = 5, deadline: float = 10,
            max_bytes: int = 64 * 1024) -> tuple[int, bytes]:
    """(status, body) of one exchange; OutboundError when it cannot complete
    (ForbiddenDestination when the host is not public). ``timeout`` bounds
    each socket operation, ``deadline`` the whole exchange."""
    host, port, target = _destination(url)
    end = time.monotonic() + deadline
    if not allow_private:
        _vet_name(host)
    addresses = resolve(host, port, min(timeout, deadline))
    if not allow_private:
        _vet(host, addresses)
    https = urlsplit(url).scheme == "https"
    connection = (_PinnedHTTPSConnection if https else _PinnedHTTPConnection)(host, port, addresses, end, timeout)
    cut = threading.Event()
    watchdog = threading.Timer(max(0.0, end - time.monotonic()), _cut, args=(connection, cut))
    watchdog.start()
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read(max_bytes + 1)
    except (OSError, http.client.HTTPException) as error:
        if isinstance(error, OutboundError):
            raise
        raise OutboundError(f"{type(error).__name__}: {error}") from error
    finally:
        watchdog.cancel()
        connection.close()
    if cut.is_set():
        raise OutboundError(f"no complete answer within {deadline} s")
    if len(data) > max_bytes:
        raise OutboundError("answer too large")
    return response.status, data


def _destination(url: str) -> tuple[str, int, str]:
    """(host, port, request target) of an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundError(f"not a valid URL: {url}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundError(f"not an http(s) URL: {url}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80), target


def _vet_name(host: str) -> None:
    """``localhost`` and its subdomains are loopback by definition (RFC 6761),
    whatever a resolver says."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise ForbiddenDestination(f"{host} is loopback")


def _vet(host: str, addresses: list[IPAddress]) -> None:
    for address in addresses:
        why = forbidden_because(address)
        if why:
            shown = str(address) if str(address) == host else f"{host} ({address})"
            raise ForbiddenDestination(f"{shown} is {why}")


def _connect(addresses: list[IPAddress], port: int, timeout: float, end: float) -> socket.socket:
    """A connection to the first vetted address that answers, before ``end``."""
    error: OSError = OutboundError("deadline passed before connecting")
    for address in addresses:
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        try:
            return socket.create_connection((str(address), port), min(timeout, remaining))
        except OSError as failed:
            error = failed
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to addresses vetted beforehand; the Host header keeps the name."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress], end: float, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses, self.end = addresses, end

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout, self.end)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above, then TLS verified against the host name (also sent as SNI)."""

    def __init__(self, host: str, port: int, addresses: list[IPAddress], end: float, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.addresses, self.end = addresses, end

    def connect(self) -> None:
        # Held in self.sock during the handshake too, so the watchdog can cut it.
        self.sock = _connect(self.addresses, self.port, self.timeout, self.end)
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.host)


def _cut(connection, cut: threading.Event) -> None:
    """Wake a read blocked on a trickling server: shut the socket down."""
    cut.set()
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

"""Requests the OP makes to addresses clients supplied: public destinations
only (no SSRF), checked against the address actually connected to."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.extensions import db
from idp.models import BackchannelLogout
from idp.oauth import client_auth
from idp.oauth.backchannel import deliver_due
from idp.security import outbound
from idp.security.outbound import ForbiddenDestination, OutboundError, forbidden_because

from ..helpers import FrozenClock, RelyingParty
from ..oauth.client_keys import assertion, new_key, token


@pytest.mark.parametrize("address", [
    # IPv4
    "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
    "169.254.169.254", "100.64.0.1", "100.127.255.254", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "240.0.0.1", "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.88.99.1",
    # IPv6
    "::", "::1", "fe80::1", "fe80::1%2", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1", "ff0e::1", "100::1",
    "2001:db8::1", "3fff::1", "4000::1", "5f00::1",
    # IPv4 embedded in IPv6: mapped, compatible, NAT64, 6to4, Teredo
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:0.0.0.0", "::127.0.0.1",
    "::8.8.8.8", "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1", "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
])
def test_non_public_addresses_are_refused(address):
    assert forbidden_because(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", [
    "8.8.8.8", "93.184.215.14", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1", "223.255.255.254",
    "2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
])
def test_public_addresses_pass(address):
    assert forbidden_because(ipaddress.ip_address(address)) is None


class Receiver:
    """An HTTP server on loopback that records what reaches it."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.hosts: list[str] = []
        self.server_names: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                receiver.hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sslobj, name, context: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost", "api.localhost"])
def test_a_non_public_destination_is_never_connected_to(receiver, host):
    with pytest.raises(ForbiddenDestination, match="loopback"):
        outbound.request("GET", f"http://{host}:{receiver.port}/")
    assert receiver.hosts == []


def test_every_address_of_a_name_is_vetted(receiver, dns):
    dns.answer("keys.rp.test", "93.184.215.14", "127.0.0.1")
    with pytest.raises(ForbiddenDestination, match=r"keys\.rp\.test \(127\.0\.0\.1\) is loopback"):
        outbound.request("GET", f"http://keys.rp.test:{receiver.port}/")
    assert receiver.hosts == []


def test_the_connection_goes_to_the_address_looked_up_once(receiver, dns):
    """No second lookup between the check and the connection (DNS rebinding)."""
    dns.answer("keys.rp.test", "127.0.0.1")
    status, body = outbound.request("GET", f"http://keys.rp.test:{receiver.port}/jwks", allow_private=True)
    assert (status, body) == (200, b"ok")
    assert dns.lookups == ["keys.rp.test"]
    assert receiver.hosts == [f"keys.rp.test:{receiver.port}"]


def test_a_hanging_lookup_ends_with_the_deadline(dns):
    dns.hang("slow.rp.test")
    with pytest.raises(OutboundError, match="no answer within"):
        outbound.request("GET", "https://slow.rp.test/jwks", timeout=0.3, deadline=0.3)
    # At registration a name that does not resolve in time is let through:
    # the check at connect time decides.
    outbound.vet_url("https://slow.rp.test/jwks", allow_private=False, lookup_timeout=0.3)


def test_registration_checks_what_a_name_resolves_to_now(dns):
    dns.answer("inside.rp.test", "10.1.2.3")
    dns.answer("outside.rp.test", "93.184.215.14")
    with pytest.raises(ForbiddenDestination, match="private"):
        outbound.vet_url("https://inside.rp.test/jwks", allow_private=False)
    outbound.vet_url("https://outside.rp.test/jwks", allow_private=False)
    outbound.vet_url("https://inside.rp.test/jwks", allow_private=True)


def _certificate(name: str, issuer_key, issuer_name, key, ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An https server on loopback whose certificate names keys.rp.test,
    issued by a CA that the OP's default trust store is pointed at."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Test CA", ca_key, None, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate("keys.rp.test", ca_key, ca.subject, key)
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    server = Receiver(context)
    yield server
    server.close()


def test_tls_is_verified_against_the_host_name_not_the_address(tls_receiver, dns):
    dns.answer("keys.rp.test", "127.0.0.1")
    dns.answer("other.rp.test", "127.0.0.1")
    url = f"https://keys.rp.test:{tls_receiver.port}/jwks"
    assert outbound.request("GET", url, allow_private=True) == (200, b"ok")
    assert tls_receiver.server_names == ["keys.rp.test"]  # SNI
    with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
        outbound.request("GET", f"https://other.rp.test:{tls_receiver.port}/jwks", allow_private=True)
    with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
        outbound.request("GET", f"https://127.0.0.1:{tls_receiver.port}/jwks", allow_private=True)


def test_a_silent_server_is_cut_off_at_the_deadline():
    with socket.create_server(("127.0.0.1", 0)) as silent:
        with pytest.raises(OutboundError):
            outbound.request("GET", f"http://127.0.0.1:{silent.getsockname()[1]}/", allow_private=True,
                             timeout=5, deadline=0.3)


# --- through the OP: a client's URI that turns inward after registration ------

@pytest.fixture
def clock():
    """The wall clock's time: the client signs its assertion by it."""
    return FrozenClock(int(time.time()))


@pytest.fixture
def inside():
    """A service on the OP's own host that nobody outside should reach."""
    with socket.create_server(("127.0.0.1", 0)) as service:
        service.setblocking(False)
        yield service


def reached(service) -> bool:
    try:
        service.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_a_jwks_uri_rebound_to_loopback_is_not_fetched(app, client, dns, inside, monkeypatch):
    monkeypatch.setattr(client_auth, "FETCH_WAIT", 10)  # the request sees its fetch end
    uri = f"https://keys.rebind.test:{inside.getsockname()[1]}/jwks"
    dns.answer("keys.rebind.test", "93.184.215.14")  # public when registered ...
    rp = RelyingParty.register(app, client, auth_method="private_key_jwt", jwks_uri=uri)
    dns.answer("keys.rebind.test", "127.0.0.1")  # ... inward when fetched
    private, _ = new_key("k1")
    response = token(client, rp.client_id, assertion(rp.client_id, private, "k1"))
    assert response.status_code in (400, 401) and response.get_json()["error"] == "invalid_client"
    assert dns.lookups.count("keys.rebind.test") == 2  # at registration, and at connect time
    assert not reached(inside)


@pytest.mark.parametrize("config_overrides", [{"BACKCHANNEL_INLINE": False}])  # delivered by the test
def test_a_back_channel_uri_rebound_to_loopback_is_not_posted_to(app, client, account, dns, inside):
    uri = f"https://logout.rebind.test:{inside.getsockname()[1]}/backchannel-logout"
    dns.answer("logout.rebind.test", "93.184.215.14")
    rp = RelyingParty.register(app, client, backchannel_logout_uri=uri)
    dns.answer("logout.rebind.test", "127.0.0.1")
    rp.sign_in_and_get_code()
    rp.login()  # a new login in the same browser ends the session: one notice
    with app.app_context():
        assert deliver_due() == (0, 1)
        notice = db.session.scalar(db.select(BackchannelLogout))
        assert "ForbiddenDestination: logout.rebind.test (127.0.0.1) is loopback" in notice.last_error
    assert not reached(inside)

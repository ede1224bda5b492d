"""The gateway's TLS material: a private CA, leaf certificates, and the contexts built on them.

TLS is checked with real sockets on 127.0.0.1: a client made by `client_context` talks to a
small echo server made by `server_context`.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sekisho.gateway import pki
from sekisho.gateway.pki import (
    InsecureKeyFile,
    PkiError,
    TlsFiles,
    ca_pem,
    client_context,
    ensure_ca,
    ensure_gateway_certificate,
    issue_certificate,
    server_context,
)

# --- helpers -------------------------------------------------------------------------------


class EchoServer:
    """A TLS echo server on 127.0.0.1, listening before the constructor returns."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # lets the accept loop notice `close`
        self.port: int = self.listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    while data := tls.recv(65536):
                        tls.sendall(data)
            except OSError as exc:  # ssl.SSLError included: a failed handshake
                self.errors.append(exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[list[EchoServer]]:
    """Start echo servers with `EchoServer(ctx)` appended here; all are closed afterwards."""
    servers: list[EchoServer] = []
    yield servers
    for server in servers:
        server.close()


def start_echo(servers: list[EchoServer], context: ssl.SSLContext) -> EchoServer:
    server = EchoServer(context)
    servers.append(server)
    return server


def echo(
    port: int, context: ssl.SSLContext, server_hostname: str, payload: bytes = b"hello"
) -> tuple[bytes, str | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        version = tls.version()
        tls.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        return got, version


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def sans(path: Path) -> tuple[set[str], set[str]]:
    ext = cert(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        set(ext.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)},
    )


def leaf(tmp_path: Path, **kwargs: object) -> TlsFiles:
    ca = ensure_ca(tmp_path)
    args: dict[str, object] = {
        "name": "svc",
        "dns_names": ["svc.prod.internal", "localhost"],
        "ip_addresses": ["127.0.0.1"],
    }
    args.update(kwargs)
    return issue_certificate(ca, directory=tmp_path, **args)  # type: ignore[arg-type]


# --- the CA --------------------------------------------------------------------------------


def test_the_ca_has_the_agreed_shape(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    assert ca == TlsFiles(cert=tmp_path / "pki" / "ca.crt", key=tmp_path / "pki" / "ca.key")
    c = cert(ca.cert)
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "sekisho local CA"
    assert c.issuer == c.subject
    c.verify_directly_issued_by(c)  # self-signed
    basic = c.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert basic.value.path_length == 0
    usage = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    public = c.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    lifetime = c.not_valid_after_utc - c.not_valid_before_utc
    assert dt.timedelta(days=3650) <= lifetime <= dt.timedelta(days=3653)


def test_the_ca_is_created_once_and_reused(tmp_path: Path) -> None:
    first = ensure_ca(tmp_path)
    cert_bytes, key_bytes = first.cert.read_bytes(), first.key.read_bytes()
    assert ensure_ca(tmp_path) == first
    assert (first.cert.read_bytes(), first.key.read_bytes()) == (cert_bytes, key_bytes)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_files_get_their_modes_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        ca, gateway = ensure_gateway_certificate(tmp_path, [])
    finally:
        os.umask(old)
    assert mode(tmp_path / "pki") == 0o700
    assert mode(ca.key) == mode(gateway.key) == 0o600
    assert mode(ca.cert) == mode(gateway.cert) == 0o644
    # No temporary file is left behind by the atomic writes.
    assert sorted(p.name for p in (tmp_path / "pki").iterdir() if p.name.endswith(".tmp")) == []


def test_a_loose_pki_directory_is_tightened(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir(mode=0o755)
    os.chmod(tmp_path / "pki", 0o755)
    ensure_ca(tmp_path)
    assert mode(tmp_path / "pki") == 0o700


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o620])
def test_a_ca_key_others_may_access_is_refused(tmp_path: Path, loose: int) -> None:
    ca = ensure_ca(tmp_path)
    os.chmod(ca.key, loose)
    with pytest.raises(InsecureKeyFile, match=r"ca\.key"):
        ensure_ca(tmp_path)
    with pytest.raises(InsecureKeyFile, match="chmod 600"):
        issue_certificate(ca, "svc", ["svc.prod.internal"], [], tmp_path)


def test_a_leaf_key_others_may_read_is_refused_not_reused(tmp_path: Path) -> None:
    first = leaf(tmp_path)
    os.chmod(first.key, 0o644)
    with pytest.raises(InsecureKeyFile, match=r"svc\.key"):
        leaf(tmp_path)


def test_a_ca_certificate_without_its_key_is_not_replaced(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    before = ca.cert.read_bytes()
    ca.key.unlink()
    with pytest.raises(PkiError, match="missing"):
        ensure_ca(tmp_path)
    assert ca.cert.read_bytes() == before


def test_a_ca_key_without_its_certificate_gets_one(tmp_path: Path) -> None:
    """A crash between writing the key and the certificate is finished on the next start."""
    ca = ensure_ca(tmp_path)
    public = cert(ca.cert).public_key()
    ca.cert.unlink()
    ensure_ca(tmp_path)
    assert cert(ca.cert).public_key() == public


def test_concurrent_first_starts_agree_on_one_ca(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            seen.append(ensure_ca(tmp_path).cert.read_bytes())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(seen)) == 1


def test_ca_pem_returns_the_certificate_and_never_creates_one(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="no sekisho CA"):
        ca_pem(tmp_path)
    assert not (tmp_path / "pki").exists()
    ca = ensure_ca(tmp_path)
    text = ca_pem(tmp_path)
    assert text.startswith("-----BEGIN CERTIFICATE-----")
    assert x509.load_pem_x509_certificate(text.encode()) == cert(ca.cert)
    assert "PRIVATE" not in text


# --- leaf certificates ---------------------------------------------------------------------


def test_a_leaf_has_the_agreed_shape(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    files = issue_certificate(
        ca, "svc", ["svc.prod.internal", "LocalHost."], ["127.0.0.1", "::1"], tmp_path
    )
    assert files == TlsFiles(tmp_path / "pki" / "svc.crt", tmp_path / "pki" / "svc.key")
    c, ca_cert = cert(files.cert), cert(ca.cert)
    c.verify_directly_issued_by(ca_cert)
    assert sans(files.cert) == ({"svc.prod.internal", "localhost"}, {"127.0.0.1", "::1"})
    eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = c.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    public = c.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    lifetime = c.not_valid_after_utc - c.not_valid_before_utc
    assert dt.timedelta(days=397) <= lifetime <= dt.timedelta(days=397, minutes=10)


def test_same_names_reuse_the_certificate(tmp_path: Path) -> None:
    first = cert(leaf(tmp_path).cert)
    again = leaf(tmp_path)
    assert cert(again.cert).serial_number == first.serial_number
    # Asking for fewer names than it has is also satisfied by the existing one.
    fewer = leaf(tmp_path, dns_names=["svc.prod.internal"], ip_addresses=[])
    assert cert(fewer.cert).serial_number == first.serial_number


def test_a_new_name_reissues(tmp_path: Path) -> None:
    first = cert(leaf(tmp_path).cert)
    second = leaf(tmp_path, dns_names=["svc.prod.internal", "localhost", "svc2.prod.internal"])
    assert cert(second.cert).serial_number != first.serial_number
    assert "svc2.prod.internal" in sans(second.cert)[0]


def test_a_new_ip_address_reissues(tmp_path: Path) -> None:
    first = cert(leaf(tmp_path).cert)
    second = leaf(tmp_path, ip_addresses=["127.0.0.1", "10.0.0.7"])
    assert cert(second.cert).serial_number != first.serial_number
    assert "10.0.0.7" in sans(second.cert)[1]


def test_a_certificate_expiring_within_30_days_is_reissued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cert(leaf(tmp_path).cert)
    real_now = pki._now
    monkeypatch.setattr(pki, "_now", lambda: real_now() + dt.timedelta(days=366))
    assert cert(leaf(tmp_path).cert).serial_number == first.serial_number  # 31 days left
    monkeypatch.setattr(pki, "_now", lambda: real_now() + dt.timedelta(days=368))
    assert cert(leaf(tmp_path).cert).serial_number != first.serial_number  # 29 days left


def test_a_certificate_from_another_ca_is_reissued(tmp_path: Path) -> None:
    files = leaf(tmp_path)
    first = cert(files.cert)
    # The CA was lost and recreated: the old leaf no longer chains to it.
    (tmp_path / "pki" / "ca.crt").unlink()
    (tmp_path / "pki" / "ca.key").unlink()
    new_ca = ensure_ca(tmp_path)
    second = cert(leaf(tmp_path).cert)
    assert second.serial_number != first.serial_number
    second.verify_directly_issued_by(cert(new_ca.cert))


@pytest.mark.parametrize("damage", ["cert missing", "key missing", "cert corrupt", "key swapped"])
def test_a_broken_pair_is_reissued(tmp_path: Path, damage: str) -> None:
    files = leaf(tmp_path)
    first = cert(files.cert).serial_number
    if damage == "cert missing":
        files.cert.unlink()
    elif damage == "key missing":
        files.key.unlink()
    elif damage == "cert corrupt":
        files.cert.write_text("not a certificate")
    else:
        other = leaf(tmp_path, name="other")
        files.key.write_bytes(other.key.read_bytes())
    files = leaf(tmp_path)
    assert cert(files.cert).serial_number != first
    server_context(files)  # the new pair loads: key and certificate match


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "ca"}, "certificate name"),
        ({"name": "../escape"}, "certificate name"),
        ({"name": "Gateway.crt"}, "certificate name"),
        ({"dns_names": ["bad name"]}, "invalid DNS name"),
        ({"dns_names": ["a.*.example"]}, "invalid DNS name"),
        ({"dns_names": ["10.0.0.1"]}, "ip_addresses"),
        ({"ip_addresses": ["not-an-ip"]}, "invalid IP address"),
        ({"dns_names": [], "ip_addresses": []}, "at least one"),
        ({"days": 30}, "days"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    ensure_ca(tmp_path)
    before = sorted(p.name for p in (tmp_path / "pki").iterdir())
    with pytest.raises(ValueError, match=message):
        leaf(tmp_path, **kwargs)
    assert sorted(p.name for p in (tmp_path / "pki").iterdir()) == before


def test_international_and_wildcard_names_are_accepted(tmp_path: Path) -> None:
    files = leaf(tmp_path, dns_names=["*.prod.internal", "bücher.example"])
    assert sans(files.cert)[0] == {"*.prod.internal", "xn--bcher-kva.example"}


def test_the_gateway_certificate_covers_loopback_and_the_given_hosts(tmp_path: Path) -> None:
    ca, gateway = ensure_gateway_certificate(tmp_path, ["gw.example.test", "10.0.0.5", "[fd00::1]"])
    assert ca == ensure_ca(tmp_path)
    assert gateway.cert == tmp_path / "pki" / "gateway.crt"
    dns, ips = sans(gateway.cert)
    assert dns == {"localhost", "gw.example.test"}
    assert ips == {"127.0.0.1", "::1", "10.0.0.5", "fd00::1"}
    serial = cert(gateway.cert).serial_number
    _, again = ensure_gateway_certificate(tmp_path, ["gw.example.test", "10.0.0.5", "fd00::1"])
    assert cert(again.cert).serial_number == serial
    _, grown = ensure_gateway_certificate(tmp_path, ["gw.example.test", "gw2.example.test"])
    assert cert(grown.cert).serial_number != serial


# --- TLS over real sockets -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "gw.example.test"])
def test_a_client_pinned_to_the_ca_verifies_the_gateway(
    tmp_path: Path, serve: list[EchoServer], name: str
) -> None:
    ca, gateway = ensure_gateway_certificate(tmp_path, ["gw.example.test"])
    server = start_echo(serve, server_context(gateway))
    assert echo(server.port, client_context(ca.cert), name) == (b"hello", "TLSv1.3")


def test_the_pem_text_works_as_well_as_the_file(tmp_path: Path, serve: list[EchoServer]) -> None:
    _, gateway = ensure_gateway_certificate(tmp_path, [])
    server = start_echo(serve, server_context(gateway))
    assert echo(server.port, client_context(ca_pem(tmp_path)), "localhost")[0] == b"hello"


def test_a_client_with_another_ca_refuses_the_gateway(
    tmp_path: Path, serve: list[EchoServer]
) -> None:
    _, gateway = ensure_gateway_certificate(tmp_path / "ours", [])
    other = ensure_ca(tmp_path / "theirs")
    server = start_echo(serve, server_context(gateway))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        echo(server.port, client_context(other.cert), "localhost")


def test_a_name_outside_the_certificate_is_refused(tmp_path: Path, serve: list[EchoServer]) -> None:
    ca, gateway = ensure_gateway_certificate(tmp_path, [])
    server = start_echo(serve, server_context(gateway))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        echo(server.port, client_context(ca.cert), "evil.example")


def test_the_client_trusts_only_the_given_ca(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path)
    ctx = client_context(ca.cert)
    assert ctx.cert_store_stats()["x509_ca"] == 1  # the system store is not loaded
    assert ctx.check_hostname
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_certificates_pass_strict_x509_verification(
    tmp_path: Path, serve: list[EchoServer]
) -> None:
    """Python 3.13's default contexts verify strictly; our certificates must pass that too."""
    ca, gateway = ensure_gateway_certificate(tmp_path, [])
    server = start_echo(serve, server_context(gateway))
    ctx = client_context(ca.cert)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    assert echo(server.port, ctx, "localhost")[0] == b"hello"


def test_tls_1_2_is_refused_both_ways(tmp_path: Path, serve: list[EchoServer]) -> None:
    ca, gateway = ensure_gateway_certificate(tmp_path, [])
    old_server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    old_server.maximum_version = ssl.TLSVersion.TLSv1_2
    old_server.load_cert_chain(gateway.cert, gateway.key)
    legacy = start_echo(serve, old_server)
    with pytest.raises(ssl.SSLError):
        echo(legacy.port, client_context(ca.cert), "localhost")

    ours = start_echo(serve, server_context(gateway))
    old_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    old_client.load_verify_locations(ca.cert)
    with pytest.raises(ssl.SSLError):
        echo(ours.port, old_client, "localhost")


def test_bad_ca_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected PEM"):
        client_context(str(tmp_path / "ca.crt"))  # a path given as str, not Path
    with pytest.raises(PkiError, match="cannot read CA certificate"):
        client_context(tmp_path / "missing.crt")
    with pytest.raises(PkiError, match="invalid CA certificate"):
        client_context("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --- bring your own certificate ------------------------------------------------------------


def _byo(directory: Path) -> tuple[Path, TlsFiles]:
    """An operator's own CA and RSA server certificate (with chain) outside sekisho's pki/."""
    directory.mkdir()
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp Root")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw.corp.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("gw.corp.example")]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "root.pem").write_bytes(ca_cert.public_bytes(pem))
    (directory / "fullchain.pem").write_bytes(
        leaf_cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    )
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return directory / "root.pem", TlsFiles(directory / "fullchain.pem", directory / "privkey.pem")


def test_an_operator_may_bring_their_own_certificate(
    tmp_path: Path, serve: list[EchoServer]
) -> None:
    root, files = _byo(tmp_path / "byo")
    server = start_echo(serve, server_context(files))
    assert echo(server.port, client_context(root), "gw.corp.example")[0] == b"hello"
    # A client pinned to sekisho's own CA does not accept the operator's certificate.
    ours = ensure_ca(tmp_path / "data")
    with pytest.raises(ssl.SSLCertVerificationError):
        echo(server.port, client_context(ours.cert), "gw.corp.example")


def test_a_mismatched_or_encrypted_key_is_a_clear_error_not_a_prompt(tmp_path: Path) -> None:
    _, files = _byo(tmp_path / "byo")
    ours = leaf(tmp_path / "data")
    with pytest.raises(PkiError, match="cannot load certificate"):
        server_context(TlsFiles(cert=files.cert, key=ours.key))
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        )
    )
    with pytest.raises(PkiError, match="private key is encrypted"):
        server_context(TlsFiles(cert=files.cert, key=encrypted))


def test_no_sekisho_ip_address_is_invented(tmp_path: Path) -> None:
    """SAN values are exactly what was asked for, normalised (no surprise entries)."""
    files = leaf(tmp_path, ip_addresses=["::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"])
    assert sans(files.cert)[1] == {str(ip_address("::ffff:127.0.0.1")), "::1"}


# --- a CA in memory (the one nodes share) ---------------------------------------------------


def test_a_ca_in_memory_issues_leaves_a_client_pinned_to_it_verifies(
    tmp_path: Path, serve: list[EchoServer]
) -> None:
    authority = pki.new_authority()
    gateway = pki.issue_gateway_certificate(authority, tmp_path, ["gw.example.test"])
    assert not (tmp_path / "pki" / "ca.key").exists()  # the CA's key stays in memory
    assert not (tmp_path / "pki" / "ca.crt").exists()
    assert mode(gateway.key) == 0o600
    server = start_echo(serve, server_context(gateway))
    context = client_context(authority.cert_pem)
    assert echo(server.port, context, "gw.example.test") == (b"hello", "TLSv1.3")
    # Read back from its PEM text (as a node reads the shared one), it is the same CA.
    again = pki.authority_from_pem(authority.cert_pem, authority.key_pem)
    assert again.sha256 == authority.sha256
    assert pki.issue_gateway_certificate(again, tmp_path, ["gw.example.test"]) == gateway


def test_a_data_directory_s_ca_is_found_but_never_made(tmp_path: Path) -> None:
    assert pki.authority_in(tmp_path) is None
    assert not (tmp_path / "pki").exists()
    files = ensure_ca(tmp_path)
    found = pki.authority_in(tmp_path)
    assert found is not None
    assert found.cert_pem == files.cert.read_text()
    os.chmod(files.key, 0o644)
    with pytest.raises(InsecureKeyFile):
        pki.authority_in(tmp_path)


def test_a_stored_ca_must_be_whole_its_own_and_unexpired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, other = pki.new_authority(), pki.new_authority()
    with pytest.raises(PkiError, match="does not belong"):
        pki.authority_from_pem(one.cert_pem, other.key_pem)
    with pytest.raises(PkiError, match="cannot be read"):
        pki.authority_from_pem("not a certificate", one.key_pem)
    real_now = pki._now
    monkeypatch.setattr(pki, "_now", lambda: real_now() + dt.timedelta(days=3653))
    with pytest.raises(PkiError, match="expired"):
        pki.authority_from_pem(one.cert_pem, one.key_pem)

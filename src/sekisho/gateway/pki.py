"""TLS material for the gateway: a private CA and the leaf certificates it signs.

Why a CA of our own: sekisho runs on a laptop with no cloud account and often no public name,
so no public CA can vouch for it. Clients pin this CA alone (`client_context`), which is
stronger than trusting the system store: only certificates this installation issued pass.

The gateway's CA is an `Authority` in memory: nodes that share a database share it, stored
there with its key sealed (`sekisho.gateway.setup`, `sekisho.services.shared_ca`), and each
node issues its own leaf certificate from it. Files live in `<directory>/pki/` (mode 0700):
`<name>.crt`/`<name>.key` for leaves, and `ca.crt`/`ca.key` for a CA kept in files (the demo
console's, tests', and a node's CA from before the shared one, which the shared one imports).
Keys are 0600 from the moment they exist; certificates are public (0644). Leaf keys are
stored unencrypted (a server must start unattended); the file mode is their protection.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import re
import secrets
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_COMMON_NAME = "sekisho local CA"
CA_VALIDITY = dt.timedelta(days=3652)  # ten years, leap days included
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates start a little in the past so a verifier whose clock lags still accepts them.
BACKDATE = dt.timedelta(minutes=5)
CERT_MODE = 0o644
KEY_MODE = 0o600
DIR_MODE = 0o700

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # a file stem: no dots, no slashes
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")  # a wildcard only as the first label


class PkiError(Exception):
    """TLS material that is missing, unreadable, or unsafe to use."""


class InsecureKeyFile(PkiError):
    """A private key that users other than its owner may access."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Authority:
    """A CA in memory: its certificate, and the key that signs with it."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> str:
        return _cert_pem(self.cert).decode("ascii")

    @property
    def key_pem(self) -> str:
        return _key_pem(self.key).decode("ascii")

    @property
    def expired(self) -> bool:
        return self.cert.not_valid_after_utc <= _now()

    @property
    def sha256(self) -> str:
        """The certificate's fingerprint, as `openssl x509 -fingerprint -sha256` shows it."""
        return self.cert.fingerprint(hashes.SHA256()).hex()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- files ---------------------------------------------------------------------------------


def _pki_dir(directory: Path) -> Path:
    pki = directory / "pki"
    pki.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(pki, DIR_MODE)  # mkdir's mode passes through umask, and an old dir may be looser
    return pki


@contextmanager
def _locked(pki: Path) -> Iterator[None]:
    # Serialises issuers across threads and processes (`serve` and the demo console may start
    # together), so two of them never create two different CAs or half-replace a pair.
    fd = os.open(pki / ".lock", os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to `path` atomically, with `mode` from the first byte.

    The temporary file is created with O_EXCL and the final mode, so it never exists with
    looser permissions (umask can only take bits away; fchmod restores 0644 for certificates).
    os.replace then swaps it in whole: a reader never sees half a key, a crash leaves none.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_key_mode(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InsecureKeyFile(
            f"{path} is accessible by group or others (mode {mode:04o}); "
            f"run `chmod 600 {path}` if nobody else has read it, otherwise remove it"
        )


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read certificate {path}: {exc}") from exc


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        # Never include the exception text of a key parser in a message: keep it to the path.
        raise PkiError(f"cannot read private key {path} (unencrypted PEM expected)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an EC private key")
    return key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _same_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


# --- the CA --------------------------------------------------------------------------------


def _self_signed_ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME)])
    public = key.public_key()
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        # pathlen 0: this CA signs leaves only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        # Strict verifiers (Python 3.13's default context) expect the AKI even on a root.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def ensure_ca(directory: Path) -> TlsFiles:
    """The private CA in `directory/pki/`, created on first use and reused after."""
    pki = _pki_dir(directory)
    files = TlsFiles(cert=pki / "ca.crt", key=pki / "ca.key")
    with _locked(pki):
        if files.key.exists():
            _check_key_mode(files.key)
            key = _read_key(files.key)
            if not files.cert.exists():
                # A crash between writing the key and the certificate: finish the job. Nobody
                # can trust a certificate that was never written, so nothing is lost.
                _write(files.cert, _cert_pem(_self_signed_ca(key)), CERT_MODE)
                return files
            cert = _read_cert(files.cert)
            if not _same_key(cert, key):
                raise PkiError(f"{files.cert} does not belong to the key {files.key}")
            if cert.not_valid_after_utc <= _now():
                raise PkiError(
                    f"the sekisho CA expired on {cert.not_valid_after_utc:%Y-%m-%d}: remove "
                    f"{files.cert} and {files.key} to create a new one (clients must import it)"
                )
            return files
        if files.cert.exists():
            # Creating a new CA here would silently break every client that trusts the old one.
            raise PkiError(
                f"{files.cert} exists but its key {files.key} is missing: restore the key, or "
                f"remove {files.cert} to create a new CA (every client must then import it)"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        _write(files.key, _key_pem(key), KEY_MODE)
        _write(files.cert, _cert_pem(_self_signed_ca(key)), CERT_MODE)
    return files


def ca_pem(directory: Path) -> str:
    """The CA certificate as PEM text, for `sekisho ca export`. Never creates a CA."""
    path = directory / "pki" / "ca.crt"
    if not path.exists():
        raise PkiError(f"no sekisho CA in {path.parent}: `sekisho serve` creates one on start")
    return _cert_pem(_read_cert(path)).decode("ascii")


def new_authority() -> Authority:
    """A new CA, in memory only: whoever keeps it decides where (sealed in the database)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return Authority(_self_signed_ca(key), key)


def authority_from_pem(cert_pem: str, key_pem: str) -> Authority:
    """A CA from its PEM text, checked: the key is the certificate's, and it has not expired."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise PkiError("the stored CA cannot be read (PEM certificate and key expected)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_key(cert, key):
        raise PkiError("the stored CA's key does not belong to its certificate")
    authority = Authority(cert, key)
    if authority.expired:
        raise PkiError(
            f"the shared gateway CA expired on {cert.not_valid_after_utc:%Y-%m-%d}: remove its "
            "row (name 'gateway') from the table certificate_authorities and start a gateway "
            "to make a new one; every client must then import it"
        )
    return authority


def authority_in(directory: Path) -> Authority | None:
    """The CA kept in `directory/pki/` (as sekisho kept it before it shared one), if complete.

    Never creates one: a directory without both files has none to offer.
    """
    files = TlsFiles(cert=directory / "pki" / "ca.crt", key=directory / "pki" / "ca.key")
    if not (files.cert.exists() and files.key.exists()):
        return None
    return _load_authority(files)


def _load_authority(files: TlsFiles) -> Authority:
    _check_key_mode(files.key)
    cert, key = _read_cert(files.cert), _read_key(files.key)
    if not _same_key(cert, key):
        raise PkiError(f"{files.cert} does not belong to the key {files.key}")
    return Authority(cert, key)


# --- leaf certificates ---------------------------------------------------------------------


def _dns_names(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in names:
        name = raw.strip().rstrip(".").lower()
        if _is_ip(name):
            raise ValueError(f"{raw!r} is an IP address: pass it in ip_addresses")
        try:
            name = name.encode("idna").decode("ascii")  # internationalised names as A-labels
        except UnicodeError as exc:
            raise ValueError(f"invalid DNS name {raw!r}") from exc
        if len(name) > 253 or not _DNS.fullmatch(name):
            raise ValueError(f"invalid DNS name {raw!r}: letters, digits, '-' and '.' only")
        if name not in out:
            out.append(name)
    return out


def _ip_addresses(values: Iterable[str]) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for raw in values:
        try:
            ip = ipaddress.ip_address(raw.strip().removeprefix("[").removesuffix("]"))
        except ValueError as exc:
            raise ValueError(f"invalid IP address {raw!r}") from exc
        if ip not in out:
            out.append(ip)
    return out


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return True


def _reusable(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    dns: list[str],
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> bool:
    if not (files.cert.exists() and files.key.exists()):
        return False
    try:
        cert, key = _read_cert(files.cert), _read_key(files.key)
    except PkiError:
        return False  # unreadable or corrupt: as good as missing
    now = _now()
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    if not _same_key(cert, key):
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False  # signed by another CA (say, before the CA was recreated)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return set(dns) <= have_dns and set(ips) <= have_ips


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    name: str,
    dns: list[str],
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    days: int,
) -> x509.Certificate:
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ip) for ip in ips]
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        # A leaf never outlives the CA that vouches for it.
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def issue_certificate(
    ca: TlsFiles | Authority,
    name: str,
    dns_names: list[str],
    ip_addresses: list[str],
    directory: Path,
    days: int = 397,
) -> TlsFiles:
    """A server certificate `<name>.crt`/`<name>.key` in `directory/pki/`, signed by `ca`
    (a CA in memory, or one kept in files).

    Reused while it is valid for 30 more days, signed by this CA, matches its key and covers
    every requested name (extra names are fine); otherwise a new key and certificate.
    """
    if not _NAME.fullmatch(name) or name == "ca":
        raise ValueError(f"certificate name {name!r}: lower-case letters, digits, '-', '_'")
    if days <= RENEW_BEFORE.days:
        raise ValueError(f"days must exceed {RENEW_BEFORE.days}, or it would renew on every call")
    dns, ips = _dns_names(dns_names), _ip_addresses(ip_addresses)
    if not dns and not ips:
        raise ValueError("a certificate needs at least one DNS name or IP address")
    authority = ca if isinstance(ca, Authority) else _load_authority(ca)
    ca_cert, ca_key = authority.cert, authority.key
    pki = _pki_dir(directory)
    files = TlsFiles(cert=pki / f"{name}.crt", key=pki / f"{name}.key")
    with _locked(pki):
        if files.key.exists():
            _check_key_mode(files.key)
        if _reusable(files, ca_cert, dns, ips):
            return files
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf(ca_cert, ca_key, key, name, dns, ips, days)
        # Key first: a crash in between leaves a pair that fails `_same_key`, so it is reissued.
        _write(files.key, _key_pem(key), KEY_MODE)
        _write(files.cert, _cert_pem(cert), CERT_MODE)
    return files


def issue_gateway_certificate(
    ca: TlsFiles | Authority, directory: Path, hosts: list[str]
) -> TlsFiles:
    """The gateway's leaf in `directory/pki/`, for localhost, 127.0.0.1, ::1 and `hosts`
    (names or IP addresses): the names this node is reached by."""
    dns = ["localhost"] + [h for h in hosts if not _is_ip(h)]
    ips = ["127.0.0.1", "::1"] + [h for h in hosts if _is_ip(h)]
    return issue_certificate(ca, "gateway", dns, ips, directory)


def ensure_gateway_certificate(directory: Path, hosts: list[str]) -> tuple[TlsFiles, TlsFiles]:
    """(CA, gateway leaf), both in files in `directory/pki/`: a gateway on its own (tests)."""
    ca = ensure_ca(directory)
    return ca, issue_gateway_certificate(ca, directory, hosts)


# --- contexts ------------------------------------------------------------------------------


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal and hang an unattended server.
    raise PkiError("the private key is encrypted: give sekisho an unencrypted key (mode 0600)")


def server_context(leaf: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.3 server context for `leaf`: ours, or any cert/key an operator brings.

    The cert file may hold the full chain (leaf first); the key must be unencrypted PEM.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        ctx.load_cert_chain(certfile=leaf.cert, keyfile=leaf.key, password=_no_password)
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for the reader
        raise PkiError(f"cannot load certificate {leaf.cert} with key {leaf.key}: {exc}") from exc
    return ctx


def client_context(ca_pem: Path | str) -> ssl.SSLContext:
    """A TLS 1.3 client context that trusts exactly one CA and checks the host name.

    `ca_pem` is a Path to a PEM file, or the PEM text itself (as `ca_pem()` returns it).
    The system trust store is deliberately not loaded.
    """
    if isinstance(ca_pem, Path):
        try:
            pem = ca_pem.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise PkiError(f"cannot read CA certificate {ca_pem}: {exc}") from exc
    else:
        pem = ca_pem
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError("ca_pem: expected PEM certificate text (pass a Path to read a file)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED  # already the default for a client; stated, not assumed
    ctx.check_hostname = True
    try:
        ctx.load_verify_locations(cadata=pem)
    except ssl.SSLError as exc:
        raise PkiError(f"invalid CA certificate: {exc}") from exc
    return ctx

"""The audit signing key: Ed25519, in a file outside the database.

Checkpoints of the audit trail are signed with this key, so someone who can write to the
database but cannot read this file cannot forge a checkpoint. The private key is an
unencrypted PKCS#8 PEM file, mode 0600, created on first use; the public key (with its
fingerprint) is what verifiers keep. Several nodes sharing one database share one key file.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sekisho.services.key_files import open_to_others, write_new_key


class AuditKeyError(Exception):
    """A key file that is missing, unreadable, not Ed25519, or readable by others."""


def fingerprint(public: Ed25519PublicKey) -> str:
    """SHA256:<base64> of the raw public key, as `ssh-keygen -l` prints them."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True)
class VerifyKey:
    """A public key a verifier trusts, by its fingerprint."""

    public: Ed25519PublicKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def verifies(self, data: bytes, signature: bytes) -> bool:
        try:
            self.public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> VerifyKey:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, TypeError) as exc:
            raise AuditKeyError(f"{where} is not a PEM public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise AuditKeyError(f"{where} is not an Ed25519 public key")
        return cls(key)

    @classmethod
    def from_file(cls, path: Path) -> VerifyKey:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise AuditKeyError(f"cannot read public key {path}: {exc.strerror}") from exc
        return cls.from_pem(data, str(path))


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.private.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def load_signing_key(path: Path, *, create: bool) -> SigningKey | None:
    """The key in `path`; created there (0600) if missing and `create`, else None."""
    if not path.exists():
        if not create:
            return None
        _create(path)
    problem = open_to_others(path)
    if problem:
        raise AuditKeyError(problem)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        # Never echo a key parser's message: keep it to the path.
        raise AuditKeyError(f"cannot read the audit key {path} (unencrypted PEM)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} is not an Ed25519 private key")
    return SigningKey(key)


class AuditKeyFile:
    """This server's audit key, in its key file: created on the first signing, never by a
    reader; read once, then kept."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._key: SigningKey | None = None

    def signing_key(self) -> SigningKey:
        """The key in the key file, created there on first use."""
        if self._key is None:
            self._key = load_signing_key(self._path, create=True)
            assert self._key is not None
        return self._key

    def verify_key(self) -> VerifyKey | None:
        """This server's public key, if it has a key file (never creates one)."""
        if self._key is None:
            self._key = load_signing_key(self._path, create=False)
        return self._key.verify_key if self._key else None


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_new_key(path, pem)

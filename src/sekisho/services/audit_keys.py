"""The audit signing key: Ed25519, in a file outside the database.

Checkpoints of the audit trail are signed with this key, so someone who can write to the
database but cannot read this file cannot forge a checkpoint. The private key is an
unencrypted PKCS#8 PEM file, mode 0600, created on first use; the public key (with its
fingerprint) is what verifiers keep. Several nodes sharing one database share one key file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KEY_MODE = 0o600


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
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise AuditKeyError(
            f"{path} is accessible by group or others (mode {mode:04o}); run "
            f"`chmod 600 {path}` if nobody else has read it, otherwise make a new key"
        )
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
    """Write a new key under a temporary name with mode 0600, then link it into place: the
    link fails if another process made one meanwhile, and then both use that one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, KEY_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), KEY_MODE)
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

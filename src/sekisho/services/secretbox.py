"""Encryption at rest for the few secrets sekisho must be able to read back (TOTP seeds).

Also a keyed digest, for text the store must recognise but should not hold in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sekisho.services.key_files import write_new_key

ENV_KEY = "SEKISHO_SECRET_KEY"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        # A key of its own for digests, derived from the same secret (nodes share it).
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sekisho digest")
        self._digest_key = hkdf.derive(base64.urlsafe_b64decode(key))

    @classmethod
    def from_environment(cls, key_file: Path) -> SecretBox:
        """The key from SEKISHO_SECRET_KEY, else a private key file, created on first use.

        Several nodes sharing one database must share this key (set SEKISHO_SECRET_KEY).
        Processes starting at once on one data directory (`serve --only api` beside
        `--only gateway`) agree on one key: it appears whole, or not at all.
        """
        env = os.environ.get(ENV_KEY)
        if env:
            return cls(env.encode())
        if not key_file.exists():
            write_new_key(key_file, Fernet.generate_key())  # another process may win: fine
        return cls(key_file.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def digest(self, text: str) -> str:
        """HMAC-SHA256 of `text` (hex): equal texts match, and the digest reveals none."""
        return hmac.new(self._digest_key, text.encode(), hashlib.sha256).hexdigest()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "a stored secret cannot be decrypted: SEKISHO_SECRET_KEY or the key file changed"
            ) from exc

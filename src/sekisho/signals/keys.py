"""The key sekisho signs its SETs with: ECDSA P-256 (ES256), in a file outside the database,
published as a JWKS (RFC 7517) with its RFC 7638 thumbprint as `kid`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

from sekisho.services.key_files import open_to_others, write_new_key
from sekisho.signals.sets import SIGNING_ALG


class SignalKeyError(Exception):
    """A key file that is unreadable, not a P-256 key, or readable by others."""


class SignalKeyFile:
    """This server's SET signing key: created on first use, read once, then kept."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._key: ECKey | None = None
        self._lock = threading.Lock()

    def signing_key(self) -> ECKey:
        with self._lock:
            if self._key is None:
                self._key = _load(self._path)
            return self._key

    def jwks(self) -> dict[str, Any]:
        """The public key set a receiver checks sekisho's SETs with."""
        public = self.signing_key().as_dict(private=False)
        return {"keys": [{**public, "use": "sig", "alg": SIGNING_ALG}]}


def _load(path: Path) -> ECKey:
    if not path.exists():
        pem = ECKey.generate_key("P-256", private=True).as_pem(private=True)
        write_new_key(path, pem)
    problem = open_to_others(path)
    if problem:
        raise SignalKeyError(problem)
    try:
        key = ECKey.import_key(path.read_bytes())
    except (OSError, ValueError) as exc:  # never a parser's text: keep it to the path
        raise SignalKeyError(f"cannot read the shared signals key {path} (PEM)") from exc
    if key.curve_name != "P-256" or not key.is_private:
        raise SignalKeyError(f"{path} is not a P-256 private key")
    return ECKey.import_key(key.as_dict(private=True), {"kid": key.thumbprint()})

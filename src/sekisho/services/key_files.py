"""Private keys in files outside the database (the audit key, the Shared Signals key).

A key file is an unencrypted PKCS#8 PEM, mode 0600, created on first use. Several nodes
sharing one database share its file. Creating one never replaces another's: the new key is
written under a temporary name and linked into place, and if another process won that race,
both use its key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

KEY_MODE = 0o600


def write_new_key(path: Path, pem: bytes) -> None:
    """Put `pem` at `path` unless a key is there already (then that one stays)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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


def open_to_others(path: Path) -> str | None:
    """Why `path` may not hold a private key (group or others may read it), or None."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return (
            f"{path} is accessible by group or others (mode {mode:04o}); run "
            f"`chmod 600 {path}` if nobody else has read it, otherwise make a new key"
        )
    return None

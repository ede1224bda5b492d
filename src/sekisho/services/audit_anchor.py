"""Signed checkpoints of the audit trail, and the anchor: checkpoints kept outside the database.

A checkpoint says "at this time, the trail's entry SEQ had hash HASH", signed with the audit
key (`audit_keys`). Because each entry's hash covers every entry before it, a checkpoint vouches
for the whole trail up to SEQ. An anchor is a list of checkpoints the operator keeps somewhere
the database's writers cannot reach: a JSON Lines file, an S3 object store, a message. Each line
of an anchor file is one checkpoint:

    {"at":"2026-11-29T09:00:00Z","hash":"3f2a...","id":12,"key":"SHA256:...","kind":
     "sekisho.audit.checkpoint","node":"node-a","seq":345,"sig":"<base64>","v":1}

The signature covers the canonical JSON (sorted keys, no spaces) of every field but `sig`, so
anyone with the public key can check a line without sekisho.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sekisho.domain.timespec import iso
from sekisho.services.audit_keys import VerifyKey
from sekisho.store.types import canonical_json

KIND = "sekisho.audit.checkpoint"
VERSION = 1
MAX_LINE = 4096  # a checkpoint line is about 300 bytes
_HASH = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset({"v", "kind", "id", "seq", "hash", "at", "node", "key", "sig"})


class AnchorError(Exception):
    """An anchor that cannot be read: which file and line, and why."""


@dataclass(frozen=True)
class Checkpoint:
    id: int
    seq: int  # the last entry it vouches for (0: an empty trail)
    hash: str  # that entry's hash
    at: datetime
    node: str  # who signed it
    key: str  # the signing key's fingerprint
    signature: str = ""  # base64 Ed25519 over `signed_bytes()`

    @property
    def label(self) -> str:
        return f"checkpoint #{self.id} (entry {self.seq}, {iso(self.at)})"

    def statement(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "kind": KIND,
            "id": self.id,
            "seq": self.seq,
            "hash": self.hash,
            "at": iso(self.at),
            "node": self.node,
            "key": self.key,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.statement()).encode()

    def to_json(self) -> dict[str, Any]:
        return {**self.statement(), "sig": self.signature}

    def to_line(self) -> str:
        return canonical_json(self.to_json())

    def signed_by(self, key: VerifyKey) -> bool:
        try:
            raw = base64.b64decode(self.signature, validate=True)
        except binascii.Error:
            return False
        return key.verifies(self.signed_bytes(), raw)

    @classmethod
    def from_json(cls, data: object, where: str) -> Checkpoint:
        """A checkpoint from its JSON form; anything malformed is an AnchorError at `where`."""
        if not isinstance(data, dict):
            raise AnchorError(f"{where}: not a JSON object")
        if data.get("kind") != KIND or data.get("v") != VERSION:
            raise AnchorError(f"{where}: not a sekisho audit checkpoint (kind {KIND}, v 1)")
        missing = sorted(_FIELDS - set(data))
        if missing:
            raise AnchorError(f"{where}: missing {', '.join(missing)}")
        ints = {name: data[name] for name in ("id", "seq")}
        if any(type(v) is not int or not 0 <= v <= 2**62 for v in ints.values()):
            raise AnchorError(f"{where}: id and seq must be whole numbers from 0")
        if not isinstance(data["hash"], str) or not _HASH.fullmatch(data["hash"]):
            raise AnchorError(f"{where}: hash must be 64 lowercase hex digits")
        texts = [data[name] for name in ("at", "node", "key", "sig")]
        if not all(isinstance(t, str) and 0 < len(t) <= 256 for t in texts):
            raise AnchorError(f"{where}: at, node, key and sig must be short strings")
        try:
            at = datetime.fromisoformat(data["at"])
        except ValueError:
            raise AnchorError(f"{where}: at is not an ISO 8601 time") from None
        if at.tzinfo is None:
            raise AnchorError(f"{where}: at has no time zone")
        node, key, sig = data["node"], data["key"], data["sig"]
        return cls(ints["id"], ints["seq"], data["hash"], at, node, key, sig)


def parse_lines(lines: Iterable[str], where: str) -> list[Checkpoint]:
    """Checkpoints from JSON Lines; blank lines are skipped, a bad one names its line."""
    found: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        here = f"{where}:{number}"
        if len(line) > MAX_LINE:
            raise AnchorError(f"{here}: line longer than {MAX_LINE} characters")
        try:
            data = json.loads(line)
        except ValueError:
            raise AnchorError(f"{here}: not JSON") from None
        found.append(Checkpoint.from_json(data, here))
    return found


def read_anchor(path: Path) -> list[Checkpoint]:
    try:
        with path.open(encoding="utf-8") as lines:
            found = parse_lines(lines, str(path))
    except OSError as exc:
        raise AnchorError(f"cannot read the anchor {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise AnchorError(f"{path}: not UTF-8 text") from None
    if not found:
        raise AnchorError(f"{path} holds no checkpoint")
    return found


def signature_problems(checkpoints: Sequence[Checkpoint], keys: Sequence[VerifyKey]) -> list[str]:
    """Every checkpoint must be signed by one of `keys`: else it was forged or altered."""
    by_print = {k.fingerprint: k for k in keys}
    problems = []
    for cp in checkpoints:
        key = by_print.get(cp.key)
        if key is None:
            problems.append(
                f"{cp.label} names key {cp.key}, not a public key given "
                f"({', '.join(by_print) or 'none'}): forged, or signed by another key"
            )
        elif not cp.signed_by(key):
            problems.append(
                f"{cp.label}: the signature does not verify with {key.fingerprint}: "
                "the checkpoint was forged or altered"
            )
    return problems


def latest(checkpoints: Sequence[Checkpoint], count: int) -> list[Checkpoint]:
    """The `count` checkpoints that vouch for the most entries (the most recent first)."""
    return sorted(checkpoints, key=lambda c: (c.seq, c.at, c.id), reverse=True)[:count]

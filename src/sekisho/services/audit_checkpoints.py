"""Signed checkpoints: the chain's head, signed now and then, exported outside the database.

The scheduler (one node at a time, under its lease) calls `due` on every turn and
`checkpoint` when it says so: every `audit_checkpoint_every`, or sooner once
`audit_checkpoint_entries` entries came since the last checkpoint. `sekisho audit checkpoint`
calls `checkpoint` on demand. Nothing here runs on the write path of an entry.

A checkpoint never signs a rewritten trail: before signing, the chain must still hold the
last checkpoint this key signed (the newer of the database's and the anchor file's), and be
consistent from there to the head. If it does not, nothing is signed and the admins are told.
"""

from __future__ import annotations

import base64
import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sekisho.domain.errors import Conflict
from sekisho.services import audit
from sekisho.services.audit_anchor import AnchorError, Checkpoint
from sekisho.services.audit_keys import SigningKey, VerifyKey, load_signing_key
from sekisho.services.audit_sinks import ExportFailed, FileSink, S3Sink, Sink
from sekisho.store.tables import AuditCheckpointRow, AuditHeadRow

if TYPE_CHECKING:
    from sekisho.services.core import Core


@dataclass
class CheckpointResult:
    checkpoint: Checkpoint | None  # None: refused (see problems)
    exported: list[str] = field(default_factory=list)  # where it went
    failed: list[str] = field(default_factory=list)  # sinks that did not take it, and why
    problems: list[str] = field(default_factory=list)  # why it was not signed

    @property
    def ok(self) -> bool:
        return self.checkpoint is not None and not self.failed


class CheckpointService:
    def __init__(self, core: Core) -> None:
        self._core = core
        self._key: SigningKey | None = None
        self._refused_at: datetime | None = None  # a refusal is repeated once a period
        anchor_file = core.settings.audit_anchor_file
        self._file = FileSink(anchor_file) if anchor_file else None

    # -- keys --------------------------------------------------------------------------------

    def signing_key(self) -> SigningKey:
        """The key in the key file, created there on first use."""
        if self._key is None:
            self._key = load_signing_key(self._core.settings.resolved_audit_key_file, create=True)
            assert self._key is not None
        return self._key

    def verify_key(self) -> VerifyKey | None:
        """This server's public key, if it has a key file (never creates one)."""
        if self._key is None:
            self._key = load_signing_key(self._core.settings.resolved_audit_key_file, create=False)
        return self._key.verify_key if self._key else None

    # -- the schedule ------------------------------------------------------------------------

    def due(self) -> bool:
        """Whether a checkpoint is due: two indexed reads, no write."""
        settings = self._core.settings
        with self._core.db.read() as s:
            head_seq = s.scalar(select(AuditHeadRow.seq).where(AuditHeadRow.id == 1)) or 0
            last = _latest_row(s)
        now = self._core.now()
        every = settings.audit_checkpoint_every
        if self._refused_at is not None and now < self._refused_at + every:
            return False
        if last is None:
            return True
        if head_seq - last.seq >= settings.audit_checkpoint_entries:
            return True
        return now >= last.at + every

    # -- making one ------------------------------------------------------------------------

    def checkpoint(self) -> CheckpointResult:
        """Check the chain since the last trusted checkpoint, sign its head, store the
        checkpoint (and its message to the admins) in one transaction, then export it.
        A failure (a refusal, an unreadable key) waits a period before the next try."""
        try:
            result = self._checkpoint()
        except Exception:
            self._refused_at = self._core.now()
            raise
        self._refused_at = None if result.checkpoint else self._core.now()
        return result

    def _checkpoint(self) -> CheckpointResult:
        core = self._core
        key = self.signing_key()
        trusted, problems = self._trusted(key.verify_key)
        if problems:
            return self._refuse(problems)
        with core.db.write() as s:
            head = s.execute(
                select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
            ).scalar_one()
            report = audit.verify(s, since=trusted)
            if not report.ok:
                problems = report.problems
            else:
                checkpoint = self._sign(s, key, head.seq, head.hash)
                self._tell_admins(s, checkpoint, [])
        if problems:
            return self._refuse(problems)
        core.publish("notify.queued")
        result = CheckpointResult(checkpoint)
        for sink in self._sinks():
            try:
                result.exported.append(sink.append(checkpoint))
            except ExportFailed as exc:
                result.failed.append(str(exc))
        return result

    def _sign(self, s: Session, key: SigningKey, seq: int, digest: str) -> Checkpoint:
        core = self._core
        at = core.now().replace(microsecond=0)  # the statement's time is to the second
        verify_key = key.verify_key
        row = AuditCheckpointRow(
            at=at,
            seq=seq,
            hash=digest,
            node=core.settings.node_name,
            key=verify_key.fingerprint,
            signature="",
        )
        s.add(row)
        s.flush()  # its id is part of what is signed
        unsigned = _from_row(row)
        row.signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
        return _from_row(row)

    def _trusted(self, key: VerifyKey) -> tuple[Checkpoint | None, list[str]]:
        """The newest checkpoint this key signed, from the database or the anchor file. A row
        whose signature fails is reported: someone wrote it without the key."""
        found: list[Checkpoint] = []
        with self._core.db.read() as s:
            row = _latest_row(s)
        if row is not None:
            stored = _from_row(row)
            if stored.key == key.fingerprint and not stored.signed_by(key):
                return None, [f"stored {stored.label} does not verify with this server's key"]
            if stored.key == key.fingerprint:
                found.append(stored)
        if self._file is not None:
            try:
                last = self._file.last()
            except AnchorError as exc:
                return None, [str(exc)]
            if last is not None and last.key == key.fingerprint:
                if not last.signed_by(key):
                    return None, [f"the anchor file's last {last.label} does not verify"]
                found.append(last)
        return max(found, key=lambda c: (c.seq, c.at), default=None), []

    def _refuse(self, problems: list[str]) -> CheckpointResult:
        with self._core.db.write() as s:
            self._tell_admins(s, None, problems)
        self._core.publish("notify.queued")
        return CheckpointResult(None, problems=problems)

    def _tell_admins(self, s: Session, checkpoint: Checkpoint | None, problems: list[str]) -> None:
        with contextlib.suppress(Conflict):  # no access model loaded yet: nobody to tell
            self._core.outbox.audit_checkpoint(s, checkpoint, problems)

    def _sinks(self) -> list[Sink]:
        settings = self._core.settings
        sinks: list[Sink] = [self._file] if self._file else []
        if settings.audit_anchor_s3:
            sinks.append(
                S3Sink(
                    settings.audit_anchor_s3,
                    clock=self._core.clock,
                    region=settings.audit_anchor_s3_region,
                    endpoint_url=settings.audit_anchor_s3_endpoint,
                    retain=settings.audit_anchor_s3_retain,
                    lock_mode=settings.audit_anchor_s3_lock_mode,
                )
            )
        return sinks

    # -- reading ---------------------------------------------------------------------------

    def stored(self, limit: int = 100) -> list[Checkpoint]:
        """The newest checkpoints kept in the database (newest first): for re-export only;
        their proof is the copy outside the database."""
        with self._core.db.read() as s:
            rows = s.scalars(
                select(AuditCheckpointRow).order_by(AuditCheckpointRow.id.desc()).limit(limit)
            )
            return [_from_row(r) for r in rows]


def _latest_row(s: Session) -> AuditCheckpointRow | None:
    newest = s.scalar(select(func.max(AuditCheckpointRow.id)))
    return s.get(AuditCheckpointRow, newest) if newest is not None else None


def _from_row(row: AuditCheckpointRow) -> Checkpoint:
    return Checkpoint(row.id, row.seq, row.hash, row.at, row.node, row.key, row.signature)

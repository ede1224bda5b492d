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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sekisho.clock import Clock
from sekisho.config import Settings
from sekisho.domain.events import AuditCheckpointRefused, AuditCheckpointSigned
from sekisho.services import audit
from sekisho.services.audit_anchor import AnchorError, Checkpoint
from sekisho.services.audit_keys import AuditKeyFile, SigningKey, VerifyKey
from sekisho.services.audit_sinks import ExportFailed, FileSink, S3Sink, Sink
from sekisho.store.tables import AuditCheckpointRow, AuditHeadRow
from sekisho.store.unit_of_work import Store, UnitOfWork


@dataclass
class CheckpointResult:
    checkpoint: Checkpoint | None  # None: refused (see problems)
    exported: list[str] = field(default_factory=list)  # where it went
    failed: list[str] = field(default_factory=list)  # sinks that did not take it, and why
    problems: list[str] = field(default_factory=list)  # why it was not signed

    @property
    def ok(self) -> bool:
        return self.checkpoint is not None and not self.failed


@dataclass(frozen=True)
class Schedule:
    """When a checkpoint is due: every `every`, or sooner once `entries` entries came."""

    every: timedelta
    entries: int


@dataclass(frozen=True)
class Anchors:
    """Where checkpoints go, outside the database: the anchor file (also read back, for the
    last checkpoint it holds), and the sinks made for each export (an S3 client reads the
    credentials in force when it is made)."""

    file: FileSink | None
    others: Callable[[], list[Sink]] = list

    @classmethod
    def of(cls, settings: Settings, clock: Clock) -> Anchors:
        anchor_file = settings.audit_anchor_file
        if not settings.audit_anchor_s3:
            return cls(FileSink(anchor_file) if anchor_file else None)
        url = settings.audit_anchor_s3

        def s3() -> list[Sink]:
            return [
                S3Sink(
                    url,
                    clock=clock,
                    region=settings.audit_anchor_s3_region,
                    endpoint_url=settings.audit_anchor_s3_endpoint,
                    retain=settings.audit_anchor_s3_retain,
                    lock_mode=settings.audit_anchor_s3_lock_mode,
                )
            ]

        return cls(FileSink(anchor_file) if anchor_file else None, s3)

    def sinks(self) -> list[Sink]:
        return [*([self.file] if self.file else []), *self.others()]


class CheckpointService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        keys: AuditKeyFile,
        *,
        node: str,
        schedule: Schedule,
        anchors: Anchors,
    ) -> None:
        self._store, self._clock, self._keys = store, clock, keys
        self._node, self._schedule, self._anchors = node, schedule, anchors
        self._refused_at: datetime | None = None  # a refusal is repeated once a period

    # -- keys --------------------------------------------------------------------------------

    def signing_key(self) -> SigningKey:
        """The key in the key file, created there on first use."""
        return self._keys.signing_key()

    def verify_key(self) -> VerifyKey | None:
        """This server's public key, if it has a key file (never creates one)."""
        return self._keys.verify_key()

    # -- the schedule ------------------------------------------------------------------------

    def due(self) -> bool:
        """Whether a checkpoint is due: two indexed reads, no write."""
        with self._store.read() as s:
            head_seq = s.scalar(select(AuditHeadRow.seq).where(AuditHeadRow.id == 1)) or 0
            last = _latest_row(s)
        now = self._clock.now()
        every = self._schedule.every
        if self._refused_at is not None and now < self._refused_at + every:
            return False
        if last is None:
            return True
        if head_seq - last.seq >= self._schedule.entries:
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
            self._refused_at = self._clock.now()
            raise
        self._refused_at = None if result.checkpoint else self._clock.now()
        return result

    def _checkpoint(self) -> CheckpointResult:
        key = self.signing_key()
        trusted, problems = self._trusted(key.verify_key)
        with self._store.write() as uow:
            signed = None if problems else self._sign_head(uow, key, trusted)
            if isinstance(signed, list):
                problems = signed
            if problems:  # the admins hear why nothing was signed
                uow.record(AuditCheckpointRefused(self._clock.now(), tuple(problems)))
        if not isinstance(signed, Checkpoint):
            return CheckpointResult(None, problems=problems)
        result = CheckpointResult(signed)
        for sink in self._anchors.sinks():
            try:
                result.exported.append(sink.append(signed))
            except ExportFailed as exc:
                result.failed.append(str(exc))
        return result

    def _sign_head(
        self, uow: UnitOfWork, key: SigningKey, trusted: Checkpoint | None
    ) -> Checkpoint | list[str]:
        """The head, signed, if the chain holds from `trusted` on; else what breaks it. The
        head stays locked until the checkpoint commits: nothing is appended meanwhile."""
        s = uow.session
        head = s.execute(
            select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
        ).scalar_one()
        report = audit.verify(s, since=trusted)
        if not report.ok:
            return report.problems
        checkpoint = self._sign(s, key, head.seq, head.hash)
        uow.record(AuditCheckpointSigned(self._clock.now(), checkpoint.id))
        return checkpoint

    def _sign(self, s: Session, key: SigningKey, seq: int, digest: str) -> Checkpoint:
        at = self._clock.now().replace(microsecond=0)  # the statement's time is to the second
        verify_key = key.verify_key
        row = AuditCheckpointRow(
            at=at,
            seq=seq,
            hash=digest,
            node=self._node,
            key=verify_key.fingerprint,
            signature="",
        )
        s.add(row)
        s.flush()  # its id is part of what is signed
        unsigned = checkpoint_of(row)
        row.signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
        return checkpoint_of(row)

    def _trusted(self, key: VerifyKey) -> tuple[Checkpoint | None, list[str]]:
        """The newest checkpoint this key signed, from the database or the anchor file. A row
        whose signature fails is reported: someone wrote it without the key."""
        found: list[Checkpoint] = []
        with self._store.read() as s:
            row = _latest_row(s)
        if row is not None:
            stored = checkpoint_of(row)
            if stored.key == key.fingerprint and not stored.signed_by(key):
                return None, [f"stored {stored.label} does not verify with this server's key"]
            if stored.key == key.fingerprint:
                found.append(stored)
        anchor = self._anchors.file
        if anchor is not None:
            try:
                last = anchor.last()
            except AnchorError as exc:
                return None, [str(exc)]
            if last is not None and last.key == key.fingerprint:
                if not last.signed_by(key):
                    return None, [f"the anchor file's last {last.label} does not verify"]
                found.append(last)
        return max(found, key=lambda c: (c.seq, c.at), default=None), []

    # -- reading ---------------------------------------------------------------------------

    def stored(self, limit: int = 100) -> list[Checkpoint]:
        """The newest checkpoints kept in the database (newest first): for re-export only;
        their proof is the copy outside the database."""
        with self._store.read() as s:
            rows = s.scalars(
                select(AuditCheckpointRow).order_by(AuditCheckpointRow.id.desc()).limit(limit)
            )
            return [checkpoint_of(r) for r in rows]


def _latest_row(s: Session) -> AuditCheckpointRow | None:
    newest = s.scalar(select(func.max(AuditCheckpointRow.id)))
    return s.get(AuditCheckpointRow, newest) if newest is not None else None


def checkpoint_of(row: AuditCheckpointRow) -> Checkpoint:
    return Checkpoint(row.id, row.seq, row.hash, row.at, row.node, row.key, row.signature)

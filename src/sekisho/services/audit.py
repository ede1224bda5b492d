"""The audit trail: append-only, hash-chained, with an explicit allow-list of fields.

Entries are written in the same transaction as the change they record, so a change and its
entry land together or not at all. Each entry's hash covers the previous entry's hash, so
editing, deleting or reordering any entry breaks the chain, and `verify` says where.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from sekisho.domain.actor import Actor
from sekisho.services import policy
from sekisho.store.tables import AuditHeadRow, AuditRow
from sekisho.store.types import canonical_json

if TYPE_CHECKING:
    from sekisho.services.core import Core

GENESIS = "0" * 64

# The only keys an entry's detail may carry. Secrets (passwords, codes, tokens, TOTP seeds)
# have no key here, so they cannot be recorded by accident.
DETAIL_KEYS = frozenset(
    {
        "attempts",
        "comment",
        "count",
        "decision",
        "duration",
        "end",
        "error",
        "expires",
        "failures",
        "group",
        "groups",
        "level",
        "locked_until",
        "output",
        "reason",
        "role",
        "sha256",
        "source_name",
        "start",
        "status",
        "step",
        "target",
        "template",
        "verb",
        "via",
    }
)

DetailValue = str | int | bool | None


@dataclass(frozen=True)
class AuditEvent:
    action: str  # noun.verb: request.filed, grant.ended, auth.login_failed, authz.denied ...
    actor: str
    source: str
    outcome: str = "ok"  # ok | denied | failed
    subject: str | None = None
    request_id: int | None = None
    grant_id: int | None = None
    object: str | None = None  # a role ref or target name
    detail: Mapping[str, DetailValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.detail) - DETAIL_KEYS
        if unknown:
            raise ValueError(f"audit detail keys not on the allow-list: {sorted(unknown)}")


def _entry_hash(prev_hash: str, seq: int, at: datetime, event: AuditEvent) -> str:
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor,
        "subject": event.subject,
        "request_id": event.request_id,
        "grant_id": event.grant_id,
        "object": event.object,
        "source": event.source,
        "detail": dict(event.detail),
    }
    return hashlib.sha256(f"{prev_hash}\n{canonical_json(body)}".encode()).hexdigest()


def record(session: Session, at: datetime, event: AuditEvent) -> AuditRow:
    """Append one entry inside the caller's transaction (locks the chain head until commit)."""
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
    ).scalar_one()
    seq = head.seq + 1
    digest = _entry_hash(head.hash, seq, at, event)
    row = AuditRow(
        seq=seq,
        at=at,
        action=event.action,
        outcome=event.outcome,
        actor=event.actor,
        subject=event.subject,
        request_id=event.request_id,
        grant_id=event.grant_id,
        object=event.object,
        source=event.source,
        detail=dict(event.detail),
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(row)
    head.seq, head.hash = seq, digest
    return row


def _as_event(row: AuditRow) -> AuditEvent:
    return AuditEvent(
        action=row.action,
        actor=row.actor,
        source=row.source,
        outcome=row.outcome,
        subject=row.subject,
        request_id=row.request_id,
        grant_id=row.grant_id,
        object=row.object,
        detail=row.detail,
    )


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]


def verify(session: Session, batch: int = 5000) -> VerifyReport:
    """Walk the whole chain; report the first place it breaks and the head's state."""
    problems: list[str] = []
    prev_seq, prev_hash, count = 0, GENESIS, 0
    for row in _walk(session, batch):
        count += 1
        if row.seq != prev_seq + 1:
            problems.append(f"entries {prev_seq + 1}..{row.seq - 1} are missing (deleted)")
        elif row.prev_hash != prev_hash:
            problems.append(f"entry {row.seq} does not follow entry {prev_seq} (chain broken)")
        elif _entry_hash(row.prev_hash, row.seq, row.at, _as_event(row)) != row.hash:
            problems.append(f"entry {row.seq} was altered (its content does not match its hash)")
        if problems:
            break
        prev_seq, prev_hash = row.seq, row.hash
    head = session.get(AuditHeadRow, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if not problems and (head_seq, head_hash) != (prev_seq, prev_hash):
        problems.append(
            f"the chain ends at entry {prev_seq} but its head records entry {head_seq}: "
            "entries at the end were deleted"
        )
    return VerifyReport(not problems, count, head_seq, head_hash, problems)


def _walk(session: Session, batch: int) -> Iterator[AuditRow]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


@dataclass(frozen=True)
class AuditFilter:
    user: str | None = None  # as actor or subject
    request_id: int | None = None
    action: str | None = None  # exact, or a prefix ending with "." (e.g. "grant.")
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    before_seq: int | None = None  # paging: entries older than this


def query(f: AuditFilter) -> Select[AuditRow]:
    stmt = select(AuditRow)
    if f.user:
        stmt = stmt.where((AuditRow.actor == f.user) | (AuditRow.subject == f.user))
    if f.request_id is not None:
        stmt = stmt.where(AuditRow.request_id == f.request_id)
    if f.action:
        if f.action.endswith("."):
            stmt = stmt.where(AuditRow.action.startswith(f.action, autoescape=True))
        else:
            stmt = stmt.where(AuditRow.action == f.action)
    if f.since:
        stmt = stmt.where(AuditRow.at >= f.since)
    if f.until:
        stmt = stmt.where(AuditRow.at < f.until)
    if f.before_seq is not None:
        stmt = stmt.where(AuditRow.seq < f.before_seq)
    return stmt.order_by(AuditRow.seq.desc()).limit(f.limit)


class AuditTrail:
    """Reading the trail: for auditors and admins only."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def list_entries(self, actor: Actor, f: AuditFilter) -> list[AuditRow]:
        with self._core.db.read() as s:
            policy.require_auditor(self._core.models.model(s), actor, "read the audit trail")
            return list(s.scalars(query(f)))

    def verify(self, actor: Actor) -> VerifyReport:
        with self._core.db.read() as s:
            policy.require_auditor(self._core.models.model(s), actor, "verify the audit trail")
            return verify(s)

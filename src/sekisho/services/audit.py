"""The audit trail: append-only, hash-chained, with an explicit allow-list of fields.

Entries are written in the same transaction as the change they record, so a change and its
entry land together or not at all. Each entry's hash covers the previous entry's hash, so
editing, deleting or reordering any entry breaks the chain, and `verify` says where.

The chain alone cannot catch someone who rewrites it with write access to the database: they
can re-hash everything after an edit, or cut entries off the end and move the head back.
Signed checkpoints kept outside the database catch both (`audit_anchor`,
`audit_checkpoints`): `verify` with an anchor checks the chain still has, at each
checkpoint's entry, the hash that was signed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sekisho.domain.actor import Actor
from sekisho.ports import ModelSource
from sekisho.services import permissions
from sekisho.services.audit_anchor import Checkpoint, signature_problems
from sekisho.services.audit_keys import AuditKeyError, AuditKeyFile, VerifyKey
from sekisho.store import bulk
from sekisho.store.db import Database
from sekisho.store.tables import AuditHeadRow, AuditRow
from sekisho.store.types import CanonicalText, canonical_json

GENESIS = "0" * 64

# The only keys an entry's detail may carry. Secrets (passwords, codes, tokens, TOTP seeds)
# have no key here, so they cannot be recorded by accident.
DETAIL_KEYS = frozenset(
    {
        "acr",
        "amr",
        "attempts",
        "auth_time",
        "comment",
        "count",
        "decision",
        "directory_id",
        "duration",
        "emergency",
        "end",
        "endpoint",
        "error",
        "event",
        "events",
        "expires",
        "extends_grant",
        "extension",
        "factor",
        "failures",
        "group",
        "groups",
        "idp",
        "idp_subject",
        "issuer",
        "jti",
        "kind",
        "level",
        "lock",
        "name",
        "locked_until",
        "old_end",
        "outcome",
        "passkey",
        "output",
        "reason",
        "review_due",
        "role",
        "sha256",
        "source_name",
        "start",
        "status",
        "step",
        "step_up",
        "step_up_at",
        "stream",
        "target",
        "template",
        "ticket",
        "tokens",
        "until",
        "user_name",
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


def entry_hash(
    prev_hash: str, seq: int, at: datetime, event: AuditEvent, node: str | None = None
) -> str:
    """The hash an entry must have: its content and the previous entry's hash."""
    return _digest(prev_hash, _body(seq, at, _fields(event), node))


def _body(seq: int, at: datetime, fields: dict[str, object], node: str | None) -> str:
    """The text an entry's hash covers: its fields, its place and its time, canonical JSON."""
    body = {"seq": seq, "at": at.isoformat(timespec="microseconds"), **fields}
    # Entries written before entries named their node have no node, and their hashes did
    # not cover one: the field joins the hashed body only when it is set.
    if node is not None:
        body["node"] = node
    return canonical_json(body)


def _digest(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


_DETAIL, _AFTER_DETAIL = '"detail":', ',"grant_id":'  # the body's keys are sorted


def _detail_text(body: str) -> CanonicalText:
    """The entry's detail, as its body has it: `canonical_json(detail)`, not serialised a
    second time for its column. In JSON text a quote inside a string is escaped, and no
    detail key is `grant_id` (DETAIL_KEYS), so both markers are the body's own keys."""
    start = body.index(_DETAIL) + len(_DETAIL)
    return CanonicalText(body[start : body.index(_AFTER_DETAIL, start)])


def _fields(event: AuditEvent) -> dict[str, object]:
    """An entry's recorded fields, as its hash covers them (in this order)."""
    return {
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


def record(session: Session, at: datetime, event: AuditEvent, node: str | None = None) -> None:
    """Append one entry inside the caller's transaction (locks the chain head until commit).

    `node` names the sekisho node that wrote it. No signing here: this runs inside every
    change's transaction; checkpoints sign the head now and then (`audit_checkpoints`)."""
    head = _locked_head(session)
    seq = head.seq + 1
    fields = _fields(event)
    body = _body(seq, at, fields, node)
    digest = _digest(head.hash, body)
    row = {"seq": seq, "at": at, **fields, "detail": _detail_text(body), "node": node}
    bulk.append(session, AuditRow, {**row, "prev_hash": head.hash, "hash": digest})
    head.seq, head.hash = seq, digest


_HEAD = "sekisho.audit_head"  # session.info: (the transaction, its locked head)


def _locked_head(session: Session) -> AuditHeadRow:
    """The chain's head, locked once per transaction: it stays locked until the commit, so
    the entries after the first need no statement (ending 10,000 grants is one read of the
    head, not 10,000, and no flush before each entry)."""
    transaction = session.get_transaction()
    held = session.info.get(_HEAD)
    if held is not None and held[0] is transaction:
        head: AuditHeadRow = held[1]
        return head
    head = session.execute(
        select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
    ).scalar_one()
    session.info[_HEAD] = (transaction, head)
    return head


def event_of(row: AuditRow) -> AuditEvent:
    """What a stored entry records, as it was appended (its hash covers this)."""
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


NO_ANCHOR = "no anchor given: a rewrite of the whole trail cannot be detected without one"


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str]
    anchor_checkpoints: int = 0  # the anchor's checkpoints compared with the chain
    anchored_seq: int = 0  # the last entry a checkpoint of the anchor vouches for
    notes: list[str] = field(default_factory=list)  # what the result does not prove


def verify(
    session: Session,
    batch: int = 5000,
    anchor: Sequence[Checkpoint] = (),
    since: Checkpoint | None = None,
) -> VerifyReport:
    """Walk the chain; report the first place it breaks, the head's state, and whether every
    checkpoint of `anchor` still matches (an entry with the signed hash at the signed seq).

    `since`: walk only from that checkpoint's entry on (it must still match), not from 1.
    """
    expected: dict[int, list[Checkpoint]] = {}
    for cp in [*anchor, *([since] if since else [])]:
        expected.setdefault(cp.seq, []).append(cp)
    problems: list[str] = []
    prev_seq, prev_hash, count = 0, GENESIS, 0
    start = 0
    if since is not None and since.seq > 0:
        prev_seq, prev_hash, start = since.seq - 1, "", since.seq - 1
    for row in _walk(session, batch, after=start):
        count += 1
        problem = _link_problem(row, prev_seq, prev_hash) or _anchor_problem(
            row, expected.get(row.seq, ())
        )
        if problem:
            problems.append(problem)
            break
        prev_seq, prev_hash = row.seq, row.hash
    head = session.get(AuditHeadRow, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    walked = bool(prev_hash)
    if not walked:  # `since`'s entry is gone: say where the chain really ends
        prev_seq = session.scalar(select(func.max(AuditRow.seq))) or 0
    if not problems and walked and (head_seq, head_hash) != (prev_seq, prev_hash):
        problems.append(
            f"the chain ends at entry {prev_seq} but its head records entry {head_seq}: "
            "entries at the end were deleted"
        )
    vouched = max(expected, default=0)
    if not problems and vouched > prev_seq:
        cp = max(expected[vouched], key=lambda c: c.at)
        problems.append(
            f"the chain ends at entry {prev_seq} (its head at entry {head_seq}) but {cp.label} "
            f"vouches for entry {cp.seq}: entries at the end were deleted and the head was "
            "moved back to hide it"
        )
    report = VerifyReport(not problems, count, head_seq, head_hash, problems, len(anchor))
    report.anchored_seq = max((c.seq for c in anchor), default=0)
    report.notes = _notes(report, bool(anchor))
    return report


def _link_problem(row: AuditRow, prev_seq: int, prev_hash: str) -> str | None:
    if row.seq != prev_seq + 1:
        return f"entries {prev_seq + 1}..{row.seq - 1} are missing (deleted)"
    if prev_hash and row.prev_hash != prev_hash:
        return f"entry {row.seq} does not follow entry {prev_seq} (chain broken)"
    if entry_hash(row.prev_hash, row.seq, row.at, event_of(row), row.node) != row.hash:
        return f"entry {row.seq} was altered (its content does not match its hash)"
    return None


def _anchor_problem(row: AuditRow, checkpoints: Sequence[Checkpoint]) -> str | None:
    for cp in checkpoints:
        if cp.hash != row.hash:
            return (
                f"entry {row.seq} no longer has the hash {cp.label} signed "
                f"({cp.hash[:16]}, now {row.hash[:16]}): the trail was rewritten"
            )
    return None


def _notes(report: VerifyReport, anchored: bool) -> list[str]:
    if not report.ok:
        return []
    if not anchored:
        return [NO_ANCHOR]
    if report.head_seq > report.anchored_seq:
        return [
            f"entries {report.anchored_seq + 1}..{report.head_seq} are newer than the anchor's "
            "last checkpoint: consistent with it, but no checkpoint vouches for them yet"
        ]
    return []


def _walk(session: Session, batch: int, after: int = 0) -> Iterator[AuditRow]:
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

    def __init__(self, db: Database, models: ModelSource, keys: AuditKeyFile) -> None:
        """`keys`: this server's audit key, which checks an anchor's signatures by default."""
        self._db, self._models, self._keys = db, models, keys

    def list_entries(self, actor: Actor, f: AuditFilter) -> list[AuditRow]:
        with self._db.read() as s:
            permissions.require_auditor(self._models.model(s), actor, "read the audit trail")
            return list(s.scalars(query(f)))

    def verify(
        self,
        actor: Actor,
        anchor: Sequence[Checkpoint] = (),
        keys: Sequence[VerifyKey] = (),
    ) -> VerifyReport:
        """The chain, and the anchor's checkpoints against it. `keys`: the public keys the
        checkpoints must be signed with; none given, this server's own (if it has one)."""
        with self._db.snapshot() as s:
            permissions.require_auditor(self._models.model(s), actor, "verify the audit trail")
            report = verify(s, anchor=anchor)
        if anchor:
            keys = list(keys) or self._own_key(report)
            signed = signature_problems(anchor, keys) if keys else []
            if signed:
                report.problems += signed
                report.ok, report.notes = False, []
        return report

    def _own_key(self, report: VerifyReport) -> list[VerifyKey]:
        """This server's public key, or a note on the report saying why there is none."""
        try:
            own = self._keys.verify_key()
        except AuditKeyError as error:
            report.notes.append(f"the checkpoints' signatures were not checked: {error}")
            return []
        if own is None:
            report.notes.append(
                "the checkpoints' signatures were not checked: no public key given and this "
                "server has no audit key"
            )
            return []
        report.notes.append(f"signatures checked with this server's key {own.fingerprint}")
        return [own]

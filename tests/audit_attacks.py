"""What an attacker with write access to the database does to the audit trail, with raw SQL.

Each leaves a chain that is consistent again (every hash recomputed, the head moved), which is
what `audit verify` without an anchor cannot tell from an untouched one.
"""

from __future__ import annotations

import json
from dataclasses import replace

from sqlalchemy import bindparam, select, text

from sekisho.bootstrap import Core
from sekisho.services import audit
from sekisho.store.tables import AuditRow
from sekisho.store.types import UTCDateTime


def audit_rows(core: Core) -> list[AuditRow]:
    with core.db.read() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.seq)))


def sql(core: Core, statement: str, **params: object) -> None:
    with core.db.write() as s:
        s.execute(text(statement), params)


def rehash_from(core: Core, seq: int, edits: dict[int, dict[str, str]]) -> None:
    """Apply `edits` ({seq: {column: value}}, text columns), then recompute every entry's hash
    from `seq` to the end and move the head to match: the chain is consistent again."""
    rows = audit_rows(core)
    prev = rows[seq - 2].hash if seq > 1 else audit.GENESIS
    for row in rows[seq - 1 :]:
        changed = edits.get(row.seq, {})
        for column, value in changed.items():
            setattr(row, column, value)
        digest = audit.entry_hash(prev, row.seq, row.at, audit.event_of(row), row.node)
        sets = ", ".join(f"{c} = :{c}" for c in changed)
        sql(
            core,
            f"UPDATE audit_log SET {sets + ', ' if sets else ''}prev_hash = :p, hash = :h "
            "WHERE seq = :s",
            **changed,
            p=prev,
            h=digest,
            s=row.seq,
        )
        prev = digest
    sql(core, "UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1", s=rows[-1].seq, h=prev)


def cut_the_end(core: Core, count: int) -> None:
    """Delete the last `count` entries and move the head back to the new last one."""
    rows = audit_rows(core)
    keep = rows[-count - 1]
    sql(core, "DELETE FROM audit_log WHERE seq > :s", s=keep.seq)
    sql(core, "UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1", s=keep.seq, h=keep.hash)


def replace_the_trail(core: Core, extra: int) -> None:
    """Delete every entry and write a whole new, consistent trail (`extra` entries longer),
    where every entry's source is a harmless address."""
    old = audit_rows(core)
    sql(core, "DELETE FROM audit_log")
    insert = text(
        "INSERT INTO audit_log (seq, at, action, outcome, actor, subject, request_id, "
        "grant_id, object, source, detail, node, prev_hash, hash) VALUES (:seq, :at, :action, "
        ":outcome, :actor, :subject, :request_id, :grant_id, :object, :source, :detail, :node, "
        ":prev_hash, :hash)"
    ).bindparams(bindparam("at", type_=UTCDateTime()))
    prev = audit.GENESIS
    forged = [*old, *[old[-1]] * extra]
    with core.db.write() as s:
        for seq, row in enumerate(forged, start=1):
            event = replace(audit.event_of(row), source="10.0.0.1")
            digest = audit.entry_hash(prev, seq, row.at, event, row.node)
            s.execute(
                insert,
                {
                    "seq": seq,
                    "at": row.at,
                    "action": event.action,
                    "outcome": event.outcome,
                    "actor": event.actor,
                    "subject": event.subject,
                    "request_id": event.request_id,
                    "grant_id": event.grant_id,
                    "object": event.object,
                    "source": event.source,
                    "detail": json.dumps(dict(event.detail), sort_keys=True),
                    "node": row.node,
                    "prev_hash": prev,
                    "hash": digest,
                },
            )
            prev = digest
        s.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
            {"s": len(forged), "h": prev},
        )

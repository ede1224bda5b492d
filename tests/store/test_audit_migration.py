"""The audit migration keeps every entry already written, and they still verify."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import bindparam, text

from sekisho.services import audit
from sekisho.store import migrate
from sekisho.store.db import Database
from sekisho.store.types import UTCDateTime

AT = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_entries_from_before_the_migration_survive_and_verify(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate.upgrade(db, "0003")  # the schema before entries named their node
        event = audit.AuditEvent("model.loaded", "sekisho:cli", "cli", detail={"sha256": "ab"})
        digest = audit.entry_hash(audit.GENESIS, 1, AT, event)  # as the old code hashed it
        insert = text(
            "INSERT INTO audit_log (seq, at, action, outcome, actor, subject, request_id, "
            "grant_id, object, source, detail, prev_hash, hash) VALUES (1, :at, 'model.loaded', "
            "'ok', 'sekisho:cli', NULL, NULL, NULL, NULL, 'cli', '{\"sha256\":\"ab\"}', :p, :h)"
        ).bindparams(bindparam("at", type_=UTCDateTime()))
        with db.write() as s:
            s.execute(insert, {"at": AT, "p": audit.GENESIS, "h": digest})
            s.execute(text("UPDATE audit_head SET seq = 1, hash = :h WHERE id = 1"), {"h": digest})

        migrate.upgrade(db)
        with db.write() as s:
            audit.record(s, AT, audit.AuditEvent("auth.login", "member01", "test"), "node-a")
        with db.read() as s:
            report = audit.verify(s)
            nodes = s.execute(text("SELECT seq, node FROM audit_log ORDER BY seq")).all()
        assert report.ok, report.problems
        assert report.entries == 2
        assert nodes == [(1, None), (2, "node-a")]
    finally:
        db.dispose()

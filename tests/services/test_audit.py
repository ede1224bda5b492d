"""The audit trail: append-only, hash-chained, verifiable, filterable, and only for auditors."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flows import PROD_MEMBER_ROLE, audit_rows, counts, file, granted, sql
from pydantic import ValidationError
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.access import Verb
from sekisho.domain.errors import Forbidden
from sekisho.services import audit
from sekisho.services.audit import AuditFilter, VerifyReport
from sekisho.store.db import Database
from sekisho.store.tables import AuditRow
from sekisho.store.types import canonical_json
from support import ADMIN, AUDITOR, LEADER, LEADER2, MEMBER, MEMBER2

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def story(core: Core, clock: ManualClock) -> tuple[int, int]:
    """09:00 member01 is granted; 10:00 member02 is rejected, leader01 denied; 11:00 expiry."""
    first = granted(core).id
    clock.set(NOW + timedelta(hours=1))
    second = file(core, MEMBER2).id
    core.workflow.reject(LEADER2, second, "not today")
    core.authz.check(LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole")
    clock.set(NOW + timedelta(hours=2))
    core.sweeper.run_due()
    return first, second


def verify(core: Core) -> VerifyReport:
    return core.audit_trail.verify(AUDITOR)


def entries(core: Core, **filters: Any) -> list[tuple[str, str]]:
    found = core.audit_trail.list_entries(AUDITOR, AuditFilter(**filters))
    return [(e.action, e.actor) for e in found]


# -- the chain --------------------------------------------------------------------------------


def test_an_untouched_trail_verifies(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    report = verify(core)
    assert report.ok, report.problems
    rows = audit_rows(core)
    assert report.entries == len(rows) == rows[-1].seq
    assert report.head_seq == rows[-1].seq
    assert report.head_hash == rows[-1].hash
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(rows))


def test_an_edited_entry_is_detected(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    rejected = next(r for r in audit_rows(core) if r.action == "request.rejected")
    sql(
        core,
        "UPDATE audit_log SET detail = :d WHERE seq = :s",
        d='{"comment":"approved after all"}',
        s=rejected.seq,
    )
    report = verify(core)
    assert not report.ok
    assert report.problems == [
        f"entry {rejected.seq} was altered (its content does not match its hash)"
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "leader02"), ("subject", "member02"), ("source", "10.9.9.9"), ("outcome", "ok")],
)
def test_any_edited_column_is_detected(
    core: Core, clock: ManualClock, column: str, value: str
) -> None:
    story(core, clock)
    target = next(r for r in audit_rows(core) if r.action == "authz.denied")
    sql(core, f"UPDATE audit_log SET {column} = :v WHERE seq = :s", v=value, s=target.seq)
    assert verify(core).problems == [
        f"entry {target.seq} was altered (its content does not match its hash)"
    ]


def test_a_moved_timestamp_is_detected(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    target = audit_rows(core)[3]
    with core.db.write() as s:
        s.execute(
            update(AuditRow)
            .where(AuditRow.seq == target.seq)
            .values(at=target.at - timedelta(hours=1))
        )
    assert not verify(core).ok


def test_an_edit_with_a_recomputed_hash_still_breaks_the_chain(
    core: Core, clock: ManualClock
) -> None:
    """Someone who knows the algorithm rewrites an entry and its hash: the next one objects."""
    story(core, clock)
    target = next(r for r in audit_rows(core) if r.action == "request.rejected")
    forged = audit.event_of(target)
    forged = audit.AuditEvent(
        forged.action,
        "leader01",
        forged.source,
        outcome=forged.outcome,
        subject=forged.subject,
        request_id=forged.request_id,
        detail=forged.detail,
    )
    new_hash = audit.entry_hash(target.prev_hash, target.seq, target.at, forged, target.node)
    sql(
        core,
        "UPDATE audit_log SET actor = 'leader01', hash = :h WHERE seq = :s",
        h=new_hash,
        s=target.seq,
    )
    assert verify(core).problems == [
        f"entry {target.seq + 1} does not follow entry {target.seq} (chain broken)"
    ]


def test_a_deleted_middle_entry_is_detected(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    sql(core, "DELETE FROM audit_log WHERE seq = 4")
    assert verify(core).problems == ["entries 4..4 are missing (deleted)"]


def test_a_deleted_last_entry_is_detected(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    last = audit_rows(core)[-1]
    assert last.action == "grant.expired"
    sql(core, "DELETE FROM audit_log WHERE seq = :s", s=last.seq)
    report = verify(core)
    assert not report.ok
    assert "entries at the end were deleted" in report.problems[0]
    assert report.head_seq == last.seq


def test_swapped_entries_are_detected(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    sql(core, "UPDATE audit_log SET seq = -1 WHERE seq = 3")
    sql(core, "UPDATE audit_log SET seq = 3 WHERE seq = 4")
    sql(core, "UPDATE audit_log SET seq = 4 WHERE seq = -1")
    assert verify(core).problems == ["entry 3 does not follow entry 2 (chain broken)"]


def test_an_entry_moved_to_the_end_is_detected(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    last = audit_rows(core)[-1].seq
    sql(core, "UPDATE audit_log SET seq = -seq WHERE seq > 2")
    sql(core, "UPDATE audit_log SET seq = :n WHERE seq = 2", n=last)
    sql(core, "UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0")
    assert [r.seq for r in audit_rows(core)] == list(range(1, last + 1))
    assert not verify(core).ok


def test_verify_reads_the_chain_in_batches(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    with core.db.read() as s:
        assert audit.verify(s, batch=2).ok
    sql(core, "DELETE FROM audit_log WHERE seq = 5")
    with core.db.read() as s:
        assert audit.verify(s, batch=2).problems == ["entries 5..5 are missing (deleted)"]


# -- entries land with their change, or not at all --------------------------------------------


def test_a_change_whose_entry_cannot_be_written_is_not_made(core: Core) -> None:
    before = counts(core)
    with audit_entries_refused(core), pytest.raises(DBAPIError, match="disk full"):
        file(core)
    assert counts(core) == before


@contextmanager
def audit_entries_refused(core: Core) -> Iterator[None]:
    """The store refuses every new audit entry, as a full disk would; then takes them again
    (the PostgreSQL test database outlives the test)."""
    table = AuditRow.__tablename__
    with core.db.write() as s:
        if core.db.is_postgres:
            s.execute(
                text(
                    "CREATE FUNCTION refuse_entry() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
                )
            )
            s.execute(
                text(
                    f"CREATE TRIGGER refuse_entry BEFORE INSERT ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_entry()"
                )
            )
        else:
            s.execute(
                text(
                    f"CREATE TRIGGER refuse_entry BEFORE INSERT ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
    try:
        yield
    finally:
        with core.db.write() as s:
            if core.db.is_postgres:
                s.execute(text(f"DROP TRIGGER refuse_entry ON {table}"))
                s.execute(text("DROP FUNCTION refuse_entry()"))
            else:
                s.execute(text("DROP TRIGGER refuse_entry"))


def test_concurrent_appends_keep_one_chain(core: Core) -> None:
    threads = [
        threading.Thread(
            target=lambda: [
                core.authz.check(MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)
                for _ in range(5)
            ]
        )
        for _ in range(6)
    ]
    before = len(audit_rows(core))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(audit_rows(core)) == before + 30
    assert verify(core).ok


def test_verify_while_entries_are_appended_sees_one_moment(core: Core) -> None:
    """The walk and the head it ends on are read in one snapshot: entries appended meanwhile
    are not mistaken for a cut end ("entries at the end were deleted")."""
    appending = threading.Event()

    def append() -> None:
        while not appending.is_set():
            core.authz.check(MEMBER, "member01", Verb.ASSUME, PROD_MEMBER_ROLE)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        reports = [core.audit_trail.verify(AUDITOR) for _ in range(40)]
        # On a loaded machine the writer may not have run yet: verify on until it has.
        while len({r.head_seq for r in reports}) == 1 and len(reports) < 2000:
            reports.append(core.audit_trail.verify(AUDITOR))
    finally:
        appending.set()
        writer.join(timeout=60)
    assert [r.problems for r in reports if not r.ok] == []
    assert len({r.head_seq for r in reports}) > 1  # the trail did grow under the verifies


# -- reading the trail ------------------------------------------------------------------------


def test_only_auditors_and_admins_read_or_verify(core: Core) -> None:
    for who in (MEMBER, LEADER):
        with pytest.raises(Forbidden):
            core.audit_trail.list_entries(who, AuditFilter())
        with pytest.raises(Forbidden):
            core.audit_trail.verify(who)
    assert core.audit_trail.list_entries(ADMIN, AuditFilter())
    assert core.audit_trail.verify(ADMIN).ok


def test_filter_by_user(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    assert entries(core, user="member02") == [
        ("request.rejected", "leader02"),
        ("request.filed", "member02"),
    ]
    assert entries(core, user="leader01") == [
        ("authz.denied", "leader01"),
        ("request.approved", "leader01"),
    ]


def test_filter_by_request(core: Core, clock: ManualClock) -> None:
    first, second = story(core, clock)
    assert entries(core, request_id=second) == [
        ("request.rejected", "leader02"),
        ("request.filed", "member02"),
    ]
    assert [a for a, _ in entries(core, request_id=first)] == [
        "grant.expired",
        "request.succeeded",
        "grant.activated",
        "request.approved",
        "request.filed",
    ]


def test_filter_by_action(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    assert entries(core, action="grant.") == [
        ("grant.expired", "sekisho:scheduler"),
        ("grant.activated", "sekisho:runbook"),
    ]
    assert entries(core, action="request.filed") == [
        ("request.filed", "member02"),
        ("request.filed", "member01"),
    ]
    assert entries(core, action="request") == []  # without the dot: an exact action
    assert entries(core, action="%.") == []  # not a wildcard


def test_filter_by_time(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    ten = NOW + timedelta(hours=1)
    assert entries(core, since=ten, until=ten + timedelta(hours=1)) == [
        ("authz.denied", "leader01"),
        ("request.rejected", "leader02"),
        ("request.filed", "member02"),
    ]
    assert entries(core, since=NOW + timedelta(hours=2)) == [("grant.expired", "sekisho:scheduler")]
    early = entries(core, until=ten)
    assert ("request.filed", "member01") in early
    assert ("request.filed", "member02") not in early


def test_paging_newest_first(core: Core, clock: ManualClock) -> None:
    story(core, clock)
    page = core.audit_trail.list_entries(AUDITOR, AuditFilter(limit=3))
    assert [e.seq for e in page] == sorted((e.seq for e in page), reverse=True)
    older = core.audit_trail.list_entries(AUDITOR, AuditFilter(limit=3, before_seq=page[-1].seq))
    assert older[0].seq == page[-1].seq - 1


# -- the node that wrote each entry ------------------------------------------------------------


def test_two_nodes_on_one_database_each_name_their_entries(
    core: Core, clock: ManualClock, db_url: str, settings: Settings
) -> None:
    """Two Cores (two nodes) append to one chain; each entry names the node that wrote it,
    and its hash covers the name: moving an entry to the other node breaks the chain."""
    node_a = replace(core, settings=settings.model_copy(update={"node_name": "node-a"}))
    node_b = replace(
        core,
        db=Database(db_url),
        settings=settings.model_copy(update={"node_name": "node-b"}),
    )
    try:
        filed = file(node_a)
        node_b.workflow.approve(LEADER, filed.id, "go")
        node_a.authz.check(LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole")
        rows = audit_rows(core, filed.id)
        assert [(r.action, r.node) for r in rows] == [
            ("request.filed", "node-a"),
            ("request.approved", "node-b"),
            ("grant.activated", "node-b"),
            ("request.succeeded", "node-b"),
        ]
        assert audit_rows(core)[-1].node == "node-a"
        assert verify(core).ok
        assert [e.node for e in core.audit_trail.list_entries(AUDITOR, AuditFilter(limit=1))] == [
            "node-a"
        ]
        approved = rows[1]
        sql(core, "UPDATE audit_log SET node = 'node-a' WHERE seq = :s", s=approved.seq)
        assert verify(core).problems == [
            f"entry {approved.seq} was altered (its content does not match its hash)"
        ]
    finally:
        node_b.db.dispose()


def test_entries_written_before_nodes_were_named_still_verify(core: Core) -> None:
    """An entry from before this change has no node, and its hash never covered one."""
    with core.db.write() as s:
        audit.record(s, core.now(), audit.AuditEvent("model.loaded", "sekisho:old", "test"))
    file(core)  # and entries from now on name their node
    rows = audit_rows(core)
    old = next(r for r in rows if r.actor == "sekisho:old")
    assert old.node is None
    assert rows[-1].node == core.settings.node_name
    assert verify(core).ok
    sql(core, "UPDATE audit_log SET node = 'node-x' WHERE seq = :s", s=old.seq)  # claimed later
    assert verify(core).problems == [
        f"entry {old.seq} was altered (its content does not match its hash)"
    ]


def test_an_entry_stores_its_detail_as_the_canonical_json_its_hash_covers(core: Core) -> None:
    """The detail column holds `canonical_json(detail)`, taken from the hashed text: values
    that look like the body's own keys, quotes and non-ASCII text change nothing."""
    tricky = {
        "reason": 'x,"grant_id":1,"detail":{"a":"b"}}',
        "comment": '\\"detail":\\',
        "output": '日本語 \u2028 "quoted"',
        "count": 3,
        "error": None,
        "outcome": True,
    }
    with core.db.write() as s:
        event = audit.AuditEvent("grant.expired", 'x"detail":', "test", detail=tricky)
        audit.record(s, core.now(), event)
        audit.record(s, core.now(), audit.AuditEvent("model.loaded", "y", "test"), node="n1")
    with core.db.read() as s:
        stored = s.scalars(text("SELECT detail FROM audit_log ORDER BY seq DESC LIMIT 2")).all()
    assert stored == [canonical_json({}), canonical_json(tricky)]
    rows = audit_rows(core)
    assert rows[-2].detail == tricky
    assert verify(core).ok


def test_a_node_name_is_a_plain_name(tmp_path: Path) -> None:
    for bad in ("", "node a", "node\x1b[2J", "x" * 129, "-lead"):
        with pytest.raises(ValidationError, match="node_name"):
            Settings(data_dir=tmp_path, node_name=bad)
    assert Settings(data_dir=tmp_path, node_name="ip-10-0-0-1.ec2.internal").node_name

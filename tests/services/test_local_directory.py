"""The `local` provider lives in sekisho's own database, so a grant's activation or ending and
the directory's change commit in one transaction: no membership without its record, no record
without its membership, however the transaction ends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flows import WORK, actions, granted
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.domain.extensions import ExtensionDraft
from sekisho.providers.select import ProviderFromModel
from sekisho.store.db import Database
from sekisho.store.tables import AuditRow
from support import ADMIN, LEADER, MEMBER, MEMBER2, assemble_core, draft

MEMBERS = [MEMBER, MEMBER2]


@pytest.fixture
def local(db_url: str, clock: ManualClock, settings: Settings) -> Iterator[Core]:
    """sekisho as `serve` builds it: the provider the model names (the example's: local)."""
    db = Database(db_url)
    yield assemble_core(db, settings, ProviderFromModel(db, clock), clock)
    db.dispose()


def steps(core: Core, actor: Actor, request_id: int) -> list[str]:
    """The runbook steps on the request's timeline, by name."""
    timeline = core.workflow.get(actor, request_id).timeline
    return [e.kind.removeprefix("step:") for e in timeline if e.kind.startswith("step:")]


def refuse_activations(core: Core) -> None:
    """The store refuses to mark a grant active (a real database error, raised by the
    activation's own transaction after the directory's change was made in it)."""
    with core.db.write() as s:
        if core.db.is_postgres:
            s.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.status = 'active' THEN RAISE EXCEPTION 'the store refuses'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            s.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON grants "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
        else:
            s.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE UPDATE OF status ON grants "
                    "WHEN NEW.status = 'active' BEGIN SELECT RAISE(ABORT, 'the store refuses'); END"
                )
            )


def accept_activations(core: Core) -> None:
    with core.db.write() as s:
        s.execute(text("DROP TRIGGER refuse" + (" ON grants" if core.db.is_postgres else "")))


def test_an_approval_makes_the_member_and_records_it(local: Core) -> None:
    view = granted(local)
    assert view.status == "succeeded"
    assert view.grant is not None
    assert MEMBER.name in local.provider.members(WORK)
    assert WORK in local.provider.tags(MEMBER.name)
    assert "grant.activated" in actions(local, view.id)


def test_a_release_ends_the_membership_with_the_grant(local: Core) -> None:
    view = granted(local)
    assert view.grant is not None
    ended = local.grants.release(MEMBER, view.grant.id)
    assert ended.status == "revoked"
    assert MEMBER.name not in local.provider.members(WORK)
    assert WORK not in local.provider.tags(MEMBER.name)


def test_an_extension_rewrites_the_local_ttl_tag_with_the_new_end(
    local: Core, clock: ManualClock
) -> None:
    view = granted(local)
    assert view.grant is not None
    first_tag = local.provider.tags(MEMBER.name)[WORK]
    asked = local.workflow.extend(MEMBER, view.grant.id, ExtensionDraft("overran", duration="1h"))
    done = local.workflow.approve(LEADER, asked.id, "ok")
    assert steps(local, MEMBER, done.id) == ["add_user_to_group", "tag_user"]
    assert steps(local, MEMBER, view.id)[-2:] == ["add_user_to_group", "tag_user"]
    new_end = view.grant.end_at + timedelta(hours=1)
    tag = local.provider.tags(MEMBER.name)[WORK]
    assert tag != first_tag
    assert tag == local.models.model().ttl_tag(new_end)
    clock.set(view.grant.end_at)  # the old end: the membership stays
    assert not local.sweeper.run_due().expired
    assert MEMBER.name in local.provider.members(WORK)


def test_an_activation_that_fails_to_commit_leaves_no_membership(
    local: Core, clock: ManualClock
) -> None:
    """The activation's transaction fails after the directory made the member in it: neither
    the membership nor the activation is kept, and the run resumes once its lease runs out."""
    refuse_activations(local)
    filed = local.workflow.file(MEMBER, draft())
    with pytest.raises(DBAPIError, match="the store refuses"):
        local.workflow.approve(LEADER, filed.id, "ok")
    after = local.workflow.get(MEMBER, filed.id)
    assert after.status == "in_progress"
    assert after.grant is not None
    assert after.grant.status == "activating"
    assert MEMBER.name not in local.provider.members(WORK)
    assert "grant.activated" not in actions(local, filed.id)
    accept_activations(local)
    clock.advance(local.settings.runbook_lease + timedelta(seconds=1))
    assert local.sweeper.run_due().runbooks_run == [filed.id]
    resumed = local.workflow.get(MEMBER, filed.id)
    assert resumed.status == "succeeded"
    assert resumed.grant is not None
    assert resumed.grant.status == "active"
    assert MEMBER.name in local.provider.members(WORK)


def test_a_due_batch_ends_every_membership_in_one_pass(local: Core, clock: ManualClock) -> None:
    views = [granted(local, member, duration="1h") for member in MEMBERS]
    assert local.provider.members(WORK) == {m.name for m in MEMBERS}
    clock.advance(timedelta(hours=1, seconds=1))
    report = local.sweeper.run_due()
    assert sorted(report.expired) == sorted(v.grant.id for v in views if v.grant)
    assert local.provider.members(WORK) == frozenset()
    for member, view in zip(MEMBERS, views, strict=True):
        assert WORK not in local.provider.tags(member.name)
        assert steps(local, member, view.id)[-2:] == ["remove_user_from_group", "untag_user"]


def test_a_membership_removed_and_added_again_in_one_transaction_is_there_after_it(
    local: Core,
) -> None:
    """Removals are deleted together later in the transaction; an addition of the same
    membership after its removal must still stand once the transaction commits."""
    granted(local, MEMBER, duration="1h")
    with local.db.write() as s:
        directory = local.provider.within(s)
        assert directory is not None
        directory.preload([(MEMBER.name, WORK)])
        assert directory.remove_member(MEMBER.name, WORK) == f"removed {MEMBER.name} from {WORK}"
        assert directory.delete_tag(MEMBER.name, WORK) == f"untagged {MEMBER.name} {WORK}"
        assert MEMBER.name not in directory.members(WORK)  # a read sees the removal
        assert directory.add_member(MEMBER.name, WORK) == f"added {MEMBER.name} to {WORK}"
        directory.set_tag(MEMBER.name, WORK, "2030-01-01T00:00:00Z")
    assert MEMBER.name in local.provider.members(WORK)
    assert local.provider.tags(MEMBER.name)[WORK] == "2030-01-01T00:00:00Z"


def test_a_removal_in_a_transaction_that_rolls_back_changes_nothing(local: Core) -> None:
    granted(local, MEMBER, duration="1h")

    def remove_then_fail() -> None:
        with local.db.write() as s:
            directory = local.provider.within(s)
            assert directory is not None
            directory.remove_member(MEMBER.name, WORK)
            raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        remove_then_fail()
    assert MEMBER.name in local.provider.members(WORK)


def test_a_sweep_and_a_lock_ending_the_same_grants_at_once_end_each_exactly_once(
    local: Core, clock: ManualClock
) -> None:
    """Both take the same due grants (the lock covers member01's): whichever starts each
    ending first ends it, the other leaves it; nobody deadlocks, nothing ends twice."""
    views = [granted(local, member, duration="1h") for member in MEMBERS]
    grant_ids = sorted(v.grant.id for v in views if v.grant)
    clock.advance(timedelta(hours=1, seconds=1))
    start, errors = threading.Barrier(2), []

    def run(act: Callable[[], object]) -> None:
        start.wait()
        try:
            act()
        except Exception as exc:
            errors.append(exc)

    def place() -> object:
        return local.locks.place(ADMIN, "user", MEMBER.name, "laptop stolen")

    threads = [threading.Thread(target=run, args=(a,)) for a in (local.sweeper.run_due, place)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with local.db.read() as s:
        ended = list(
            s.scalars(
                select(AuditRow.grant_id).where(
                    AuditRow.action.in_(("grant.expired", "grant.revoked"))
                )
            )
        )
    assert sorted(ended) == grant_ids  # each once
    assert local.provider.members(WORK) == frozenset()

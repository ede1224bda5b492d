"""Helpers for the service tests: drive the common flows and look at what they left behind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from sekisho.bootstrap import Core
from sekisho.domain.access import Verb
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.errors import InvalidInput, SekishoError
from sekisho.services.views import RequestView
from sekisho.store.tables import AuditRow, Base, GrantRow, RequestRow
from support import EXAMPLE_TEXT, LEADER, MEMBER, draft

__all__ = ["EXAMPLE_TEXT"]

SYSTEM = Actor.system("test")

PROD_MEMBER_ROLE = "prod/Prod_MemberRole"
WORK = "ProdMemberWorkGroup"


def file(core: Core, actor: Actor = MEMBER, /, **overrides: object) -> RequestView:
    return core.workflow.file(actor, draft(**overrides))


def granted(
    core: Core,
    actor: Actor = MEMBER,
    approver: Actor = LEADER,
    comment: str = "ok, go ahead",
    **overrides: object,
) -> RequestView:
    """File a request and approve it; the runbook runs (unless the start is later)."""
    filed = file(core, actor, **overrides)
    return core.workflow.approve(approver, filed.id, comment)


def remove_draft(group: str = WORK, **overrides: object) -> RequestDraft:
    fields: dict[str, Any] = {
        "template": "RemoveUserFromGroup",
        "group": group,
        "reason": "work finished early",
    }
    fields.update(overrides)
    return RequestDraft(**fields)


def can_assume(core: Core, user: str = "member01", role: str = PROD_MEMBER_ROLE) -> bool:
    return core.authz.decide(user, Verb.ASSUME, role).allowed


def counts(core: Core) -> dict[str, int]:
    """Rows in every table: 'nothing was written' means this did not change."""
    with core.db.read() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def audit_rows(core: Core, request_id: int | None = None) -> list[AuditRow]:
    with core.db.read() as s:
        stmt = select(AuditRow).order_by(AuditRow.seq)
        if request_id is not None:
            stmt = stmt.where(AuditRow.request_id == request_id)
        return list(s.scalars(stmt))


def actions(core: Core, request_id: int | None = None) -> list[str]:
    return [r.action for r in audit_rows(core, request_id)]


def kinds(view: RequestView) -> list[str]:
    return [t.kind for t in view.timeline]


def grant_row(core: Core, grant_id: int) -> GrantRow:
    with core.db.read() as s:
        return s.get_one(GrantRow, grant_id)


def request_row(core: Core, request_id: int) -> RequestRow:
    with core.db.read() as s:
        return s.get_one(RequestRow, request_id)


def sql(core: Core, statement: str, **params: object) -> None:
    """Change the database behind sekisho's back (a crash, an attacker, an operator)."""
    with core.db.write() as s:
        s.execute(text(statement), params)


def set_request(core: Core, request_id: int, **values: object) -> None:
    """Overwrite a request's columns directly, as a crash would leave them."""
    with core.db.write() as s:
        s.execute(update(RequestRow).where(RequestRow.id == request_id).values(**values))


def load_model(core: Core, yaml_text: str) -> None:
    core.models.load(yaml_text, "custom.yaml", SYSTEM)


def snapshot(core: Core) -> dict[str, list[str]]:
    """Every row of every table: catches a stray UPDATE, not only an INSERT."""
    with core.db.read() as s:
        return {
            t.name: sorted(repr(tuple(row)) for row in s.execute(select(t)))
            for t in Base.metadata.sorted_tables
        }


@contextmanager
def refused(core: Core, error: type[SekishoError], match: str | None = None) -> Iterator[Any]:
    """The call raises `error` and writes nothing at all."""
    before = snapshot(core)
    with pytest.raises(error, match=match) as caught:
        yield caught
    assert snapshot(core) == before, "a refused call must change nothing"


@contextmanager
def invalid(core: Core, field: str, rule: str) -> Iterator[Any]:
    """The call raises InvalidInput naming `field` and `rule`, and writes nothing."""
    with refused(core, InvalidInput) as caught:
        yield caught
    problems = [(p.field, p.rule) for p in caught.value.problems]
    assert (field, rule) in problems, problems
    message = next(p.message for p in caught.value.problems if (p.field, p.rule) == (field, rule))
    assert message, "each problem says what is wrong in a sentence"


def at_once(*calls: Callable[[], object]) -> list[BaseException | None]:
    """Run the calls in threads released together; what each raised (None: it returned)."""
    barrier = threading.Barrier(len(calls))
    raised: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            calls[i]()
        except BaseException as exc:
            raised[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return raised

"""The runbook as interfaces and tests call it (`core.runbook`): the `RunRunbook` operation."""

from __future__ import annotations

from sekisho.domain.requests import RequestStatus
from sekisho.operations.runbook import Job, RunRunbook
from sekisho.store.tables import RequestRow
from sekisho.store.unit_of_work import UnitOfWork

__all__ = ["Job", "RunbookService"]


class RunbookService:
    def __init__(self, run: RunRunbook) -> None:
        self._run = run

    def execute(self, request_id: int) -> bool:
        """Run (or resume) the request's runbook if it is due and free. True if it ran."""
        return self._run.execute(request_id)

    def claim(self, uow: UnitOfWork, row: RequestRow) -> Job | None:
        return self._run.claim(uow, row)

    def run(self, job: Job) -> RequestStatus:
        return self._run.run(job)

"""Requests as interfaces call them: each verb is one operation, each read one query."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.requests import ApprovalDecision
from sekisho.operations.extensions import ExtendGrant
from sekisho.operations.requests import CancelRequest, DecideRequest, FileRequest
from sekisho.queries.requests import RequestQueries, RequestQuery
from sekisho.services.views import RequestSummary, RequestView


class WorkflowService:
    def __init__(
        self,
        file: FileRequest,
        decide: DecideRequest,
        cancel: CancelRequest,
        queries: RequestQueries,
        extend: ExtendGrant,
    ) -> None:
        self._file, self._decide, self._cancel, self._queries = file, decide, cancel, queries
        self._extend = extend

    def file(self, actor: Actor, draft: RequestDraft) -> RequestView:
        return self.get(actor, self._file.execute(actor, draft))

    def extend(self, actor: Actor, grant_id: int, draft: ExtensionDraft) -> RequestView:
        """Ask for more time on a grant: the extension request (in force already if it was
        self-service)."""
        return self.get(actor, self._extend.execute(actor, grant_id, draft))

    def approve(self, actor: Actor, request_id: int, comment: str = "") -> RequestView:
        self._decide.execute(actor, request_id, ApprovalDecision.APPROVE, comment)
        return self.get(actor, request_id)

    def reject(self, actor: Actor, request_id: int, comment: str) -> RequestView:
        self._decide.execute(actor, request_id, ApprovalDecision.REJECT, comment)
        return self.get(actor, request_id)

    def cancel(self, actor: Actor, request_id: int) -> RequestView:
        self._cancel.execute(actor, request_id)
        return self.get(actor, request_id)

    def get(self, actor: Actor, request_id: int) -> RequestView:
        return self._queries.get(actor, request_id)

    def list_requests(self, actor: Actor, query: RequestQuery) -> list[RequestSummary]:
        return self._queries.list_requests(actor, query)

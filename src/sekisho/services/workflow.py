"""Requests as interfaces call them: each verb is one operation, each read one query."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.requests import ApprovalDecision
from sekisho.operations.emergency import ReviewEmergency
from sekisho.operations.extensions import ExtendGrant
from sekisho.operations.on_call import PassOnCall
from sekisho.operations.requests import CancelRequest, DecideRequest, FileRequest
from sekisho.queries.requests import RequestQueries, RequestQuery
from sekisho.services.views import EmergencyCount, RequestSummary, RequestView


class WorkflowService:
    def __init__(
        self,
        file: FileRequest,
        decide: DecideRequest,
        cancel: CancelRequest,
        queries: RequestQueries,
        on_call: PassOnCall,
        review: ReviewEmergency,
        extend: ExtendGrant,
    ) -> None:
        self._file, self._decide, self._cancel, self._queries = file, decide, cancel, queries
        self._on_call, self._review, self._extend = on_call, review, extend

    def file(self, actor: Actor, draft: RequestDraft) -> RequestView:
        request_id = self._file.execute(actor, draft)
        self._on_call.execute(request_id)  # a first level that passes on call
        return self.get(actor, request_id)

    def extend(self, actor: Actor, grant_id: int, draft: ExtensionDraft) -> RequestView:
        """Ask for more time on a grant: the extension request (in force already if it was
        self-service, or its first level passed on call)."""
        request_id = self._extend.execute(actor, grant_id, draft)
        self._on_call.execute(request_id)  # an extension's first level may pass on call
        return self.get(actor, request_id)

    def approve(self, actor: Actor, request_id: int, comment: str = "") -> RequestView:
        self._decide.execute(actor, request_id, ApprovalDecision.APPROVE, comment)
        self._on_call.execute(request_id)  # the next level may pass on call
        return self.get(actor, request_id)

    def reject(self, actor: Actor, request_id: int, comment: str) -> RequestView:
        self._decide.execute(actor, request_id, ApprovalDecision.REJECT, comment)
        return self.get(actor, request_id)

    def cancel(self, actor: Actor, request_id: int) -> RequestView:
        self._cancel.execute(actor, request_id)
        return self.get(actor, request_id)

    def review(self, actor: Actor, request_id: int, comment: str) -> RequestView:
        """An approver's post-incident review of an emergency use."""
        self._review.execute(actor, request_id, comment)
        return self.get(actor, request_id)

    def get(self, actor: Actor, request_id: int) -> RequestView:
        return self._queries.get(actor, request_id)

    def emergencies(self, actor: Actor) -> list[EmergencyCount]:
        return self._queries.emergencies(actor)

    def list_requests(self, actor: Actor, query: RequestQuery) -> list[RequestSummary]:
        return self._queries.list_requests(actor, query)

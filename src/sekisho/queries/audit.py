"""Reading the audit trail, for auditors and admins: entries as views, newest first."""

from __future__ import annotations

from sekisho.domain.actor import Actor
from sekisho.ports import ModelSource
from sekisho.services import audit, permissions
from sekisho.services.audit import AuditFilter
from sekisho.services.views import AuditEntryView
from sekisho.store.unit_of_work import Store


class AuditQueries:
    def __init__(self, store: Store, models: ModelSource) -> None:
        self._store, self._models = store, models

    def list_entries(self, actor: Actor, f: AuditFilter) -> list[AuditEntryView]:
        with self._store.read() as s:
            permissions.require_auditor(self._models.model(s), actor, "read the audit trail")
            return [AuditEntryView.of(row) for row in s.scalars(audit.query(f))]

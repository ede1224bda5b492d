"""What a checkpoint of the audit trail leaves behind: a message to the admins (one more copy
of the anchor outside the database), or their warning that nothing was signed."""

from __future__ import annotations

import contextlib

from sekisho.domain.errors import Conflict
from sekisho.domain.events import AuditCheckpointRefused, AuditCheckpointSigned
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit_anchor import Checkpoint
from sekisho.services.audit_checkpoints import checkpoint_of
from sekisho.services.events import Event
from sekisho.store.tables import AuditCheckpointRow

NOTIFY_QUEUED = "notify.queued"  # wakes the dispatcher


def signed(fx: EffectContext, e: AuditCheckpointSigned) -> list[Event]:
    row = fx.session.get_one(AuditCheckpointRow, e.checkpoint_id)
    _tell_admins(fx, checkpoint_of(row), [])
    return [Event(NOTIFY_QUEUED, e.at)]


def refused(fx: EffectContext, e: AuditCheckpointRefused) -> list[Event]:
    _tell_admins(fx, None, list(e.problems))
    return [Event(NOTIFY_QUEUED, e.at)]


def _tell_admins(fx: EffectContext, checkpoint: Checkpoint | None, problems: list[str]) -> None:
    with contextlib.suppress(Conflict):  # no access model loaded yet: nobody to tell
        fx.outbox.audit_checkpoint(fx.session, checkpoint, problems)


HANDLERS: dict[type, Handler] = {
    AuditCheckpointSigned: signed,
    AuditCheckpointRefused: refused,
}

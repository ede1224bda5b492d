"""What the reconciler's events leave behind: an audit entry for every change it made (or
failed to make), the report's lines, and `reconcile.completed` on the bus."""

from __future__ import annotations

from sekisho.domain.events import DriftReconciled, ReconcileCompleted
from sekisho.effects.context import EffectContext, Handler
from sekisho.services.audit import AuditEvent
from sekisho.services.events import Event

SOURCE = "reconcile"  # the report its lines go to


def drift_reconciled(fx: EffectContext, e: DriftReconciled) -> list[Event]:
    fx.audit(
        e.at,
        AuditEvent(
            f"reconcile.{e.kind}",
            e.actor.name,
            e.actor.source,
            outcome="ok" if e.ok else "failed",
            subject=e.user,
            detail={"group": e.group, "reason": e.reason[:300], "output": e.output[:1000]},
        ),
    )
    fx.outbox.report_line(
        fx.session,
        source=SOURCE,
        outcome="fixed" if e.ok else "failed",
        user=e.user,
        group=e.group,
        detail=f"{e.kind}: {e.reason}; {e.output}",
    )
    return []


def completed(fx: EffectContext, e: ReconcileCompleted) -> list[Event]:
    failures = len(e.failed) + len(e.unreadable)
    fx.audit(
        e.at,
        AuditEvent(
            "reconcile.completed",
            e.actor.name,
            e.actor.source,
            object=e.provider,
            outcome="failed" if failures else "ok",
            # "groups": the work groups read, whose move from the seed is done.
            detail={"count": len(e.done), "failures": failures, "groups": ",".join(e.groups)},
        ),
    )
    for group, why in sorted(e.unreadable):
        fx.outbox.report_line(
            fx.session,
            source=SOURCE,
            outcome="failed",
            user="*",
            group=group,
            detail=f"could not read the group's members: {why}",
        )
    summary = {"done": "\n".join(e.done)[:4000], "failed": "\n".join(e.failed)[:4000]}
    return [Event("reconcile.completed", e.at, data=summary)]


HANDLERS: dict[type, Handler] = {
    DriftReconciled: drift_reconciled,
    ReconcileCompleted: completed,
}

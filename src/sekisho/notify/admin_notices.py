"""What the admins' messages say: the expiry and reconcile reports, audit checkpoints, a test.

These are about no one request: they go to every admin (and to the channels routed), and
are delivered in no particular order with the other messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sekisho.domain.access import Channel, NotifyEvent
from sekisho.domain.locks import Lock, LockKind
from sekisho.domain.timespec import iso
from sekisho.notify.message import Message, Notice
from sekisho.notify.reports import EXPIRY, FAILED, report_event
from sekisho.notify.routing import LOCKED, LOCKER, to_admins, to_people
from sekisho.notify.wording import Wording
from sekisho.store.tables import ReportLineRow

if TYPE_CHECKING:
    from sekisho.services.audit_anchor import Checkpoint

TEST_EVENT = "notify.test"
REPORT_MAX_LINES = 200


def report(w: Wording, source: str, lines: list[ReportLineRow]) -> Notice:
    """One report of what a pass ended (or fixed) and what failed, failures first."""
    failed = [line for line in lines if line.outcome == FAILED]
    done = [line for line in lines if line.outcome != FAILED]
    title, summary = _report_words(source, len(failed), len(done))
    ordered = failed + done
    shown = [w.line(line) for line in ordered[:REPORT_MAX_LINES]]
    if len(ordered) > REPORT_MAX_LINES:
        shown.append(f"... and {len(ordered) - REPORT_MAX_LINES} more (`sekisho grant list`)")
    first = next((line.request_id for line in ordered if line.request_id), None)
    event = report_event(source)
    message = Message(
        event=event.value,
        title=title,
        summary=summary,
        link=w.request_link(first) if first else w.home(),
        link_label=f"Open request #{first}" if first else "Open sekisho",
        occurred_at=iso(w.at),
        facts=(
            ("Failed", str(len(failed))),
            ("Ended" if source == EXPIRY else "Fixed", str(len(done))),
            ("First", w.when(lines[0].at)),
            ("Last", w.when(lines[-1].at)),
        ),
        lines=tuple(shown),
        request_id=first,
        data={"failed": len(failed), "done": len(done), "source": source},
    )
    return to_admins(event.value, message, w.model.admins())


def _report_words(source: str, failed: int, done: int) -> tuple[str, str]:
    """A report's title and summary: failures first, as they need someone to look."""
    what = "expiry sweep" if source == EXPIRY else "reconciler"
    verb = "ended" if source == EXPIRY else "fixed"
    if failed:
        failing = "FAILED to end" if source == EXPIRY else "FAILED"
        title = f"sekisho {what}: {failed} {failing}" + (f", {done} {verb}" if done else "")
        if source == EXPIRY:
            return title, (
                f"The {what} could not get the provider to confirm {failed} removal(s). "
                "Access through sekisho stopped at each grant's end regardless; sekisho retries "
                "the provider with backoff until it confirms. Check the provider."
            )
        return title, (
            f"The reconciler could not make the provider agree with sekisho's grants "
            f"in {failed} case(s); it tries again at its next run. Check the provider."
        )
    title = f"sekisho {what}: {done} {verb}"
    if source == EXPIRY:
        return title, f"The {what} {verb} {done} grant(s); the provider confirmed each."
    return title, (
        f"The reconciler found the provider out of step with sekisho's grants and fixed "
        f"{done} case(s) (a member without a grant removed, a membership or tag repaired)."
    )


def checkpoint(w: Wording, node: str, signed: Checkpoint | None, problems: list[str]) -> Notice:
    """The admins' message: the signed checkpoint itself (in `data`, and as the one line of
    `lines`, ready to append to an anchor file), or why nothing was signed."""
    facts: tuple[tuple[str, str], ...]
    if signed is None:
        title = "sekisho audit: the trail does not match its last checkpoint; NOT signed"
        summary = (
            "Before signing the audit trail's head, sekisho checked it against the last "
            "checkpoint it signed, and it no longer matches: the trail was changed in the "
            "database. Run `sekisho audit verify --direct --anchor FILE` with your anchor."
        )
        facts, lines = (("Node", node),), tuple(problems[:20])
        data: dict[str, object] = {"ok": False, "problems": problems[:20]}
    else:
        title = f"sekisho audit checkpoint #{signed.id}: entry {signed.seq}"
        summary = (
            f"The audit trail up to entry {signed.seq} is signed with key "
            f"{signed.key}. Keep this message: with the public key it proves later that "
            "those entries were not rewritten (`sekisho audit verify --anchor`)."
        )
        facts = (
            ("Entry", str(signed.seq)),
            ("Hash", signed.hash),
            ("Signed", w.when(signed.at)),
            ("Node", signed.node),
            ("Key", signed.key),
        )
        lines, data = (signed.to_line(),), {"ok": True, "checkpoint": signed.to_json()}
    event = NotifyEvent.AUDIT_CHECKPOINT.value
    message = Message(
        event=event,
        title=title,
        summary=summary,
        link=w.audit_link(),
        link_label="Open the audit trail",
        occurred_at=iso(w.at),
        facts=facts,
        lines=lines,
        data=data,
    )
    return to_admins(event, message, w.model.admins())


def channel_test_message(w: Wording, channel: Channel) -> Message:
    """`sekisho notify test`: if you read it, the channel works."""
    return Message(
        event=TEST_EVENT,
        title=f"sekisho test message for channel {channel.name}",
        summary=(
            f"sekisho sent this to the {channel.type.value} channel {channel.name} "
            "(`sekisho notify test`). If you read it, the channel works."
        ),
        link=w.home(),
        link_label="Open sekisho",
        occurred_at=iso(w.at),
    )


def lock_changed(w: Wording, lock: Lock, placed: bool, ended: int) -> Notice:
    """Those who may lock (and a locked user) hear of a lock placed, with what it ended at
    once, or removed: an incident's responders all see the same switch."""
    kind_subject = f"{lock.kind.value} {lock.subject}"
    if placed:
        title = f"sekisho lock #{lock.id} on {kind_subject}: {lock.message}"
        summary = (
            f"{lock.created_by} locked {kind_subject}: {lock.reason}. It ended {ended} grant(s) "
            "at once and refuses what it covers with this reason"
            + (f" until {w.when(lock.until)}." if lock.until else " until it is removed.")
        )
    else:
        title = f"sekisho lock #{lock.id} on {kind_subject} removed"
        summary = (
            f"The lock on {kind_subject} ({lock.message}) was removed. Nothing it ended comes "
            "back: access is asked for again."
        )
    event = NotifyEvent.LOCK_CHANGED.value
    message = Message(
        event=event,
        title=title,
        summary=summary,
        link=w.locks_link(),
        link_label="Open the locks",
        occurred_at=iso(w.at),
        facts=(("Lock", f"#{lock.id}"), ("Kind", lock.kind.value), ("Subject", lock.subject)),
        data={"lock_id": lock.id, "placed": placed, "ended": ended},
    )
    told = dict.fromkeys(w.model.lockers(), LOCKER)
    if lock.kind is LockKind.USER and w.model.user(lock.subject) is not None:
        told.setdefault(lock.subject, LOCKED)
    return to_people(event, message, told)

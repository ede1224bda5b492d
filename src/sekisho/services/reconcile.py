"""The reconciler: make the provider (IAM) agree with sekisho's grants, and say what it did.

The seed's TTL checker, done right. For every work group it compares who the provider says
is a member with who holds a grant: a member without one (added by hand, or left behind) is
removed; a grant whose membership is missing is repaired; a stale TTL tag is cleaned. On the
very first run, seed-style TTL tags still in the future are imported as grants, so moving
from the seed to sekisho loses nobody's planned work. Every action is audited; the report
says what was done and what could not be, and why.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import select

from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import ProviderFailure
from sekisho.domain.grants import GrantStatus, GrantWindow, membership_end
from sekisho.domain.requests import RequestStatus
from sekisho.domain.timespec import iso, parse_ttl_tag, zone
from sekisho.services import membership, timeline
from sekisho.services.audit import AuditEvent
from sekisho.store import grants
from sekisho.store.tables import AuditRow, RequestRow

if TYPE_CHECKING:
    from sekisho.services.core import Core

RECONCILER = Actor.system("reconciler")
IMPORTED_TEMPLATE = "(imported seed TTL tag)"


# Completed runs looked at for the work groups already read (the move from the seed happens
# in the first runs; this bounds the read as the audit trail grows).
MIGRATION_LOOKBACK = 500


class Kind(StrEnum):
    UNEXPECTED_MEMBER = "unexpected_member"  # in the group without a grant: removed
    MISSING_MEMBERSHIP = "missing_membership"  # a grant, but not in the group: repaired
    WRONG_TAG = "wrong_tag"  # in the group with a grant, but the tag is off: retagged
    STALE_TAG = "stale_tag"  # a TTL tag for a group they are not in: cleaned
    IMPORT = "import"  # first run: a seed TTL tag in the future becomes a grant


@dataclass(frozen=True)
class Finding:
    kind: Kind
    user: str
    group: str
    detail: str
    end: datetime | None = None  # for imports: the tag's time


@dataclass
class ReconcileReport:
    dry_run: bool
    findings: list[Finding] = field(default_factory=list)
    done: list[tuple[Finding, str]] = field(default_factory=list)
    failed: list[tuple[Finding, str]] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # group -> why it was skipped
    read: list[str] = field(default_factory=list)  # work groups whose members were read

    @property
    def clean(self) -> bool:
        return not (self.findings or self.unreadable)


class Reconciler:
    def __init__(self, core: Core) -> None:
        self._core = core

    def run(self, *, dry_run: bool = False, actor: Actor = RECONCILER) -> ReconcileReport:
        core = self._core
        report = ReconcileReport(dry_run=dry_run)
        report.findings = self.plan(report)
        if not dry_run:
            for finding in report.findings:
                self._apply(finding, actor, report)
            with core.db.write() as s:
                core.audit(
                    s,
                    AuditEvent(
                        "reconcile.completed",
                        actor.name,
                        actor.source,
                        object=core.provider.name,  # first runs are per provider
                        outcome="failed" if report.failed or report.unreadable else "ok",
                        detail={
                            "count": len(report.done),
                            "failures": len(report.failed) + len(report.unreadable),
                            # the work groups read: their move from the seed is done
                            "groups": ",".join(report.read),
                        },
                    ),
                )
                for group, why in sorted(report.unreadable.items()):
                    core.outbox.report_line(
                        s,
                        source="reconcile",
                        outcome="failed",
                        user="*",
                        group=group,
                        detail=f"could not read the group's members: {why}",
                    )
            # One report for the run (notifications): its lines were written with each change.
            core.outbox.compose_reports()
            core.publish("reconcile.completed", data=_summary(report))
        return report

    # -- what differs ---------------------------------------------------------------------

    def plan(self, report: ReconcileReport | None = None) -> list[Finding]:
        core = self._core
        report = report or ReconcileReport(dry_run=True)
        model = core.models.model()
        now = core.now()
        tz = zone(model.settings.timezone)
        migrated = self._migrated_groups()
        holders = self._holders(now)
        tags: dict[str, dict[str, str]] = {}
        findings: list[Finding] = []

        def tags_of(user: str) -> dict[str, str]:
            if user not in tags:
                tags[user] = core.provider.tags(user)
            return tags[user]

        work_groups = [g.name for g in model.groups if g.is_work]
        members_of: dict[str, frozenset[str]] = {}
        for group in work_groups:
            try:
                members_of[group] = core.provider.members(group)
            except ProviderFailure as exc:
                report.unreadable[group] = exc.message
        report.read = sorted(members_of)
        for group, members in members_of.items():
            first_run = migrated is not None and group not in migrated
            held = holders.get(group, {})
            for user in sorted(members - set(held)):
                end = parse_ttl_tag(tags_of(user).get(group, ""), tz)
                if first_run and end is not None and end > now and model.user(user):
                    findings.append(
                        Finding(Kind.IMPORT, user, group, f"seed TTL tag until {iso(end)}", end)
                    )
                else:
                    findings.append(
                        Finding(
                            Kind.UNEXPECTED_MEMBER,
                            user,
                            group,
                            "a member without an active grant (added by hand, or left behind)",
                        )
                    )
            for user, end in sorted(held.items()):
                if user not in members:
                    findings.append(
                        Finding(Kind.MISSING_MEMBERSHIP, user, group, "holds a grant, not a member")
                    )
                elif tags_of(user).get(group) != (tag := model.ttl_tag(end)):
                    findings.append(
                        Finding(Kind.WRONG_TAG, user, group, f"its tag should say {tag}")
                    )
        findings += self._stale_tags(model, members_of, holders, tags_of)
        return findings

    @staticmethod
    def _stale_tags(
        model: AccessModel,
        members_of: dict[str, frozenset[str]],
        holders: dict[str, dict[str, datetime]],
        tags_of: Callable[[str], dict[str, str]],
    ) -> list[Finding]:
        """TTL tags naming a work group the user is no longer in (the seed's leftovers)."""
        found = []
        for user in model.users:
            for group, value in sorted(tags_of(user.name).items()):
                if group not in members_of or user.name in members_of[group]:
                    continue  # not a work-group tag, or handled above as a member
                if user.name not in holders.get(group, {}):
                    found.append(
                        Finding(Kind.STALE_TAG, user.name, group, f"left-over tag {value!r}")
                    )
        return found

    def _holders(self, now: datetime) -> dict[str, dict[str, datetime]]:
        """group -> user -> until when sekisho's grants hold the membership."""
        with self._core.db.read() as s:
            windows = grants.membership_holders(s, now)
        by_pair: dict[tuple[str, str], list[GrantWindow]] = defaultdict(list)
        for w in windows:
            by_pair[(w.group, w.user)].append(w)
        holders: dict[str, dict[str, datetime]] = defaultdict(dict)
        for (group, user), held in by_pair.items():
            end = membership_end(held, now)
            if end is not None:
                holders[group][user] = end
        return holders

    def _migrated_groups(self) -> frozenset[str] | None:
        """Work groups an earlier completed run read at this provider (None: all of them).

        A group's first read imports the seed's TTL tags found in it; after that a member
        without a grant is removed. Per group, so that a group IAM failed to list on the first
        run still has its seed members imported, not removed, when it is read.
        """
        provider = self._core.provider.name
        with self._core.db.read() as s:
            details = s.scalars(
                select(AuditRow.detail)
                .where(AuditRow.action == "reconcile.completed", AuditRow.object == provider)
                .order_by(AuditRow.seq.desc())
                .limit(MIGRATION_LOOKBACK)
            )
            read: set[str] = set()
            for detail in details:
                groups = detail.get("groups")
                if not isinstance(groups, str):
                    return None  # a run that did not say: it read every group
                read.update(g for g in groups.split(",") if g)
        return frozenset(read)

    # -- making it agree ------------------------------------------------------------------

    def _apply(self, finding: Finding, actor: Actor, report: ReconcileReport) -> None:
        core = self._core
        steps: list[str] = []
        try:
            with core.locks.hold(finding.user, finding.group):
                if finding.kind is Kind.IMPORT:
                    self._import(finding)
                # The one mechanism every grant change uses: given the grants (re-read now,
                # under the lock), be a member tagged until the last one ends, or be neither.
                ok = membership.converge(
                    core,
                    finding.user,
                    finding.group,
                    lambda outcome: steps.append(f"{outcome.step}: {outcome.output}"),
                )
        except ProviderFailure as exc:
            ok, steps = False, [*steps, exc.message]
        outcome = "; ".join(steps)
        (report.done if ok else report.failed).append((finding, outcome))
        with core.db.write() as s:
            core.audit(
                s,
                AuditEvent(
                    f"reconcile.{finding.kind.value}",
                    actor.name,
                    actor.source,
                    outcome="ok" if ok else "failed",
                    subject=finding.user,
                    detail={
                        "group": finding.group,
                        "reason": finding.detail[:300],
                        "output": outcome[:1000],
                    },
                ),
            )
            core.outbox.report_line(
                s,
                source="reconcile",
                outcome="fixed" if ok else "failed",
                user=finding.user,
                group=finding.group,
                detail=f"{finding.kind.value}: {finding.detail}; {outcome}",
            )

    def _import(self, finding: Finding) -> None:
        """A seed TTL tag becomes a grant with a request on record, as if filed and approved
        before sekisho took over."""
        core = self._core
        now = core.now()
        assert finding.end is not None
        with core.db.write() as s:
            model_id, _model = core.models.current(s)
            request = RequestRow(
                template=IMPORTED_TEMPLATE,
                action="grant",
                requester=RECONCILER.name,
                subject=finding.user,
                group_name=finding.group,
                start_at=None,
                end_at=finding.end,
                reason=f"imported: {finding.detail}",
                change_info={},
                params={},
                status=RequestStatus.SUCCEEDED,
                level=0,
                created_at=now,
                updated_at=now,
                decide_by=now,
                model_id=model_id,
            )
            s.add(request)
            s.flush()
            grant = grants.add(s, request.id, finding.user, finding.group, now, finding.end, now)
            grants.move(grant, GrantStatus.ACTIVE)
            grant.activated_at = now
            timeline.note(
                s, request.id, now, "imported", RECONCILER.name, f"grant #{grant.id} imported"
            )
        core.publish("grant.activated", grant_id=grant.id, user=finding.user, group=finding.group)


def _summary(report: ReconcileReport) -> dict[str, str]:
    def lines(items: list[tuple[Finding, str]]) -> str:
        return "\n".join(f"{f.kind.value} {f.user} in {f.group}: {why}" for f, why in items)

    return {"done": lines(report.done)[:4000], "failed": lines(report.failed)[:4000]}

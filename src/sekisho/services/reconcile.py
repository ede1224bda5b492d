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

from sqlalchemy import select

from sekisho.clock import Clock
from sekisho.domain.access import AccessModel
from sekisho.domain.actor import Actor
from sekisho.domain.errors import ProviderFailure
from sekisho.domain.events import DriftReconciled, ReconcileCompleted
from sekisho.domain.grants import GrantWindow, membership_end
from sekisho.domain.timespec import iso, parse_ttl_tag, zone
from sekisho.operations.grants import RECONCILER, ImportSeedGrant
from sekisho.ports import MembershipLocks, ModelSource, NotifyJobs
from sekisho.providers.base import Provider
from sekisho.services.membership import Membership
from sekisho.store import grants
from sekisho.store.tables import AuditRow
from sekisho.store.unit_of_work import Store

__all__ = ["RECONCILER", "Finding", "Kind", "ReconcileReport", "Reconciler"]

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
    def __init__(
        self,
        store: Store,
        clock: Clock,
        models: ModelSource,
        provider: Provider,
        locks: MembershipLocks,
        membership: Membership,
        import_seed_grant: ImportSeedGrant,
        notify: NotifyJobs,
    ) -> None:
        self._store, self._clock, self._models, self._provider = store, clock, models, provider
        self._locks, self._membership, self._import = locks, membership, import_seed_grant
        self._notify = notify

    def run(self, *, dry_run: bool = False, actor: Actor = RECONCILER) -> ReconcileReport:
        report = ReconcileReport(dry_run=dry_run)
        report.findings = self.plan(report)
        if not dry_run:
            for finding in report.findings:
                self._apply(finding, actor, report)
            with self._store.write() as uow:
                uow.record(_completed(self._clock.now(), actor, self._provider.name, report))
            # One report for the run (notifications): its lines were written with each change.
            self._notify.compose_reports()
        return report

    # -- what differs ---------------------------------------------------------------------

    def plan(self, report: ReconcileReport | None = None) -> list[Finding]:
        report = report or ReconcileReport(dry_run=True)
        model = self._models.model()
        now = self._clock.now()
        migrated = self._migrated_groups()
        holders = self._holders(now)
        tags: dict[str, dict[str, str]] = {}

        def tags_of(user: str) -> dict[str, str]:
            if user not in tags:
                tags[user] = self._provider.tags(user)
            return tags[user]

        members_of = self._members_of(model, report)
        findings: list[Finding] = []
        for group, members in members_of.items():
            first_run = migrated is not None and group not in migrated
            look = _Look(model, now, group, members, holders.get(group, {}), tags_of)
            findings += _members_without_grant(look, first_run)
            findings += _grants_without_membership(look)
        findings += self._stale_tags(model, members_of, holders, tags_of)
        return findings

    def _members_of(self, model: AccessModel, report: ReconcileReport) -> dict[str, frozenset[str]]:
        """Each work group's members as the provider says; a group it cannot list is noted."""
        members_of: dict[str, frozenset[str]] = {}
        for group in [g.name for g in model.groups if g.is_work]:
            try:
                members_of[group] = self._provider.members(group)
            except ProviderFailure as exc:
                report.unreadable[group] = exc.message
        report.read = sorted(members_of)
        return members_of

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
        with self._store.read() as s:
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
        with self._store.read() as s:
            details = s.scalars(
                select(AuditRow.detail)
                .where(
                    AuditRow.action == "reconcile.completed",
                    AuditRow.object == self._provider.name,
                )
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
        steps: list[str] = []
        try:
            with self._locks.hold(finding.user, finding.group):
                if finding.kind is Kind.IMPORT:
                    assert finding.end is not None
                    self._import.execute(finding.user, finding.group, finding.end, finding.detail)
                # The one mechanism every grant change uses: given the grants (re-read now,
                # under the lock), be a member tagged until the last one ends, or be neither.
                ok = self._membership.converge(
                    finding.user,
                    finding.group,
                    lambda outcome: steps.append(f"{outcome.step}: {outcome.output}"),
                )
        except ProviderFailure as exc:
            ok, steps = False, [*steps, exc.message]
        outcome = "; ".join(steps)
        (report.done if ok else report.failed).append((finding, outcome))
        with self._store.write() as uow:
            uow.record(
                DriftReconciled(
                    self._clock.now(),
                    actor,
                    finding.kind.value,
                    finding.user,
                    finding.group,
                    finding.detail,
                    ok,
                    outcome,
                )
            )


@dataclass(frozen=True)
class _Look:
    """One work group, as the provider and sekisho's grants each see it."""

    model: AccessModel
    now: datetime
    group: str
    members: frozenset[str]
    held: dict[str, datetime]  # user -> until when their grants hold the membership
    tags_of: Callable[[str], dict[str, str]]


def _members_without_grant(look: _Look, first_run: bool) -> list[Finding]:
    """Members no grant holds: on a group's first read a seed TTL tag still in the future is
    imported; otherwise they were added by hand, or left behind, and are removed."""
    found = []
    tz = zone(look.model.settings.timezone)
    for user in sorted(look.members - set(look.held)):
        end = parse_ttl_tag(look.tags_of(user).get(look.group, ""), tz)
        if first_run and end is not None and end > look.now and look.model.user(user):
            found.append(
                Finding(Kind.IMPORT, user, look.group, f"seed TTL tag until {iso(end)}", end)
            )
        else:
            found.append(
                Finding(
                    Kind.UNEXPECTED_MEMBER,
                    user,
                    look.group,
                    "a member without an active grant (added by hand, or left behind)",
                )
            )
    return found


def _grants_without_membership(look: _Look) -> list[Finding]:
    """Holders the provider lost, or whose TTL tag is off."""
    found = []
    for user, end in sorted(look.held.items()):
        if user not in look.members:
            found.append(
                Finding(Kind.MISSING_MEMBERSHIP, user, look.group, "holds a grant, not a member")
            )
        elif look.tags_of(user).get(look.group) != (tag := look.model.ttl_tag(end)):
            found.append(Finding(Kind.WRONG_TAG, user, look.group, f"its tag should say {tag}"))
    return found


def _completed(
    at: datetime, actor: Actor, provider: str, report: ReconcileReport
) -> ReconcileCompleted:
    def lines(items: list[tuple[Finding, str]]) -> tuple[str, ...]:
        return tuple(f"{f.kind.value} {f.user} in {f.group}: {why}" for f, why in items)

    return ReconcileCompleted(
        at,
        actor,
        provider,
        done=lines(report.done),
        failed=lines(report.failed),
        unreadable=tuple(sorted(report.unreadable.items())),
        groups=tuple(report.read),
    )

"""Domain events: what an operation did, recorded on its unit of work.

An operation records facts, not their consequences. The effect handlers (`sekisho.effects`)
turn each fact into timeline rows, audit entries and outbox messages in the same transaction,
and into bus events published after the commit. Events name ids and carry the values that
were true when they happened (a status, a comment); everything else the handlers read from
the rows in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sekisho.domain.access_decisions import AccessDecision
from sekisho.domain.actor import Actor
from sekisho.domain.directory import DirectoryChange
from sekisho.domain.grants import EndingGrant
from sekisho.domain.locks import Lock
from sekisho.domain.sso import IdpSignIn
from sekisho.domain.step_up import Proof


@dataclass(frozen=True)
class DomainEvent:
    at: datetime


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFiled(DomainEvent):
    request_id: int
    actor: Actor
    summary: str  # "member01 in prod-admins for 2h after approval"


@dataclass(frozen=True)
class RequestAutoApproved(DomainEvent):
    request_id: int
    why: str = "auto-approved by template"  # or a self-service extension's allowance


@dataclass(frozen=True)
class RequestDecided(DomainEvent):
    """One approver's decision on one level (0-based `level`)."""

    request_id: int
    actor: Actor
    approved: bool
    level: int
    comment: str
    final: bool  # the request left pending_approval with it (approved, or rejected)
    step_up: Proof | None = None  # the fresh factor the template asked of the approver

    @property
    def verb(self) -> str:
        return "approved" if self.approved else "rejected"


@dataclass(frozen=True)
class RequestCancelled(DomainEvent):
    request_id: int
    actor: Actor


@dataclass(frozen=True)
class RequestExpiredUndecided(DomainEvent):
    request_id: int


@dataclass(frozen=True)
class EmergencyUsed(DomainEvent):
    """Filed as an emergency: approved at once with nobody's approval; its review is due."""

    request_id: int
    actor: Actor


@dataclass(frozen=True)
class EmergencyReviewed(DomainEvent):
    """An approver of the template reviewed an emergency use after the incident."""

    request_id: int
    actor: Actor
    comment: str


@dataclass(frozen=True)
class EmergencyReviewsOverdue(DomainEvent):
    """The sweep found these emergencies' reviews past due (again, each OVERDUE_REPEAT)."""

    request_ids: tuple[int, ...]


# -- notifications -------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantsEndingSoon(DomainEvent):
    """The sweep took these grants' reminders: each holder is told their access ends soon."""

    grant_ids: tuple[int, ...]


@dataclass(frozen=True)
class ReportComposed(DomainEvent):
    """Report lines no report had taken were gathered under `report_key` into one report."""

    source: str  # expiry | reconcile
    report_key: str


# -- grants and their runbooks -------------------------------------------------------------


@dataclass(frozen=True)
class RequestScheduled(DomainEvent):
    """Approved with a start in the future: its runbook waits for it."""

    request_id: int


@dataclass(frozen=True)
class RunbookStarted(DomainEvent):
    request_id: int
    resumed: bool  # a runner took over a run whose runner vanished


@dataclass(frozen=True)
class RunbookStep(DomainEvent):
    """One provider step, on the timeline of every request it serves (a remove request's
    steps show on the grants' requests too)."""

    request_ids: tuple[int, ...]
    actor: Actor
    step: str  # add_user_to_group, tag_user, remove_user_from_group, ...
    ok: bool
    output: str


@dataclass(frozen=True)
class RunbookTooLate(DomainEvent):
    """The request's end passed before its runbook could run: it fails, nothing was done."""

    request_id: int


@dataclass(frozen=True)
class RunbookSucceeded(DomainEvent):
    """A grant request's run made its grant active (`GrantActivated` says so of the grant)."""

    request_id: int
    grant_id: int


@dataclass(frozen=True)
class RunbookFailed(DomainEvent):
    """A grant request's run failed; what it added is undone."""

    request_id: int
    error: str
    rolled_back: bool  # the provider confirmed the undo; if not, the ending is retried


@dataclass(frozen=True)
class RemovalFinished(DomainEvent):
    """A remove request's run ended the grants it took."""

    request_id: int
    confirmed: bool  # the provider confirmed every removal (else they are retried)
    ended: int  # grants the provider confirmed ended


@dataclass(frozen=True)
class GrantActivated(DomainEvent):
    """Access starts: the run confirmed the membership, or a seed grant was imported."""

    grant_id: int
    actor: Actor


@dataclass(frozen=True)
class GrantExtended(DomainEvent):
    """An extension's approval moved the grant's end (in the approval's transaction)."""

    grant_id: int
    request_id: int  # the extension request
    old_end: datetime
    new_end: datetime
    actor: Actor  # the runbook: who asked and who approved are the request's own entries


@dataclass(frozen=True)
class ExtensionRefused(DomainEvent):
    """An approved extension that could not take effect (the grant ended first, or the
    template's maximum no longer allows it): the grant is left as it was."""

    request_id: int
    grant_id: int
    error: str


@dataclass(frozen=True)
class SeedGrantImported(DomainEvent):
    """A seed TTL tag became a grant, with a request on record, before sekisho took over."""

    request_id: int
    grant_id: int


@dataclass(frozen=True)
class GrantEnding(DomainEvent):
    """Access ended now (the grant turned `ending`); the provider has yet to confirm."""

    grant: EndingGrant
    actor: Actor


@dataclass(frozen=True)
class GrantEnded(DomainEvent):
    """The provider confirmed the removal: the grant is expired, revoked, or failed
    (`grant.status`)."""

    grant: EndingGrant
    actor: Actor
    output: str  # what the provider's steps said


@dataclass(frozen=True)
class GrantEndFailed(DomainEvent):
    """The provider did not confirm the removal; the ending is retried with backoff
    (`grant.attempts`, `grant.last_error`)."""

    grant: EndingGrant
    actor: Actor


@dataclass(frozen=True)
class DriftReconciled(DomainEvent):
    """The reconciler made the provider agree with the grants on one finding (or failed)."""

    actor: Actor
    kind: str  # unexpected_member, missing_membership, wrong_tag, stale_tag, import
    user: str
    group: str
    reason: str  # what it found
    ok: bool
    output: str  # what the provider said


@dataclass(frozen=True)
class ReconcileCompleted(DomainEvent):
    actor: Actor
    provider: str  # first runs are per provider
    done: tuple[str, ...]  # "kind user in group: output", one a finding it fixed
    failed: tuple[str, ...]  # the same, for findings it could not fix
    unreadable: tuple[tuple[str, str], ...]  # (group, why) whose members could not be read
    groups: tuple[str, ...]  # the work groups read: their move from the seed is done


# -- locks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockPlaced(DomainEvent):
    """A lock is in force. What it ends is recorded as its own events, after this one in
    the same transaction (each grant's `GrantEnding`, each request's `RequestLocked`);
    `tokens_revoked` counts the logins of a locked user that ended with it."""

    lock: Lock
    actor: Actor
    tokens_revoked: int = 0
    grants_ending: int = 0  # covered grants whose access ended with it


@dataclass(frozen=True)
class LockRemoved(DomainEvent):
    """Lifted early; nothing it ended comes back."""

    lock: Lock
    actor: Actor


@dataclass(frozen=True)
class RequestLocked(DomainEvent):
    """An open request a lock covers closed without running: refused if it waited for
    approval, failed if it was approved and waited for its start."""

    request_id: int
    lock: Lock


# -- production access and role credentials ------------------------------------------------


@dataclass(frozen=True)
class AccessDenied(DomainEvent):
    """A decision said no: `actor` asked whether `decision.user` may reach something."""

    actor: Actor
    decision: AccessDecision


@dataclass(frozen=True)
class CredentialsIssued(DomainEvent):
    """STS issued role credentials to `actor` (the secrets are not part of the fact)."""

    actor: Actor
    role: str  # as the model names it: prod/Prod_MemberRole
    role_arn: str
    session_name: str
    via: str  # the access decision's reason
    expires: datetime
    length: timedelta  # as asked of STS
    grant_id: int | None  # the grant that allowed it (None: standing access)
    request_id: int | None


# -- identity: the access model, people's credentials, sign-ins, gateway sessions, audit ----


@dataclass(frozen=True)
class ModelLoaded(DomainEvent):
    model_id: int
    sha256: str
    source_name: str
    actor: Actor


@dataclass(frozen=True)
class UserEnrolled(DomainEvent):
    """A user of the model was handed a fresh password and TOTP secret."""

    actor: Actor
    user: str
    again: bool  # re-enrolled: every login the old credentials opened ended with it


@dataclass(frozen=True)
class SignedIn(DomainEvent):
    user: str
    source: str
    expires_at: datetime  # of the token issued
    idp: IdpSignIn | None = None  # through the identity provider: what its ID token said


@dataclass(frozen=True)
class TotpSetupShown(DomainEvent):
    """The otpauth URI was shown at a first sign-in (the right password, no code yet)."""

    user: str
    source: str


@dataclass(frozen=True)
class SignInRefused(DomainEvent):
    """A refused sign-in. The caller is told only that it was refused; this says why."""

    user: str | None  # None: nobody enrolled by that name (the entry names nobody)
    source: str
    reason: str


@dataclass(frozen=True)
class SignInThrottled(SignInRefused):
    """Refused before any check: a pause was in force for the name or the address."""


@dataclass(frozen=True)
class SignInFailed(SignInRefused):
    """Checked and wrong (or the name unknown, or the credentials changed meanwhile)."""


@dataclass(frozen=True)
class SignInLocked(SignInRefused):
    """The right password and code, but a lock is in force on the user."""


@dataclass(frozen=True)
class IdpSignInRefused(SignInRefused):
    """A sign-in through the identity provider that did not sign anyone in: a stale or
    foreign state, the IdP's refusal, a bad ID token, a person the model does not know."""


@dataclass(frozen=True)
class TotpSetupRefused(SignInRefused):
    """A first-sign-in code asked for an account whose authenticator is set up already."""


@dataclass(frozen=True)
class LoggedOut(DomainEvent):
    user: str  # who logged out
    source: str
    token_id: str
    holder: str  # whose token it was


@dataclass(frozen=True)
class SessionStarted(DomainEvent):
    session_id: int


@dataclass(frozen=True)
class SessionFailed(DomainEvent):
    """A session that was allowed could not start (the target did not answer)."""

    session_id: int
    error: str


@dataclass(frozen=True)
class SessionEnded(DomainEvent):
    """The gateway carrying it ended it, with its last counters."""

    session_id: int
    reason: str


@dataclass(frozen=True)
class SessionReaped(DomainEvent):
    """Its gateway stopped beating: ended on its behalf."""

    session_id: int


@dataclass(frozen=True)
class SessionKilled(DomainEvent):
    """Someone ended a live session: on record, then cut by the gateway carrying it."""

    session_id: int
    actor: Actor
    on_record_before: bool  # killed already (not cut yet): the gateway is only told again


@dataclass(frozen=True)
class AuditCheckpointSigned(DomainEvent):
    """The audit trail's head was signed (the checkpoint is stored, not exported yet)."""

    checkpoint_id: int


@dataclass(frozen=True)
class AuditCheckpointRefused(DomainEvent):
    """Nothing was signed: the trail does not match its last trusted checkpoint."""

    problems: tuple[str, ...]


@dataclass(frozen=True)
class CertificateAuthorityStored(DomainEvent):
    """The first node to need a CA of this name stored it for every node on the database."""

    name: str  # e.g. gateway
    origin: str  # created (made now) or imported (the node's own from before)
    sha256: str  # the certificate's fingerprint
    node: str


# -- shared signals ------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamCreated(DomainEvent):
    """A receiver registered a push stream: sekisho's SETs go to `endpoint_url` from now."""

    stream_id: str
    endpoint_url: str
    events: tuple[str, ...]
    actor: Actor


@dataclass(frozen=True)
class StreamDeleted(DomainEvent):
    stream_id: str
    actor: Actor


@dataclass(frozen=True)
class StreamVerificationRequested(DomainEvent):
    """The receiver asked for a verification event (SSF 1.0 §8.1.4), echoing `state`."""

    stream_id: str
    audience: str
    state: str
    actor: Actor


@dataclass(frozen=True)
class SignalReceived(DomainEvent):
    """A SET from the model's transmitter passed every check; `outcome` says what it did
    (a lock it placed is recorded as that lock's own events, in the same transaction)."""

    issuer: str
    jti: str
    event_type: str
    user: str
    outcome: str  # locked, already locked, ignored (the model's rule)


@dataclass(frozen=True)
class DirectoryUserChanged(DomainEvent):
    """An IdP wrote a directory user over SCIM. `person`: the model user it names, if any
    (a deactivation's lock is recorded as that lock's own events, in the same transaction)."""

    idp: str
    directory_id: str
    user_name: str
    change: DirectoryChange
    person: str | None


@dataclass(frozen=True)
class DirectoryGroupChanged(DomainEvent):
    """An IdP wrote a directory group over SCIM (its name, and how many members it has)."""

    idp: str
    directory_id: str
    name: str
    change: DirectoryChange
    members: int


@dataclass(frozen=True)
class ScimTokenIssued(DomainEvent):
    """An admin gave an IdP a new SCIM bearer token (any earlier one stopped working)."""

    idp: str
    actor: Actor


# -- passkeys and step-up ------------------------------------------------------------------


@dataclass(frozen=True)
class PasskeyRegistered(DomainEvent):
    actor: Actor  # the person, who registers their own passkey
    passkey_id: int
    name: str


@dataclass(frozen=True)
class PasskeyRemoved(DomainEvent):
    actor: Actor
    passkey_id: int
    name: str


@dataclass(frozen=True)
class StepUpProven(DomainEvent):
    """A signed-in person asserted a passkey (user verified) on their session."""

    actor: Actor
    passkey_id: int
    name: str


@dataclass(frozen=True)
class PasskeyRefused(DomainEvent):
    """A passkey ceremony that proved nothing: a stale or replayed challenge, another
    person's credential, a bad signature, no user verification, a cloned authenticator."""

    actor: Actor
    ceremony: str  # "register" | "assert"
    reason: str


# -- Slack ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackRequestRefused(DomainEvent):
    """Something Slack sent (or someone sent as Slack) that changed nothing: a bad or missing
    signature, a replay, an unknown Slack user, a press the rules refuse (a stale button,
    one's own request, a lock)."""

    slack_user: str | None  # the Slack user ID, when the request was signed
    user: str | None  # the sekisho user it maps to, if any
    what: str  # "approve #7", "reject #7", "/sekisho request", "a request"
    reason: str


@dataclass(frozen=True)
class OnCallChecked(DomainEvent):
    """A level that passes on call was asked about and did not pass: the requester is not on
    call, or PagerDuty could not say (`why`); the level waits for its approvers."""

    request_id: int
    level: int
    schedule: str
    why: str

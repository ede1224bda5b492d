"""The composition root: the one place that builds sekisho.

`build_core` chooses the database, the provider and the keys from the settings; `Core` then
builds every operation, query and facade with exactly the ports and operations it uses, and
the loops (`new_scheduler`, `new_dispatcher`, `new_leases`). Interfaces (API, web, CLI,
gateway) hold the `Core` and call its facades; nothing below them ever sees it.
`docs/architecture.md` draws the shape.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from argon2 import PasswordHasher

from sekisho.clock import Clock, SystemClock
from sekisho.config import Settings
from sekisho.domain.access import Channel
from sekisho.effects import Effects
from sekisho.jose.issuer_keys import IssuerKeys
from sekisho.notify.base import Sender
from sekisho.notify.channels import open_sender
from sekisho.notify.deliveries import Deliveries, DeliveryPolicy
from sekisho.notify.notices import Notices
from sekisho.notify.probe import QueueTestMessage
from sekisho.notify.reminders import SendReminders
from sekisho.notify.reports import ComposeReports
from sekisho.notify.status import ChannelStatuses
from sekisho.on_call.pagerduty import PagerDutyOnCall
from sekisho.operations.access_decisions import CheckAccess
from sekisho.operations.cli_sign_in import RedeemHandOff
from sekisho.operations.credentials import IssueRoleCredentials, RevokeRoleSessions
from sekisho.operations.device_sign_in import PollDeviceSignIn, StartDeviceSignIn
from sekisho.operations.directory import ProvisionGroups, ProvisionUsers, ScimTokens
from sekisho.operations.emergency import ReportOverdueReviews, ReviewEmergency
from sekisho.operations.extensions import ExtendGrant
from sekisho.operations.grants import (
    EndGrants,
    EndingTimes,
    ImportSeedGrant,
    ReleaseGrant,
    RevokeGrant,
)
from sekisho.operations.identity import EnrollUser, LogOut
from sekisho.operations.idp_sign_in import FinishIdpSignIn, StartIdpSignIn
from sekisho.operations.locks import PlaceLock, RemoveLock
from sekisho.operations.models import LoadModel
from sekisho.operations.on_call import PassOnCall
from sekisho.operations.passkeys import Ceremony, ProvePasskey, RegisterPasskey, RemovePasskey
from sekisho.operations.requests import (
    CancelRequest,
    DecideRequest,
    ExpireUndecided,
    FileRequest,
)
from sekisho.operations.runbook import RunRunbook
from sekisho.operations.sessions import (
    EndSession,
    KillSession,
    OpenSession,
    ReapStaleSessions,
    RecordHeartbeat,
    RefuseSession,
)
from sekisho.operations.shared_signals import CreateStream, DeleteStream, VerifyStream
from sekisho.operations.sign_in import LogIn, ShowTotpSetup, SignInGate
from sekisho.operations.signals_received import ReceiveSignal
from sekisho.operations.slack_requests import AdmitSlackRequest, RefuseSlackRequest
from sekisho.ports import RoleCredentials
from sekisho.providers.aws_credentials import AwsRoleCredentials
from sekisho.providers.base import Provider
from sekisho.providers.select import ProviderFromModel
from sekisho.queries.access_decisions import DecideAccess
from sekisho.queries.audit import AuditQueries
from sekisho.queries.grants import GrantQueries
from sekisho.queries.identity import IdentityQueries
from sekisho.queries.locks import LockQueries
from sekisho.queries.passkeys import PasskeyQueries
from sekisho.queries.requests import RequestQueries
from sekisho.queries.sessions import SessionQueries
from sekisho.queries.shared_signals import StreamQueries
from sekisho.services.access_decisions import AccessDecisions
from sekisho.services.audit import AuditTrail
from sekisho.services.audit_checkpoints import Anchors, CheckpointService, Schedule
from sekisho.services.audit_keys import AuditKeyFile
from sekisho.services.batched_audit import BatchedAudit
from sekisho.services.broker import CredentialBroker
from sekisho.services.directory import DirectoryService
from sekisho.services.dispatcher import Dispatcher
from sekisho.services.events import EventBus
from sekisho.services.grants import GrantService
from sekisho.services.hashing import HashQueue, Passwords
from sekisho.services.identity import IdentityService, RefusalDelay
from sekisho.services.idp_sign_in import IdpSignInService
from sekisho.services.lease import Leases
from sekisho.services.locks import LockService
from sekisho.services.membership import Membership
from sekisho.services.membership_locks import DatabaseLocks
from sekisho.services.models import ModelService
from sekisho.services.outbox import OutboxService
from sekisho.services.passkeys import PasskeyService
from sekisho.services.reconcile import Reconciler
from sekisho.services.runbook import RunbookService
from sekisho.services.scheduler import Scheduler
from sekisho.services.secretbox import SecretBox
from sekisho.services.sessions import SessionOperations, SessionService
from sekisho.services.shared_ca import SharedCAs
from sekisho.services.shared_signals import SharedSignalsService
from sekisho.services.slack import SlackInteractions
from sekisho.services.sweeper import Sweeper
from sekisho.services.throttle import Limits, LoginThrottle
from sekisho.services.workflow import WorkflowService
from sekisho.signals.keys import SignalKeyFile
from sekisho.signals.outbox import SignalQueue
from sekisho.signals.push import StreamChannels
from sekisho.sso.oidc import OidcClient
from sekisho.store import migrate
from sekisho.store.db import Database
from sekisho.store.models import StoredModels
from sekisho.store.unit_of_work import Store
from sekisho.tickets.jira import JiraTickets


@dataclass
class Core:
    db: Database
    settings: Settings
    provider: Provider
    secrets: SecretBox
    clock: Clock = field(default_factory=SystemClock)
    bus: EventBus = field(default_factory=EventBus)
    sleep: Callable[[float], None] = time.sleep
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # on the event loop
    # Argon2id with RFC 9106 parameters. Tests pass a cheap one; verification always uses
    # the parameters stored in each hash.
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)
    # STS and IAM for brokered switch-role; tests pass `MemoryRoleCredentials`.
    role_credentials: RoleCredentials = field(default_factory=AwsRoleCredentials)

    @cached_property
    def membership_locks(self) -> DatabaseLocks:
        return DatabaseLocks(self.db)

    def now(self) -> datetime:
        return self.clock.now()

    # The use cases, one object per area, each built with exactly what it uses.

    @cached_property
    def audit_keys(self) -> AuditKeyFile:
        return AuditKeyFile(self.settings.resolved_audit_key_file)

    @cached_property
    def audit_trail(self) -> AuditTrail:
        return AuditTrail(self.db, self.model_source, self.audit_keys)

    @cached_property
    def audit_queries(self) -> AuditQueries:
        return AuditQueries(self.store, self.models)

    @cached_property
    def audit_checkpoints(self) -> CheckpointService:
        settings = self.settings
        return CheckpointService(
            self.store,
            self.clock,
            self.audit_keys,
            node=settings.node_name,
            schedule=Schedule(settings.audit_checkpoint_every, settings.audit_checkpoint_entries),
            anchors=Anchors.of(settings, self.clock),
        )

    @cached_property
    def shared_cas(self) -> SharedCAs:
        return SharedCAs(self.store, self.clock, self.secrets)

    @cached_property
    def model_source(self) -> StoredModels:
        """The access model in force (the `ModelSource` port), read once per transaction."""
        return StoredModels(self.db)

    @cached_property
    def models(self) -> ModelService:
        source = self.model_source
        return ModelService(source, LoadModel(self.store, self.clock, source))

    @cached_property
    def identity(self) -> IdentityService:
        store, clock, models, box = self.store, self.clock, self.model_source, self.secrets
        settings = self.settings
        passwords = Passwords(self.password_hasher)
        throttle = LoginThrottle(Limits.of(settings), box.digest)
        gate = SignInGate(store, clock, models, throttle, BatchedAudit(store))
        return IdentityService(
            enroll=EnrollUser(store, clock, models, passwords, box),
            gate=gate,
            log_in=LogIn(gate, store, clock, passwords, box, settings.token_ttl),
            totp_setup=ShowTotpSetup(gate, store, clock, passwords, box),
            log_out=LogOut(store, clock),
            queries=IdentityQueries(self.db, clock, models, self.provider),
            hashes=HashQueue(settings.login_hash_slots),
            delay=RefusalDelay(settings.login_failure_delay, self.sleep, self.async_sleep),
        )

    @cached_property
    def issuer_keys(self) -> IssuerKeys:
        """Other issuers' public keys (the IdP's, the SSF transmitter's), kept a while."""
        return IssuerKeys(self.clock)

    @cached_property
    def idp_sign_in(self) -> IdpSignInService:
        store, clock, models, box = self.store, self.clock, self.model_source, self.secrets
        oidc = OidcClient(clock, self.issuer_keys)
        return IdpSignInService(
            models,
            StartIdpSignIn(store, clock, models, oidc, box),
            FinishIdpSignIn(store, clock, models, oidc, box, self.settings.token_ttl),
            RedeemHandOff(store, clock, self.settings.token_ttl),
            (
                StartDeviceSignIn(store, clock, models, oidc, box),
                PollDeviceSignIn(store, clock, models, oidc, box, self.settings.token_ttl),
            ),
        )

    @cached_property
    def decide_access(self) -> DecideAccess:
        return DecideAccess(self.store, self.clock, self.models)

    @cached_property
    def authz(self) -> AccessDecisions:
        check = CheckAccess(self.store, self.clock, self.models, self.decide_access)
        return AccessDecisions(self.decide_access, check)

    @cached_property
    def effects(self) -> Effects:
        signals = SignalQueue(self.settings.public_url)
        return Effects(self.settings.node_name, self.notices, self.model_source.model, signals)

    @cached_property
    def store(self) -> Store:
        return Store(self.db, self.effects, self.bus)

    @cached_property
    def expire_undecided(self) -> ExpireUndecided:
        return ExpireUndecided(self.store, self.clock)

    @cached_property
    def workflow(self) -> WorkflowService:
        store, clock, models, runbook = self.store, self.clock, self.models, self.run_runbook
        return WorkflowService(
            FileRequest(store, clock, models, runbook, JiraTickets()),
            DecideRequest(store, clock, models, runbook),
            CancelRequest(store, clock, models),
            RequestQueries(self.store, clock, models),
            PassOnCall(store, clock, models, runbook, PagerDutyOnCall()),
            ReviewEmergency(store, clock, models),
            ExtendGrant(store, clock, models, runbook),
        )

    # -- the grant lifecycle: runbooks, endings, the sweep, the reconciler -----------------

    @cached_property
    def membership(self) -> Membership:
        return Membership(self.store, self.clock, self.models, self.provider, self.membership_locks)

    @cached_property
    def end_grants(self) -> EndGrants:
        s = self.settings
        times = EndingTimes(s.ending_lease, s.end_retry_first, s.end_retry_max)
        revoke = self.broker.revoke_role_sessions
        return EndGrants(self.store, self.clock, self.membership, revoke, times)

    @cached_property
    def run_runbook(self) -> RunRunbook:
        lease = self.settings.runbook_lease
        return RunRunbook(
            self.store, self.clock, self.models, self.membership, self.end_grants, lease
        )

    @cached_property
    def runbook(self) -> RunbookService:
        return RunbookService(self.run_runbook)

    @cached_property
    def grants(self) -> GrantService:
        store, clock, models, end = self.store, self.clock, self.models, self.end_grants
        return GrantService(
            self.grant_queries,
            ReleaseGrant(store, clock, models, end),
            RevokeGrant(store, clock, models, end),
        )

    @cached_property
    def place_lock(self) -> PlaceLock:
        broker = self.broker
        return PlaceLock(
            self.store,
            self.clock,
            self.models,
            self.end_grants,
            broker.revoke_role_sessions,
            broker.deny_role_sessions,
        )

    @cached_property
    def locks(self) -> LockService:
        """The kill switch: place, remove and read locks."""
        store, clock, models = self.store, self.clock, self.models
        place = self.place_lock
        return LockService(
            place, RemoveLock(store, clock, models), LockQueries(store, clock, models)
        )

    @cached_property
    def slack(self) -> SlackInteractions:
        """What people do in Slack: the approval buttons, the reject modal, /sekisho."""
        store, clock = self.store, self.clock
        return SlackInteractions(
            self.models,
            clock,
            self.workflow,
            AdmitSlackRequest(store, clock),
            RefuseSlackRequest(store, clock),
        )

    @cached_property
    def passkeys(self) -> PasskeyService:
        """Passkeys: registered in the web UI, asserted to step up before a decision acts."""
        store, clock = self.store, self.clock
        ceremony = Ceremony(store, clock, self.settings.public_url)
        return PasskeyService(
            RegisterPasskey(ceremony, clock),
            RemovePasskey(store, clock),
            ProvePasskey(ceremony, clock),
            PasskeyQueries(store, clock),
        )

    @cached_property
    def directory(self) -> DirectoryService:
        """SCIM 2.0: what each IdP provisions at /scim/v2, and the tokens it does it with."""
        store, clock, models = self.store, self.clock, self.models
        base = f"{self.settings.public_url.rstrip('/')}/scim/v2"
        remove = RemoveLock(store, clock, models)
        return DirectoryService(
            ScimTokens(store, clock, models),
            ProvisionUsers(store, clock, models, self.place_lock, remove, base),
            ProvisionGroups(store, clock, base),
        )

    # -- Shared Signals: the transmitter's streams and keys, the receiver -------------------

    @cached_property
    def signal_keys(self) -> SignalKeyFile:
        return SignalKeyFile(self.settings.resolved_ssf_key_file)

    @cached_property
    def stream_channels(self) -> StreamChannels:
        """The outbox's channels: the model's and the registered streams."""
        keys = self.signal_keys
        return StreamChannels(self.db, self.secrets, keys.signing_key, self.settings.public_url)

    @cached_property
    def shared_signals(self) -> SharedSignalsService:
        store, clock, models, issuer = self.store, self.clock, self.models, self.settings.public_url
        place = self.place_lock
        receive = ReceiveSignal(store, clock, models, place, self.issuer_keys, public_url=issuer)
        streams = (
            CreateStream(store, clock, models, self.secrets),
            DeleteStream(store, clock, models),
            VerifyStream(store, clock, models),
        )
        reads = StreamQueries(store, models, issuer)
        return SharedSignalsService(issuer, self.signal_keys, streams, reads, receive)

    @cached_property
    def import_seed_grant(self) -> ImportSeedGrant:
        return ImportSeedGrant(self.store, self.clock, self.models)

    @cached_property
    def grant_queries(self) -> GrantQueries:
        return GrantQueries(self.store, self.clock, self.models)

    @cached_property
    def broker(self) -> CredentialBroker:
        store, clock, models, sts = self.store, self.clock, self.models, self.role_credentials
        return CredentialBroker(
            IssueRoleCredentials(store, clock, models, self.decide_access, sts),
            RevokeRoleSessions(clock, models, sts),
        )

    @cached_property
    def reconciler(self) -> Reconciler:
        return Reconciler(
            self.store,
            self.clock,
            self.models,
            self.provider,
            self.membership_locks,
            self.membership,
            self.import_seed_grant,
            self.outbox,
        )

    @cached_property
    def sessions(self) -> SessionService:
        store, clock = self.store, self.clock
        operations = SessionOperations(
            open=OpenSession(store, clock),
            refuse=RefuseSession(store, clock),
            end=EndSession(store, clock),
            heartbeat=RecordHeartbeat(store, clock),
            reap_stale=ReapStaleSessions(store, clock),
            kill=KillSession(store, clock, self.model_source),
        )
        return SessionService(operations, SessionQueries(self.db, clock, self.model_source))

    @cached_property
    def notices(self) -> Notices:
        """The notification hooks the effects write through (on the model source, not on
        `models`, whose loading needs the store these effects are part of)."""
        settings = self.settings
        return Notices(
            self.model_source, self.clock, public_url=settings.public_url, node=settings.node_name
        )

    @cached_property
    def compose_reports(self) -> ComposeReports:
        return ComposeReports(self.store, self.clock)

    @cached_property
    def outbox(self) -> OutboxService:
        store, clock, models, settings = self.store, self.clock, self.models, self.settings
        return OutboxService(
            models,
            clock,
            public_url=settings.public_url,
            node=settings.node_name,
            send_reminders=SendReminders(store, clock, models),
            compose_reports=self.compose_reports,
            queue_test=QueueTestMessage(store, clock, models, settings.public_url),
            statuses=ChannelStatuses(self.db, models, self.stream_channels.channel),
        )

    @cached_property
    def sweeper(self) -> Sweeper:
        return Sweeper(
            self.store,
            self.clock,
            self.end_grants,
            self.expire_undecided,
            self.run_runbook,
            self.outbox,
            self.models,
            ReportOverdueReviews(self.store, self.clock),
        )

    # The loops and their lease: one new each time (`sekisho serve` builds one of each, a CLI
    # command a dispatcher for one pass, a test one per simulated node).

    def new_leases(self, holder: str | None = None) -> Leases:
        return Leases(self.db, self.clock, holder)

    def new_scheduler(self, leases: Leases | None = None) -> Scheduler:
        return Scheduler(
            sweeper=self.sweeper,
            reconciler=self.reconciler,
            checkpoints=self.audit_checkpoints,
            models=self.models,
            leases=leases or self.new_leases(),
            clock=self.clock,
            bus=self.bus,
            db=self.db,
        )

    def new_dispatcher(
        self,
        *,
        holder: str | None = None,
        senders: Callable[[Channel], Sender] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Dispatcher:
        deliveries = Deliveries(self.db, self.clock, DeliveryPolicy.from_settings(self.settings))
        channels = self.stream_channels
        receipts = deliveries.receipts
        senders = senders or (lambda channel: open_sender(channel, environ, receipts))
        return Dispatcher(
            deliveries,
            self.compose_reports,
            self.models,
            self.clock,
            self.bus,
            self.db,
            holder=holder,
            senders=channels.senders(senders),
            channels=channels,
            environ=environ,
        )


def build_core(settings: Settings, clock: Clock | None = None) -> Core:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(settings.resolved_database_url)
    clock = clock or SystemClock()
    provider = ProviderFromModel(db, clock)  # local, or AWS IAM, as the model says
    core = Core(
        db=db,
        settings=settings,
        provider=provider,
        secrets=SecretBox.from_environment(settings.secret_key_file),
        clock=clock,
    )
    return core


def ensure_schema(core: Core) -> None:
    """Create or upgrade the schema to this version of sekisho."""
    migrate.upgrade(core.db)


def freeze_startup_heap() -> None:
    """Take what a long-running process built before its work began (the modules it imported,
    the core, the app) out of the garbage collector's full passes, which then walk only what
    was made since. Those objects live as long as the process; a full pass over them costs
    ~70 ms, and a sweep ending 10,000 grants keeps enough objects alive to set off two or
    three such passes. Collected first, so no garbage is frozen. `sekisho serve` calls this
    once, just before it serves, and the benchmarks' cores as it does; tests do not (they
    build a core for each test)."""
    gc.collect()
    gc.freeze()

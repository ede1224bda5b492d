"""SQLAlchemy tables. Schema changes go through an Alembic migration (`store/migrations`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sekisho.store.types import CanonicalJSON, UTCDateTime

NAME = String(128)
STATUS = String(32)

# Stable constraint names so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
ID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AccessModelRow(Base):
    """Every version of the access model ever loaded; the newest is in force."""

    __tablename__ = "access_models"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(512))
    source_text: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    loaded_by: Mapped[str] = mapped_column(NAME)


class UserRow(Base):
    """Credentials. Who a user is and their groups live in the access model."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    totp_secret: Mapped[str | None] = mapped_column(Text)  # encrypted at rest (Fernet)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # refuses a replayed code
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginThrottleRow(Base):
    """Failed sign-ins counted by what was typed (a name, an address, or both), known or not.

    The key is a keyed hash of the typed text, so a password typed into the name box never
    lands here in clear. See `services.throttle`.
    """

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    user: Mapped[str] = mapped_column(NAME, index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(256))
    # How the login was proven. None: password + TOTP; "oidc": the model's identity provider,
    # whose ID token said who (`idp_subject`), when (`auth_time`) and how (`amr`, `acr`).
    auth_method: Mapped[str | None] = mapped_column(String(16))
    idp_subject: Mapped[str | None] = mapped_column(String(256))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    amr: Mapped[str | None] = mapped_column(String(256))  # space-separated
    acr: Mapped[str | None] = mapped_column(String(256))


class PasskeyRow(Base):
    """A user's registered passkey (WebAuthn credential): what checks their assertions."""

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(NAME, index=True)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[str] = mapped_column(Text)  # the COSE key, base64url
    sign_count: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebAuthnChallengeRow(Base):
    """The one challenge a session's WebAuthn ceremony may answer; used once, short-lived."""

    __tablename__ = "webauthn_challenges"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)  # register | assert
    challenge: Mapped[str] = mapped_column(String(128))  # base64url
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class StepUpRow(Base):
    """A strong factor a signed-in session proved after its sign-in (a passkey assertion)."""

    __tablename__ = "step_ups"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    token_id: Mapped[str] = mapped_column(String(64), index=True)
    user: Mapped[str] = mapped_column(NAME)
    method: Mapped[str] = mapped_column(String(16))
    passkey_id: Mapped[int | None] = mapped_column(ID)
    proven_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SlackRequestRow(Base):
    """A request Slack signed and sekisho took, by its signature's SHA-256: the same signed
    request again (a replay within Slack's five-minute window) is refused."""

    __tablename__ = "slack_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class RequestRow(Base):
    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    template: Mapped[str] = mapped_column(NAME)
    action: Mapped[str] = mapped_column(STATUS)
    requester: Mapped[str] = mapped_column(NAME, index=True)
    subject: Mapped[str] = mapped_column(NAME, index=True)  # who gets (or loses) the access
    group_name: Mapped[str] = mapped_column(NAME)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "--for 2h" without a start: the end is set at activation, this long after it.
    duration_s: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    change_info: Mapped[dict[str, str]] = mapped_column(CanonicalJSON())
    params: Mapped[dict[str, str]] = mapped_column(CanonicalJSON())
    status: Mapped[str] = mapped_column(STATUS)
    level: Mapped[int] = mapped_column(Integer, default=0)  # approval level now waiting
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decide_by: Mapped[datetime] = mapped_column(UTCDateTime())  # expires unapproved after this
    # A runbook executor holds the request until this instant; after it, another may resume.
    runner_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    model_id: Mapped[int] = mapped_column(ForeignKey("access_models.id"))
    # Break-glass (the template's `emergency`): granted at once, reviewed after. The review is
    # due at `review_due_at`; `review_next_at` is when the sweep next reports it overdue
    # (None once reviewed, so the sweep's deadline query reads only open reviews).
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    review_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    review_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(NAME)
    review_comment: Mapped[str | None] = mapped_column(Text)
    # An extension: the grant it asks more time for (its approval moves that grant's end).
    # No foreign key: grants point at requests already, and one each way is a cycle.
    extends_grant_id: Mapped[int | None] = mapped_column(ID, index=True)

    decisions: Mapped[list[DecisionRow]] = relationship(
        order_by="DecisionRow.id", lazy="selectin", back_populates="request"
    )

    __table_args__ = (Index("ix_requests_status_decide_by", "status", "decide_by"),)


class DecisionRow(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    level: Mapped[int] = mapped_column(Integer)
    approver: Mapped[str] = mapped_column(NAME)
    decision: Mapped[str] = mapped_column(STATUS)
    comment: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())

    request: Mapped[RequestRow] = relationship(back_populates="decisions")

    # Each person decides a request once: a second decision is a conflict, not a second vote.
    __table_args__ = (UniqueConstraint("request_id", "approver"),)


class TimelineRow(Base):
    """A request's timeline: every transition and runbook step, in order."""

    __tablename__ = "timeline"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(NAME)
    status: Mapped[str] = mapped_column(STATUS)
    message: Mapped[str] = mapped_column(Text)


class GrantRow(Base):
    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), unique=True)
    user: Mapped[str] = mapped_column(NAME)
    group_name: Mapped[str] = mapped_column(NAME)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(STATUS)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(STATUS)
    ended_by: Mapped[str | None] = mapped_column(NAME)
    end_note: Mapped[str | None] = mapped_column(Text)
    end_attempts: Mapped[int] = mapped_column(Integer, default=0)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_grants_status_end_at", "status", "end_at"),
        Index("ix_grants_user_group", "user", "group_name"),
    )


class LockRow(Base):
    """A lock: while in force (placed, not removed, not run out), what it covers is denied.
    Rows are never deleted: a removal is recorded on the row, and the audit trail has both."""

    __tablename__ = "locks"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(STATUS)  # user | target | group | role
    subject: Mapped[str] = mapped_column(NAME)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(NAME)
    created_from: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_by: Mapped[str | None] = mapped_column(NAME)

    # Decisions read the locks not removed; there are few, but every decision reads them.
    __table_args__ = (Index("ix_locks_removed_at", "removed_at"),)


class SsfStreamRow(Base):
    """A Shared Signals push stream (SSF 1.0): where sekisho pushes its SETs for a receiver
    that registered. The bearer token the receiver asked for is sealed (`SecretBox`)."""

    __tablename__ = "ssf_streams"

    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    audience: Mapped[str] = mapped_column(String(512))
    endpoint_url: Mapped[str] = mapped_column(String(2048))
    authorization: Mapped[str | None] = mapped_column(Text)  # sealed; None: no header
    events_requested: Mapped[list[str]] = mapped_column(CanonicalJSON())
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(NAME)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SignInStateRow(Base):
    """A sign-in sent to the identity provider and not back yet: good once, for minutes.

    Keyed by the SHA-256 of its `state`; holds the nonce the ID token must carry, the PKCE
    verifier (sealed) and the SHA-256 of the browser's binding cookie, so a callback
    opened in another browser (login CSRF) is refused.
    """

    __tablename__ = "sign_in_states"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    verifier: Mapped[str] = mapped_column(Text)  # sealed
    browser: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    next_url: Mapped[str] = mapped_column(String(2048))
    # Started by `sekisho login --sso`: its loopback listener and PKCE challenge.
    cli_redirect: Mapped[str | None] = mapped_column(String(512))
    cli_challenge: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A step-up: the IdP was asked to sign the person in again (max_age=0, prompt=login),
    # and the ID token's auth_time must show it did.
    fresh: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(64))  # the address (IPv6: its /64)

    __table_args__ = (
        Index("ix_sign_in_states_expires_at", "expires_at"),
        Index("ix_sign_in_states_source", "source"),
    )


class SignInHandOffRow(Base):
    """A sign-in through the IdP, verified, waiting for the CLI that started it to trade
    its one-time code (keyed by the code's SHA-256) and PKCE verifier for a token."""

    __tablename__ = "sign_in_handoffs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    challenge: Mapped[str] = mapped_column(String(64))
    user: Mapped[str] = mapped_column(NAME)
    issuer: Mapped[str] = mapped_column(String(512))
    idp_subject: Mapped[str] = mapped_column(String(256))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    amr: Mapped[str] = mapped_column(String(256))
    acr: Mapped[str | None] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_sign_in_handoffs_expires_at", "expires_at"),)


class DeviceSignInRow(Base):
    """`sekisho login --device` in flight: the IdP's device code (sealed), keyed by the
    SHA-256 of the handle the CLI polls with, and when the IdP may next be asked."""

    __tablename__ = "device_sign_ins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_code: Mapped[str] = mapped_column(Text)  # sealed
    interval_s: Mapped[int] = mapped_column(Integer)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str | None] = mapped_column(String(64))  # the address (IPv6: its /64)

    __table_args__ = (
        Index("ix_device_sign_ins_expires_at", "expires_at"),
        Index("ix_device_sign_ins_source", "source"),
    )


class SsfReceivedRow(Base):
    """A SET received from the model's transmitter: its `jti`, kept so a replay is refused."""

    __tablename__ = "ssf_received"

    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    jti: Mapped[str] = mapped_column(String(256), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_ssf_received_received_at", "received_at"),)


class LocalMembershipRow(Base):
    """The `local` provider's directory: sekisho's own groups, like IAM group membership."""

    __tablename__ = "local_memberships"

    user: Mapped[str] = mapped_column(NAME, primary_key=True)
    group_name: Mapped[str] = mapped_column(NAME, primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LocalTagRow(Base):
    """The `local` provider's user tags, like the seed's IAM tag {GroupName: TTL}."""

    __tablename__ = "local_tags"

    user: Mapped[str] = mapped_column(NAME, primary_key=True)
    key: Mapped[str] = mapped_column(NAME, primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class AuditRow(Base):
    """Append-only, hash-chained. Columns are the allow-list: nothing else is ever recorded."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(STATUS)
    actor: Mapped[str] = mapped_column(NAME, index=True)
    subject: Mapped[str | None] = mapped_column(NAME, index=True)
    request_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    grant_id: Mapped[int | None] = mapped_column(BigInteger)
    object: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON())
    # The node that wrote it; None on entries written before entries named one.
    node: Mapped[str | None] = mapped_column(NAME)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The chain's head. Locked by every append, so appends from many nodes stay in one chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    """A signed checkpoint of the chain's head. Kept here for the schedule and for re-export;
    its proof is the copy kept outside the database (the anchor), signed with a key that is
    not in the database either."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    seq: Mapped[int] = mapped_column(BigInteger, index=True)
    hash: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(NAME)
    key: Mapped[str] = mapped_column(String(128))  # the signing key's fingerprint
    signature: Mapped[str] = mapped_column(String(128))  # base64 Ed25519


class LeaseRow(Base):
    """A named lease: which node runs the scheduler when several share one database."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CertificateAuthorityRow(Base):
    """A certificate authority every node on this database shares (the gateway's, by name).

    The first node to need it stores it (insert-or-read under the name); every node issues its
    own leaf certificates from it. The key is sealed with the nodes' SEKISHO_SECRET_KEY
    (`SecretBox`); the certificate is public.
    """

    __tablename__ = "certificate_authorities"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cert_pem: Mapped[str] = mapped_column(Text)
    key_sealed: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(STATUS)  # created | imported (a node's CA from before)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(256))  # the node that stored it


class SessionRow(Base):
    """A forwarding session: one `sekisho forward` run through the gateway, and what it did."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(NAME, index=True)
    target: Mapped[str] = mapped_column(NAME)
    grant_id: Mapped[int | None] = mapped_column(BigInteger)  # None: standing access
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    via: Mapped[str] = mapped_column(String(256))  # what allowed it, as the decision said
    token_id: Mapped[str] = mapped_column(String(64))
    client_addr: Mapped[str] = mapped_column(String(128))  # the forwarder, as the gateway saw it
    local_addr: Mapped[str] = mapped_column(String(128))  # where the forwarder listens
    target_addr: Mapped[str] = mapped_column(String(300))
    node: Mapped[str] = mapped_column(String(256))  # the gateway process carrying it
    status: Mapped[str] = mapped_column(STATUS)  # active | ended | failed
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the latest it may last
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())  # the gateway's heartbeat
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(300))
    # A kill is recorded here first; whichever gateway carries the session then cuts it.
    killed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    killed_by: Mapped[str | None] = mapped_column(NAME)
    killed_from: Mapped[str | None] = mapped_column(String(256))  # the killer's address
    kill_reason: Mapped[str | None] = mapped_column(String(300))
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)  # client -> target
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)  # target -> client
    connections: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_sessions_status_last_seen", "status", "last_seen"),)


class NotificationRow(Base):
    """The outbox: one message to one channel (one address, on a personal e-mail channel).

    Written in the same transaction as the change it tells of, so both land or neither does;
    the dispatcher delivers it later, never the writer. `key` is the idempotency key the
    channel carries (a header, the Message-ID, a message attribute): a receiver that sees a
    key twice (a dispatcher died after sending, before recording it) keeps the first.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(NAME)
    recipient: Mapped[str | None] = mapped_column(String(320))  # personal e-mail: the address
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    grant_id: Mapped[int | None] = mapped_column(BigInteger)
    # What it is about ("request:7", for the request and its grant): not sent while an
    # earlier message with the same key, channel and recipient is pending. None: no order.
    order_key: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON())  # channel-neutral
    status: Mapped[str] = mapped_column(STATUS)  # pending | delivered | failed (gave up)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())  # due (first try, or a retry)
    # A dispatcher holds the message until this instant; after it, another may take it over.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(256))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)  # never a secret, never the body
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    receipt: Mapped[str | None] = mapped_column(String(256))  # what the channel answered

    __table_args__ = (
        Index("ix_notifications_status_next_at", "status", "next_at"),
        Index("ix_notifications_channel_status", "channel", "status"),
        Index("ix_notifications_order_key", "order_key", "channel", "status"),
    )


class ReminderRow(Base):
    """A grant's coming-end reminder, due `remind_before` its end; gone once written out."""

    __tablename__ = "notification_reminders"

    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id"), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ReportLineRow(Base):
    """One line of an expiry or reconcile report, written with the ending it reports.

    The report itself (one message per pass, not one per grant) is composed from the lines no
    report has taken yet, so a crash between an ending and its report loses no line.
    """

    __tablename__ = "notification_report_lines"

    id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(STATUS)  # expiry | reconcile
    outcome: Mapped[str] = mapped_column(STATUS)  # ended | failed | recovered | fixed
    user: Mapped[str] = mapped_column(NAME)
    group_name: Mapped[str] = mapped_column(NAME)
    grant_id: Mapped[int | None] = mapped_column(BigInteger)
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    report_key: Mapped[str | None] = mapped_column(String(64))  # the report that took it

    __table_args__ = (Index("ix_notification_report_lines_report_key", "report_key", "at"),)


# -- the directory an IdP provisions over SCIM 2.0 (RFC 7643/7644) ------------------------------


class ScimTokenRow(Base):
    """The bearer token one IdP provisions with: only its SHA-256 is kept."""

    __tablename__ = "scim_tokens"

    idp: Mapped[str] = mapped_column(NAME, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(NAME)


class DirectoryUserRow(Base):
    """A person an IdP provisioned: the SCIM resource as it was last written, and what is
    looked up by (`user_key`: the userName, case-folded, unique per IdP)."""

    __tablename__ = "directory_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idp: Mapped[str] = mapped_column(NAME)
    user_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean)
    resource: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("idp", "user_key"),)


class DirectoryGroupRow(Base):
    """A group an IdP provisioned, with its members (directory user ids) in the resource."""

    __tablename__ = "directory_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idp: Mapped[str] = mapped_column(NAME)
    name_key: Mapped[str] = mapped_column(String(256))
    external_id: Mapped[str | None] = mapped_column(String(256))
    resource: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("idp", "name_key"),)


class DirectoryStateRow(Base):
    """One row: bumped by every change to what the IdPs say of people's groups (a SCIM write,
    a groups claim that changed at sign-in), so each process knows when to read them again."""

    __tablename__ = "directory_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class IdpClaimedGroupsRow(Base):
    """The groups claim of a user's last OpenID sign-in (case-folded names)."""

    __tablename__ = "idp_claimed_groups"

    user: Mapped[str] = mapped_column(NAME, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    groups: Mapped[list[str]] = mapped_column(CanonicalJSON())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())

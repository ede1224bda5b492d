"""Server settings, from `SEKISHO_*` environment variables.

Defaults are safe for a laptop: SQLite in a private data directory, loopback only, short tokens.
Anything that would be unsafe is refused, not defaulted.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sekisho.defaults import DEFAULT_PORT


def default_node_name() -> str:
    return socket.gethostname().strip()[:128] or "sekisho"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sekisho"


_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_S3_URL = re.compile(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*'()/-]{0,512})?")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEKISHO_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None  # default: SQLite in data_dir
    # Where users reach the server; used for deep links in messages.
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"

    # The gateway: TLS on its own port. Its certificate comes from sekisho's own CA (created
    # on first start) unless the operator brings one.
    gateway_host: str = "127.0.0.1"
    gateway_port: Annotated[int, Field(ge=0, le=65535)] = 8471
    gateway_public_address: str | None = None  # host:port clients dial; default host:port
    gateway_cert: Path | None = None
    gateway_key: Path | None = None
    gateway_ca: Path | None = None  # with a brought certificate: the CA clients should trust
    # Flood control before authentication (docs/gateway.md, "Limits"): new connections per
    # client address, and connections whose TLS handshake and hello are not done yet, per
    # client address and in all.
    gateway_connections_per_ip: Annotated[float, Field(gt=0)] = 200.0  # per second
    gateway_connections_burst: Annotated[float, Field(ge=1)] = 1000.0
    gateway_unauthenticated_per_ip: Annotated[int, Field(ge=1, le=100_000)] = 32
    gateway_unauthenticated_max: Annotated[int, Field(ge=1, le=100_000)] = 256
    gateway_connects_per_user: Annotated[float, Field(gt=0)] = 100.0  # per second
    gateway_connects_burst: Annotated[float, Field(ge=1)] = 400.0
    # Seconds live sessions outlast a database that cannot be read before they end
    # (fail-closed: nothing confirms their access any more); forwarders then reconnect.
    gateway_store_grace: Annotated[float, Field(ge=1, le=600)] = 15.0

    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: addresses or
    # networks, comma-separated. None by default: any client could otherwise pick the address
    # the audit trail records, and whether cookies are Secure.
    trusted_proxies: str = ""

    token_ttl: timedelta = timedelta(hours=1)
    # Sign-in throttling (services.throttle), counted by what was typed, known name or not:
    # one name from one address is paused after `lockout_threshold` failures; one address
    # after `login_source_threshold` across names; a name failing from anywhere slows down
    # after `login_user_threshold`, except from addresses it signed in from within
    # `login_trusted_for`. Pauses last, and failures are remembered for, `lockout_duration`.
    login_failure_delay: Annotated[float, Field(ge=0, le=10)] = 1.0
    lockout_threshold: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_duration: timedelta = timedelta(minutes=15)
    login_source_threshold: Annotated[int, Field(ge=1, le=10_000)] = 50
    login_user_threshold: Annotated[int, Field(ge=1, le=1_000)] = 10
    login_trusted_for: timedelta = timedelta(days=30)
    # Password hashes (Argon2id, ~64 MiB and a core each) computed at once; the rest queue.
    login_hash_slots: Annotated[int, Field(ge=1, le=64)] = 2

    # How long a runner holds work before another may take it over (it may have died).
    runbook_lease: timedelta = timedelta(seconds=60)
    ending_lease: timedelta = timedelta(seconds=10)
    end_retry_first: timedelta = timedelta(seconds=2)
    end_retry_max: timedelta = timedelta(minutes=5)

    # Notifications: a dispatcher holds a message while it sends it (the lease outlasts any
    # channel's timeout), retries with exponential backoff, gives up on a message this old,
    # and forgets delivered ones after the retention.
    notify_lease: timedelta = timedelta(minutes=2)
    notify_retry_first: timedelta = timedelta(seconds=5)
    notify_retry_max: timedelta = timedelta(minutes=10)
    notify_give_up: timedelta = timedelta(days=1)
    notify_retention: timedelta = timedelta(days=30)

    # This node's name, in every audit entry it writes and every checkpoint it signs.
    node_name: str = Field(default_factory=default_node_name)

    # The audit trail's signed checkpoints (docs/audit.md). The key lives in a file, never in
    # the database; nodes sharing a database share it. A checkpoint is signed every
    # `audit_checkpoint_every`, and sooner once `audit_checkpoint_entries` entries came since
    # the last one; each goes to the anchors set here (and to the admins' channels if routed).
    audit_key_file: Path | None = None  # default: <data_dir>/audit-signing.key
    # Shared Signals: the key sekisho signs its SETs with (ES256, created on first use). Nodes
    # sharing a database share it: put it on shared storage, or copy it to each node.
    ssf_key_file: Path | None = None  # default: <data_dir>/ssf-signing.key
    audit_checkpoint_every: timedelta = timedelta(minutes=15)
    audit_checkpoint_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    audit_anchor_file: Path | None = None  # JSON Lines, appended; keep it on another system
    audit_anchor_s3: str | None = None  # s3://bucket/prefix
    audit_anchor_s3_region: str | None = None
    audit_anchor_s3_endpoint: str | None = None  # moto or another S3-compatible store
    # With S3 Object Lock on the bucket: keep each checkpoint object this long, in this mode.
    audit_anchor_s3_retain: timedelta | None = None
    audit_anchor_s3_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "COMPLIANCE"

    @field_validator("token_ttl")
    @classmethod
    def _token_ttl_bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(hours=12):
            raise ValueError("token_ttl must be between 1 minute and 12 hours")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_addresses(cls, value: str) -> str:
        for item in proxy_list(value):
            try:
                ipaddress.ip_network(item) if "/" in item else ipaddress.ip_address(item)
            except ValueError as exc:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network ({exc})"
                ) from None
        return value

    @field_validator("lockout_duration")
    @classmethod
    def _lockout_duration_bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(days=1):
            raise ValueError("lockout_duration must be between 1 second and 1 day")
        return value

    @field_validator("notify_lease")
    @classmethod
    def _notify_lease_outlasts_a_send(cls, value: timedelta) -> timedelta:
        if value < timedelta(minutes=1):
            raise ValueError("notify_lease must be at least 1 minute (a send may take 60 s)")
        return value

    @field_validator("node_name")
    @classmethod
    def _node_name_is_a_name(cls, value: str) -> str:
        if not _NODE_NAME.fullmatch(value):
            raise ValueError(
                "node_name is 1 to 128 letters, digits and . _ : - (a host name, say), "
                "starting with a letter or digit"
            )
        return value

    @field_validator("audit_checkpoint_every")
    @classmethod
    def _checkpoint_every_bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=10) <= value <= timedelta(days=1):
            raise ValueError("audit_checkpoint_every must be between 10 seconds and 1 day")
        return value

    @field_validator("audit_anchor_s3")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is not None and not _S3_URL.fullmatch(value):
            raise ValueError("audit_anchor_s3 must be s3://BUCKET or s3://BUCKET/PREFIX")
        return value

    @field_validator("audit_anchor_s3_retain")
    @classmethod
    def _retain_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(days=1) <= value <= timedelta(days=36500):
            raise ValueError("audit_anchor_s3_retain must be between 1 day and 100 years")
        return value

    @property
    def resolved_audit_key_file(self) -> Path:
        return self.audit_key_file or self.data_dir / "audit-signing.key"

    @property
    def resolved_ssf_key_file(self) -> Path:
        return self.ssf_key_file or self.data_dir / "ssf-signing.key"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'sekisho.db'}"

    @property
    def trusted_proxy_list(self) -> list[str]:
        return proxy_list(self.trusted_proxies)

    @property
    def gateway_address(self) -> str:
        return self.gateway_public_address or f"{self.gateway_host}:{self.gateway_port}"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"


def proxy_list(value: str) -> list[str]:
    """`a, b/24` as a list; an empty item (`a,,b`) is kept, to be refused."""
    return [item.strip() for item in value.split(",")] if value.strip() else []

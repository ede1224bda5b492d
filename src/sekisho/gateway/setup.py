"""Building the gateway from settings: its TLS material, and what clients need to reach it.

The CA is the one every node on the database shares (`sekisho.services.shared_ca`): the
first gateway to start stores it, importing the CA its data directory has from before this
was shared (so clients that trust it keep working) or making a new one. Each node then issues
its own leaf certificate from it, for its own names. An operator's own certificate
(SEKISHO_GATEWAY_CERT/KEY/CA) wins over all of this.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import structlog

from sekisho.config import Settings
from sekisho.gateway import pki
from sekisho.services.lease import node_id
from sekisho.services.shared_ca import (
    CREATED,
    GATEWAY_CA,
    IMPORTED,
    CandidateCA,
    stored_certificate,
)
from sekisho.store.db import Database

if TYPE_CHECKING:  # the gateway itself is imported when built: `ca export` needs none of it
    from sekisho.bootstrap import Core
    from sekisho.gateway.server import Gateway

log = structlog.get_logger(__name__)


def gateway_tls(core: Core) -> ssl.SSLContext:
    """The operator's certificate if configured, else this node's leaf from the shared CA."""
    settings = core.settings
    if settings.gateway_cert is not None and settings.gateway_key is not None:
        return pki.server_context(pki.TlsFiles(settings.gateway_cert, settings.gateway_key))
    host = settings.gateway_address.rsplit(":", 1)[0].strip("[]")
    leaf = pki.issue_gateway_certificate(shared_authority(core), settings.data_dir, [host])
    return pki.server_context(leaf)


def shared_authority(core: Core) -> pki.Authority:
    """The gateway CA of every node on this database, stored by the first one to need it."""
    store = core.shared_cas
    stored = store.get(GATEWAY_CA)
    if stored is None:
        stored = store.store_or_get(GATEWAY_CA, _candidate(core.settings), node_id())
    try:
        key_pem = core.secrets.open(stored.key_sealed)
    except RuntimeError as exc:
        raise pki.PkiError(
            f"the shared gateway CA (stored by {stored.created_by}) cannot be unsealed: this "
            "node's SEKISHO_SECRET_KEY is not the one of the nodes sharing its database"
        ) from exc
    authority = pki.authority_from_pem(stored.cert_pem, key_pem)
    _warn_if_superseded(core.settings, authority)
    return authority


def _candidate(settings: Settings) -> CandidateCA:
    """What this node offers as the shared CA: its own from before, else a new one."""
    local = pki.authority_in(settings.data_dir)
    if local is not None and local.expired:
        log.warning("the gateway CA in the data directory has expired; making a new one")
        local = None
    authority, origin = (local, IMPORTED) if local is not None else (pki.new_authority(), CREATED)
    return CandidateCA(authority.cert_pem, authority.key_pem, origin, authority.sha256)


def _warn_if_superseded(settings: Settings, shared: pki.Authority) -> None:
    """A node's CA from before that lost to another node's: its clients must switch."""
    try:
        local = pki.ca_pem(settings.data_dir)
    except pki.PkiError:
        return  # none (or unreadable, and so trusted by no one)
    if local != shared.cert_pem:
        log.warning(
            "this node's gateway CA from before is no longer used: the nodes on this database "
            "share another one; clients that trusted the old one must import the shared one "
            "(sekisho ca export)",
            old_ca=str(settings.data_dir / "pki" / "ca.crt"),
            shared_sha256=shared.sha256,
        )


def build_gateway(core: Core) -> Gateway:
    from sekisho.gateway.server import Gateway, GatewayLimits

    settings = core.settings
    limits = GatewayLimits(
        new_connections_per_ip=settings.gateway_connections_per_ip,
        new_connections_burst=settings.gateway_connections_burst,
        connects_per_user=settings.gateway_connects_per_user,
        connects_burst=settings.gateway_connects_burst,
        handshakes=settings.gateway_unauthenticated_max,
        handshakes_per_ip=settings.gateway_unauthenticated_per_ip,
    )
    tls = gateway_tls(core)
    gateway = Gateway(core, tls, settings.gateway_host, settings.gateway_port, limits)
    gateway.store_grace = settings.gateway_store_grace
    return gateway


def published_ca(settings: Settings, db: Database | None) -> str | None:
    """The CA certificate clients should trust for the gateway, if there is one yet.

    The operator's (SEKISHO_GATEWAY_CA) with a brought certificate; else the CA the nodes on
    `db` share; else the one this node's data directory has from before (which the first
    gateway to start will share). Never creates one. Raises PkiError for a CA file that
    exists but cannot be read.
    """
    if settings.gateway_cert is not None:
        if settings.gateway_ca is None:
            return None
        try:
            return settings.gateway_ca.read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise pki.PkiError(f"cannot read SEKISHO_GATEWAY_CA {settings.gateway_ca}") from exc
    shared = stored_certificate(db) if db is not None else None
    if shared is not None:
        return shared
    if not (settings.data_dir / "pki" / "ca.crt").exists():
        return None
    return pki.ca_pem(settings.data_dir)

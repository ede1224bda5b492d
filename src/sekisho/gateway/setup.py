"""Building the gateway from settings: its TLS material, and what clients need to reach it."""

from __future__ import annotations

import ssl

from sekisho.config import Settings
from sekisho.gateway import pki
from sekisho.gateway.server import Gateway, GatewayLimits
from sekisho.services.core import Core


def gateway_tls(settings: Settings) -> ssl.SSLContext:
    """The operator's certificate if configured, else one from sekisho's CA (made on demand)."""
    if settings.gateway_cert is not None and settings.gateway_key is not None:
        return pki.server_context(pki.TlsFiles(settings.gateway_cert, settings.gateway_key))
    host = settings.gateway_address.rsplit(":", 1)[0].strip("[]")
    _ca, leaf = pki.ensure_gateway_certificate(settings.data_dir, [host])
    return pki.server_context(leaf)


def build_gateway(core: Core) -> Gateway:
    settings = core.settings
    limits = GatewayLimits(
        new_connections_per_ip=settings.gateway_connections_per_ip,
        new_connections_burst=settings.gateway_connections_burst,
        connects_per_user=settings.gateway_connects_per_user,
        connects_burst=settings.gateway_connects_burst,
        handshakes=settings.gateway_unauthenticated_max,
        handshakes_per_ip=settings.gateway_unauthenticated_per_ip,
    )
    tls = gateway_tls(settings)
    return Gateway(core, tls, settings.gateway_host, settings.gateway_port, limits)


def published_ca(settings: Settings) -> str | None:
    """The CA certificate clients should trust for the gateway, if sekisho knows it."""
    if settings.gateway_cert is not None:
        return settings.gateway_ca.read_text() if settings.gateway_ca else None
    try:
        return pki.ca_pem(settings.data_dir)
    except pki.PkiError:
        return None

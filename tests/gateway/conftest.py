"""A gateway on 127.0.0.1 in front of real TCP targets, and forwarders that use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway_support import EchoTarget, dead_port

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.gateway import pki
from sekisho.gateway.client import Forwarder
from sekisho.gateway.server import Gateway, GatewayLimits
from support import EXAMPLE_TEXT, People

SYSTEM = Actor.system("test")


@pytest.fixture
def echo() -> Iterator[EchoTarget]:
    target = EchoTarget()
    yield target
    target.close()


@pytest.fixture
def gateway_model(core: Core, echo: EchoTarget) -> None:
    """The example model, with the console pointing at the echo target and the bastion dead."""
    text = EXAMPLE_TEXT.replace("port: 8643", f"port: {echo.port}").replace(
        "port: 2222", f"port: {dead_port()}"
    )
    core.models.load(text, "gateway-test.yaml", SYSTEM)


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    return tmp_path / "tls"


@pytest.fixture
def gateway(core: Core, gateway_model: None, tls_dir: Path) -> Iterator[Gateway]:
    _ca, leaf = pki.ensure_gateway_certificate(tls_dir, [])
    gw = Gateway(core, pki.server_context(leaf), "127.0.0.1", 0, GatewayLimits())
    gw.start()
    yield gw
    gw.stop()


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


@pytest.fixture
def forwarder(
    core: Core, gateway: Gateway, people: People, tls_dir: Path
) -> Iterator[Callable[..., Forwarder]]:
    made: list[Forwarder] = []

    def make(user: str = "member01", target: str = "prod-admin-console", **kw: object) -> Forwarder:
        f = Forwarder(
            gateway.address,
            pki.client_context(pki.ensure_ca(tls_dir).cert),
            people.token(user),
            target,
            server_hostname="localhost",
            **{"clock": core.now, **kw},  # type: ignore[arg-type]  # the gateway's clock
        )
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()

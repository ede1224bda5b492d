"""One CA for every node on a database, and `sekisho ca export` that never invents one.

Nodes are Cores on one database (a SQLite file both open, or PostgreSQL), each with a data
directory of its own, each running the gateway as `sekisho serve` builds it
(`build_gateway`). What a client trusts comes from the real `sekisho ca export`, run as a
subprocess with the exporting node's settings.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.gateway import pki
from sekisho.gateway.client import Forwarder
from sekisho.gateway.server import Gateway
from sekisho.gateway.setup import build_gateway, published_ca
from sekisho.providers.memory import MemoryProvider
from sekisho.server import build_app
from sekisho.services.secretbox import SecretBox
from sekisho.store.db import Database
from sekisho.store.tables import AuditRow, CertificateAuthorityRow
from support import LEADER, MEMBER, People, draft, serving

SEKISHO = Path(sys.executable).parent / "sekisho"
MakeNode = Callable[..., Core]


def node_settings(data_dir: Path, db_url: str | None = None, **extra: object) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=db_url,
        gateway_port=0,  # each node's gateway on a free port
        login_failure_delay=0,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Node A: the `core` fixture, with its own data directory."""
    return node_settings(tmp_path / "node-a", db_url)


@pytest.fixture
def node(
    core: Core, db_url: str, clock: ManualClock, provider: MemoryProvider
) -> Iterator[MakeNode]:
    """Another sekisho process on the same database: its own data directory, the same keys."""
    made: list[Core] = []

    def make(name: str, secrets: SecretBox | None = None, **extra: object) -> Core:
        other = Core(
            db=Database(db_url),
            settings=node_settings(core.settings.data_dir.parent / name, db_url, **extra),
            provider=provider,
            secrets=secrets or core.secrets,
            clock=clock,
            password_hasher=core.password_hasher,
        )
        made.append(other)
        return other

    yield make
    for other in made:
        other.db.dispose()


@pytest.fixture
def gateways() -> Iterator[Callable[[Core], Gateway]]:
    running: list[Gateway] = []

    def run(node: Core) -> Gateway:
        gateway = build_gateway(node)  # as `sekisho serve` does
        gateway.start()
        running.append(gateway)
        return gateway

    yield run
    for gateway in running:
        gateway.stop()


def ca_export(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `sekisho ca export`, as an operator on that node runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEKISHO_")}
    clean.update(
        SEKISHO_DATA_DIR=str(settings.data_dir),
        SEKISHO_CONFIG_DIR=str(settings.data_dir.parent / "client-config"),
        **env,
    )
    if settings.database_url:
        clean["SEKISHO_DATABASE_URL"] = settings.database_url
    for name in ("gateway_cert", "gateway_key", "gateway_ca"):
        if getattr(settings, name) is not None:
            clean[f"SEKISHO_{name.upper()}"] = str(getattr(settings, name))
    return subprocess.run(
        [str(SEKISHO), *args, "ca", "export"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exported(settings: Settings) -> str:
    result = ca_export(settings)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-----BEGIN CERTIFICATE-----")
    return result.stdout


def echo_through(gateway: Gateway, ca_pem: str, people: People) -> bytes:
    """A forwarder that trusts `ca_pem` alone, carrying one connection to the echo target."""
    forward = Forwarder(
        gateway.address,
        pki.client_context(ca_pem),
        people.token("member01"),
        "prod-admin-console",
        server_hostname="localhost",
    )
    try:
        forward.open()
        local = socket.create_connection(forward.start(), timeout=5)
        with local:
            local.sendall(b"ping")
            return local.recv(10)
    finally:
        forward.close()


def grant(core: Core) -> None:
    request = core.workflow.file(MEMBER, draft(duration="1h"))
    assert core.workflow.approve(LEADER, request.id, "ok").grant is not None


def san_names(cert_file: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(san.get_values_for_type(x509.DNSName))


def stored(core: Core) -> list[CertificateAuthorityRow]:
    with core.db.read() as s:
        return list(s.scalars(select(CertificateAuthorityRow)))


# -- one CA for all nodes -----------------------------------------------------------------------


def test_each_node_s_gateway_verifies_with_the_ca_exported_from_the_other(
    core: Core,
    node: MakeNode,
    gateways: Callable[[Core], Gateway],
    gateway_model: None,
    people: People,
) -> None:
    grant(core)
    node_b = node("node-b", gateway_public_address="gateway-b.internal:8471")
    gateway_a, gateway_b = gateways(core), gateways(node_b)

    assert echo_through(gateway_a, exported(node_b.settings), people) == b"ping"
    assert echo_through(gateway_b, exported(core.settings), people) == b"ping"

    # One CA, and each node its own certificate for its own names.
    assert (
        exported(core.settings) == exported(node_b.settings) == published_ca(core.settings, core.db)
    )
    assert "gateway-b.internal" in san_names(node_b.settings.data_dir / "pki" / "gateway.crt")
    assert "gateway-b.internal" not in san_names(core.settings.data_dir / "pki" / "gateway.crt")


def test_nodes_starting_at_once_end_with_one_ca(
    core: Core, node: MakeNode, gateway_model: None
) -> None:
    nodes = [core] + [node(f"node-{i}") for i in range(5)]
    start = threading.Barrier(len(nodes))
    cas: list[str | None] = []
    errors: list[BaseException] = []

    def first_start(n: Core) -> None:
        start.wait()
        try:
            build_gateway(n)  # creates the shared CA, or finds it
            cas.append(published_ca(n.settings, n.db))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_start, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(cas) == len(nodes)
    assert cas[0] is not None
    assert set(cas) == {cas[0]}
    assert len(stored(core)) == 1
    with core.db.read() as s:
        actions = list(
            s.scalars(select(AuditRow.action).where(AuditRow.action.like("gateway_ca.%")))
        )
    assert actions == ["gateway_ca.created"]  # on record once, by the node that won


def test_the_ca_key_is_sealed_in_the_database_and_never_on_disk(
    core: Core, gateways: Callable[[Core], Gateway], gateway_model: None
) -> None:
    gateways(core)
    pki_dir = core.settings.data_dir / "pki"
    assert not (pki_dir / "ca.key").exists()
    assert stat.S_IMODE((pki_dir / "gateway.key").stat().st_mode) == 0o600
    (row,) = stored(core)
    assert "PRIVATE KEY" not in row.key_sealed
    key = serialization.load_pem_private_key(core.secrets.open(row.key_sealed).encode(), None)
    cert = x509.load_pem_x509_certificate(row.cert_pem.encode())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def test_a_node_s_ca_from_before_is_imported_so_its_clients_keep_trusting_it(
    core: Core,
    node: MakeNode,
    gateways: Callable[[Core], Gateway],
    gateway_model: None,
    people: People,
) -> None:
    grant(core)
    old = pki.ensure_ca(core.settings.data_dir).cert.read_text()  # as sekisho made it before
    node_b = node("node-b")
    pki.ensure_ca(node_b.settings.data_dir)  # node B had one of its own, too
    gateway_a = gateways(core)  # the first to start with this version: its CA is the one
    with structlog.testing.capture_logs() as logged:
        gateway_b = gateways(node_b)

    assert published_ca(core.settings, core.db) == old
    assert echo_through(gateway_a, old, people) == b"ping"
    assert echo_through(gateway_b, old, people) == b"ping"
    (row,) = stored(core)
    assert row.origin == "imported"
    # Node B's own old CA is no longer used, and the log says what its clients must do.
    assert any("ca export" in str(e.get("event")) for e in logged if e["log_level"] == "warning")


def test_a_node_with_another_secret_key_is_refused_with_the_reason(
    core: Core, node: MakeNode, gateways: Callable[[Core], Gateway], gateway_model: None
) -> None:
    gateways(core)
    stranger = node("node-b", secrets=SecretBox(Fernet.generate_key()))
    with pytest.raises(pki.PkiError, match="SEKISHO_SECRET_KEY"):
        build_gateway(stranger)


def test_a_brought_certificate_wins_over_the_shared_ca(
    core: Core, node: MakeNode, tmp_path: Path, gateway_model: None
) -> None:
    theirs = pki.ensure_ca(tmp_path / "theirs")
    leaf = pki.issue_certificate(theirs, "gateway", ["localhost"], [], tmp_path / "theirs")
    brought = node("node-b", gateway_cert=leaf.cert, gateway_key=leaf.key, gateway_ca=theirs.cert)
    build_gateway(brought)
    assert published_ca(brought.settings, brought.db) == theirs.cert.read_text()
    assert stored(core) == []  # no shared CA made for it
    assert exported(brought.settings) == theirs.cert.read_text()


# -- `sekisho ca export` ------------------------------------------------------------------------


def test_ca_export_where_no_server_ever_ran_fails_and_creates_nothing(tmp_path: Path) -> None:
    fresh = node_settings(tmp_path / "never-served")
    result = ca_export(fresh)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no sekisho CA" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not fresh.data_dir.exists()  # no directory, no database, no key, no CA


def test_ca_export_on_a_database_no_gateway_used_yet_fails_and_creates_nothing(
    core: Core,
) -> None:
    result = ca_export(core.settings)  # `sekisho init` ran; no gateway ever started
    assert result.returncode == 1
    assert "no sekisho CA" in result.stderr
    assert "Traceback" not in result.stderr
    assert stored(core) == []
    assert not (core.settings.data_dir / "pki").exists()


def test_ca_export_prints_a_data_directory_s_ca_from_before(tmp_path: Path) -> None:
    old = node_settings(tmp_path / "old-node")
    ca = pki.ensure_ca(old.data_dir)
    result = ca_export(old)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ca.cert.read_text()
    assert not (old.data_dir / "sekisho.db").exists()


def test_ca_export_with_server_fetches_the_server_s_ca(
    core: Core, gateways: Callable[[Core], Gateway], gateway_model: None, people: People
) -> None:
    token = people.token("member01")
    away = node_settings(core.settings.data_dir.parent / "laptop")  # a client: nothing local
    with serving(build_app(core)) as url:
        before = ca_export(away, "--server", url, SEKISHO_TOKEN=token)
        assert before.returncode == 1
        assert "no gateway CA" in before.stderr
        gateways(core)
        fetched = ca_export(away, "--server", url, SEKISHO_TOKEN=token)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == published_ca(core.settings, core.db)
    assert not away.data_dir.exists()


def test_ca_export_refuses_to_fetch_over_plain_http_from_afar(tmp_path: Path) -> None:
    result = ca_export(node_settings(tmp_path / "laptop"), "--server", "http://192.0.2.1:9")
    assert result.returncode == 1
    assert "https" in result.stderr
    assert "Traceback" not in result.stderr

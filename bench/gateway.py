"""The gateway's yardsticks: `sekisho forward` through the gateway against socat, ssh -L and
the direct connection, all measured in one run on 127.0.0.1 (see bench/paths.py for how each
path is set up).

1. Bulk throughput: one download of `bulk_bytes` from the target through each path, the
   paths in a rotating order, median of `bulk_runs`.
2. Connect + first byte: a new TCP connection to the path's local port, one byte sent and
   echoed by the target; interleaved across paths, paced under the gateway's per-address
   connection rate limit. Probes from this process, made the way `sekisho forward` makes its
   connections (a standby connection readied ahead of need, then `go`), split sekisho's time
   into what is done ahead of need and what is on the path.
3. Revocation lag: a session streams at full speed when its grant ends (TTL) or is revoked or
   released over the API; the lag is from the end instant (or the call) to the last byte
   received through the tunnel. The peer is the floor on this machine, measured in this
   process: how late a timer fires, and a socket shutdown seen by a reader.
4. Idle tunnels: N connections held open through one `sekisho forward`; the resident memory
   of the gateway and forward processes per tunnel, and a download with and without them.
"""

from __future__ import annotations

import contextlib
import math
import random
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench import paths
from bench.paths import Forward, Sekisho, SshTunnel, Target, Tools
from bench.report import Section, Table
from bench.stats import Summary, fmt, fmt_ratio, median, percentile, ratio
from bench.target import source_request
from sekisho.gateway import protocol
from sekisho.gateway.client import SPARES
from sekisho.gateway.pki import client_context
from sekisho.gateway.relay import BUFFER
from sekisho.gateway.server import GatewayLimits

MiB = 1024 * 1024
GiB = 1024 * MiB
KEY = "gateway"
USERS = ["admin01", "leader01", "member01", "member02"]
LONG, SHORT = "member01", "member02"  # the long-lived forward; the revocation runs

DIRECT, SOCAT, SOCAT_BIG, SSH, SEKISHO = "direct", "socat", "socat-256k", "ssh", "sekisho"
SHORT_LABELS = {SEKISHO: "sekisho", SSH: "ssh -L"}
LABELS = {
    DIRECT: "direct connection to the target (the physical limit)",
    SOCAT: "`socat` relay (its default 8 KiB buffer)",
    SOCAT_BIG: "`socat -b 262144` relay (sekisho's buffer size)",
    SSH: "`ssh -L` through a local sshd",
    SEKISHO: "`sekisho forward` through the gateway (TLS 1.3)",
}
# The gateway admits so many new connections per second from one address (then refuses):
# the benchmark stays under it, with a margin.
GATEWAY_RATE = GatewayLimits().new_connections_per_ip * 0.9


@dataclass(frozen=True)
class GatewayPlan:
    bulk_bytes: int
    bulk_runs: int
    warmup_bytes: int
    connects: int  # connect + first byte, per path
    probe_every: int  # a breakdown probe every so many rounds
    revocations: int  # per kind: TTL, and revoke/release alternating
    ttl: str  # the short grants' duration
    floor_runs: int
    tunnels: int
    tunnel_bulk_bytes: int
    tunnel_bulk_runs: int


FULL = GatewayPlan(
    bulk_bytes=2 * GiB,
    bulk_runs=3,
    warmup_bytes=64 * MiB,
    connects=500,
    probe_every=5,
    revocations=20,
    ttl="2s",
    floor_runs=40,
    tunnels=1000,
    tunnel_bulk_bytes=512 * MiB,
    tunnel_bulk_runs=3,
)
QUICK = GatewayPlan(
    bulk_bytes=256 * MiB,
    bulk_runs=3,
    warmup_bytes=16 * MiB,
    connects=100,
    probe_every=5,
    revocations=4,
    ttl="2s",
    floor_runs=10,
    tunnels=100,
    tunnel_bulk_bytes=128 * MiB,
    tunnel_bulk_runs=1,
)


# -- results ---------------------------------------------------------------------------------


@dataclass
class Route:
    name: str
    port: int
    server: list[int]  # the relay's processes on the server's side (none for the direct path)
    client: list[int]  # and on the user's side (sekisho forward, the ssh client)


@dataclass
class BulkResult:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    server_cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU seconds per run
    client_cpu: dict[str, list[float]] = field(default_factory=dict)
    nbytes: int = 0

    def mib_s(self, name: str) -> list[float]:
        return [self.nbytes / MiB / s for s in self.seconds.get(name, [])]

    def per_gib(self, name: str) -> tuple[float, float]:
        """Median relay CPU seconds per GiB: (server side, user's side)."""
        gib = self.nbytes / GiB
        return (
            median([c / gib for c in self.server_cpu.get(name, [])]),
            median([c / gib for c in self.client_cpu.get(name, [])]),
        )

    def ceiling(self, name: str) -> float:
        """MiB/s the busier side could move with a core of its own."""
        return 1024 / max(self.per_gib(name))


@dataclass
class LatencyResult:
    ms: dict[str, list[float]] = field(default_factory=dict)
    ready_ms: list[float] = field(default_factory=list)  # TCP + TLS + standby hello -> ok
    authorise_ms: list[float] = field(default_factory=list)  # go -> ok
    echo_ms: list[float] = field(default_factory=list)  # first byte round trip after ok
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class EndRun:
    kind: str  # "TTL", "revoke", "release"
    lag_ms: float  # end instant (or call) -> last byte through the tunnel
    closed_ms: float  # -> the tunnel's connection closed
    notice_ms: float  # -> `sekisho forward` printed that access ended
    recorded_ms: float  # -> the session's end on record
    call_ms: float  # the revoke/release call's own round trip (nan for TTL)
    streamed_mib: float


@dataclass
class RevocationResult:
    runs: list[EndRun] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    timer_ms: list[float] = field(default_factory=list)
    shutdown_ms: list[float] = field(default_factory=list)

    def of(self, kind: str) -> list[EndRun]:
        return [r for r in self.runs if r.kind == kind]


@dataclass
class ProcessMemory:
    label: str
    before_kib: int
    open_kib: int
    closed_kib: int
    threads_before: int
    threads_open: int


@dataclass
class TunnelResult:
    n: dict[str, int] = field(default_factory=dict)  # tunnels held open, per path
    refused: dict[str, int] = field(default_factory=dict)  # tries the path refused (retried)
    open_s: dict[str, float] = field(default_factory=dict)
    memory: dict[str, list[ProcessMemory]] = field(default_factory=dict)
    bulk_idle: dict[str, list[float]] = field(default_factory=dict)  # MiB/s, none open
    bulk_busy: dict[str, list[float]] = field(default_factory=dict)  # MiB/s, N open
    bulk_bytes: int = 0


@dataclass
class GatewayResult:
    plan: GatewayPlan
    tools: Tools
    ssh_cipher: str = ""
    tls_cipher: str = ""
    bulk: BulkResult = field(default_factory=BulkResult)
    latency: LatencyResult = field(default_factory=LatencyResult)
    revocation: RevocationResult = field(default_factory=RevocationResult)
    tunnels: TunnelResult = field(default_factory=TunnelResult)
    skipped: list[str] = field(default_factory=list)
    setup_s: float = 0.0

    def facts(self) -> list[tuple[str, str]]:
        peers = [f"{k} {v}" for k, v in self.tools.versions.items()]
        return [
            (
                "gateway peers",
                ", ".join(peers) + f"; ssh cipher {self.ssh_cipher or 'n/a'}; "
                f"sekisho TLS {ssl.OPENSSL_VERSION.split(' ')[1]} {self.tls_cipher}",
            )
        ]


# -- running ---------------------------------------------------------------------------------


def run(
    plan: GatewayPlan, workdir: Path, step: Callable[[str, Callable[[], None]], None]
) -> GatewayResult:
    """Set every path up, measure, tear down. `step(label, work)` runs and times one phase."""
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    raise_fd_limit()
    tools = paths.ensure_tools()
    result = GatewayResult(plan, tools)
    result.skipped += tools.notes
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        target = Target(workdir)
        stack.callback(target.stop)
        routes = {DIRECT: Route(DIRECT, target.port, [], [])}
        ssh: SshTunnel | None = None
        if tools.socat:
            for name, size in ((SOCAT, None), (SOCAT_BIG, BUFFER)):
                relay = paths.Socat(workdir, tools.socat, target.port, size)
                stack.callback(relay.stop)
                routes[name] = Route(name, relay.port, [relay.pid], [])
        else:
            result.skipped.append("socat is not installed: its rows are missing")
        if tools.ssh and tools.sshd and tools.ssh_keygen:
            try:
                ssh = SshTunnel(workdir, tools, target.port)
            except (RuntimeError, OSError, ValueError) as exc:
                result.skipped.append(f"ssh -L could not be set up: {exc}")
            else:
                stack.callback(ssh.stop)
                routes[SSH] = Route(SSH, ssh.port, [ssh.sshd.pid], [ssh.ssh.pid])
                result.ssh_cipher = ssh.cipher
        else:
            result.skipped.append("OpenSSH is not installed: the ssh -L rows are missing")
        sekisho = Sekisho(workdir, target.port, USERS)
        stack.callback(sekisho.stop)
        logins = sekisho.logins
        sekisho.grant(logins[LONG], logins["leader01"], duration="1h")
        forward = stack.enter_context(sekisho.forward(logins[LONG]))
        routes[SEKISHO] = Route(SEKISHO, forward.port, [sekisho.pid], [forward.pid])
        probe = Probe(sekisho, forward)
        result.tls_cipher = probe.cipher()
        result.setup_s = time.perf_counter() - t0

        step("bulk throughput", lambda: bulk(plan, routes, result.bulk))
        step("connect + first byte", lambda: latency(plan, routes, probe, result.latency))
        step(
            "idle tunnels",
            lambda: idle_tunnels(plan, routes, sekisho, forward, ssh, result.tunnels),
        )
        step("revocation lag", lambda: revocation(plan, sekisho, result.revocation))
    return result


def raise_fd_limit() -> None:
    """Thousands of sockets here and in the children started from here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def connect(port: int, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def download(port: int, nbytes: int) -> float:
    """Seconds to receive `nbytes` from the target's source through the path at `port`."""
    view = memoryview(bytearray(MiB))
    with connect(port, timeout=120) as sock:
        t0 = time.perf_counter()
        sock.sendall(source_request(nbytes))
        got = 0
        while got < nbytes:
            n = sock.recv_into(view)
            if not n:
                raise RuntimeError(f"port {port}: the path closed after {got} of {nbytes} bytes")
            got += n
        return time.perf_counter() - t0


# -- 1. bulk -----------------------------------------------------------------------------------


def bulk(plan: GatewayPlan, routes: dict[str, Route], result: BulkResult) -> None:
    result.nbytes = plan.bulk_bytes
    names = list(routes)
    for name in names:
        download(routes[name].port, plan.warmup_bytes)
    for i in range(plan.bulk_runs):
        order = names[i % len(names) :] + names[: i % len(names)]  # rotate: spread the noise
        for name in order:
            route = routes[name]
            server0, client0 = paths.cpu_seconds(route.server), paths.cpu_seconds(route.client)
            seconds = download(route.port, plan.bulk_bytes)
            time.sleep(0.1)  # the relay finishes its connection (socat's child is reaped)
            result.seconds.setdefault(name, []).append(seconds)
            result.server_cpu.setdefault(name, []).append(paths.cpu_seconds(route.server) - server0)
            result.client_cpu.setdefault(name, []).append(paths.cpu_seconds(route.client) - client0)
            print(f"    {name}: {plan.bulk_bytes / MiB / seconds:,.0f} MiB/s", flush=True)


# -- 2. connect + first byte -------------------------------------------------------------------


def first_byte_ms(port: int) -> float:
    t0 = time.perf_counter()
    with connect(port, timeout=10) as sock:
        sock.sendall(b"x")
        echoed = sock.recv(1)
        elapsed = time.perf_counter() - t0
    if echoed != b"x":
        raise ConnectionError(f"port {port}: no echo ({echoed!r})")
    return elapsed * 1000


class Probe:
    """This process as a forwarder's connection: the gateway's steps, timed from outside."""

    def __init__(self, sekisho: Sekisho, forward: Forward) -> None:
        login = sekisho.logins[LONG]
        self._ctx = client_context(sekisho.ca_pem(login))
        self._address = ("127.0.0.1", sekisho.gateway_port)
        self._hello = {
            "v": protocol.VERSION,
            "op": "standby",
            "token": login.token,
            "session": forward.session,
        }

    def _handshake(self) -> ssl.SSLSocket:
        raw = connect(self._address[1], timeout=10)
        return self._ctx.wrap_socket(raw, server_hostname=self._address[0])

    def cipher(self) -> str:
        with self._handshake() as tls:
            found = tls.cipher()
        return found[0] if found else "?"

    def connect(self) -> tuple[float, float, float]:
        """As `sekisho forward` does: (TCP + TLS + standby hello -> ok, ahead of need; then
        go -> ok; then the first byte round trip), in ms."""
        t0 = time.perf_counter()
        with self._handshake() as tls:
            protocol.send_line(tls, self._hello)
            ready = protocol.read_line(tls)
            t1 = time.perf_counter()
            if not ready.get("standby"):
                raise ConnectionError(f"the gateway refused the probe's standby: {ready}")
            protocol.send_line(tls, {"op": "go"})
            reply = protocol.read_line(tls)
            t2 = time.perf_counter()
            if not reply.get("ok"):
                raise ConnectionError(f"the gateway refused the probe: {reply}")
            tls.sendall(b"x")
            echoed = tls.recv(1)
            t3 = time.perf_counter()
        if echoed != b"x":
            raise ConnectionError("no echo through the probe")
        return (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000


def latency(
    plan: GatewayPlan, routes: dict[str, Route], probe: Probe, result: LatencyResult
) -> None:
    names = [n for n in routes if n != SOCAT_BIG]  # same relay as socat for a connect
    per_round = 1 + 1 / plan.probe_every  # gateway connections per round
    period = per_round / GATEWAY_RATE
    for name in names:  # warm up each path (and the gateway's caches)
        for _ in range(5):
            first_byte_ms(routes[name].port)
    time.sleep(4)  # the rate limiter's bucket refills
    next_round = time.perf_counter()
    for i in range(plan.connects):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            try:
                result.ms.setdefault(name, []).append(first_byte_ms(routes[name].port))
            except OSError:
                result.failures[name] = result.failures.get(name, 0) + 1
        if i % plan.probe_every == 0:
            try:
                ready, authorise, echo = probe.connect()
            except (OSError, protocol.ProtocolError):
                result.failures["probe"] = result.failures.get("probe", 0) + 1
            else:
                result.ready_ms.append(ready)
                result.authorise_ms.append(authorise)
                result.echo_ms.append(echo)
        next_round += period
        time.sleep(max(0.0, next_round - time.perf_counter()))


# -- 3. revocation ---------------------------------------------------------------------------


class Stream(threading.Thread):
    """Reads a full-speed stream from the target through a path; when did bytes stop?"""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(name="stream", daemon=True)
        self.sock = sock
        self.started = self.last = self.closed = math.nan
        self.received = 0
        self.flowing = threading.Event()

    def run(self) -> None:
        view = memoryview(bytearray(BUFFER))
        try:
            while True:
                n = self.sock.recv_into(view)
                if not n:
                    break
                self.last = time.time()
                self.received += n
                if not self.flowing.is_set() and self.received >= MiB:
                    self.started = self.last
                    self.flowing.set()
        except OSError:
            pass
        finally:
            self.closed = time.time()
            self.sock.close()


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def revocation(plan: GatewayPlan, sekisho: Sekisho, result: RevocationResult) -> None:
    result.timer_ms, result.shutdown_ms = floor(plan.floor_runs)
    kinds = ["TTL"] * plan.revocations + [
        "revoke" if i % 2 == 0 else "release" for i in range(plan.revocations)
    ]
    for i, kind in enumerate(kinds):
        try:
            one = end_run(plan, sekisho, kind)
        except (RuntimeError, OSError) as exc:
            result.failures.append(f"{kind} run {i + 1}: {exc}")
            continue
        result.runs.append(one)


def end_run(plan: GatewayPlan, sekisho: Sekisho, kind: str) -> EndRun:
    logins = sekisho.logins
    member, approver, admin = logins[SHORT], logins["leader01"], logins["admin01"]
    grant = sekisho.grant(member, approver, duration=plan.ttl if kind == "TTL" else "1h")
    with sekisho.forward(member) as forward:
        sock = connect(forward.port)
        sock.sendall(source_request(0))
        stream = Stream(sock)
        stream.start()
        if not stream.flowing.wait(10):
            raise RuntimeError("the stream did not start")
        call_ms = math.nan
        if kind == "TTL":
            at = epoch(grant["end_at"])
            if stream.started > at - 0.2:
                raise RuntimeError("the stream started too close to the grant's end")
        else:
            time.sleep(0.3)
            at = time.time()
            t0 = time.perf_counter()
            if kind == "revoke":
                sekisho.revoke(admin, grant["id"])
            else:
                sekisho.release(member, grant["id"])
            call_ms = (time.perf_counter() - t0) * 1000
        stream.join(timeout=max(0.0, at - time.time()) + 10)
        if stream.is_alive():
            stream.sock.shutdown(socket.SHUT_RDWR)
            raise RuntimeError(f"{kind}: the tunnel still carried data 10 s after the end")
        forward.wait_exit(10)
        notice = [t for t, line in forward_lines(forward) if "access ended" in line]
        session = sekisho.session(member, forward.session)
    recorded = epoch(session["ended_at"]) if session.get("ended_at") else math.nan
    return EndRun(
        kind=kind,
        lag_ms=(stream.last - at) * 1000,
        closed_ms=(stream.closed - at) * 1000,
        notice_ms=(notice[0] - at) * 1000 if notice else math.nan,
        recorded_ms=(recorded - at) * 1000,
        call_ms=call_ms,
        streamed_mib=stream.received / MiB,
    )


def forward_lines(forward: Forward) -> list[tuple[float, str]]:
    forward.output()
    return forward.printed


def floor(n: int) -> tuple[list[float], list[float]]:
    """The machine's floor for cutting a live stream from a timer, in this process:
    (how late a timer wakes a thread, and from that deadline to the last byte a reader gets
    once the streaming socket is shut down, as the gateway's Cut does)."""
    rng = random.Random(3)
    timer, shutdown = [], []
    wake = threading.Event()  # never set: waits end at their deadline
    for _ in range(n):
        deadline = time.time() + rng.uniform(0.005, 0.025)
        wake.wait(deadline - time.time())
        timer.append((time.time() - deadline) * 1000)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for _ in range(n):
            reader = Stream(socket.create_connection(listener.getsockname()))
            writer, _ = listener.accept()
            threading.Thread(target=_pour, args=(writer,), daemon=True).start()
            reader.start()
            reader.flowing.wait(5)
            deadline = time.time() + rng.uniform(0.05, 0.1)
            wake.wait(deadline - time.time())
            with contextlib.suppress(OSError):
                socket.socket.shutdown(writer, socket.SHUT_RDWR)
            reader.join(10)
            writer.close()
            shutdown.append((reader.last - deadline) * 1000)
    return timer, shutdown


def _pour(sock: socket.socket) -> None:
    payload = memoryview(b"\xa5" * BUFFER)
    with contextlib.suppress(OSError):
        while True:
            sock.sendall(payload)


# -- 4. idle tunnels ---------------------------------------------------------------------------


def hold_open(port: int, n: int, rate: float | None) -> tuple[list[socket.socket], int]:
    """`n` tunnels open end to end (one byte echoed through each); tries refused, retried."""
    socks: list[socket.socket] = []
    refused = 0
    next_at = time.perf_counter()
    while len(socks) < n:
        if rate is not None:
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
        try:
            sock = connect(port, timeout=10)
            sock.sendall(b"x")
            if sock.recv(1) != b"x":
                raise ConnectionError("no echo")
        except OSError:
            refused += 1
            if refused > n:
                raise RuntimeError(f"port {port}: refused {refused} times") from None
            time.sleep(0.5)
            continue
        socks.append(sock)
    return socks, refused


@contextlib.contextmanager
def opened(port: int, n: int, rate: float | None) -> Iterator[tuple[list[socket.socket], int]]:
    socks, refused = hold_open(port, n, rate)
    try:
        yield socks, refused
    finally:
        for sock in socks:
            sock.close()


def snapshot(processes: list[tuple[str, list[int]]]) -> dict[str, tuple[int, int]]:
    """VmRSS (KiB, summed over each process tree) and threads, per labelled process."""
    found = {}
    for label, pids in processes:
        tree = [p for root in pids for p in paths.descendants(root)]
        found[label] = (
            sum(paths.status_value(p, "VmRSS") for p in tree),
            sum(paths.status_value(p, "Threads") for p in tree),
        )
    return found


def idle_tunnels(
    plan: GatewayPlan,
    routes: dict[str, Route],
    sekisho: Sekisho,
    forward: Forward,
    ssh: SshTunnel | None,
    result: TunnelResult,
) -> None:
    result.bulk_bytes = plan.tunnel_bulk_bytes
    cases: list[tuple[str, float | None, list[tuple[str, list[int]]]]] = [
        (
            SEKISHO,
            GATEWAY_RATE,
            [
                ("the gateway (`sekisho serve`)", [sekisho.pid]),
                ("`sekisho forward`", [forward.pid]),
            ],
        )
    ]
    if ssh is not None:
        cases.append(
            (
                SSH,
                None,
                [
                    ("sshd (with its session processes)", [ssh.sshd.pid]),
                    ("the ssh client", [ssh.ssh.pid]),
                ],
            )
        )
    for name, rate, processes in cases:
        port = routes[name].port
        result.bulk_idle[name] = [
            plan.tunnel_bulk_bytes / MiB / download(port, plan.tunnel_bulk_bytes)
            for _ in range(plan.tunnel_bulk_runs)
        ]
        time.sleep(1)
        before = snapshot(processes)
        t0 = time.perf_counter()
        with opened(port, plan.tunnels, rate) as (socks, refused):
            result.open_s[name] = time.perf_counter() - t0
            result.n[name], result.refused[name] = len(socks), refused
            time.sleep(1)
            during = snapshot(processes)
            result.bulk_busy[name] = [
                plan.tunnel_bulk_bytes / MiB / download(port, plan.tunnel_bulk_bytes)
                for _ in range(plan.tunnel_bulk_runs)
            ]
        time.sleep(2)  # the relays notice the closes and end
        after = snapshot(processes)
        result.memory[name] = [
            ProcessMemory(
                label,
                before[label][0],
                during[label][0],
                after[label][0],
                before[label][1],
                during[label][1],
            )
            for label, _ in processes
        ]
        print(
            f"    {name}: {len(socks)} tunnels in {result.open_s[name]:.1f} s; "
            + ", ".join(
                f"{m.label} +{(m.open_kib - m.before_kib) / len(socks):,.0f} KiB each"
                for m in result.memory[name]
            ),
            flush=True,
        )


# -- the report ------------------------------------------------------------------------------


def sections(result: GatewayResult) -> list[Section]:
    found = [
        bulk_section(result),
        latency_section(result),
        revocation_section(result),
        tunnels_section(result),
    ]
    if result.skipped:
        found[0].notes += [f"Skipped: {s}" for s in result.skipped]
    return found


def _ms(value: float) -> str:
    return fmt(value)


def bulk_section(result: GatewayResult) -> Section:
    r, plan = result.bulk, result.plan
    sek = median(r.mib_s(SEKISHO))
    table = Table(
        [
            "path",
            "runs",
            "median MiB/s",
            "min / max MiB/s",
            "share of the direct connection",
            "sekisho : this path",
            "relay CPU s per GiB: server side / user's side",
            "one-core ceiling of the busier side (MiB/s)",
            "sekisho : this path, by ceiling",
        ]
    )
    direct = median(r.mib_s(DIRECT))
    for name in (DIRECT, SOCAT, SOCAT_BIG, SSH, SEKISHO):
        rates = r.mib_s(name)
        if not rates:
            continue
        server, client = r.per_gib(name)
        relayed = name != DIRECT
        table.add(
            LABELS[name],
            str(len(rates)),
            fmt(median(rates)),
            f"{fmt(min(rates))} / {fmt(max(rates))}",
            f"{ratio(median(rates), direct):.0%}",
            "-" if name == SEKISHO else fmt_ratio(ratio(sek, median(rates))),
            f"{fmt(server)} / {fmt(client) if client else '-'}" if relayed else "-",
            fmt(r.ceiling(name)) if relayed else "-",
            "-"
            if name in (SEKISHO, DIRECT)
            else fmt_ratio(ratio(r.ceiling(SEKISHO), r.ceiling(name))),
        )
    goals = Table(["goal", "measured", "met"])
    vs_ssh = ratio(sek, median(r.mib_s(SSH)))
    vs_socat = ratio(sek, median(r.mib_s(SOCAT)))
    vs_socat_big = ratio(sek, median(r.mib_s(SOCAT_BIG)))
    if r.mib_s(SSH):
        goals.add(
            "sekisho at least 1.5x `ssh -L`",
            f"{fmt_ratio(vs_ssh)} end to end on this 2-core machine; "
            f"{fmt_ratio(ratio(r.ceiling(SEKISHO), r.ceiling(SSH)))} by one-core ceilings",
            _met(vs_ssh >= 1.5),
        )
    if r.mib_s(SOCAT):
        goals.add(
            "sekisho close to plain socat (read: at least 0.9x)",
            f"{fmt_ratio(vs_socat)} of socat as it comes; {fmt_ratio(vs_socat_big)} of socat "
            "with 256 KiB buffers",
            _met(vs_socat >= 0.9) + ("" if vs_socat_big >= 0.9 else " (not with equal buffers)"),
        )
    notes = [
        f"One download of {plan.bulk_bytes / GiB:g} GiB per path and run (after a "
        f"{plan.warmup_bytes // MiB} MiB warm-up each), the paths in rotating order; "
        f"median of {plan.bulk_runs}. Target -> path -> this process, all on 127.0.0.1.",
        "Relay CPU is the user + system time of the relay's processes over the transfer, from "
        "/proc. Server side: the gateway (`sekisho serve`), sshd with its session process, "
        "socat with its forked child. User's side: `sekisho forward`, the ssh client. On 2 "
        "cores the target, the relay processes and the reader share the CPU, so the end-to-end "
        "rate follows the whole chain's CPU per byte; in a deployment the gateway and the "
        "forwarder run on different machines, and the one-core ceiling (1 GiB over the busier "
        "side's CPU seconds per GiB) is what each could carry on a core of its own.",
        f"ssh negotiated {result.ssh_cipher or 'n/a'}; the gateway {result.tls_cipher or 'n/a'} "
        "(each tool's default). sekisho encrypts the hop it adds (forward <-> gateway), as "
        "ssh -L does (ssh <-> sshd); socat does not encrypt.",
    ]
    return Section(
        "5. Gateway bulk throughput: `sekisho forward` against socat, ssh -L and the direct "
        "connection",
        "A single TCP download from the target through each path: the direct connection (the "
        "physical limit), socat as a plain relay, `ssh -L` through a local sshd (an encrypted "
        "relay, as many teams reach production consoles), and `sekisho forward` through the "
        "gateway of a real `sekisho serve` (API + scheduler + gateway, SQLite), the user "
        "logged in with the CLI and holding an approved grant.",
        [table, goals],
        notes,
        key=KEY,
    )


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def latency_section(result: GatewayResult) -> Section:
    r, plan = result.latency, result.plan
    direct = percentile(r.ms.get(DIRECT, []), 50)
    sek = r.ms.get(SEKISHO, [])
    table = Table(
        [
            "path",
            "n",
            "p50 (ms)",
            "p99 (ms)",
            "max (ms)",
            "added over direct, p50 (ms)",
            "sekisho : this path, p50 / p99",
        ]
    )
    for name in (DIRECT, SOCAT, SSH, SEKISHO):
        values = r.ms.get(name)
        if not values:
            continue
        s = Summary.of(values)
        table.add(
            LABELS[name],
            str(s.n),
            _ms(s.p50),
            _ms(s.p99),
            _ms(s.max),
            "-" if name == DIRECT else _ms(s.p50 - direct),
            "-"
            if name == SEKISHO
            else f"{fmt_ratio(ratio(percentile(sek, 50), s.p50))} / "
            f"{fmt_ratio(ratio(percentile(sek, 99), s.p99))}",
        )
    parts = Table(
        [
            "sekisho's connect, step by step (probes from this process)",
            "n",
            "p50 (ms)",
            "p99 (ms)",
            "share of sekisho's p50",
        ]
    )
    sek50 = percentile(sek, 50)
    if r.ready_ms:
        s = Summary.of(r.ready_ms)
        parts.add(
            "ahead of need, off the path: TCP connect, TLS 1.3 handshake, `standby` hello -> ok "
            "(token, session)",
            str(s.n),
            _ms(s.p50),
            _ms(s.p99),
            "-",
        )
    steps = [
        (
            "on the path: `go` -> ok (rate limits, access decision, connect to the target)",
            r.authorise_ms,
        ),
        ("on the path: first byte round trip inside the tunnel", r.echo_ms),
    ]
    for label, values in steps:
        if values:
            s = Summary.of(values)
            parts.add(label, str(s.n), _ms(s.p50), _ms(s.p99), f"{ratio(s.p50, sek50):.0%}")
    if r.authorise_ms and r.echo_ms:
        probe = percentile(r.authorise_ms, 50) + percentile(r.echo_ms, 50)
        parts.add(
            "rest: `sekisho forward` (accept, a thread, taking a standby connection, the local "
            "hop) and the client's own connect, by difference of p50s",
            "-",
            _ms(sek50 - probe),
            "-",
            f"{ratio(sek50 - probe, sek50):.0%}",
        )
    ssh = r.ms.get(SSH, [])
    goals = Table(["goal", "measured", "met"])
    if ssh:
        goals.add(
            "sekisho's connect + first byte at or below `ssh -L`, p50 and p99",
            f"p50 {_ms(percentile(sek, 50))} vs {_ms(percentile(ssh, 50))} ms; p99 "
            f"{_ms(percentile(sek, 99))} vs {_ms(percentile(ssh, 99))} ms",
            _met(
                percentile(sek, 50) <= percentile(ssh, 50)
                and percentile(sek, 99) <= percentile(ssh, 99)
            ),
        )
    notes = [
        f"{plan.connects} rounds; each round opens one connection through every path (in "
        "rotating order), sends one byte and waits for the target's echo, then closes. One "
        f"probe runs every {plan.probe_every} rounds. Rounds are paced so the gateway sees "
        f"at most {GATEWAY_RATE:.0f} new connections a second from 127.0.0.1, under its "
        f"per-address limit ({GatewayLimits().new_connections_per_ip:g}/s, burst "
        f"{GatewayLimits().new_connections_burst:g}); the other paths get the same pace.",
        "`ssh -L` and socat carry a new connection over what already exists (a new channel in "
        "the authenticated ssh connection; a fork). The gateway authorises every forwarded "
        "connection afresh on its own TLS connection; `sekisho forward` keeps "
        f"{SPARES} of those ready (handshake and session check done ahead of need), so a new "
        "connection waits for the access decision, the connect to the target and two relay "
        "hops written in Python.",
    ]
    failed = ", ".join(f"{k}: {v}" for k, v in r.failures.items() if v)
    if failed:
        notes.append(f"Failed tries (left out): {failed}.")
    return Section(
        "6. Gateway connect + first byte round trip, against ssh -L, socat and the direct "
        "connection",
        "The time from a new TCP connection to the path's local port to the echo of the first "
        "byte from the target: what a browser waits before its first request gets anywhere, "
        "each time it opens a connection.",
        [table, parts, goals],
        notes,
        key=KEY,
    )


def revocation_section(result: GatewayResult) -> Section:
    r, plan = result.revocation, result.plan
    table = Table(
        [
            "how access ended",
            "n",
            "last byte through the tunnel p50 / p99 / max (ms)",
            "tunnel closed p50 (ms)",
            "`sekisho forward` says access ended, p50 (ms)",
            "session's end on record, p50 (ms)",
            "the API call itself p50 (ms)",
            "ratio p50 / p99 to the floor (timer + shutdown)",
        ]
    )
    floor_all = r.shutdown_ms
    kinds = [
        ("TTL: the grant's end time (`--for " + plan.ttl + "`)", "TTL"),
        ("revoke: POST /grants/{id}/revoke by an admin", "revoke"),
        ("release: POST /grants/{id}/release by the holder", "release"),
    ]
    all_lags: list[float] = []
    for label, kind in kinds:
        runs = r.of(kind)
        if not runs:
            continue
        lags = [x.lag_ms for x in runs]
        all_lags += lags
        s = Summary.of(lags)
        calls = [x.call_ms for x in runs if not math.isnan(x.call_ms)]
        table.add(
            label,
            str(s.n),
            f"{_ms(s.p50)} / {_ms(s.p99)} / {_ms(s.max)}",
            _ms(percentile([x.closed_ms for x in runs], 50)),
            _ms(percentile([x.notice_ms for x in runs if not math.isnan(x.notice_ms)], 50)),
            _ms(percentile([x.recorded_ms for x in runs if not math.isnan(x.recorded_ms)], 50)),
            _ms(percentile(calls, 50)) if calls else "-",
            f"{fmt_ratio(ratio(s.p50, percentile(floor_all, 50)))} / "
            f"{fmt_ratio(ratio(s.p99, percentile(floor_all, 99)))}",
        )
    peer = Table(["peer and context", "n", "p50 (ms)", "p99 (ms)", "max (ms)"])
    for label, values in (
        ("floor: a thread's timer wake-up lateness (`Event.wait`) in this process", r.timer_ms),
        (
            "floor: timer + `shutdown()` of a full-speed stream's socket, to the last byte a "
            "reader in the same process gets (the gateway's cut, without the gateway)",
            r.shutdown_ms,
        ),
    ):
        if values:
            s = Summary.of(values)
            peer.add(label, str(s.n), _ms(s.p50), _ms(s.p99), _ms(s.max))
    peer.add(
        "Boundary: polls for session cancellation every ~2 s",
        "-",
        "~1,000 (mean)",
        "up to ~2,000",
        "-",
    )
    if all_lags:
        peer.add(
            "Boundary's mean lag (half its ~2 s poll) over sekisho's p50 (every run)",
            "-",
            fmt_ratio(ratio(1000, percentile(all_lags, 50))),
            "-",
            "-",
        )
    peer.add(
        "AWS Session Manager: an open session is never cut when permission goes",
        "-",
        "never",
        "never",
        "-",
    )
    peer.add(
        "Teleport: live sessions end on a lock, or on certificate expiry if opted in",
        "-",
        "-",
        "-",
        "-",
    )
    goals = Table(["goal", "measured", "met"])
    if all_lags:
        worst = percentile(all_lags, 99)
        goals.add(
            "last byte within 100 ms of the end (p99 over every run)",
            f"p99 {_ms(worst)} ms, max {_ms(max(all_lags))} ms over {len(all_lags)} runs",
            _met(worst < 100),
        )
    notes = [
        f"{plan.revocations} runs for TTL and {plan.revocations} for revoke/release (alternating), "
        "one after another. Each run: the member files a request and a leader approves it over "
        "the API; a new `sekisho forward` starts (the CLI, logged in as the member); this "
        "process opens a connection through it and reads a full-speed stream from the target; "
        "then access ends. Lags are wall-clock differences on this one machine.",
        "TTL runs measure from the grant's `end_at`: the scheduler in `sekisho serve` sleeps "
        "until then, ends the grant, and its grant-ended event cuts the session; the gateway's "
        "own deadline check (every 0.2 s) is the safety net. Revoke and release runs measure "
        "from the moment the call is sent; the event is published when the grant leaves "
        "`active`, before the provider is called.",
        "The last byte includes what was already in flight: what the gateway had sent before "
        "the cut still reaches the reader, through the socket buffers of both hops.",
    ]
    if r.failures:
        notes.append("Runs left out: " + "; ".join(r.failures))
    return Section(
        "7. Gateway revocation lag: from the end of access to the last byte through a live session",
        "A live session that streams continuously when its grant ends, by its end time or by "
        "an explicit revoke or release over the API. Issue 3's peers cannot run here, so the "
        "peer is this machine's floor for the same act, and their documented behaviour is "
        "context.",
        [table, peer, goals],
        notes,
        key=KEY,
    )


def tunnels_section(result: GatewayResult) -> Section:
    r, plan = result.tunnels, result.plan
    memory = Table(
        [
            "path: process",
            "idle tunnels",
            "RSS before (MiB)",
            "RSS with them open (MiB)",
            "per idle tunnel (KiB)",
            "threads before / open",
            "RSS after closing them (MiB)",
        ]
    )
    for name, rows in r.memory.items():
        n = r.n.get(name, 0)
        for m in rows:
            memory.add(
                f"{SHORT_LABELS[name]}: {m.label}",
                f"{n:,}",
                fmt(m.before_kib / 1024),
                fmt(m.open_kib / 1024),
                fmt((m.open_kib - m.before_kib) / n) if n else "n/a",
                f"{m.threads_before:,} / {m.threads_open:,}",
                fmt(m.closed_kib / 1024),
            )
    rates = Table(
        [
            "path",
            f"download of {plan.tunnel_bulk_bytes // MiB} MiB, none open (MiB/s, median)",
            "with the idle tunnels open (MiB/s, median)",
            "ratio open : none",
            "time to open them (s)",
        ]
    )
    for name in r.bulk_idle:
        idle, busy = median(r.bulk_idle[name]), median(r.bulk_busy.get(name, []))
        rates.add(
            LABELS[name],
            fmt(idle),
            fmt(busy),
            fmt_ratio(ratio(busy, idle)),
            f"{r.open_s.get(name, math.nan):.1f}",
        )
    per = {
        name: sum(m.open_kib - m.before_kib for m in rows) / max(1, r.n.get(name, 0))
        for name, rows in r.memory.items()
    }
    notes = [
        f"{plan.tunnels:,} connections opened one after another to the local port, each "
        "carrying one echoed byte (so the tunnel is established end to end), then held idle; "
        "RSS (VmRSS from /proc, summed over the process and its children) 1 s before opening and "
        "1 s after the last one opened. Downloads: median of "
        f"{plan.tunnel_bulk_runs} each.",
        f"The gateway's per-address limit ({GatewayLimits().new_connections_per_ip:g} new "
        f"connections/s) paces the opening through sekisho at {GATEWAY_RATE:.0f}/s; ssh -L is "
        "opened as fast as it accepts.",
        f"sekisho's relay keeps two buffers of {BUFFER // 1024} KiB per connection in each of "
        "the gateway and the forwarder (`sekisho.gateway.relay`), allocated and zero-filled "
        "when the connection starts, and one thread per connection in each.",
    ]
    if SEKISHO in per and SSH in per and per[SSH] > 0:
        notes.append(
            f"Per idle tunnel, sekisho (gateway + forward) holds {fmt(per[SEKISHO])} KiB and "
            f"ssh -L (sshd + ssh) {fmt(per[SSH])} KiB: {fmt_ratio(ratio(per[SEKISHO], per[SSH]))}."
        )
    for name in r.bulk_idle:
        change = ratio(median(r.bulk_busy.get(name, [])), median(r.bulk_idle[name]))
        if change < 0.8:
            notes.append(
                f"With {r.n.get(name, 0):,} idle tunnels open, {SHORT_LABELS[name]}'s download "
                f"ran at {change:.0%} of its rate without them."
            )
    for m in r.memory.get(SEKISHO, []):
        kept = (m.closed_kib - m.before_kib) / 1024
        if kept > 10:
            notes.append(
                f"After the tunnels closed, {m.label} still held {fmt(kept)} MiB more than "
                "before they opened (freed relay buffers kept by the allocator)."
            )
    refused = {k: v for k, v in r.refused.items() if v}
    if refused:
        notes.append(
            "Tries refused on the way and retried: "
            + ", ".join(f"{k}: {v}" for k, v in refused.items())
        )
    return Section(
        f"8. {plan.tunnels:,} concurrent idle tunnels through one `sekisho forward`: memory per "
        "tunnel, and throughput while they are open",
        "What a browser tab farm (or a forgotten dashboard) costs the gateway: many open, idle "
        "forwarded connections in one session, and one download through the same forward while "
        "they stay open. `ssh -L` with as many idle channels is the peer for memory.",
        [memory, rates],
        notes,
        key=KEY,
    )

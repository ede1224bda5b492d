"""The paths the gateway benchmark compares, each a child process (or several) on 127.0.0.1.

- the target itself (`bench.target`): the direct connection, the physical limit;
- `socat TCP-LISTEN -> TCP`: a plain relay;
- `ssh -L` through a local sshd: an encrypted relay (throwaway host and user keys, own config);
- `sekisho forward` through the gateway of a real `sekisho serve` (API + scheduler + gateway,
  SQLite in a temporary data directory), the users enrolled and logged in with the CLI.

socat and OpenSSH come from Debian, installed here when missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import yaml

from bench import api
from bench.backends import MODEL_PATH
from bench.server import HEALTHZ, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SEKISHO = str(BIN / "sekisho")
TARGET_NAME = "prod-admin-console"
SSHD = "/usr/sbin/sshd"


# -- processes ------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> list[int]:
    """`pid` and every live process below it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and of their children, live or reaped."""
    ticks = 0
    for root in pids:
        for pid in descendants(root):
            with contextlib.suppress(OSError, IndexError):
                fields = _stat_fields(pid)
                # utime, stime, cutime, cstime: fields 14-17 of /proc/PID/stat
                ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / os.sysconf("SC_CLK_TCK")


def status_value(pid: int, key: str) -> int:
    """A number from /proc/PID/status (VmRSS in KiB, Threads)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def rss_kib(pids: list[int]) -> int:
    return sum(status_value(p, "VmRSS") for root in pids for p in descendants(root))


def wait_port(
    port: int, timeout: float = 30.0, process: subprocess.Popen[Any] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


class Child:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], log: Path, **popen: Any) -> None:
        self.name, self.log = name, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- Debian tools ---------------------------------------------------------------------------


@dataclass
class Tools:
    socat: str | None
    ssh: str | None
    sshd: str | None
    ssh_keygen: str | None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def _have_all() -> bool:
    return all(shutil.which(t) for t in ("socat", "ssh", "ssh-keygen")) and os.access(SSHD, os.X_OK)


def ensure_tools() -> Tools:
    """socat and OpenSSH from Debian: installed with apt-get when missing."""
    notes: list[str] = []
    if not _have_all():
        apt = shutil.which("apt-get")
        if apt is None:
            notes.append("apt-get is not available: the missing peers are skipped")
        else:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            print("  installing socat and openssh from Debian ...", flush=True)
            packages = ["socat", "openssh-server", "openssh-client"]
            ran = subprocess.run(
                [apt, "install", "-y", "--no-install-recommends", *packages],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if ran.returncode != 0:
                subprocess.run([apt, "update"], env=env, capture_output=True, check=False)
                ran = subprocess.run(
                    [apt, "install", "-y", "--no-install-recommends", *packages],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            if ran.returncode != 0:
                notes.append(f"apt-get install failed: {ran.stderr.strip()[-300:]}")
    tools = Tools(
        socat=shutil.which("socat"),
        ssh=shutil.which("ssh"),
        sshd=SSHD if os.access(SSHD, os.X_OK) else None,
        ssh_keygen=shutil.which("ssh-keygen"),
        notes=notes,
    )
    if tools.socat:
        first = subprocess.run([tools.socat, "-V"], capture_output=True, text=True, check=False)
        match = re.search(r"socat version (\S+)", first.stdout)
        tools.versions["socat"] = match.group(1) if match else "unknown"
    if tools.ssh:
        shown = subprocess.run([tools.ssh, "-V"], capture_output=True, text=True, check=False)
        tools.versions["OpenSSH"] = shown.stderr.strip().split(",")[0]
    return tools


# -- the target and the plain peers ---------------------------------------------------------


class Target(Child):
    def __init__(self, workdir: Path) -> None:
        port_file = workdir / "target.port"
        super().__init__(
            "target",
            [sys.executable, "-m", "bench.target", "--port-file", str(port_file)],
            workdir / "target.log",
            cwd=ROOT,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the target did not start:\n{self.tail()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text())


class Socat(Child):
    """`socat TCP-LISTEN:P,fork TCP:target`: one forked relay process per connection."""

    def __init__(self, workdir: Path, socat: str, target_port: int, buffer: int | None) -> None:
        self.port = free_port()
        argv = [socat]
        if buffer is not None:
            argv += ["-b", str(buffer)]
        argv += [
            f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay",
            f"TCP:127.0.0.1:{target_port},nodelay",
        ]
        label = f"socat-{buffer or 'default'}"
        super().__init__(label, argv, workdir / f"{label}.log")
        wait_port(self.port, process=self.process)


SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/host_ed25519
AuthorizedKeysFile {dir}/authorized_keys
PidFile {dir}/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxStartups 100
LogLevel ERROR
"""


class SshTunnel:
    """A private sshd on 127.0.0.1 and an `ssh -N -L` client through it, both children."""

    def __init__(self, workdir: Path, tools: Tools, target_port: int) -> None:
        assert tools.ssh
        assert tools.sshd
        assert tools.ssh_keygen
        home = workdir / "ssh"
        home.mkdir(mode=0o700, exist_ok=True)
        for name in ("host_ed25519", "user_ed25519"):
            subprocess.run(
                [tools.ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)],
                check=True,
            )
        (home / "authorized_keys").write_text((home / "user_ed25519.pub").read_text())
        Path("/run/sshd").mkdir(parents=True, exist_ok=True, mode=0o755)
        sshd_port, self.port = free_port(), free_port()
        config = home / "sshd_config"
        config.write_text(SSHD_CONFIG.format(port=sshd_port, dir=home))
        self.sshd = Child("sshd", [tools.sshd, "-D", "-e", "-f", str(config)], home / "sshd.log")
        wait_port(sshd_port, process=self.sshd.process)
        user = (
            os.environ.get("USER")
            or subprocess.run(
                ["id", "-un"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        common = [
            tools.ssh,
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            f"UserKnownHostsFile={home / 'known_hosts'}",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            str(home / "user_ed25519"),
            "-p",
            str(sshd_port),
        ]
        probe = subprocess.run(
            [*common, "-v", f"{user}@127.0.0.1", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode != 0:
            self.sshd.stop()
            raise RuntimeError(f"ssh to the private sshd failed:\n{probe.stderr[-1500:]}")
        ciphers = re.findall(r"kex: server->client cipher: (\S+) MAC: (\S+)", probe.stderr)
        self.cipher = ciphers[0][0] if ciphers else "unknown"
        self.ssh = Child(
            "ssh",
            [
                *common,
                "-N",
                "-o",
                "ExitOnForwardFailure=yes",
                "-L",
                f"127.0.0.1:{self.port}:127.0.0.1:{target_port}",
                f"{user}@127.0.0.1",
            ],
            home / "ssh.log",
        )
        try:
            wait_port(self.port, process=self.ssh.process)
        except RuntimeError:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        return [self.sshd.pid, self.ssh.pid]

    def stop(self) -> None:
        with contextlib.suppress(AttributeError):
            self.ssh.stop()
        self.sshd.stop()


# -- sekisho --------------------------------------------------------------------------------


@dataclass
class Login:
    user: str
    home: Path  # SEKISHO_CONFIG_DIR
    token: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Forward:
    """A `sekisho forward` child: its local port, session, and what it printed, when."""

    PORT_LINE = re.compile(r"Forwarding (\S+):(\d+) ->")
    SESSION_LINE = re.compile(r"session #(\d+)")

    def __init__(self, stack: Sekisho, login: Login, ready_timeout: float = 30.0) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.printed: list[tuple[float, str]] = []
        self.started = time.time()
        self.process = subprocess.Popen(
            [SEKISHO, "forward", TARGET_NAME, "--local-port", "0"],
            env=stack.env(login.home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=stack.workdir,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.port = self.session = 0
        deadline = time.monotonic() + ready_timeout
        while not (self.port and self.session):
            try:
                at, line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"sekisho forward did not start: {self.output()}") from None
            self.printed.append((at, line))
            if found := self.PORT_LINE.search(line):
                self.port = int(found.group(2))
            if found := self.SESSION_LINE.search(line):
                self.session = int(found.group(1))
        self.ready = time.time()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put((time.time(), line.rstrip("\n")))

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        while True:
            try:
                self.printed.append(self.lines.get_nowait())
            except queue.Empty:
                break
        return "\n".join(line for _, line in self.printed)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # as Ctrl-C: it says goodbye to the gateway
            if self.wait_exit(10) is None:
                self.process.kill()
                self.process.wait(timeout=5)


class Sekisho:
    """A real `sekisho serve` (API + scheduler + gateway) on SQLite, its users logged in."""

    def __init__(self, workdir: Path, target_port: int, users: list[str]) -> None:
        self.workdir = workdir / "sekisho"
        self.workdir.mkdir(mode=0o700, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.port, self.gateway_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        model = yaml.safe_load(MODEL_PATH.read_text(encoding="utf-8"))
        for target in model["targets"]:
            if target["name"] == TARGET_NAME:
                target.update(port=target_port, protocol="tcp", idle_timeout="1h")
        self.model_path = self.workdir / "model.yaml"
        self.model_path.write_text(yaml.safe_dump(model, sort_keys=False), encoding="utf-8")
        self._cli(None, "init", "--model", str(self.model_path))
        secrets = self._enroll(users)
        self.server = Child(
            "sekisho serve",
            [SEKISHO, "serve", "--port", str(self.port), "--gateway-port", str(self.gateway_port)],
            self.workdir / "serve.log",
            env=self.env(None),
            cwd=self.workdir,
        )
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)
        try:
            self._wait_ready()
            self.logins = {u: self._login(u, *secrets[u]) for u in users}
        except BaseException:
            self.stop()
            raise

    def env(self, home: Path | None) -> dict[str, str]:
        env = {
            **os.environ,
            "SEKISHO_DATA_DIR": str(self.data_dir),
            "SEKISHO_SERVER": self.base_url,
            "COLUMNS": "400",
            "NO_COLOR": "1",
        }
        env.pop("SEKISHO_DATABASE_URL", None)
        env.pop("SEKISHO_TOKEN", None)
        if home is not None:
            env["SEKISHO_CONFIG_DIR"] = str(home)
        return env

    def _cli(self, home: Path | None, *args: str, stdin: str | None = None) -> str:
        ran = subprocess.run(
            [SEKISHO, *args],
            env=self.env(home),
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            timeout=120,
            check=False,
        )
        if ran.returncode != 0:
            raise RuntimeError(f"sekisho {' '.join(args[:2])} failed: {ran.stdout}{ran.stderr}")
        return ran.stdout

    def _enroll(self, users: list[str]) -> dict[str, tuple[str, str]]:
        """`sekisho user enroll NAME --json`, two at a time (Argon2 dominates)."""
        from concurrent.futures import ThreadPoolExecutor

        def one(user: str) -> tuple[str, tuple[str, str]]:
            data = json.loads(self._cli(None, "user", "enroll", user, "--json"))
            return user, (data["password"], data["totp_secret"])

        with ThreadPoolExecutor(max_workers=2) as pool:
            return dict(pool.map(one, users))

    def _login(self, user: str, password: str, totp_secret: str) -> Login:
        """`sekisho login --password-stdin --otp CODE`, as a person would, into its own home."""
        home = self.workdir / "home" / user
        code = pyotp.TOTP(totp_secret).now()
        self._cli(home, "login", "--user", user, "--password-stdin", "--otp", code, stdin=password)
        saved = json.loads((home / "credentials.json").read_text())
        return Login(user, home, saved["token"])

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.process.poll() is not None:
                raise RuntimeError(f"sekisho serve exited:\n{self.server.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if self.http.get(HEALTHZ).status_code == 200:
                    wait_port(self.gateway_port, process=self.server.process)
                    return
            time.sleep(0.05)
        raise RuntimeError(f"sekisho serve did not answer:\n{self.server.tail()}")

    @property
    def pid(self) -> int:
        return self.server.pid

    def ca_pem(self, login: Login) -> str:
        info = api.expect(self.http.get(f"{api.V1}/gateway", headers=login.auth()), 200)
        return str(info["ca_pem"])

    def grant(
        self, member: Login, approver: Login, duration: str = "1h", until: str | None = None
    ) -> dict[str, Any]:
        """File a request and approve it over the API; the active grant (with its `end_at`)."""
        body = api.request_body(duration=duration, until=until)
        filed = api.expect(
            self.http.post(f"{api.V1}/requests", json=body, headers=member.auth()), 201
        )
        approved = api.expect(
            self.http.post(
                f"{api.V1}/requests/{filed['id']}/approve",
                json={"comment": "ok, go ahead"},
                headers=approver.auth(),
            ),
            200,
        )
        if approved["status"] != "succeeded":  # the scheduler claimed the runbook first
            deadline = time.monotonic() + 10
            while approved["status"] != "succeeded" and time.monotonic() < deadline:
                time.sleep(0.01)
                approved = api.expect(
                    self.http.get(f"{api.V1}/requests/{filed['id']}", headers=member.auth()), 200
                )
        grant: dict[str, Any] = approved["grant"]
        if grant is None or not grant["active"]:
            raise RuntimeError(f"request #{filed['id']} gave no active grant: {approved}")
        return grant

    def revoke(self, admin: Login, grant_id: int) -> dict[str, Any]:
        ended: dict[str, Any] = api.expect(
            self.http.post(
                f"{api.V1}/grants/{grant_id}/revoke",
                json={"reason": "benchmark: revocation lag"},
                headers=admin.auth(),
            ),
            200,
        )
        return ended

    def release(self, member: Login, grant_id: int) -> dict[str, Any]:
        ended: dict[str, Any] = api.expect(
            self.http.post(f"{api.V1}/grants/{grant_id}/release", headers=member.auth()), 200
        )
        return ended

    def session(self, login: Login, session_id: int) -> dict[str, Any]:
        found: dict[str, Any] = api.expect(
            self.http.get(f"{api.V1}/sessions/{session_id}", headers=login.auth()), 200
        )
        return found

    @contextlib.contextmanager
    def forward(self, login: Login) -> Iterator[Forward]:
        fwd = Forward(self, login)
        try:
            yield fwd
        finally:
            fwd.stop()

    def stop(self) -> None:
        self.http.close()
        self.server.stop()

"""`sekisho forward` as a person runs it: the real command, against a real API and gateway.

A local address that cannot be had is a one-line error before any session is opened; a
gateway that goes away is retried while access holds, and the end says what really ended it.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from gateway_support import wait_for
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.gateway import pki
from sekisho.gateway.server import Gateway
from sekisho.server import build_app
from sekisho.store.tables import SessionRow
from support import LEADER, MEMBER, People, draft, serving

SEKISHO = str(Path(sys.executable).with_name("sekisho"))


def grant(core: Core, duration: str = "1h") -> int:
    request = core.workflow.file(MEMBER, draft(duration=duration))
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.grant is not None
    return done.grant.id


def sessions(core: Core) -> list[SessionRow]:
    with core.db.read() as s:
        return list(s.scalars(select(SessionRow)))


@pytest.fixture
def api_url(core: Core, gateway_model: None) -> Iterator[str]:
    with serving(build_app(core, scheduler=False)) as url:
        yield url


@pytest.fixture
def real_time(clock: ManualClock) -> None:
    """The server's clock at the real time: the forwarder, another process, reads its own."""
    clock.set(datetime.now(UTC))


@pytest.fixture
def env(
    real_time: None, api_url: str, people: People, tmp_path: Path, gateway: Gateway, tls_dir: Path
) -> dict[str, str]:
    return {
        **os.environ,
        "SEKISHO_SERVER": api_url,
        "SEKISHO_TOKEN": people.token("member01"),
        "SEKISHO_CONFIG_DIR": str(tmp_path / "home"),
        "SEKISHO_GATEWAY": f"localhost:{gateway.address[1]}",
        "SEKISHO_CA": str(pki.ensure_ca(tls_dir).cert),
        "COLUMNS": "200",
    }


def forward(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEKISHO, "forward", "prod-admin-console", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_clear_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_local_port_in_use_is_one_clear_error_and_opens_no_session(
    core: Core, env: dict[str, str]
) -> None:
    grant(core)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = forward("--local-port", str(port), env=env)
    assert result.returncode == 1
    line = one_clear_line(result.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "in use" in line
    assert sessions(core) == []  # nothing on record as "the forwarder disconnected"


@pytest.mark.parametrize("bind", ["not-an-address", "127.0.0.1:80", "[::1]"])
def test_a_bind_address_that_is_not_one_is_one_clear_error_and_opens_no_session(
    core: Core, env: dict[str, str], bind: str
) -> None:
    grant(core)
    result = forward("--bind", bind, env=env)
    assert result.returncode == 1
    assert "is not an IP address" in one_clear_line(result.stderr)
    assert sessions(core) == []


def test_an_address_that_is_not_this_machine_s_is_one_clear_error(
    core: Core, env: dict[str, str]
) -> None:
    grant(core)
    result = forward("--bind", "203.0.113.7", env=env)  # a documentation address: not ours
    assert result.returncode == 1
    assert "cannot listen on 203.0.113.7:0" in one_clear_line(result.stderr)
    assert sessions(core) == []


class Running:
    """A `sekisho forward` running in the background, its output read line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [SEKISHO, "forward", "prod-admin-console"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def said(self, words: str) -> bool:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return any(words in line for line in self.seen)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def test_access_ending_while_the_gateway_is_away_is_reported_as_what_happened(
    core: Core, env: dict[str, str], gateway: Gateway
) -> None:
    grant_id = grant(core)
    running = Running(env)
    try:
        wait_for(lambda: running.said("Press Ctrl-C"), seconds=30)
        gateway.stop()  # the gateway goes away, and stays away
        wait_for(lambda: running.said("the gateway is unreachable since"), seconds=30)
        assert running.process.poll() is None  # still trying: access holds
        core.grants.release(MEMBER, grant_id)  # now access ends, while the gateway is away
        wait_for(lambda: running.process.poll() is not None, seconds=60)
        assert running.said("access ended")
    finally:
        running.stop()
    last = [line for line in running.seen if "access ended" in line][-1]
    assert "no active grant" in last  # what the API says now: the grant ended
    assert "while the gateway was unreachable" in last
    assert "at now" not in last
    assert running.process.returncode == 0

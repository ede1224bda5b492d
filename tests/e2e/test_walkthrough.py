"""The README's walkthroughs, run as a new user would: `sekisho demo`, then the script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@contextmanager
def running_demo(tmp_path: Path, **extra: str) -> Iterator[tuple[dict[str, str], list[str]]]:
    """`sekisho demo` on free ports; yields the scripts' environment and, once it stopped,
    fills the list with what the demo printed."""
    port, gateway_port, console_port = free_port(), free_port(), free_port()
    model = tmp_path / "jump-account.yaml"
    example = (ROOT / "examples" / "jump-account.yaml").read_text()
    model.write_text(example.replace("port: 8643", f"port: {console_port}"))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "SEKISHO_DEMO_DIR": str(tmp_path / ".demo"),
        "SEKISHO_SERVER": f"http://127.0.0.1:{port}",
        "LOCAL_PORT": str(free_port()),
        "COLUMNS": "160",
        **extra,
    }
    env.pop("SEKISHO_DATABASE_URL", None)
    command = ["demo", "--port", str(port), "--gateway-port", str(gateway_port)]
    demo = subprocess.Popen(
        [str(BIN / "sekisho"), *command, "--model", str(model)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed: list[str] = []
    try:
        _wait_until_up(demo, port)
        yield env, printed
    finally:
        demo.terminate()
        try:
            out, _ = demo.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            demo.kill()
            out, _ = demo.communicate()
        printed.append(out)


def _wait_until_up(demo: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert demo.poll() is None, demo.stdout.read() if demo.stdout else ""
        assert time.monotonic() < deadline, "the demo did not start"
        time.sleep(0.2)


def run_script(script: str, env: dict[str, str]) -> str:
    walk = subprocess.run(
        ["bash", script],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = walk.stdout + walk.stderr
    Path(env["SEKISHO_DEMO_DIR"], f"{Path(script).stem}.out").write_text(output)
    assert walk.returncode == 0, output
    return output


@pytest.mark.realtime
def test_demo_and_walkthrough_reproduce_the_seed(tmp_path: Path) -> None:
    # The steps before the forward must fit in the grant on a busy machine.
    with running_demo(tmp_path, DURATION="15s") as (env, printed):
        output = run_script("examples/walkthrough.sh", env)
    for expected in (
        "DENIED member01 assume prod/Prod_MemberRole",
        "approved at level 1: OK, go ahead",
        "add_user_to_group: added member01 to ProdMemberWorkGroup",
        "ALLOWED member01 assume prod/Prod_MemberRole",
        "<title>Payment admin console</title>",
        "access ended at",
        "grant #1 ended (expired)",
        "the console is no longer reachable",
        "chain consistent",
    ):
        assert expected in output, expected
    # Denied before, allowed during, denied again after the end.
    assert output.count("DENIED member01 assume prod/Prod_MemberRole") == 2
    assert "sekisho demo" in printed[0]
    assert "as leader01 request approve 1" in printed[0]


def test_the_incident_walkthrough_locks_member01_out_of_every_path(tmp_path: Path) -> None:
    """README "Incident: a stolen laptop": two grants and a live forward, one lock."""
    with running_demo(tmp_path) as (env, _printed):
        output = run_script("examples/incident.sh", env)
    stolen = "locked by security01: laptop stolen"
    for expected in (
        "<title>Payment admin console</title>",
        f"LOCKED member01 (lock #1, until unlocked): {stolen}",
        "ended grants #1, #2",
        "ended 1 login(s)",
        "access ended at",  # the forward's last line ...
        f": {stolen}",  # ... says why
        "the console is no longer reachable",
        f"DENIED member01 connect prod-admin-console: {stolen}",
        f"DENIED member01 assume prod/Prod_MemberRole: {stolen}",
        f"denied: {stolen}",  # the login, and the request on member01's behalf
        "lock.placed",
        "grant.revoked",
        "auth.login_locked",
        "lock #1 on member01 removed",
    ):
        assert expected in output, expected
    assert output.count(f"denied: {stolen}") >= 2
    # After the unlock: nothing came back (denied, no longer by the lock).
    assert "DENIED member01 assume prod/Prod_MemberRole: no active grant" in output

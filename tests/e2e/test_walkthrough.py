"""The README's walkthrough, run as a new user would: `sekisho demo`, then the script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.realtime
def test_demo_and_walkthrough_reproduce_the_seed(tmp_path: Path) -> None:
    port, gateway_port, console_port = free_port(), free_port(), free_port()
    model = tmp_path / "jump-account.yaml"
    example = (ROOT / "examples" / "jump-account.yaml").read_text()
    model.write_text(example.replace("port: 8643", f"port: {console_port}"))
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "SEKISHO_DEMO_DIR": str(tmp_path / ".demo"),
        "SEKISHO_SERVER": f"http://127.0.0.1:{port}",
        "DURATION": "15s",  # the steps before the forward must fit in it on a busy machine
        "LOCAL_PORT": str(free_port()),
        "COLUMNS": "160",
    }
    env.pop("SEKISHO_DATABASE_URL", None)
    demo = subprocess.Popen(
        [
            str(BIN / "sekisho"),
            "demo",
            "--port",
            str(port),
            "--gateway-port",
            str(gateway_port),
            "--model",
            str(model),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert demo.poll() is None, demo.stdout.read() if demo.stdout else ""
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)

        walk = subprocess.run(
            ["bash", "examples/walkthrough.sh"],
            check=False,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = walk.stdout + walk.stderr
        assert walk.returncode == 0, output
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
    finally:
        demo.terminate()
        try:
            printed, _ = demo.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            demo.kill()
            printed, _ = demo.communicate()
    assert "sekisho demo" in printed
    assert "as leader01 request approve 1" in printed

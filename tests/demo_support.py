"""`sekisho demo` on free ports, as a new user runs it, for the tests that drive a real server
end to end (the README's walkthroughs, SCIM against a live forward)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from support import free_port

ROOT = Path(__file__).resolve().parents[1]
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

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from sekisho.cli.main import main
from sekisho.server import build_app
from sekisho.services.core import Core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(core: Core) -> Iterator[str]:
    """The API and the scheduler on a real socket, as `sekisho serve` runs them."""
    port = free_port()
    config = uvicorn.Config(build_app(core), host="127.0.0.1", port=port, log_level="error")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> object:
    """Run `sekisho ARGS...` in-process as a person with their own config directory."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, who: str = "nobody", stdin: str = "", server: str | None = None) -> Result:
        monkeypatch.setenv("SEKISHO_CONFIG_DIR", str(tmp_path / "home" / who))
        if server is not None:
            monkeypatch.setenv("SEKISHO_SERVER", server)
        monkeypatch.setattr(sys, "argv", ["sekisho", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sekisho.bootstrap import Core
from sekisho.cli.main import main
from sekisho.server import build_app
from support import serving


@pytest.fixture
def server(core: Core) -> Iterator[str]:
    """The API and the scheduler on a real socket, as `sekisho serve` runs them."""
    with serving(build_app(core)) as url:
        yield url


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

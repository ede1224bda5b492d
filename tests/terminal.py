"""Run the real `sekisho` command in a real pseudo-terminal, as a person's shell would."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

SEKISHO = Path(sys.executable).with_name("sekisho")


@dataclass
class Screen:
    """What reached the terminal (stdout and stderr both), byte for byte."""

    code: int
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def plain(self) -> str:
        """The text as a person reads it: no colours (SGR sequences), lines ending in LF."""
        return re.sub(r"\x1b\[[0-9;]*m", "", self.text).replace("\r\n", "\n")


def run_in_terminal(
    *args: str, env: dict[str, str], columns: int = 220, timeout: float = 60
) -> Screen:
    """`sekisho ARGS` with a pty as its stdin, stdout and stderr; returns all it wrote."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    process = subprocess.Popen(
        [str(SEKISHO), *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**clean, "TERM": "xterm-256color", **env},
        close_fds=True,
    )
    os.close(follower)
    raw = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not chunk:
                break
            raw += chunk
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()
    return Screen(code, bytes(raw))

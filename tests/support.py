"""Helpers for tests: people from the example model acting through the services."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyotp
import sqlalchemy
import uvicorn
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from fastapi import FastAPI

from sekisho.bootstrap import Core
from sekisho.clock import Clock
from sekisho.config import Settings
from sekisho.domain.actor import Actor
from sekisho.domain.drafts import RequestDraft
from sekisho.providers.base import Provider
from sekisho.server import uvicorn_config
from sekisho.services.secretbox import SecretBox
from sekisho.store.db import Database

EXAMPLE_MODEL = Path(__file__).resolve().parent.parent / "examples" / "jump-account.yaml"
EXAMPLE_TEXT = EXAMPLE_MODEL.read_text()

_ADD_USER_TO_GROUP_END = (
    "    max_duration: 8h              # the longest a single request may grant\n"
)


def example_with_step_up(rule: str) -> str:
    """The example model, its AddUserToGroup template asking `rule` (`{within: 5m, ...}`)."""
    assert _ADD_USER_TO_GROUP_END in EXAMPLE_TEXT
    line = f"    step_up: {rule}\n"
    return EXAMPLE_TEXT.replace(_ADD_USER_TO_GROUP_END, _ADD_USER_TO_GROUP_END + line, 1)


# Break-glass on the example's AddUserToGroup: an hour at most, reviewed within a day, the
# security on-call alerted; the ticket is the template's `ticket` parameter (CHG-1234).
EMERGENCY = "{max_duration: 1h, review_within: 1d, notify: [SecurityGroup]}"


def example_with_emergency(rule: str = EMERGENCY) -> str:
    """The example model, its AddUserToGroup template with `emergency: rule`."""
    assert _ADD_USER_TO_GROUP_END in EXAMPLE_TEXT
    line = f"    emergency: {rule}\n"
    return EXAMPLE_TEXT.replace(_ADD_USER_TO_GROUP_END, _ADD_USER_TO_GROUP_END + line, 1)


def example_with_extend(rule: str, *, auto_approve: bool = False) -> str:
    """The example model, its AddUserToGroup template allowing self-service extensions
    (`rule`: `{times: 2, total: 1h}`), approving every request itself if `auto_approve`."""
    text = EXAMPLE_TEXT.replace(
        _ADD_USER_TO_GROUP_END, _ADD_USER_TO_GROUP_END + f"    extend: {rule}\n", 1
    )
    if auto_approve:
        assert text.count("    auto_approve: false\n") == 1
        text = text.replace("    auto_approve: false\n", "    auto_approve: true\n")
    return text


# Argon2id at its cheapest: the tests check behaviour, not the hash's cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def assemble_core(
    db: Database,
    settings: Settings,
    provider: Provider,
    clock: Clock,
    model: tuple[str, str] | None = (EXAMPLE_TEXT, str(EXAMPLE_MODEL)),
    **parts: Any,
) -> Core:
    """sekisho as the tests build it: a fresh secret box, no real sleeps, the cheap hasher
    (each overridable in `parts`), and the model (text, name) loaded."""
    chosen: dict[str, Any] = {"sleep": lambda _s: None, "password_hasher": CHEAP_HASHER, **parts}
    built = Core(
        db=db,
        settings=settings,
        provider=provider,
        secrets=SecretBox(Fernet.generate_key()),
        clock=clock,
        **chosen,
    )
    if model is not None:
        built.models.load(model[0], model[1], Actor.system("test"))
    return built


MEMBER = Actor("member01", "198.51.100.7")
MEMBER2 = Actor("member02", "198.51.100.8")
LEADER = Actor("leader01", "198.51.100.9")
LEADER2 = Actor("leader02", "198.51.100.10")
ADMIN = Actor("admin01", "198.51.100.11")
AUDITOR = Actor("auditor01", "198.51.100.12")

INFO = {
    "target": "payment admin console",
    "change": "rotate the merchant API key",
    "impact": "none expected",
    "plan": "1. open console 2. rotate",
    "rollback": "restore the previous key",
}


def draft(**overrides: object) -> RequestDraft:
    fields: dict[str, object] = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "reason": "fix the payment console",
        "duration": "2h",
        "info": INFO,
    }
    fields.update(overrides)
    return RequestDraft(**fields)  # type: ignore[arg-type]


def request_body(**overrides: object) -> dict[str, object]:
    """A request as the API takes it (POST /requests), from the example model."""
    data: dict[str, object] = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "reason": "fix the payment console",
        "for": "2h",
        "info": INFO,
    }
    data.update(overrides)
    return data


def code_for(core: Core, secret: str, offset_steps: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(core.now()) + offset_steps)


class People:
    """Enrols and logs in users of the example model once each, on demand."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.secrets: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, str] = {}

    def enroll(self, name: str) -> tuple[str, str]:
        if name not in self.secrets:
            e = self.core.identity.enroll(ADMIN, name)
            self.secrets[name] = (e.password, e.totp_secret)
        return self.secrets[name]

    def token(self, name: str) -> str:
        if name not in self.tokens:
            password, secret = self.enroll(name)
            issued = self.core.identity.login(name, password, code_for(self.core, secret), "test")
            self.tokens[name] = issued.token
        return self.tokens[name]

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"}


def free_port() -> int:
    """A port free on 127.0.0.1 now (the tests only ever listen there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """`app` on a real socket (on `port`, or a free one), as `sekisho serve` runs it; yields
    its base URL."""
    port = port or free_port()
    instance = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, log_level="error"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@contextmanager
def version_reads() -> Iterator[list[int]]:
    """Per transaction begun while the block runs: how often it asked for the version in
    force (the statement that orders the versions; the text is read only on a cache miss)."""
    per_transaction: list[int] = []
    current: dict[int, int] = {}  # connection -> its transaction's index

    def on_begin(conn: Any) -> None:
        current[id(conn)] = len(per_transaction)
        per_transaction.append(0)

    def on_statement(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM access_models ORDER BY" in statement and id(conn) in current:
            per_transaction[current[id(conn)]] += 1

    sqlalchemy.event.listen(sqlalchemy.Engine, "begin", on_begin)
    sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", on_statement)
    try:
        yield per_transaction
    finally:
        sqlalchemy.event.remove(sqlalchemy.Engine, "before_cursor_execute", on_statement)
        sqlalchemy.event.remove(sqlalchemy.Engine, "begin", on_begin)

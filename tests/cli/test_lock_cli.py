"""`sekisho lock ...` and `sekisho unlock` against a real server: what the incident responder
reads, and the exit codes a runbook script reads."""

from __future__ import annotations

import json
from collections.abc import Callable

from test_cli import login

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from support import LEADER, MEMBER, draft

Run = Callable[..., "Result"]  # noqa: F821 - the fixture's Result


def test_lock_a_user_then_list_and_unlock(cli: Run, core: Core, server: str) -> None:
    login(cli, core, server, "security01")
    filed = core.workflow.file(MEMBER, draft())
    core.workflow.approve(LEADER, filed.id, "ok")

    locked = cli("lock", "user", "member01", "--reason", "laptop stolen", who="security01")
    assert locked.code == 0, locked.err
    assert "LOCKED member01 (lock #1, until unlocked): locked by security01: laptop stolen" in (
        locked.out
    )
    assert "ended grants #1" in locked.out

    denied = cli("can", "member01", "connect", "prod-admin-console", who="security01")
    assert denied.code == 1
    assert "DENIED member01 connect prod-admin-console: locked by security01: laptop stolen" in (
        denied.out
    )

    listed = cli("lock", "list", who="security01")
    assert listed.code == 0
    assert "member01" in listed.out
    assert "laptop stolen" in listed.out
    assert "in force" in listed.out

    unlocked = cli("unlock", "1", who="security01")
    assert unlocked.code == 0
    assert "lock #1 on member01 removed" in unlocked.out
    assert cli("lock", "list", who="security01").out.strip() == "no locks in force"
    again = cli("unlock", "1", who="security01")
    assert again.code == 1
    assert "removed by security01 already" in again.err


def test_lock_for_a_while_and_as_json(cli: Run, core: Core, server: str) -> None:
    login(cli, core, server, "admin01")
    result = cli(
        "lock",
        "target",
        "prod-admin-console",
        "-r",
        "compromised",
        "--for",
        "2h",
        "--json",
        who="admin01",
    )
    assert result.code == 0, result.err
    placed = json.loads(result.out)
    assert placed["lock"]["kind"] == "target"
    assert placed["lock"]["until"] is not None
    assert placed["grants_ended"] == []


def test_bad_locks_exit_1_and_say_why(cli: Run, core: Core, server: str) -> None:
    login(cli, core, server, "security01")
    login(cli, core, server, "member02")
    unknown = cli("lock", "user", "nobody", "--reason", "x", who="security01")
    assert unknown.code == 1
    assert "the model has no user 'nobody'" in unknown.err
    assert "(unknown_user)" in unknown.err
    empty = cli("lock", "user", "member01", "--reason", " ", who="security01")
    assert empty.code == 1
    assert "say why" in empty.err
    past = cli(
        "lock", "user", "member01", "-r", "x", "--until", "2020-01-01T00:00Z", who="security01"
    )
    assert past.code == 1
    assert "in_the_past" in past.err
    forbidden = cli("lock", "user", "member01", "--reason", "spite", who="member02")
    assert forbidden.code == 1
    assert "lock permission" in forbidden.err
    missing = cli("unlock", "42", who="security01")
    assert missing.code == 1
    assert "no lock #42" in missing.err
    assert core.locks.list_locks(Actor.system("test")) == []

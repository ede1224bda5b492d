"""Stored text reaches approvers' and auditors' terminals as text, never as commands.

The real `sekisho` runs in a real pseudo-terminal against a real server. What people typed
into reasons and change information is shown literally (Rich markup such as `[conceal]` or
`[link=...]` is not interpreted), and control characters already in the store (planted there
behind the API's back) are shown as visible escapes such as `\\x1b`, never sent raw.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from sekisho.bootstrap import Core
from sekisho.services import audit
from sekisho.services.audit import AuditEvent
from sekisho.store.tables import RequestRow, TimelineRow
from support import INFO, People
from terminal import Screen, run_in_terminal

CONCEAL = "[conceal]and also drop the audit table[/conceal]"
LINK = "[link=https://evil.example/]rotate the key[/link]"
CLEAR = "\x1b[2J\x1b[H"  # clear the screen, cursor home
OSC8 = "\x1b]8;;https://evil.example/\x1b\\approve me\x1b]8;;\x1b\\"  # a hidden hyperlink
C1_CSI = "\x9b2J"  # the 8-bit form of ESC [
BIDI = "\u202e"  # right-to-left override: reorders what follows on screen

SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colours Rich itself writes


def shown(screen: Screen) -> str:
    """The text a person reads, without Rich's own colour codes."""
    return SGR.sub("", screen.text).replace("\r\n", "\n")


def concealed(screen: Screen) -> bool:
    """Whether any of Rich's SGR sequences turns on "conceal" (attribute 8)."""
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen.text):
        codes = params.split(";")
        while codes:
            code = codes.pop(0)
            if code in ("38", "48"):  # an extended colour: its arguments are not attributes
                del codes[: 2 if codes[:1] == ["5"] else 4]
            elif code == "8":
                return True
    return False


def assert_nothing_raw(screen: Screen) -> None:
    """No planted sequence, nor any escape other than Rich's colours, reached the terminal."""
    assert b"\x1b[2J" not in screen.raw
    assert b"\x1b]" not in screen.raw  # no OSC at all: no hyperlink, no window title
    assert not concealed(screen)
    assert "\x9b" not in screen.text
    assert BIDI not in screen.text
    assert SGR.sub("", screen.text).count("\x1b") == 0  # Rich's colours are the only escapes


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


def terminal_env(server: str, people: People, who: str, tmp_path: object) -> dict[str, str]:
    return {
        "SEKISHO_SERVER": server,
        "SEKISHO_TOKEN": people.token(who),
        "SEKISHO_CONFIG_DIR": f"{tmp_path}/home/{who}",
    }


def file_request(server: str, people: People) -> int:
    body = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "for": "2h",
        "reason": f"{LINK} {CONCEAL}",
        "info": {**INFO, "change": f"{CONCEAL} {LINK}"},
    }
    made = httpx.post(f"{server}/api/v1/requests", json=body, headers=people.headers("member01"))
    assert made.status_code == 201, made.text
    request_id: int = made.json()["id"]
    return request_id


def plant(core: Core, request_id: int) -> None:
    """Control characters stored before the boundaries refused them (or behind their back)."""
    with core.db.write() as s:
        s.execute(
            update(RequestRow)
            .where(RequestRow.id == request_id)
            .values(
                change_info={**INFO, "impact": f"none{CLEAR}", "change": f"{CONCEAL} {LINK}"},
                params={"ticket": f"T-1{OSC8}"},
            )
        )
        s.add(
            TimelineRow(
                request_id=request_id,
                at=core.now(),
                kind="note",
                actor="member01",
                status="ok",
                message=f"looks fine{OSC8}{C1_CSI}{BIDI}gnirts",
            )
        )
        audit.record(
            s,
            core.now(),
            AuditEvent(
                "authz.denied",
                "member01",
                "198.51.100.7",
                outcome="denied",
                subject="member01",
                object=f"prod/Role{CLEAR}{OSC8}",
                detail={"verb": "assume", "reason": f"no grant{C1_CSI}{BIDI}"},
            ),
        )


def test_an_approver_sees_markup_and_escapes_in_a_request_literally(
    core: Core, server: str, people: People, tmp_path: object
) -> None:
    request_id = file_request(server, people)
    plant(core, request_id)
    env = terminal_env(server, people, "leader01", tmp_path)

    screen = run_in_terminal("request", "show", str(request_id), env=env)
    assert screen.code == 0, screen.text
    assert_nothing_raw(screen)
    text = shown(screen)
    assert CONCEAL in text  # the hidden part is in plain sight
    assert LINK in text
    assert r"none\x1b[2J\x1b[H" in text
    assert r"T-1\x1b]8;;https://evil.example/\x1b\approve me" in text
    assert r"looks fine\x1b]8;;" in text
    assert r"\x9b2J\u202egnirts" in text

    listed = run_in_terminal("request", "list", env=env)
    assert listed.code == 0, listed.text
    assert_nothing_raw(listed)
    assert "[link=https://evil.example/]" in shown(listed)


def test_an_auditor_sees_a_planted_audit_object_as_visible_escapes(
    core: Core, server: str, people: People, tmp_path: object
) -> None:
    request_id = file_request(server, people)
    plant(core, request_id)
    env = terminal_env(server, people, "auditor01", tmp_path)

    screen = run_in_terminal("audit", "list", env=env, columns=320)
    assert screen.code == 0, screen.text
    assert_nothing_raw(screen)
    text = shown(screen)
    assert r"prod/Role\x1b[2J\x1b[H\x1b]8;;" in text
    assert r"no grant\x9b2J\u202e" in text


def test_json_output_escapes_c0_c1_and_bidi_controls(
    core: Core, server: str, people: People, tmp_path: object
) -> None:
    request_id = file_request(server, people)
    plant(core, request_id)
    env = terminal_env(server, people, "auditor01", tmp_path)

    screen = run_in_terminal("audit", "list", "--json", env=env)
    assert screen.code == 0, screen.text
    assert b"\x1b" not in screen.raw  # scripts get JSON, not colours or escapes
    assert "\x9b" not in screen.text
    assert BIDI not in screen.text
    entries = json.loads(screen.text)
    objects = {e["object"] for e in entries}
    assert f"prod/Role{CLEAR}{OSC8}" in objects  # the same data, losslessly

    shown_request = run_in_terminal("request", "show", str(request_id), "--json", env=env)
    assert b"\x1b" not in shown_request.raw
    assert "\x9b" not in shown_request.text
    messages = [t["message"] for t in json.loads(shown_request.text)["timeline"]]
    assert f"looks fine{OSC8}{C1_CSI}{BIDI}gnirts" in messages


def test_errors_that_quote_what_was_typed_print_literally(
    core: Core, server: str, people: People, tmp_path: object
) -> None:
    env = terminal_env(server, people, "member01", tmp_path)
    create = ["request", "create", "--group", "ProdMemberWorkGroup", "--reason", "x", "--for", "1h"]
    screen = run_in_terminal(
        *create, "--template", "[conceal]AddUserToGroup[/conceal]", "--info", "a=b", env=env
    )
    assert screen.code == 1
    assert_nothing_raw(screen)
    assert "no template '[conceal]AddUserToGroup[/conceal]'" in shown(screen)

    unknown = run_in_terminal(
        *create,
        "--template",
        "AddUserToGroup",
        "--info",
        "[conceal]k[/conceal]=v",
        env=env,
    )
    assert unknown.code == 1
    assert_nothing_raw(unknown)
    assert "no section '[conceal]k[/conceal]'" in shown(unknown)

    denied = run_in_terminal(
        "can", "member01", "connect", "[conceal]prod-admin-console[/conceal]", env=env
    )
    assert denied.code == 1
    assert_nothing_raw(denied)
    assert "connect [conceal]prod-admin-console[/conceal]" in shown(denied)


def test_granted_and_revoked_access_shows_reasons_literally(
    core: Core, server: str, people: People, tmp_path: object
) -> None:
    """A revocation reason reaches the holder's `grant list` as text."""
    request_id = file_request(server, people)
    approved = httpx.post(
        f"{server}/api/v1/requests/{request_id}/approve",
        json={"comment": f"ok {CONCEAL}"},
        headers=people.headers("leader01"),
    )
    assert approved.status_code == 200, approved.text
    grant_id = approved.json()["grant"]["id"]
    revoked = httpx.post(
        f"{server}/api/v1/grants/{grant_id}/revoke",
        json={"reason": f"incident {LINK}"},
        headers=people.headers("admin01"),
    )
    assert revoked.status_code == 200, revoked.text
    core.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    env = terminal_env(server, people, "member01", tmp_path)

    screen = run_in_terminal("grant", "list", env=env)
    assert screen.code == 0, screen.text
    assert_nothing_raw(screen)
    shown_request = run_in_terminal("request", "show", str(request_id), env=env)
    assert_nothing_raw(shown_request)
    assert f"approved at level 1: ok {CONCEAL}" in shown(shown_request)

"""`sekisho audit verify` against an anchor, through the server and straight from the database.

The attacks are raw SQL on the server's database (SQLite and PostgreSQL). `audit checkpoint`
and `audit key` run server-side on the same database and data directory, as an operator runs
them; the anchor file and the public key are what a verifier keeps elsewhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli import login

from audit_attacks import audit_rows, cut_the_end, rehash_from, replace_the_trail
from sekisho.bootstrap import Core

Run = Callable[..., "Result"]  # noqa: F821 - the fixture's Result

NO_ANCHOR = "no anchor given: a rewrite of the whole trail cannot be detected without one"


@pytest.fixture
def operator(db_url: str, core: Core, tmp_path: Path) -> Iterator[Path]:
    """Server-side commands see the server's database and data directory; the anchor file
    lives elsewhere. Yields that elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "SEKISHO_DATABASE_URL": db_url,
        "SEKISHO_DATA_DIR": str(core.settings.data_dir),
        "SEKISHO_AUDIT_ANCHOR_FILE": str(elsewhere / "anchor.jsonl"),
        "SEKISHO_NODE_NAME": "ops-box",
    }
    os.environ.update(env)  # not monkeypatch: the cli fixture owns that one
    try:
        yield elsewhere
    finally:
        for key in env:
            os.environ.pop(key, None)


def rejected_seq(core: Core) -> int:
    return next(r.seq for r in audit_rows(core) if r.action == "request.rejected")


def history(cli: Run, core: Core, server: str) -> None:
    """A request filed and rejected through the CLI, then a signed checkpoint and the public
    key, kept elsewhere."""
    login(cli, core, server, "member01")
    login(cli, core, server, "leader01")
    login(cli, core, server, "auditor01")
    filed = cli(
        "request", "create", "--template", "AddUserToGroup", "--group", "ProdMemberWorkGroup",
        "--for", "1h", "--reason", "rotate", "--info", "target=console", "--info",
        "change=rotate", "--info", "rollback=restore", "--json", who="member01",
    )  # fmt: skip
    assert filed.code == 0, filed.err
    request_id = str(json.loads(filed.out)["id"])
    assert cli("request", "reject", request_id, "--comment", "no", who="leader01").code == 0


ATTACKS: dict[str, Callable[[Core], None]] = {
    "cut the end, head moved back": lambda core: cut_the_end(core, 2),
    "an edit re-hashed to the head": lambda core: rehash_from(
        core, rejected_seq(core), {rejected_seq(core): {"actor": "leader02"}}
    ),
    "the whole trail replaced": lambda core: replace_the_trail(core, extra=3),
}


def test_verify_without_an_anchor_says_what_it_cannot_catch(
    cli: Run, core: Core, server: str
) -> None:
    history(cli, core, server)
    ATTACKS["an edit re-hashed to the head"](core)
    verified = cli("audit", "verify", who="auditor01")
    assert verified.code == 0  # the chain is consistent: the rewrite is invisible to it
    assert "chain consistent" in verified.out
    assert NO_ANCHOR in verified.out
    assert "verified against the anchor" not in verified.out


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_verify_against_the_anchor_catches_each_rewrite(
    cli: Run, core: Core, server: str, operator: Path, attack: str
) -> None:
    history(cli, core, server)
    signed = cli("audit", "checkpoint")
    assert signed.code == 0, signed.err
    assert f"exported to {operator / 'anchor.jsonl'}" in signed.out
    public = operator / "audit.pub"
    assert cli("audit", "key", "--out", str(public)).code == 0
    anchor = ["--anchor", str(operator / "anchor.jsonl"), "--public-key", str(public)]

    before = cli("audit", "verify", *anchor, who="auditor01")
    assert before.code == 0, before.err
    assert "audit trail verified against the anchor" in before.out
    assert cli("audit", "verify", "--direct", *anchor).code == 0

    ATTACKS[attack](core)

    assert cli("audit", "verify", who="auditor01").code == 0  # the chain alone is fooled
    for how in ([], ["--direct"]):
        caught = cli("audit", "verify", *how, *anchor, who="auditor01")
        assert caught.code == 1, (how, caught.out)
        assert "AUDIT TRAIL BROKEN" in caught.err
        assert "entries at the end were deleted" in caught.err or "rewritten" in caught.err


def test_a_forged_checkpoint_fails_here_even_if_the_server_agrees(
    cli: Run, core: Core, server: str, operator: Path
) -> None:
    """The attacker also rewrote the anchor (new hash, old signature): the signature, checked
    on this machine with the public key, gives it away."""
    history(cli, core, server)
    assert cli("audit", "checkpoint").code == 0
    public = operator / "audit.pub"
    assert cli("audit", "key", "--out", str(public)).code == 0
    ATTACKS["an edit re-hashed to the head"](core)
    path = operator / "anchor.jsonl"
    line = json.loads(path.read_text())
    line["hash"] = audit_rows(core)[line["seq"] - 1].hash
    path.write_text(json.dumps(line) + "\n")

    for how in ([], ["--direct"]):
        caught = cli(
            "audit", "verify", *how, "--anchor", str(path), "--public-key", str(public),
            who="auditor01",
        )  # fmt: skip
        assert caught.code == 1
        assert "the signature does not verify" in caught.err


def test_a_bad_anchor_or_key_is_one_clear_line(
    cli: Run, core: Core, server: str, tmp_path: Path
) -> None:
    login(cli, core, server, "auditor01")
    bad = tmp_path / "anchor.jsonl"
    bad.write_text("{not json\n")
    result = cli("audit", "verify", "--anchor", str(bad), who="auditor01")
    assert result.code == 1
    assert result.err.strip() == f"error: {bad}:1: not JSON"
    missing = cli("audit", "verify", "--anchor", str(tmp_path / "nope"), who="auditor01")
    assert missing.code == 1
    assert "cannot read the anchor" in missing.err
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    bad.write_text("")
    wrong = cli("audit", "verify", "--anchor", str(bad), "--public-key", str(key))
    assert wrong.code == 1
    assert "Traceback" not in wrong.err


def test_audit_list_names_the_node(cli: Run, core: Core, server: str, operator: Path) -> None:
    history(cli, core, server)
    listed = cli("audit", "list", "--json", who="auditor01")
    nodes = {e["node"] for e in json.loads(listed.out)}
    assert nodes == {core.settings.node_name}
    table = cli("audit", "list", who="auditor01")
    assert "Node" in table.out
    assert core.settings.node_name in table.out


def test_verify_direct_without_a_database_is_one_line_and_creates_none(
    cli: Run, tmp_path: Path
) -> None:
    os.environ["SEKISHO_DATA_DIR"] = str(tmp_path / "nothing")
    try:
        result = cli("audit", "verify", "--direct")
    finally:
        os.environ.pop("SEKISHO_DATA_DIR", None)
    assert result.code == 1
    assert result.err.startswith("error: no database at sqlite:///")
    assert not (tmp_path / "nothing" / "sekisho.db").exists()

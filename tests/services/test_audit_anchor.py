"""Signed checkpoints and the anchor: rewrites of the audit trail that the chain alone misses.

Each attack is what someone with write access to the database can do with raw SQL: cut the
last entries off and move the head back; edit an entry and re-hash everything after it,
head included; replace the whole trail. The chain alone (`verify` without an anchor) passes
the last two, and says so plainly; against an anchor kept outside the database, every one is
caught.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flows import audit_rows, file, granted, sql
from sqlalchemy import select

from audit_attacks import cut_the_end, rehash_from, replace_the_trail
from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.access import Verb
from sekisho.services import audit
from sekisho.services.audit_anchor import AnchorError, Checkpoint, read_anchor
from sekisho.services.audit_keys import AuditKeyError, VerifyKey, load_signing_key
from sekisho.store.tables import AuditCheckpointRow
from support import AUDITOR, LEADER, LEADER2, MEMBER2

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        login_failure_delay=0,
        node_name="node-a",
        audit_anchor_file=tmp_path / "elsewhere" / "anchor.jsonl",
    )


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path) -> Path:
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "elsewhere"


def story(core: Core, clock: ManualClock) -> None:
    clock.set(NOW)
    granted(core)
    clock.advance(timedelta(minutes=5))
    second = file(core, MEMBER2).id
    core.workflow.reject(LEADER2, second, "not today")
    core.authz.check(LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole")


def anchor_of(core: Core) -> list[Checkpoint]:
    assert core.settings.audit_anchor_file is not None
    return read_anchor(core.settings.audit_anchor_file)


def public_key(core: Core) -> VerifyKey:
    key = core.audit_checkpoints.verify_key()
    assert key is not None
    return key


def verify(core: Core, anchor: list[Checkpoint] | None = None) -> audit.VerifyReport:
    return core.audit_trail.verify(AUDITOR, anchor or (), [public_key(core)] if anchor else ())


def checkpointed_story(core: Core, clock: ManualClock) -> Checkpoint:
    story(core, clock)
    result = core.audit_checkpoints.checkpoint()
    assert result.ok, result
    assert result.checkpoint is not None
    return result.checkpoint


# -- the three attacks ---------------------------------------------------------------------------


def test_cutting_the_end_and_moving_the_head_back_is_caught_by_the_anchor(
    core: Core, clock: ManualClock
) -> None:
    cp = checkpointed_story(core, clock)
    denied = audit_rows(core)[-1]
    assert denied.action == "authz.denied"
    cut_the_end(core, 2)

    alone = verify(core)
    assert alone.ok  # the chain is consistent: this is what the attack was for
    assert alone.notes == [audit.NO_ANCHOR]

    report = verify(core, anchor_of(core))
    assert not report.ok
    assert report.problems == [
        f"the chain ends at entry {cp.seq - 2} (its head at entry {cp.seq - 2}) but "
        f"{cp.label} vouches for entry {cp.seq}: entries at the end were deleted and the head "
        "was moved back to hide it"
    ]


def test_an_edit_rehashed_to_the_head_is_caught_by_the_anchor(
    core: Core, clock: ManualClock
) -> None:
    cp = checkpointed_story(core, clock)
    rejected = next(r for r in audit_rows(core) if r.action == "request.rejected")
    rehash_from(core, rejected.seq, {rejected.seq: {"actor": "leader01"}})

    alone = verify(core)
    assert alone.ok, alone.problems
    assert alone.notes == [audit.NO_ANCHOR]

    report = verify(core, anchor_of(core))
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"entry {cp.seq} no longer has the hash {cp.label}")
    assert report.problems[0].endswith("the trail was rewritten")


def test_a_replaced_trail_is_caught_by_the_anchor(core: Core, clock: ManualClock) -> None:
    cp = checkpointed_story(core, clock)
    replace_the_trail(core, extra=3)

    alone = verify(core)
    assert alone.ok, alone.problems
    assert alone.entries == cp.seq + 3

    report = verify(core, anchor_of(core))
    assert not report.ok
    assert "the trail was rewritten" in report.problems[0]


def test_an_untouched_trail_verifies_against_its_anchor(core: Core, clock: ManualClock) -> None:
    cp = checkpointed_story(core, clock)
    report = verify(core, anchor_of(core))
    assert report.ok, report.problems
    assert report.notes == []
    assert (report.anchor_checkpoints, report.anchored_seq) == (1, cp.seq)

    core.authz.check(LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole")  # one more
    later = verify(core, anchor_of(core))
    assert later.ok
    assert later.notes == [
        f"entries {cp.seq + 1}..{cp.seq + 1} are newer than the anchor's last checkpoint: "
        "consistent with it, but no checkpoint vouches for them yet"
    ]


# -- the anchor itself ---------------------------------------------------------------------------


def test_a_checkpoint_altered_in_the_anchor_fails_its_signature(
    core: Core, clock: ManualClock
) -> None:
    """Someone who could also write the anchor, but has no key: the signature gives it away."""
    cp = checkpointed_story(core, clock)
    rejected = next(r for r in audit_rows(core) if r.action == "request.rejected")
    rehash_from(core, rejected.seq, {rejected.seq: {"actor": "leader01"}})
    head = audit_rows(core)[-1]
    forged = replace(cp, hash=head.hash)  # the old signature over a new hash
    report = verify(core, [forged])
    assert report.problems == [
        f"{cp.label}: the signature does not verify with {public_key(core).fingerprint}: "
        "the checkpoint was forged or altered"
    ]


def test_a_checkpoint_signed_with_another_key_is_refused(
    core: Core, clock: ManualClock, tmp_path: Path
) -> None:
    cp = checkpointed_story(core, clock)
    other = load_signing_key(tmp_path / "attacker.key", create=True)
    assert other is not None
    forged = replace(cp, key=other.verify_key.fingerprint)
    forged = replace(forged, signature=_b64(other.sign(forged.signed_bytes())))
    report = verify(core, [forged])
    assert not report.ok
    assert report.problems[0].startswith(f"{cp.label} names key {other.verify_key.fingerprint}")


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_a_broken_anchor_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "anchor.jsonl"
    path.write_text('\n{"kind": "sekisho.audit.checkpoint", "v": 1}\n')
    with pytest.raises(AnchorError, match=r"anchor.jsonl:2: missing at, hash, id"):
        read_anchor(path)
    path.write_text("not json\n")
    with pytest.raises(AnchorError, match=r"anchor.jsonl:1: not JSON"):
        read_anchor(path)
    path.write_text("")
    with pytest.raises(AnchorError, match="holds no checkpoint"):
        read_anchor(path)


# -- the checkpointer ----------------------------------------------------------------------------


def test_the_checkpointer_never_signs_a_rewritten_trail(core: Core, clock: ManualClock) -> None:
    checkpointed_story(core, clock)
    rejected = next(r for r in audit_rows(core) if r.action == "request.rejected")
    rehash_from(core, rejected.seq, {rejected.seq: {"actor": "leader01"}})
    sql(core, "DELETE FROM audit_checkpoints")  # and hide the checkpoint in the database

    result = core.audit_checkpoints.checkpoint()
    assert result.checkpoint is None
    assert "the trail was rewritten" in result.problems[0]  # the anchor file still had it
    with core.db.read() as s:
        assert s.scalars(select(AuditCheckpointRow)).all() == []
    assert len(anchor_of(core)) == 1


def test_checkpoints_are_due_by_time_and_by_entries(
    core: Core, clock: ManualClock, tmp_path: Path
) -> None:
    core = replace(core, settings=core.settings.model_copy(update={"audit_checkpoint_entries": 3}))
    clock.set(NOW)
    assert core.audit_checkpoints.due()  # never had one
    assert core.audit_checkpoints.checkpoint().ok
    assert not core.audit_checkpoints.due()
    for _ in range(2):
        core.authz.check(LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole")
    assert not core.audit_checkpoints.due()
    core.authz.check(LEADER, "leader01", Verb.ASSUME, "prod/Prod_LeaderRole")
    assert core.audit_checkpoints.due()  # three entries since
    assert core.audit_checkpoints.checkpoint().ok
    clock.advance(core.settings.audit_checkpoint_every - timedelta(seconds=1))
    assert not core.audit_checkpoints.due()
    clock.advance(timedelta(seconds=1))
    assert core.audit_checkpoints.due()  # a period since, even with nothing new


def test_the_key_file_is_private_made_once_and_refused_when_loose(
    core: Core, clock: ManualClock
) -> None:
    path = core.settings.resolved_audit_key_file
    assert not path.exists()
    assert core.audit_checkpoints.verify_key() is None  # verifying never creates a key
    checkpointed_story(core, clock)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signing_key(path, create=True)
    assert again is not None
    assert again.verify_key.fingerprint == public_key(core).fingerprint
    os.chmod(path, 0o644)
    with pytest.raises(AuditKeyError, match="accessible by group or others"):
        load_signing_key(path, create=False)


def test_the_public_key_alone_verifies_a_checkpoint(core: Core, clock: ManualClock) -> None:
    cp = checkpointed_story(core, clock)
    pem = public_key(core).pem().encode()
    key = VerifyKey.from_pem(pem, "audit.pub")
    assert key.fingerprint == cp.key
    assert cp.signed_by(key)
    assert not replace(cp, seq=cp.seq + 1).signed_by(key)


def test_the_checkpointer_names_a_cut_end(core: Core, clock: ManualClock) -> None:
    cp = checkpointed_story(core, clock)
    cut_the_end(core, 2)
    result = core.audit_checkpoints.checkpoint()
    assert result.checkpoint is None
    assert result.problems == [
        f"the chain ends at entry {cp.seq - 2} (its head at entry {cp.seq - 2}) but "
        f"{cp.label} vouches for entry {cp.seq}: entries at the end were deleted and the head "
        "was moved back to hide it"
    ]
    assert not core.audit_checkpoints.due()  # a refusal is tried again a period later
    clock.advance(core.settings.audit_checkpoint_every)
    assert core.audit_checkpoints.due()

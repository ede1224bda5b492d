"""Signed checkpoints leave the database: to S3 (moto_server, with Object Lock) and, through
the outbox, to the admins' channels. Each copy verifies with the public key alone."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from notify_support import channels_yaml, load, with_notifications
from receivers import HttpReceiver, MotoServer

from audit_attacks import audit_rows, rehash_from
from sekisho.bootstrap import Core
from sekisho.services.audit_anchor import Checkpoint
from sekisho.services.audit_sinks import read_s3_anchor
from support import AUDITOR, LEADER, MEMBER, draft


@pytest.fixture
def bucket(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket with Object Lock on, as an operator would make it for anchors."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_S3": moto.endpoint,  # for the verifier's read, like any AWS tool
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    name = f"anchors-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def exporting(core: Core, moto: MotoServer, url: str, **more: Any) -> Core:
    settings = core.settings.model_copy(
        update={
            "audit_anchor_s3": url,
            "audit_anchor_s3_endpoint": moto.endpoint,
            "audit_anchor_s3_region": "us-east-1",
            **more,
        }
    )
    return replace(core, settings=settings)


def some_history(core: Core) -> None:
    filed = core.workflow.file(MEMBER, draft())
    core.workflow.reject(LEADER, filed.id, "not now")


def test_checkpoints_go_to_s3_locked_and_verify_from_there(
    core: Core, moto: MotoServer, bucket: str
) -> None:
    core = exporting(
        core, moto, f"s3://{bucket}/sekisho", audit_anchor_s3_retain=timedelta(days=30)
    )
    some_history(core)
    result = core.audit_checkpoints.checkpoint()
    assert result.ok, result
    cp = result.checkpoint
    assert cp is not None
    key = f"sekisho/{cp.seq:015d}-{cp.id:012d}.json"
    assert result.exported == [f"s3://{bucket}/{key}"]

    s3 = moto.client("s3")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] >= core.now() + timedelta(days=29)
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])

    anchor = read_s3_anchor(f"s3://{bucket}/sekisho/")
    assert anchor == [cp]
    public = core.audit_checkpoints.verify_key()
    assert public is not None
    assert core.audit_trail.verify(AUDITOR, anchor, [public]).ok

    rejected = max(r.seq for r in audit_rows(core) if r.action == "request.rejected")
    rehash_from(core, rejected, {rejected: {"actor": "leader02"}})
    assert core.audit_trail.verify(AUDITOR).ok  # the chain alone is fooled
    caught = core.audit_trail.verify(AUDITOR, read_s3_anchor(f"s3://{bucket}/sekisho"), [public])
    assert not caught.ok
    assert "the trail was rewritten" in caught.problems[0]


def test_an_unreachable_bucket_is_a_failed_export_not_a_lost_checkpoint(
    core: Core, moto: MotoServer, bucket: str
) -> None:
    core = exporting(core, moto, "s3://no-such-bucket/sekisho")
    result = core.audit_checkpoints.checkpoint()
    assert result.checkpoint is not None  # signed and stored; the next one covers it too
    assert not result.ok
    assert result.failed == [
        "s3://no-such-bucket/sekisho/: S3 NoSuchBucket: The specified bucket does not exist"
    ]
    assert core.audit_checkpoints.stored() == [result.checkpoint]


def test_admins_get_each_checkpoint_and_each_refusal_on_their_channels(
    core: Core, webhook: HttpReceiver
) -> None:
    routes = "    - {events: [audit.checkpoint], channels: [hook]}\n"
    load(core, with_notifications(channels_yaml(webhook=webhook), routes))
    some_history(core)
    signed = core.audit_checkpoints.checkpoint().checkpoint
    assert signed is not None
    core.new_dispatcher().run_pass()
    [body] = webhook.bodies("audit.checkpoint")
    assert body["title"] == f"sekisho audit checkpoint #{signed.id}: entry {signed.seq}"
    assert {"user": "admin01", "role": "admin"} in body["recipients"]
    received = Checkpoint.from_json(body["data"]["checkpoint"], "the message")
    public = core.audit_checkpoints.verify_key()
    assert public is not None
    assert received == signed
    assert received.signed_by(public)
    assert body["lines"] == [signed.to_line()]  # ready to append to an anchor file

    rejected = max(r.seq for r in audit_rows(core) if r.action == "request.rejected")
    rehash_from(core, rejected, {rejected: {"actor": "leader02"}})
    refused = core.audit_checkpoints.checkpoint()
    assert refused.checkpoint is None
    core.new_dispatcher().run_pass()
    alarm = webhook.bodies("audit.checkpoint")[-1]
    assert alarm["title"].endswith("NOT signed")
    assert alarm["data"]["ok"] is False
    assert "the trail was rewritten" in alarm["lines"][0]

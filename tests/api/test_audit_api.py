"""POST /api/v1/audit/verify: the chain against an anchor's checkpoints, over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from test_api import assert_problem

from sekisho.bootstrap import Core
from support import People


def signed(core: Core) -> dict[str, Any]:
    result = core.audit_checkpoints.checkpoint()
    assert result.checkpoint is not None
    return result.checkpoint.to_json()


def test_verify_against_checkpoints(api: TestClient, people: People, core: Core) -> None:
    auditor = people.headers("auditor01")
    checkpoint = signed(core)
    fingerprint = checkpoint["key"]
    report = api.post(
        "/api/v1/audit/verify", json={"checkpoints": [checkpoint]}, headers=auditor
    ).json()
    assert report["ok"] is True, report
    assert report["anchor_checkpoints"] == 1
    assert report["anchored_seq"] == checkpoint["seq"]
    assert f"signatures checked with this server's key {fingerprint}" in report["notes"]

    plain = api.get("/api/v1/audit/verify", headers=auditor).json()
    assert plain["ok"] is True
    assert plain["notes"] == [
        "no anchor given: a rewrite of the whole trail cannot be detected without one"
    ]

    forged = checkpoint | {"seq": checkpoint["seq"] - 1}
    caught = api.post("/api/v1/audit/verify", json={"checkpoints": [forged]}, headers=auditor)
    assert caught.status_code == 200
    assert caught.json()["ok"] is False
    assert any("signature does not verify" in p for p in caught.json()["problems"])


def test_bad_checkpoints_are_refused_with_the_field(
    api: TestClient, people: People, core: Core
) -> None:
    auditor = people.headers("auditor01")
    good = signed(core)
    bad = api.post(
        "/api/v1/audit/verify",
        json={"checkpoints": [good, good | {"hash": "not-hex"}]},
        headers=auditor,
    )
    problem = assert_problem(bad, 422, "invalid-input")
    assert problem["errors"] == [
        {
            "field": "checkpoints[1]",
            "rule": "checkpoint",
            "message": "checkpoint 2: hash must be 64 lowercase hex digits",
        }
    ]
    too_many = api.post("/api/v1/audit/verify", json={"checkpoints": [good] * 101}, headers=auditor)
    assert too_many.status_code == 422
    none = api.post("/api/v1/audit/verify", json={"checkpoints": []}, headers=auditor)
    assert none.status_code == 422


def test_only_auditors_verify_against_an_anchor(
    api: TestClient, people: People, core: Core
) -> None:
    good = signed(core)
    member = api.post(
        "/api/v1/audit/verify", json={"checkpoints": [good]}, headers=people.headers("member01")
    )
    assert_problem(member, 403, "forbidden")
    assert_problem(
        api.post("/api/v1/audit/verify", json={"checkpoints": [good]}), 401, "authentication-failed"
    )

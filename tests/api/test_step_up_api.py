"""The API refuses an approval its template asks a step-up for, and says how to get one."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sekisho.bootstrap import Core
from support import ADMIN, People, example_with_step_up, request_body


def test_an_api_approval_without_a_passkey_is_403_step_up_required(
    core: Core, api: TestClient, people: People
) -> None:
    text = example_with_step_up("{within: 5m, factor: passkey}")
    core.models.load(text, "step-up.yaml", ADMIN)
    filed = api.post("/api/v1/requests", json=request_body(), headers=people.headers("member01"))
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    answer = api.post(
        f"/api/v1/requests/{request_id}/approve",
        json={"comment": "ok"},
        headers=people.headers("leader01"),
    )
    assert answer.status_code == 403
    problem = answer.json()
    assert problem["code"] == "step-up-required"
    assert "needs a passkey within the last 5m" in problem["detail"]
    assert f"request #{request_id}" in problem["detail"]
    after = api.get(f"/api/v1/requests/{request_id}", headers=people.headers("leader01")).json()
    assert after["status"] == "pending_approval"
    assert after["decisions"] == []

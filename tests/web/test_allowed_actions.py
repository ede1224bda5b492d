"""What a person may do next is one answer: the page's button, the API's `allowed_actions` and
the server's own response to trying agree, for each action, for a viewer who may and one who
may not (refused as the server refuses: 403 for who they are, 409 for the state)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from support import ADMIN, LEADER, MEMBER, People, draft

SignIn = Callable[[str], TestClient]


@dataclass(frozen=True)
class Case:
    action: str
    viewer: str
    state: str  # pending | past_deadline | granted | ended | approved
    refusal: int | None  # None: the viewer may, and the server answers 200

    @property
    def on_grant(self) -> bool:
        return self.action in ("release", "extend", "revoke")


CASES = [
    Case("approve", "leader01", "pending", None),
    Case("approve", "member01", "pending", 403),  # their own request
    Case("approve", "auditor01", "pending", 403),  # may read it, decides no level
    Case("approve", "leader01", "past_deadline", 409),
    Case("reject", "leader01", "pending", None),
    Case("reject", "member01", "pending", 403),
    Case("cancel", "member01", "pending", None),
    Case("cancel", "leader01", "pending", 403),  # only the requester cancels
    Case("cancel", "member01", "approved", 409),
    Case("release", "member01", "granted", None),
    Case("release", "admin01", "granted", 403),  # admins revoke; only the holder releases
    Case("release", "member01", "ended", 409),
    Case("extend", "member01", "granted", None),
    Case("extend", "admin01", "granted", None),  # an admin may ask for the holder
    Case("extend", "auditor01", "granted", 404),  # reads every grant, extends none
    Case("extend", "member01", "ended", 409),
    Case("revoke", "admin01", "granted", None),
    Case("revoke", "member01", "granted", 403),  # holders release; only admins revoke
    Case("revoke", "admin01", "ended", 409),
]


def arrange(core: Core, clock: ManualClock, state: str) -> tuple[int, int | None]:
    """A request (and its grant) of member01's in `state`, through the services."""
    request_id = core.workflow.file(MEMBER, draft()).id
    if state == "past_deadline":  # nobody decided in time; the sweeper has not run yet
        clock.set(core.workflow.get(MEMBER, request_id).decide_by)
    if state in ("pending", "past_deadline"):
        return request_id, None
    grant = core.workflow.approve(LEADER, request_id, "ok").grant
    assert grant is not None
    if state == "ended":
        core.grants.revoke(ADMIN, grant.id, "incident 7")
    return request_id, grant.id


def attempt(api: TestClient, case: Case, thing_id: int, headers: dict[str, str]) -> int:
    """The viewer tries the action through the API; the server's status code."""
    body = {
        "reject": {"comment": "no"},
        "revoke": {"reason": "no longer needed"},
        "extend": {"for": "1h", "reason": "the work overran"},
    }
    kind = "grants" if case.on_grant else "requests"
    path = f"/api/v1/{kind}/{thing_id}/{case.action}"
    return api.post(path, json=body.get(case.action, {}), headers=headers).status_code


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.action}-{c.viewer}-{c.state}")
def test_the_button_the_api_field_and_the_answer_agree(
    case: Case,
    core: Core,
    clock: ManualClock,
    people: People,
    sign_in: SignIn,
    app_client: Callable[[], TestClient],
) -> None:
    request_id, grant_id = arrange(core, clock, case.state)
    thing_id = grant_id if case.on_grant else request_id
    assert thing_id is not None
    headers = people.headers(case.viewer)  # (the API's login first: each code counts once)
    page = sign_in(case.viewer).get(f"/requests/{request_id}")
    assert page.status_code == 200
    form = f'action="/{"grants" if case.on_grant else "requests"}/{thing_id}/{case.action}"'

    api = app_client()
    shown = api.get(f"/api/v1/requests/{request_id}", headers=headers).json()
    offered = (shown["grant"] if case.on_grant else shown)["allowed_actions"]
    if case.on_grant:  # the grant's own resource says the same as the request's copy
        alone = api.get(f"/api/v1/grants/{thing_id}", headers=headers).json()
        assert alone["allowed_actions"] == offered

    may = case.refusal is None
    assert (form in page.text) is may
    assert (case.action in offered) is may
    done = 201 if case.action == "extend" else 200  # an extension files a request
    assert attempt(api, case, thing_id, headers) == (done if may else case.refusal)


def test_the_to_approve_list_is_what_the_viewer_may_decide(
    core: Core, clock: ManualClock, people: People, app_client: Callable[[], TestClient]
) -> None:
    """The "waiting for me" list and the actions on each row are the same rule."""
    fresh = core.workflow.file(MEMBER, draft()).id
    api = app_client()
    leader = people.headers("leader01")
    listed = api.get("/api/v1/requests", params={"to_approve": True}, headers=leader).json()
    assert [(r["id"], r["allowed_actions"]) for r in listed] == [(fresh, ["approve", "reject"])]
    mine = api.get("/api/v1/requests", params={"mine": True}, headers=people.headers("member01"))
    assert [r["allowed_actions"] for r in mine.json()] == [["cancel"]]

    clock.set(core.workflow.get(MEMBER, fresh).decide_by)  # too late to decide it
    late = people.headers("leader02")
    assert api.get("/api/v1/requests", params={"to_approve": True}, headers=late).json() == []

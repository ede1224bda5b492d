"""A level passes by itself while the person it grants is on call in PagerDuty (a contract test
against tests/pagerduty_standin.py, driven by PagerDuty's own client): recorded as a decision
by sekisho:on-call naming the schedule and the shift; not on call, another escalation level,
or PagerDuty unable to say: the level waits for a person, and the timeline says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flows import audit_rows, file, load_model

from pagerduty_standin import PagerDutyStandIn, Shift, running_pagerduty
from sekisho.bootstrap import Core
from sekisho.domain.errors import InvalidModel
from sekisho.domain.extensions import ExtensionDraft
from sekisho.domain.requests import RequestStatus
from support import EXAMPLE_TEXT, MEMBER, MEMBER2

LEVEL = """    approval:
      - approvers: ChangeApprovalGroup
        min_approvals: 1
"""
SCHEDULE, TOKEN = "PI7DH85", "y_NbAkKc66ryYTWUXYEu"


def on_call_model(api_url: str, ca_file: str = "", levels: str = "[1]") -> str:
    assert LEVEL in EXAMPLE_TEXT
    rule = f"{{on_call: {SCHEDULE}, escalation_levels: {levels}}}"
    passes = LEVEL + f"        auto_approve: {rule}\n"
    trust = f", ca_file: {ca_file}" if ca_file else ""
    source = f"{{token_env: SEKISHO_PAGERDUTY_TOKEN, api_url: {api_url}{trust}}}"
    return EXAMPLE_TEXT.replace(LEVEL, passes, 1) + f"\non_call:\n  pagerduty: {source}\n"


@pytest.fixture
def pagerduty(
    core: Core, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[PagerDutyStandIn]:
    monkeypatch.setenv("SEKISHO_PAGERDUTY_TOKEN", TOKEN)
    shifts = [
        Shift(SCHEDULE, "Member01@example.com", 1),  # PagerDuty's case, not the model's
        Shift(SCHEDULE, "member02@example.com", 2),
    ]
    with running_pagerduty(TOKEN, shifts, tmp_path) as standin:
        load_model(core, on_call_model(standin.url, standin.ca_file))
        yield standin


def timeline(view: object) -> list[str]:
    return [t.message for t in view.timeline]  # type: ignore[attr-defined]


def test_the_person_on_call_is_let_in_without_waking_an_approver(
    core: Core, pagerduty: PagerDutyStandIn
) -> None:
    view = file(core)
    assert view.status == RequestStatus.SUCCEEDED
    [decision] = view.decisions
    assert decision.approver == "sekisho:on-call"
    assert f"on call now in PagerDuty schedule {SCHEDULE} (escalation level 1" in decision.comment
    assert "2026-12-01T09:00:00Z to 2027-01-01T09:00:00Z" in decision.comment
    assert any("on call now in PagerDuty" in line for line in timeline(view))
    [asked] = pagerduty.asked
    assert asked["schedule_ids[]"] == [SCHEDULE]
    assert asked["include[]"] == ["users"]
    approved = [r for r in audit_rows(core, view.id) if r.action == "request.approved"]
    assert [r.actor for r in approved] == ["sekisho:on-call"]


def test_not_on_call_at_that_level_waits_for_a_person_and_says_why(
    core: Core, pagerduty: PagerDutyStandIn
) -> None:
    view = file(core, MEMBER2)  # on call, but at escalation level 2
    assert view.status == RequestStatus.PENDING_APPROVAL
    assert view.decisions == []
    assert any(
        f"did not pass on call: not on call now in PagerDuty schedule {SCHEDULE}" in line
        for line in timeline(view)
    )


@pytest.mark.parametrize("failure", ["refused", "down", "error"])
def test_pagerduty_unable_to_say_never_approves(
    core: Core, pagerduty: PagerDutyStandIn, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    if failure == "refused":
        monkeypatch.setenv("SEKISHO_PAGERDUTY_TOKEN", "a-revoked-key")
    elif failure == "down":
        load_model(core, on_call_model("https://127.0.0.1:9", pagerduty.ca_file))
    else:
        pagerduty.failing = 500
    view = file(core, MEMBER)
    assert view.status == RequestStatus.PENDING_APPROVAL
    assert any("PagerDuty could not say" in line for line in timeline(view))


def test_any_escalation_level_when_the_level_names_none(
    core: Core, pagerduty: PagerDutyStandIn
) -> None:
    load_model(core, on_call_model(pagerduty.url, pagerduty.ca_file, levels="[]"))
    assert file(core, MEMBER2).status == RequestStatus.SUCCEEDED


def test_a_level_that_passes_on_call_needs_pagerduty_over_https_and_its_id(core: Core) -> None:
    text = on_call_model("https://api.pagerduty.com").split("\non_call:")[0]
    with pytest.raises(InvalidModel) as caught:
        load_model(core, text)
    assert {p.rule for p in caught.value.problems} == {"pagerduty_not_configured"}
    with pytest.raises(InvalidModel) as bad_id:
        load_model(core, on_call_model("https://api.pagerduty.com").replace(SCHEDULE, "daily", 1))
    assert {p.rule for p in bad_id.value.problems} == {"pagerduty_id_format"}
    with pytest.raises(InvalidModel) as plain:
        load_model(core, on_call_model("http://127.0.0.1:9"))
    assert {p.rule for p in plain.value.problems} == {"insecure_transport"}


def test_an_extension_passes_on_call_too(core: Core, pagerduty: PagerDutyStandIn) -> None:
    """The on-call engineer asks for more time mid-incident: nobody is woken for that either."""
    first = file(core, duration="1h")
    assert first.grant is not None
    more = core.workflow.extend(
        MEMBER, first.grant.id, ExtensionDraft("still fixing", duration="1h")
    )
    assert more.status == RequestStatus.SUCCEEDED
    assert [d.approver for d in more.decisions] == ["sekisho:on-call"]

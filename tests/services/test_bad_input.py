"""Bad input gets a clear error naming the field and the rule, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flows import counts, file, granted, invalid, refused

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor
from sekisho.domain.errors import Forbidden, InvalidInput, NotEligible
from sekisho.domain.requests import RequestStatus
from support import ADMIN, AUDITOR, INFO, LEADER, MEMBER

# The clock starts at 2026-11-29 09:00 UTC (18:00 in Asia/Tokyo); AddUserToGroup allows 8h.


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        # The end must be in the future ...
        ({"until": "2026-11-29T08:00:00Z"}, "until", "in_future"),
        ({"until": "2026-11-29T09:00:00Z"}, "until", "in_future"),
        ({"until": "202611291700"}, "until", "in_future"),  # 17:00 Tokyo = 08:00 UTC
        # ... and within the template's maximum.
        ({"duration": "8h1m"}, "for", "max_duration"),
        ({"duration": "2d"}, "for", "max_duration"),
        ({"until": "2026-11-29T17:00:01Z"}, "until", "max_duration"),
        ({"until": "202611300201"}, "until", "max_duration"),  # 02:01 Tokyo: 8h1m
        ({"start": "2026-11-29T10:00:00Z", "duration": "8h30m"}, "for", "max_duration"),
        # The start comes before the end, and is not in the past.
        (
            {"start": "2026-11-29T12:00:00Z", "until": "2026-11-29T11:00:00Z"},
            "start",
            "start_before_end",
        ),
        (
            {"start": "2026-11-29T11:00:00Z", "until": "2026-11-29T11:00:00Z"},
            "start",
            "start_before_end",
        ),
        ({"start": "2026-11-29T08:00:00Z", "duration": "1h"}, "start", "in_future"),
        # Malformed times and durations.
        ({"until": "tomorrow"}, "until", "time_format"),
        ({"until": "202613011200"}, "until", "time_format"),  # month 13
        ({"until": "202611292460"}, "until", "time_format"),
        ({"until": "2026-11-29 25:00"}, "until", "time_format"),
        ({"until": "\x1b[31m2026-11-29T11:00Z"}, "until", "time_format"),
        ({"start": "soon", "duration": "1h"}, "start", "time_format"),
        # Times at the edges of what a computer can represent are refused, not a crash.
        ({"until": "0001-01-01T00:00"}, "until", "time_range"),  # read in Tokyo: before year 1
        ({"until": "000101010000"}, "until", "time_range"),
        ({"until": "9999-12-31T23:59-12:00"}, "until", "time_range"),
        ({"start": "0001-01-01T00:00", "duration": "1h"}, "start", "time_range"),
        ({"start": "9999-12-31T23:00:00Z", "duration": "2h"}, "start", "time_range"),
        ({"duration": "2x"}, "for", "duration_format"),
        ({"duration": "-1h"}, "for", "duration_format"),
        ({"duration": "1.5h"}, "for", "duration_format"),
        ({"duration": "0m"}, "for", "duration_positive"),
        ({"duration": "400d"}, "for", "duration_range"),
        ({"duration": "9" * 30 + "d"}, "for", "duration_range"),
        # Exactly one of --until and --for.
        ({"until": "2026-11-29T11:00:00Z", "duration": "2h"}, "until", "one_of_until_or_for"),
        ({"until": None, "duration": None}, "until", "one_of_until_or_for"),
        ({"until": "", "duration": ""}, "until", "one_of_until_or_for"),
    ],
)
def test_bad_times(core: Core, fields: dict[str, object], field: str, rule: str) -> None:
    given: dict[str, object] = {"duration": None, **fields}
    if "until" not in fields and "duration" not in fields:
        given["duration"] = "2h"
    with invalid(core, field, rule):
        file(core, **given)


def test_limits_themselves_are_allowed(core: Core) -> None:
    """The edges pass: exactly the maximum, a reason of exactly 4000 characters, new lines."""
    longest = file(core, duration="8h")
    assert longest.status == RequestStatus.PENDING_APPROVAL
    core.workflow.cancel(MEMBER, longest.id)
    long = file(core, reason="x" * 3990 + "\nline two")
    assert len(long.reason) == 3999
    core.workflow.cancel(MEMBER, long.id)
    exact = file(core, duration=None, until="202611300200")  # 02:00 Tokyo next day: 8h
    assert exact.end_at is not None
    assert exact.end_at.isoformat() == "2026-11-29T17:00:00+00:00"


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"template": "NoSuchTemplate"}, "template", "unknown_template"),
        ({"group": "NoSuchGroup"}, "group", "unknown_group"),
        ({"group": "MemberGroup"}, "group", "work_group_only"),
        ({"group": "JumpAdminGroup"}, "group", "work_group_only"),
    ],
)
def test_unknown_or_wrong_names(
    core: Core, fields: dict[str, object], field: str, rule: str
) -> None:
    with invalid(core, field, rule):
        file(core, **fields)


def test_unknown_user(core: Core) -> None:
    with invalid(core, "user", "unknown_user"):
        file(core, ADMIN, user="ghost")


def test_every_unknown_name_is_reported_at_once(core: Core) -> None:
    with invalid(core, "template", "unknown_template") as caught:
        file(core, ADMIN, template="Nope", group="Nada", user="nobody")
    assert [(p.field, p.rule) for p in caught.value.problems] == [
        ("template", "unknown_template"),
        ("group", "unknown_group"),
        ("user", "unknown_user"),
    ]


@pytest.mark.parametrize(
    ("actor", "fields"),
    [
        (MEMBER, {"group": "ProdLeaderWorkGroup"}),  # members may ask for the member group only
        (AUDITOR, {}),  # auditors may ask for nothing
        (ADMIN, {"user": "member01", "group": "ProdLeaderWorkGroup"}),  # the subject counts
    ],
)
def test_groups_the_requester_may_not_request(
    core: Core, actor: Actor, fields: dict[str, object]
) -> None:
    with refused(core, NotEligible) as caught:
        file(core, actor, **fields)
    assert "may not request" in caught.value.message


@pytest.mark.parametrize(
    ("actor", "user"), [(MEMBER, "member02"), (LEADER, "member01"), (AUDITOR, "member01")]
)
def test_filing_for_someone_else_needs_an_admin(core: Core, actor: Actor, user: str) -> None:
    with refused(core, Forbidden, match="only for yourself"):
        file(core, actor, user=user)


# -- text: length and control characters ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"reason": "x" * 4001}, "reason", "max_length"),
        ({"reason": "fix \x1b[31mred\x1b[0m"}, "reason", "no_control_characters"),
        ({"reason": "fix\x00it"}, "reason", "no_control_characters"),
        ({"reason": "rename \u202egnp.exe"}, "reason", "no_control_characters"),  # bidi override
        ({"reason": ""}, "reason", "required"),
        ({"reason": "  \n\t "}, "reason", "required"),
        (
            {"info": {**INFO, "change": "\x1b[2J wipe the screen"}},
            "info.change",
            "no_control_characters",
        ),
        ({"info": {**INFO, "plan": "y" * 4001}}, "info.plan", "max_length"),
        ({"info": {**INFO, "notes": "x"}}, "info.notes", "unknown_section"),
        ({"info": {k: v for k, v in INFO.items() if k != "rollback"}}, "info.rollback", "required"),
        ({"info": {**INFO, "target": "   "}}, "info.target", "required"),
        ({"info": {}}, "info.change", "required"),
        ({"params": {"ticket": "chg-12"}}, "param.ticket", "pattern"),
        ({"params": {"ticket": "CHG-12 and more"}}, "param.ticket", "pattern"),
        ({"params": {"ticket": "CHG-1\n"}}, "param.ticket", "no_control_characters"),
        ({"params": {"ticket": "CHG-" + "1" * 200}}, "param.ticket", "max_length"),
        ({"params": {"priority": "high"}}, "param.priority", "unknown_parameter"),
    ],
)
def test_bad_text(core: Core, fields: dict[str, object], field: str, rule: str) -> None:
    with invalid(core, field, rule):
        file(core, **fields)


def test_good_parameters_and_optional_sections_are_kept(core: Core) -> None:
    request = file(
        core,
        params={"ticket": "CHG-1234"},
        info={k: v for k, v in INFO.items() if k not in ("impact", "plan")},
    )
    assert request.params == {"ticket": "CHG-1234"}
    assert set(request.change_info) == {"target", "change", "rollback"}


@pytest.mark.parametrize(
    ("comment", "rule"),
    [("ok \x1b[31m", "no_control_characters"), ("c" * 4001, "max_length")],
)
def test_bad_comment_on_a_decision(core: Core, comment: str, rule: str) -> None:
    request = file(core)
    with invalid(core, "comment", rule):
        core.workflow.approve(LEADER, request.id, comment)
    with invalid(core, "comment", rule):
        core.workflow.reject(LEADER, request.id, comment)
    assert core.workflow.get(MEMBER, request.id).status == RequestStatus.PENDING_APPROVAL


def test_bad_revoke_reason(core: Core) -> None:
    done = granted(core)
    assert done.grant is not None
    with invalid(core, "reason", "no_control_characters"):
        core.grants.revoke(ADMIN, done.grant.id, "because\x1b]0;pwned\x07")
    with invalid(core, "reason", "max_length"):
        core.grants.revoke(ADMIN, done.grant.id, "r" * 4001)


def test_a_refused_request_leaves_nothing_behind(core: Core) -> None:
    """After a run of refusals the database is exactly as before, and a good request works."""
    before = counts(core)
    attempts: list[dict[str, Any]] = [
        {"until": "yesterday"},
        {"group": "MemberGroup"},
        {"reason": "\x1b[5mblink"},
        {"params": {"ticket": "nope"}},
        {"group": "ProdLeaderWorkGroup"},
    ]
    for fields in attempts:
        with pytest.raises((InvalidInput, NotEligible)):
            file(core, **fields)
    assert counts(core) == before
    assert file(core).status == RequestStatus.PENDING_APPROVAL
    assert counts(core)["requests"] == before["requests"] + 1

"""`sekisho request create --emergency`, the badge in `request list/show`, `request review`,
and `audit emergencies`; each refusal exits 1 with the reason."""

from __future__ import annotations

import json
from datetime import timedelta

from test_cli import CREATE, Run, login

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from support import ADMIN, EXAMPLE_TEXT, example_with_emergency

EMERGENCY = [*CREATE, "--emergency", "--for", "1h"]


def test_an_emergency_by_cli_is_badged_reviewed_and_counted(
    cli: Run, core: Core, server: str, clock: ManualClock
) -> None:
    # Reviewed within 30m, so that the overdue badge shows while the sign-ins (1h) hold.
    text = example_with_emergency("{max_duration: 1h, review_within: 30m}")
    core.models.load(text, "emergency.yaml", ADMIN)
    for name in ("member01", "leader01", "auditor01"):
        login(cli, core, server, name)
    filed = cli(*EMERGENCY, "--param", "ticket=INC-42", who="member01")
    assert filed.code == 0, filed.err
    assert "filed: succeeded" in filed.out
    assert "EMERGENCY: approvers alerted; review due by" in filed.out
    listed = cli("request", "list", "--emergency", who="leader01")
    assert "EMERGENCY succeeded" in listed.out
    clock.advance(timedelta(minutes=31))
    shown = cli("request", "show", "1", who="leader01")
    assert "EMERGENCY: granted at once without an approver; review OVERDUE since" in shown.out
    assert "review: sekisho request review 1 --comment TEXT" in shown.out

    reviewed = cli("request", "review", "1", "--comment", "justified", who="leader01")
    assert reviewed.code == 0, reviewed.err
    assert "emergency #1 reviewed by leader01" in reviewed.out
    shown = cli("request", "show", "1", who="leader01")
    assert "reviewed by leader01 at" in shown.out
    assert "justified" in shown.out
    again = cli("request", "review", "1", "--comment", "again", who="leader01")
    assert again.code == 1
    assert "was reviewed by leader01" in again.err

    counted = cli("audit", "emergencies", "--json", who="auditor01")
    assert counted.code == 0, counted.err
    assert [(c["user"], c["uses"], c["reviewed"]) for c in json.loads(counted.out)] == [
        ("member01", 1, 1)
    ]
    table = cli("audit", "emergencies", who="auditor01")
    assert "Emergency use" in table.out
    assert "member01" in table.out
    denied = cli("audit", "emergencies", who="member01")
    assert denied.code == 1


def test_bad_emergencies_by_cli_exit_1_and_say_why(cli: Run, core: Core, server: str) -> None:
    core.models.load(example_with_emergency(), "emergency.yaml", ADMIN)
    login(cli, core, server, "member01")
    no_ticket = cli(*EMERGENCY, who="member01")
    assert no_ticket.code == 1
    assert "param.ticket" in no_ticket.err
    too_long = cli(*CREATE, "--emergency", "--for", "3h", "--param", "ticket=INC-1", who="member01")
    assert too_long.code == 1
    assert "an emergency with AddUserToGroup grants at most 1h" in too_long.err
    self_review = cli(*EMERGENCY, "--param", "ticket=INC-42", who="member01")
    assert self_review.code == 0, self_review.err
    own = cli("request", "review", "1", "--comment", "fine", who="member01")
    assert own.code == 1
    assert "nobody reviews an emergency they filed" in own.err
    core.models.load(EXAMPLE_TEXT, "plain.yaml", ADMIN)
    plain = cli(*EMERGENCY, "--param", "ticket=INC-43", who="member01")
    assert plain.code == 1
    assert "has no emergency section" in plain.err

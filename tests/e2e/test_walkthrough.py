"""The README's walkthroughs, run as a new user would: `sekisho demo`, then the script."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo_support import run_script, running_demo


@pytest.mark.realtime
def test_demo_and_walkthrough_reproduce_the_seed(tmp_path: Path) -> None:
    # The steps before the forward must fit in the grant on a busy machine.
    with running_demo(tmp_path, DURATION="15s") as (env, printed):
        output = run_script("examples/walkthrough.sh", env)
    for expected in (
        "DENIED member01 assume prod/Prod_MemberRole",
        "approved at level 1: OK, go ahead",
        "add_user_to_group: added member01 to ProdMemberWorkGroup",
        "ALLOWED member01 assume prod/Prod_MemberRole",
        "<title>Payment admin console</title>",
        "access ended at",
        "grant #1 ended (expired)",
        "the console is no longer reachable",
        "chain consistent",
    ):
        assert expected in output, expected
    # Denied before, allowed during, denied again after the end.
    assert output.count("DENIED member01 assume prod/Prod_MemberRole") == 2
    assert "sekisho demo" in printed[0]
    assert "as leader01 request approve 1" in printed[0]


def test_the_incident_walkthrough_locks_member01_out_of_every_path(tmp_path: Path) -> None:
    """README "Incident: a stolen laptop": two grants and a live forward, one lock."""
    with running_demo(tmp_path) as (env, _printed):
        output = run_script("examples/incident.sh", env)
    stolen = "locked by security01: laptop stolen"
    for expected in (
        "<title>Payment admin console</title>",
        f"LOCKED member01 (lock #1, until unlocked): {stolen}",
        "ended grants #1, #2",
        "ended 1 login(s)",
        "access ended at",  # the forward's last line ...
        f": {stolen}",  # ... says why
        "the console is no longer reachable",
        f"DENIED member01 connect prod-admin-console: {stolen}",
        f"DENIED member01 assume prod/Prod_MemberRole: {stolen}",
        f"denied: {stolen}",  # the login, and the request on member01's behalf
        "lock.placed",
        "grant.revoked",
        "auth.login_locked",
        "lock #1 on member01 removed",
    ):
        assert expected in output, expected
    assert output.count(f"denied: {stolen}") >= 2
    # After the unlock: nothing came back (denied, no longer by the lock).
    assert "DENIED member01 assume prod/Prod_MemberRole: no active grant" in output

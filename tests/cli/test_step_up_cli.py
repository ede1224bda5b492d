"""`sekisho request approve` where the template asks for a fresh step-up: refused, exit 1, with
the way to get one; after signing in again it acts."""

from __future__ import annotations

import json
from datetime import timedelta

from test_cli import CREATE, Run, enroll, login

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from support import ADMIN, code_for, example_with_step_up


def test_an_approval_needing_a_fresh_sign_in_says_how_and_acts_after_one(
    cli: Run, core: Core, server: str, clock: ManualClock
) -> None:
    text = example_with_step_up("{within: 5m, factor: mfa}")
    core.models.load(text, "step-up.yaml", ADMIN)
    login(cli, core, server, "member01")
    filed = cli(*CREATE, "--for", "1h", "--json", who="member01")
    assert filed.code == 0, filed.err
    request_id = json.loads(filed.out)["id"]
    password, secret = enroll(core, "leader01")

    def sign_in() -> None:
        args = ("--server", server, "login", "--user", "leader01", "--password-stdin")
        code = code_for(core, secret)
        done = cli(*args, "--otp", code, who="leader01", stdin=password + "\n")
        assert done.code == 0, done.err

    sign_in()
    shown = cli("request", "show", str(request_id), who="leader01")
    assert f"approve: sekisho request approve {request_id}  (needs a multi-factor" in shown.out
    clock.advance(timedelta(minutes=6))

    stale = cli("request", "approve", str(request_id), who="leader01")
    assert stale.code == 1
    assert "needs a multi-factor sign-in or a passkey within the last 5m" in stale.err
    assert "sign in again" in stale.err

    sign_in()  # a new password + TOTP sign-in (the clock moved on: a new code)
    fresh = cli("request", "approve", str(request_id), who="leader01")
    assert fresh.code == 0, fresh.err
    assert "succeeded" in fresh.out


def test_fresh_is_for_the_browser_sign_in(cli: Run, server: str) -> None:
    refused = cli("--server", server, "login", "--fresh", who="leader01")
    assert refused.code == 1
    assert "--fresh works with --sso" in refused.err

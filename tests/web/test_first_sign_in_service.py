"""`IdentityService.first_sign_in_uri`: the QR code at first sign-in, and nothing more."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.config import Settings
from sekisho.domain.errors import AuthenticationFailed, LoginThrottled
from sekisho.store.tables import AuditRow
from support import ADMIN, People, code_for

SOURCE = "203.0.113.5"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A real refusal delay (recorded, not slept: the core's sleep is a list's append).
    return Settings(data_dir=tmp_path / "data", login_failure_delay=1.0, lockout_threshold=3)


def audit_actions(core: Core) -> list[tuple[str, str]]:
    with core.db.read() as s:
        return [(r.action, r.outcome) for r in s.scalars(select(AuditRow).order_by(AuditRow.seq))]


def test_the_uri_comes_after_the_password_and_is_audited(core: Core, sleeps: list[float]) -> None:
    password, secret = People(core).enroll("member01")
    uri = core.identity.first_sign_in_uri("member01", password, SOURCE)
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret
    assert parsed.issuer == "sekisho"
    assert parsed.name == "member01"
    assert audit_actions(core)[-1] == ("auth.totp_setup", "ok")
    assert sleeps == []
    # Until a code is accepted it may be shown again (the first scan may have failed).
    assert core.identity.first_sign_in_uri("member01", password, SOURCE) == uri


def test_a_wrong_password_is_refused_like_a_failed_login(core: Core, sleeps: list[float]) -> None:
    People(core).enroll("member01")
    for _ in (1, 2):
        with pytest.raises(AuthenticationFailed, match="wrong user, password or code"):
            core.identity.first_sign_in_uri("member01", "guess", SOURCE)
    assert sleeps == [1.0, 1.0]
    assert audit_actions(core)[-1] == ("auth.login_failed", "denied")
    with pytest.raises(AuthenticationFailed):  # the third failure pauses this name from here
        core.identity.first_sign_in_uri("member01", "guess", SOURCE)
    with pytest.raises(LoginThrottled):
        core.identity.first_sign_in_uri("member01", "guess", SOURCE)
    assert audit_actions(core)[-1] == ("auth.login_refused", "denied")


def test_an_unknown_user_gets_the_same_refusal(core: Core, sleeps: list[float]) -> None:
    with pytest.raises(AuthenticationFailed, match="wrong user, password or code"):
        core.identity.first_sign_in_uri("nobody", "x", SOURCE)
    assert sleeps == [1.0]
    assert audit_actions(core)[-1] == ("auth.login_failed", "denied")


def test_once_a_code_was_accepted_the_secret_is_never_shown_again(
    core: Core, sleeps: list[float]
) -> None:
    password, secret = People(core).enroll("member01")
    core.identity.login("member01", password, code_for(core, secret), SOURCE)
    with pytest.raises(AuthenticationFailed, match="wrong user, password or code"):
        core.identity.first_sign_in_uri("member01", password, SOURCE)
    # Refused exactly like a wrong password (same message, same delay, and counted), so it
    # tells a password guesser nothing, not even by when the pause comes.
    assert sleeps == [1.0]
    assert audit_actions(core)[-1] == ("auth.totp_setup_refused", "denied")
    for _ in range(core.settings.lockout_threshold - 1):
        with pytest.raises(AuthenticationFailed, match="wrong user, password or code"):
            core.identity.first_sign_in_uri("member01", password, SOURCE)
    with pytest.raises(LoginThrottled):
        core.identity.first_sign_in_uri("member01", password, SOURCE)


def test_re_enrolment_shows_the_new_secret(core: Core, sleeps: list[float]) -> None:
    people = People(core)
    password, secret = people.enroll("member01")
    core.identity.login("member01", password, code_for(core, secret), SOURCE)
    again = core.identity.enroll(ADMIN, "member01")
    uri = core.identity.first_sign_in_uri("member01", again.password, SOURCE)
    assert pyotp.parse_uri(uri).secret == again.totp_secret

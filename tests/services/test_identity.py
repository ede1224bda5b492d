"""Identity: enrolment, password + TOTP login, lockout, short-lived revocable tokens, no leaks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from flows import actions, audit_rows, counts, granted, invalid, refused
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.domain.errors import AuthenticationFailed, Forbidden, LoginThrottled
from sekisho.domain.identity import Enrolment, IssuedToken
from sekisho.services.events import Event
from sekisho.store.tables import Base, LoginThrottleRow
from support import ADMIN, AUDITOR, LEADER, MEMBER, code_for

DELAY = 1.5
SOURCE = "203.0.113.5"
REFUSAL = "wrong user, password or code"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The shared settings, but with a failure delay, so a refusal asks for one."""
    return Settings(
        data_dir=tmp_path / "data",
        login_failure_delay=DELAY,
        end_retry_first=timedelta(seconds=2),
    )


@pytest.fixture
def member(core: Core) -> Enrolment:
    return core.identity.enroll(ADMIN, "member01")


def login(
    core: Core, who: Enrolment, *, password: str | None = None, code: str | None = None
) -> IssuedToken:
    return core.identity.login(
        who.user,
        who.password if password is None else password,
        code_for(core, who.totp_secret) if code is None else code,
        SOURCE,
    )


def next_step(clock: ManualClock) -> None:
    """Move to the next TOTP step: each code is good once."""
    clock.advance(timedelta(seconds=30))


# -- enrolment --------------------------------------------------------------------------------


def test_enrolment_hands_out_a_password_and_totp_secret(core: Core, member: Enrolment) -> None:
    assert member.user == "member01"
    assert len(member.password) >= 16
    totp = pyotp.parse_uri(member.otpauth_uri)
    assert totp.secret == member.totp_secret
    assert "issuer=sekisho" in member.otpauth_uri
    assert "member01" in member.otpauth_uri
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.actor, entry.subject, entry.detail["status"]) == (
        "user.enrolled",
        "admin01",
        "member01",
        "enrolled",
    )


def test_enrolment_needs_an_admin(core: Core) -> None:
    """Enrolling someone hands over their credentials: a member must not do it."""
    with refused(core, Forbidden):
        core.identity.enroll(MEMBER, "leader01")
    with refused(core, Forbidden):
        core.identity.enroll(LEADER, "leader01")


def test_enrolment_of_unknown_users(core: Core) -> None:
    with invalid(core, "user", "unknown_user"):
        core.identity.enroll(ADMIN, "nobody")
    with invalid(core, "user", "name_format"):
        core.identity.enroll(ADMIN, "bad name\x1b")


def test_re_enrolment_replaces_credentials_and_ends_sessions(
    core: Core, clock: ManualClock, member: Enrolment
) -> None:
    token = login(core, member).token
    assert core.identity.authenticate(token).name == "member01"
    again = core.identity.enroll(ADMIN, "member01")
    assert again.password != member.password
    assert again.totp_secret != member.totp_secret
    assert audit_rows(core)[-1].detail["status"] == "re-enrolled"
    with pytest.raises(AuthenticationFailed):
        core.identity.authenticate(token)
    next_step(clock)
    with pytest.raises(AuthenticationFailed):
        login(core, member)  # the old password and secret are gone
    next_step(clock)
    assert login(core, again).user == "member01"


def test_gateways_hear_that_a_re_enrolment_ended_the_old_logins(
    core: Core, member: Enrolment
) -> None:
    heard: list[Event] = []
    core.bus.subscribe(heard.append)
    core.identity.enroll(ADMIN, "member02")  # a first enrolment ends no login
    core.identity.enroll(ADMIN, "member01")
    assert [(e.name, e.user, e.data) for e in heard] == [
        ("tokens.revoked", "member01", {"reason": "credentials re-issued"})
    ]


# -- login ------------------------------------------------------------------------------------


def test_login_gives_a_short_lived_token(
    core: Core, clock: ManualClock, member: Enrolment, sleeps: list[float]
) -> None:
    issued = login(core, member)
    assert issued.token.startswith("sks_")
    assert issued.expires_at == clock.now() + core.settings.token_ttl
    principal = core.identity.authenticate(issued.token)
    assert (principal.name, principal.expires_at) == ("member01", issued.expires_at)
    assert sleeps == []  # only refusals are slowed down
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.actor, entry.source) == ("auth.login", "member01", SOURCE)


def test_code_from_the_neighbouring_step_is_accepted(
    core: Core, clock: ManualClock, member: Enrolment
) -> None:
    """One step of clock drift between the phone and the server is tolerated."""
    assert login(core, member, code=code_for(core, member.totp_secret, -1)).user == "member01"


@pytest.mark.parametrize(
    "wrong",
    ["password", "code", "user", "code-format", "far-code", "full-width-code", "long-name"],
)
def test_every_refusal_looks_the_same(
    core: Core, member: Enrolment, sleeps: list[float], wrong: str
) -> None:
    before = len(actions(core))
    name, password = "member01", member.password
    code = code_for(core, member.totp_secret)
    if wrong == "password":
        password = member.password + "x"
    elif wrong == "code":
        code = f"{(int(code) + 1) % 1_000_000:06d}"
    elif wrong == "user":
        name = "nobody"
    elif wrong == "code-format":
        code = "12ab56"
    elif wrong == "full-width-code":
        # The right code typed with an IME's full-width digits: refused like any wrong code.
        code = code.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})
    elif wrong == "long-name":
        name = "m" * 5000
    else:
        code = code_for(core, member.totp_secret, 3)  # 90 seconds away
    with pytest.raises(AuthenticationFailed) as caught:
        core.identity.login(name, password, code, SOURCE)
    assert type(caught.value) is AuthenticationFailed
    assert caught.value.message == REFUSAL
    assert sleeps == [DELAY]
    entries = audit_rows(core)
    assert len(entries) == before + 1
    entry = entries[-1]
    assert (entry.action, entry.outcome, entry.source) == ("auth.login_failed", "denied", SOURCE)
    # The right credentials still work afterwards.
    assert login(core, member).user == "member01"


def test_unknown_user_refusal_is_audited_without_the_guess(core: Core, sleeps: list[float]) -> None:
    with pytest.raises(AuthenticationFailed, match=REFUSAL):
        core.identity.login("not-enrolled-yet", "pw", "123456", SOURCE)
    entry = audit_rows(core)[-1]
    assert entry.action == "auth.login_failed"
    assert entry.actor == "unknown"
    assert sleeps == [DELAY]


def test_a_model_user_who_never_enrolled_cannot_log_in(core: Core, sleeps: list[float]) -> None:
    with pytest.raises(AuthenticationFailed, match=REFUSAL):
        core.identity.login("member02", "", "000000", SOURCE)


def test_repeated_failures_pause_that_name_from_that_address(
    core: Core, clock: ManualClock, member: Enrolment, sleeps: list[float]
) -> None:
    threshold = core.settings.lockout_threshold
    for _ in range(threshold):
        with pytest.raises(AuthenticationFailed, match=REFUSAL):
            login(core, member, password="guess")
    assert "paused until" in audit_rows(core)[-1].detail["reason"]

    # Paused: even the right password and code are refused from there, delayed and audited.
    with pytest.raises(LoginThrottled) as caught:
        login(core, member)
    assert "try again after" in caught.value.message
    assert audit_rows(core)[-1].action == "auth.login_refused"
    assert sleeps == [DELAY] * (threshold + 1)
    # From anywhere else the user still signs in.
    elsewhere = core.identity.login(
        "member01", member.password, code_for(core, member.totp_secret), "198.51.100.200"
    )
    assert elsewhere.user == "member01"

    next_step(clock)
    clock.advance(core.settings.lockout_duration - timedelta(seconds=31))
    with pytest.raises(LoginThrottled):
        login(core, member)
    clock.advance(timedelta(seconds=1))
    issued = login(core, member)
    assert core.identity.authenticate(issued.token).name == "member01"


def test_an_ipv6_machine_is_one_address_however_it_rotates(
    core: Core, clock: ManualClock, member: Enrolment, sleeps: list[float]
) -> None:
    """Privacy addresses change within a /64: the guesser behind them stays one address."""
    for i in range(core.settings.lockout_threshold):
        with pytest.raises(AuthenticationFailed):
            core.identity.login("member01", "guess", "000000", f"2001:db8:1:2::{i + 1:x}")
    code = code_for(core, member.totp_secret)
    with pytest.raises(LoginThrottled):
        core.identity.login("member01", member.password, code, "2001:db8:1:2:ffff::9")
    assert core.identity.login("member01", member.password, code, "2001:db8:1:3::1").user


def test_quiet_counters_are_forgotten(
    core: Core, clock: ManualClock, member: Enrolment, sleeps: list[float]
) -> None:
    for name in ("ghost1", "ghost2", "member01"):
        with pytest.raises(AuthenticationFailed):
            core.identity.login(name, "guess", "000000", "192.0.2.1")
    assert throttle_rows(core) == 7  # a pair and a name each, and the one address
    clock.advance(core.settings.lockout_duration)
    login(core, member)
    assert throttle_rows(core) == 3  # only the counters this sign-in touched


def throttle_rows(core: Core) -> int:
    with core.db.read() as s:
        return s.scalar(select(func.count()).select_from(LoginThrottleRow)) or 0


def test_failures_below_the_threshold_are_forgiven_by_a_success(
    core: Core, clock: ManualClock, member: Enrolment
) -> None:
    for _ in range(core.settings.lockout_threshold - 1):
        with pytest.raises(AuthenticationFailed):
            login(core, member, password="guess")
    login(core, member)
    next_step(clock)
    with pytest.raises(AuthenticationFailed) as caught:
        login(core, member, password="guess")
    assert type(caught.value) is AuthenticationFailed  # not locked: the count started over
    next_step(clock)
    assert login(core, member).user == "member01"


def test_a_totp_code_is_accepted_once(
    core: Core, clock: ManualClock, member: Enrolment, sleeps: list[float]
) -> None:
    code = code_for(core, member.totp_secret)
    login(core, member, code=code)
    with pytest.raises(AuthenticationFailed, match=REFUSAL):
        login(core, member, code=code)
    # An older code is no good either once a newer one was used.
    with pytest.raises(AuthenticationFailed):
        login(core, member, code=code_for(core, member.totp_secret, -1))
    next_step(clock)
    assert login(core, member).user == "member01"


# -- tokens -----------------------------------------------------------------------------------


def test_tokens_expire(core: Core, clock: ManualClock, member: Enrolment) -> None:
    issued = login(core, member)
    clock.advance(core.settings.token_ttl - timedelta(seconds=1))
    assert core.identity.authenticate(issued.token).name == "member01"
    clock.advance(timedelta(seconds=1))
    with pytest.raises(AuthenticationFailed, match="expired"):
        core.identity.authenticate(issued.token)


def test_logout_revokes_the_token(core: Core, clock: ManualClock, member: Enrolment) -> None:
    first = login(core, member)
    next_step(clock)
    second = login(core, member)
    principal = core.identity.authenticate(first.token)
    core.identity.logout(principal, SOURCE)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        core.identity.authenticate(first.token)
    # Other sessions are not affected.
    assert core.identity.authenticate(second.token).name == "member01"
    assert audit_rows(core)[-1].action == "auth.logout"


def test_gateways_hear_of_a_logout_once(core: Core, member: Enrolment) -> None:
    principal = core.identity.authenticate(login(core, member).token)
    heard: list[Event] = []
    core.bus.subscribe(heard.append)
    core.identity.logout(principal, SOURCE)
    core.identity.logout(principal, SOURCE)  # revoked already: nothing more
    entry = audit_rows(core)[-1]
    assert (entry.action, entry.actor, entry.source, entry.subject) == (
        "auth.logout",
        "member01",
        SOURCE,
        "member01",
    )
    assert [(e.name, e.user, e.data) for e in heard] == [
        ("tokens.revoked", "member01", {"token_id": principal.token_id, "reason": "logged out"})
    ]
    assert actions(core).count("auth.logout") == 1


@pytest.mark.parametrize(
    "forged",
    ["", "sks_", "sks_" + "A" * 43, "Bearer sks_abc", "x" * 5000, "sks_" + "A" * 500],
)
def test_forged_tokens_are_refused(core: Core, member: Enrolment, forged: str) -> None:
    login(core, member)
    with pytest.raises(AuthenticationFailed):
        core.identity.authenticate(forged)


def test_a_token_of_a_user_removed_from_the_model_stops_working(
    core: Core, member: Enrolment
) -> None:
    from flows import EXAMPLE_TEXT, load_model

    issued = login(core, member)
    load_model(
        core,
        EXAMPLE_TEXT.replace(
            "  - { name: member01, display_name: Member One, email: member01@example.com }\n", ""
        ).replace("members: [member01, member02]", "members: [member02]"),
    )
    with pytest.raises(AuthenticationFailed):
        core.identity.authenticate(issued.token)


# -- who am I ---------------------------------------------------------------------------------


def test_whoami_shows_groups_and_live_grants(core: Core) -> None:
    me = core.identity.whoami(MEMBER)
    assert (me.user, me.groups, me.admin, me.auditor, me.grants) == (
        "member01",
        ["MemberGroup"],
        False,
        False,
        [],
    )
    done = granted(core)
    assert done.grant is not None
    assert [g.id for g in core.identity.whoami(MEMBER).grants] == [done.grant.id]
    assert core.identity.describe(AUDITOR, "member01").grants[0].group == "ProdMemberWorkGroup"
    with pytest.raises(Forbidden):
        core.identity.describe(LEADER, "member01")


# -- secrets never leak -----------------------------------------------------------------------


def test_secrets_never_reach_the_audit_trail_or_the_database_in_clear(
    core: Core, clock: ManualClock, member: Enrolment, sleeps: list[float]
) -> None:
    issued = login(core, member)
    code = code_for(core, member.totp_secret)
    next_step(clock)
    wrong = "hunter2-" + member.password[::-1]
    with pytest.raises(AuthenticationFailed):
        login(core, member, password=wrong)
    # A password typed into the name box: throttled by it, but never stored as typed.
    typed_as_name = "correct-horse-" + member.password
    with pytest.raises(AuthenticationFailed):
        core.identity.login(typed_as_name, "", "000000", SOURCE)
    principal = core.identity.authenticate(issued.token)
    core.identity.logout(principal, SOURCE)
    leader = core.identity.enroll(ADMIN, "leader01")

    secrets = [
        member.password,
        member.totp_secret,
        issued.token,
        issued.token.removeprefix("sks_"),
        wrong,
        typed_as_name,
        leader.password,
        leader.totp_secret,
    ]
    audit_text = "\n".join(
        repr([getattr(row, c.key) for c in row.__table__.columns]) for row in audit_rows(core)
    )
    assert audit_text
    for secret in secrets:
        assert secret not in audit_text
    assert not any(code in repr(row.detail) for row in audit_rows(core))
    # Nowhere else in the database either: passwords hashed, seeds sealed, tokens as SHA-256.
    with core.db.read() as s:
        everything = "\n".join(
            repr(list(row))
            for table in Base.metadata.sorted_tables
            for row in s.execute(select(table))
        )
    for secret in secrets:
        assert secret not in everything
    assert counts(core)["tokens"] == 1

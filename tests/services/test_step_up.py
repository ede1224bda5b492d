"""Step-up for decisions: a template may ask its approvers (or requesters) for a fresh passkey
or multi-factor proof; passkeys are registered and asserted on a signed-in session.

The passkey here is `SoftPasskey`, which answers exactly as a browser and a platform
authenticator do; tests/web/test_passkeys_browser.py does the same in Chromium."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flows import actions, audit_rows, file, load_model, refused, request_row

from passkey_authenticator import SoftPasskey
from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.domain.errors import InvalidInput, InvalidModel, StepUpRequired
from sekisho.domain.requests import RequestStatus
from sekisho.sso.passkeys import RelyingParty
from support import MEMBER2, People, example_with_step_up

ORIGIN = "http://localhost:8470"  # the default public URL's passkey origin (127.0.0.1 -> localhost)
with_step_up = example_with_step_up


def signed_in(core: Core, people: People, name: str) -> Actor:
    """`name` acting through a fresh session of their own, as the web UI and API make them."""
    people.tokens.pop(name, None)
    principal = core.identity.authenticate(people.token(name))
    return Actor(principal.name, "198.51.100.9", principal.token_id)


def register(core: Core, actor: Actor, key: SoftPasskey, name: str = "laptop") -> int:
    options = core.passkeys.begin_registration(actor, actor.name)
    return core.passkeys.register(actor, key.create(options), name)


def step_up(core: Core, actor: Actor, key: SoftPasskey) -> None:
    core.passkeys.step_up(actor, key.get(core.passkeys.begin_step_up(actor)))


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


@pytest.fixture
def passkey_model(core: Core) -> None:
    load_model(core, with_step_up("{within: 5m, factor: passkey}"))


@pytest.mark.usefixtures("passkey_model")
def test_an_approval_without_a_fresh_passkey_is_refused_and_says_how(
    core: Core, people: People
) -> None:
    leader = signed_in(core, people, "leader01")
    request = file(core)
    with refused(core, StepUpRequired, match="needs a passkey within the last 5m") as caught:
        core.workflow.approve(leader, request.id, "ok")
    assert f"request #{request.id}" in caught.value.message
    assert "register one under Passkeys" in caught.value.message
    # A rejection needs no step-up: saying no grants nothing.
    core.workflow.reject(leader, request.id, "not now")
    assert request_row(core, request.id).status == RequestStatus.REJECTED


@pytest.mark.usefixtures("passkey_model")
def test_a_passkey_asserted_on_the_session_lets_the_approval_act_and_the_audit_says_so(
    core: Core, people: People, clock: ManualClock
) -> None:
    leader, key = signed_in(core, people, "leader01"), SoftPasskey(ORIGIN)
    register(core, leader, key)
    request = file(core)
    clock.advance(timedelta(minutes=8))  # the sign-in alone would be stale by now
    step_up(core, leader, key)
    clock.advance(timedelta(minutes=4))
    view = core.workflow.approve(leader, request.id, "ok")
    assert view.status == RequestStatus.SUCCEEDED
    approved = next(r for r in audit_rows(core, request.id) if r.action == "request.approved")
    assert approved.detail["step_up"] == "passkey"
    assert {"passkey.registered", "auth.step_up"} <= set(actions(core))


@pytest.mark.usefixtures("passkey_model")
def test_a_step_up_goes_stale_and_belongs_to_its_session_only(
    core: Core, people: People, clock: ManualClock
) -> None:
    leader, key = signed_in(core, people, "leader01"), SoftPasskey(ORIGIN)
    register(core, leader, key)
    step_up(core, leader, key)
    clock.advance(timedelta(seconds=31))  # a new TOTP code for the second sign-in
    other_session = signed_in(core, people, "leader01")  # the same person, another login
    request = file(core)
    with pytest.raises(StepUpRequired):
        core.workflow.approve(other_session, request.id, "ok")
    clock.advance(timedelta(minutes=5, seconds=1))
    with pytest.raises(StepUpRequired):
        core.workflow.approve(leader, request.id, "ok")
    assert request_row(core, request.id).status == RequestStatus.PENDING_APPROVAL


@pytest.mark.usefixtures("passkey_model")
def test_a_stale_session_cannot_add_a_passkey(
    core: Core, people: People, clock: ManualClock
) -> None:
    """A stolen session cookie must not enrol the thief's authenticator."""
    leader = signed_in(core, people, "leader01")
    clock.advance(timedelta(minutes=11))
    with refused(core, StepUpRequired, match="sign in again"):
        core.passkeys.begin_registration(leader, "leader01")


@pytest.mark.usefixtures("passkey_model")
def test_bad_passkey_answers_are_refused_audited_and_prove_nothing(
    core: Core, people: People
) -> None:
    leader, key = signed_in(core, people, "leader01"), SoftPasskey(ORIGIN)
    register(core, leader, key)
    member = signed_in(core, people, "member02")
    register(core, member, thief := SoftPasskey(ORIGIN))

    def refused_answer(answer_for: object, actor: Actor = leader) -> None:
        options = core.passkeys.begin_step_up(actor)
        with pytest.raises(InvalidInput) as caught:
            core.passkeys.step_up(actor, answer_for(options))  # type: ignore[operator]
        assert caught.value.problems[0].rule == "passkey_refused"

    same = {"key": key.key, "credential_id": key.credential_id}
    refused_answer(SoftPasskey("https://evil.example", **same).get)  # type: ignore[arg-type]
    refused_answer(SoftPasskey(ORIGIN, user_verified=False, **same).get)  # type: ignore[arg-type]
    refused_answer(thief.get)  # another person's passkey
    refused_answer(lambda options: key.get(options, rp_id="evil.example"))
    refused_answer(lambda _options: "{not json")
    answer = key.get(core.passkeys.begin_step_up(leader))
    core.passkeys.step_up(leader, answer)
    with pytest.raises(InvalidInput, match="no ceremony was started"):
        core.passkeys.step_up(leader, answer)  # replayed: its challenge is gone
    key.counter = 0  # a cloned authenticator's counter goes backwards
    refused_answer(key.get)
    denied = [r for r in audit_rows(core) if r.action == "passkey.assert_refused"]
    assert len(denied) == 7
    assert all(r.outcome == "denied" for r in denied)
    assert len([r for r in audit_rows(core) if r.action == "auth.step_up"]) == 1


def test_mfa_is_met_by_a_fresh_password_and_totp_sign_in_or_a_passkey(
    core: Core, people: People, clock: ManualClock
) -> None:
    load_model(core, with_step_up("{within: 5m, factor: mfa}"))
    leader, key = signed_in(core, people, "leader01"), SoftPasskey(ORIGIN)
    register(core, leader, key)
    first, second = file(core), file(core, MEMBER2)
    core.workflow.approve(leader, first.id, "ok")  # signed in a moment ago: fresh
    clock.advance(timedelta(minutes=6))
    with pytest.raises(StepUpRequired, match="or sign in again"):
        core.workflow.approve(leader, second.id, "ok")
    step_up(core, leader, key)
    assert core.workflow.approve(leader, second.id, "ok").status == RequestStatus.SUCCEEDED


def test_a_template_may_ask_the_requester_too(core: Core, people: People) -> None:
    load_model(core, with_step_up("{within: 5m, factor: passkey, to: [request]}"))
    member = signed_in(core, people, "member01")
    with refused(core, StepUpRequired, match="filing this needs a passkey"):
        file(core, member)
    leader = signed_in(core, people, "leader01")
    register(core, member, key := SoftPasskey(ORIGIN))
    step_up(core, member, key)
    request = file(core, member)
    core.workflow.approve(leader, request.id, "ok")  # approving was not asked for
    assert request_row(core, request.id).status == RequestStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("{within: 30s, factor: passkey}", "step_up_within_range"),
        ("{within: 13h, factor: mfa}", "step_up_within_range"),
        ("{within: 5m, factor: sms}", "invalid_choice"),
        ("{within: 5m, factor: passkey, to: []}", "required"),
        ("{within: 5m, factor: passkey, to: [deploy]}", "invalid_choice"),
        ("{factor: passkey}", "required"),
    ],
)
def test_a_bad_step_up_rule_is_refused_with_the_rule_it_breaks(
    core: Core, rule: str, problem: str
) -> None:
    with pytest.raises(InvalidModel) as caught:
        load_model(core, with_step_up(rule))
    assert problem in {p.rule for p in caught.value.problems}, caught.value.problems


@pytest.mark.usefixtures("passkey_model")
def test_a_passkey_registered_already_is_refused_and_kept_once(core: Core, people: People) -> None:
    leader, key = signed_in(core, people, "leader01"), SoftPasskey(ORIGIN)
    register(core, leader, key)
    with pytest.raises(InvalidInput, match="registered already"):
        register(core, leader, key)  # a client that ignores excludeCredentials
    assert [p.name for p in core.passkeys.passkeys(leader)] == ["laptop"]


@pytest.mark.parametrize(
    ("public_url", "rp_id", "origin"),
    [
        ("https://sekisho.example.com", "sekisho.example.com", "https://sekisho.example.com"),
        ("https://sekisho.example.com:443/", "sekisho.example.com", "https://sekisho.example.com"),
        ("http://sekisho.internal:8470", "sekisho.internal", "http://sekisho.internal:8470"),
        ("http://127.0.0.1:8470", "localhost", "http://localhost:8470"),
    ],
)
def test_the_relying_party_is_the_public_urls_host_as_browsers_name_it(
    public_url: str, rp_id: str, origin: str
) -> None:
    rp = RelyingParty.of(public_url)
    assert rp is not None
    assert (rp.id, rp.origins) == (rp_id, (origin,))


def test_an_address_that_is_not_loopback_has_no_passkeys() -> None:
    assert RelyingParty.of("https://10.0.0.5") is None

"""sekisho as a Shared Signals receiver: the company's IdP pushes SETs (RFC 8935); a good
session-revoked or credential-change locks the user it is about, as the model says; a bad
SET gets RFC 8935's error and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from signal_support import CREDENTIAL_CHANGE, SetTransmitter, set_transmitter
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.access import Verb
from sekisho.domain.actor import Actor
from sekisho.domain.grants import GrantStatus
from sekisho.server import create_app
from sekisho.store.tables import AuditRow
from support import ADMIN, EXAMPLE_TEXT, LEADER, MEMBER, draft

RECEIVE = "/api/v1/ssf/receive"
AUDIENCE = "https://sekisho.example.test"
TOKEN = "push-token-from-the-idp"
MEMBER01 = {"format": "email", "email": "member01@example.com"}


def section(transmitter: SetTransmitter, **rules: str) -> str:
    extra = "".join(f"    {name}: {value}\n" for name, value in rules.items())
    return (
        "shared_signals:\n  receive:\n"
        f"    issuer: {transmitter.issuer}\n"
        f"    jwks_uri: {transmitter.jwks_uri}\n"
        f"    audience: {AUDIENCE}\n"
        "    token_env: TEST_SSF_PUSH_TOKEN\n" + extra
    )


@pytest.fixture
def transmitter(core: Core, monkeypatch: pytest.MonkeyPatch) -> Iterator[SetTransmitter]:
    monkeypatch.setenv("TEST_SSF_PUSH_TOKEN", TOKEN)
    with set_transmitter() as found:
        found.clock = lambda: core.now().timestamp()
        core.models.load(EXAMPLE_TEXT + section(found), "model.yaml", Actor.system("test"))
        yield found


@pytest.fixture
def api(core: Core) -> Iterator[TestClient]:
    with TestClient(create_app(core)) as client:
        yield client


def push(api: TestClient, token: str, bearer: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Content-Type": "application/secevent+jwt"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    answer = api.post(RECEIVE, content=token.encode(), headers=headers)
    return answer.status_code, answer.json() if answer.content else None


def user_locks(core: Core) -> list[tuple[str, str, str]]:
    return [(v.subject, v.created_by, v.reason) for v in core.locks.list_locks(ADMIN)]


def received(core: Core) -> list[dict[str, Any]]:
    """The audit trail's ssf.received entries, newest first."""
    with core.db.read() as s:
        stmt = select(AuditRow).where(AuditRow.action == "ssf.received")
        return [dict(r.detail) for r in s.scalars(stmt.order_by(AuditRow.seq.desc()))]


def test_session_revoked_from_the_idp_locks_the_user_and_ends_their_access(
    core: Core, api: TestClient, transmitter: SetTransmitter
) -> None:
    grant = core.workflow.approve(LEADER, core.workflow.file(MEMBER, draft()).id, "ok").grant
    assert grant is not None
    assert push(api, transmitter.set(MEMBER01)) == (202, None)

    why = (
        "shared signal session-revoked from https://idp.example.test: "
        "Malware detected on the device"
    )
    assert user_locks(core) == [("member01", "sekisho:shared-signals", why)]
    assert core.grants.get(ADMIN, grant.id).status == GrantStatus.REVOKED
    decision = core.authz.decide("member01", Verb.CONNECT, "prod-admin-console")
    assert decision.reason.startswith("locked by sekisho:shared-signals: shared signal")
    [entry] = received(core)
    assert entry["outcome"] == "locked"


def test_credential_change_locks_too_and_a_rule_of_ignore_only_records(
    core: Core, api: TestClient, transmitter: SetTransmitter
) -> None:
    event = {"credential_type": "password", "change_type": "update"}
    assert push(api, transmitter.set(MEMBER01, event_type=CREDENTIAL_CHANGE, event=event))[0] == 202
    assert [lock[0] for lock in user_locks(core)] == ["member01"]

    model = EXAMPLE_TEXT + section(transmitter, on_session_revoked="ignore")
    core.models.load(model, "model.yaml", Actor.system("test"))
    member02 = {"format": "opaque", "id": "member02"}
    assert push(api, transmitter.set(member02))[0] == 202
    assert [lock[0] for lock in user_locks(core)] == ["member01"]
    assert [e["outcome"] for e in received(core)] == ["ignored", "locked"]


def test_a_replayed_set_is_refused_and_a_second_signal_does_not_lock_twice(
    core: Core, api: TestClient, transmitter: SetTransmitter
) -> None:
    token = transmitter.set(MEMBER01)
    assert push(api, token)[0] == 202
    assert push(api, token) == (
        400,
        {"err": "invalid_request", "description": "this SET's jti was received before (a replay)"},
    )
    assert push(api, transmitter.set(MEMBER01))[0] == 202
    assert len(user_locks(core)) == 1
    assert [e["outcome"] for e in received(core)] == ["already locked", "locked"]


def other_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("signed by a key the issuer does not publish", {"key": "other"}, "invalid_key"),
    ("for another audience", {"audience": "https://elsewhere.test"}, "invalid_audience"),
    ("from another issuer", {"iss": "https://evil.test"}, "invalid_issuer"),
    (
        "about nobody sekisho knows",
        {"subject": {"format": "email", "email": "x@y.test"}},
        "invalid_request",
    ),
    (
        "about a subject form sekisho cannot map",
        {"subject": {"format": "iss_sub", "iss": "a", "sub": "b"}},
        "invalid_request",
    ),
    ("issued two days ago", {"age": 2 * 86400}, "invalid_request"),
    ("issued in the future", {"age": -3600}, "invalid_request"),
    ("without a jti", {"drop": ("jti",)}, "invalid_request"),
    ("typed as a plain JWT", {"header_typ": "JWT"}, "invalid_request"),
    ("with two events", {"events": {"a": {}, "b": {}}}, "invalid_request"),
    ("with its event not an object", {"events": {"a": "revoked"}}, "invalid_request"),
    ("without a subject", {"drop": ("sub_id",)}, "invalid_request"),
]


@pytest.mark.parametrize(("what", "change", "err"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_set_gets_the_rfc_error_and_changes_nothing(
    core: Core,
    api: TestClient,
    transmitter: SetTransmitter,
    what: str,
    change: dict[str, Any],
    err: str,
) -> None:
    change = dict(change)  # the parameters are shared by the SQLite and PostgreSQL runs
    subject = change.pop("subject", MEMBER01)
    if change.pop("key", None):
        change["key"] = other_key()
    token = transmitter.set(subject, **change)
    status, body = push(api, token)
    assert (status, body["err"]) == (400, err), what
    assert user_locks(core) == []
    assert received(core) == []


def test_a_body_that_is_no_jwt_and_a_missing_or_wrong_bearer_are_refused(
    core: Core, api: TestClient, transmitter: SetTransmitter
) -> None:
    assert push(api, "hello")[1]["err"] == "invalid_request"
    good = transmitter.set(MEMBER01)
    assert push(api, good, bearer=None)[0] == 401
    status, body = push(api, good, bearer="guessed")
    assert (status, body["err"]) == (401, "authentication_failed")
    assert user_locks(core) == []


def test_without_a_receiver_in_the_model_every_set_is_access_denied(
    core: Core, api: TestClient
) -> None:
    transmitter = SetTransmitter(clock=lambda: core.now().timestamp())
    status, body = push(api, transmitter.set(MEMBER01))
    assert (status, body["err"]) == (403, "access_denied")
    assert user_locks(core) == []


def test_a_rotated_key_is_fetched_again_but_not_on_every_unknown_kid(
    core: Core, clock: ManualClock, api: TestClient, transmitter: SetTransmitter
) -> None:
    assert push(api, transmitter.set(MEMBER01))[0] == 202
    transmitter.rotate()
    member02 = {"format": "email", "email": "member02@example.com"}
    # Within 30 s of the last fetch a kid not seen yet does not fetch again (a flood of
    # forged kids must not become a flood of fetches): refused now...
    assert push(api, transmitter.set(member02))[1]["err"] == "invalid_key"
    assert transmitter.fetches == 1
    clock.advance(timedelta(seconds=31))
    # ... and taken once the issuer's keys may be asked again.
    assert push(api, transmitter.set(member02))[0] == 202
    assert transmitter.fetches == 2
    assert sorted(lock[0] for lock in user_locks(core)) == ["member01", "member02"]

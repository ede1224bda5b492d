"""sekisho as a Shared Signals transmitter: a downstream app registers a push stream and hears
of every ended session as a signed SET, which it checks per the RFCs with joserfc."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import KeySet
from signal_support import SESSION_REVOKED, VERIFICATION, SetReceiver, set_receiver
from sqlalchemy import select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.server import create_app
from sekisho.store.tables import SsfStreamRow
from support import LEADER, MEMBER, People, draft

SECURITY = Actor("security01", "198.51.100.20")
STREAMS = "/api/v1/ssf/streams"


@pytest.fixture
def api(core: Core) -> Iterator[TestClient]:
    with TestClient(create_app(core)) as client:
        yield client


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


@pytest.fixture
def receiver(core: Core, api: TestClient) -> Iterator[SetReceiver]:
    with set_receiver(core.settings.public_url, "https://app.example.test") as found:
        found.keys = KeySet.import_key_set(api.get("/api/v1/ssf/jwks").json())
        yield found


def register(api: TestClient, people: People, receiver: SetReceiver, **delivery: Any) -> str:
    body = {
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": receiver.url, **delivery},
        "events_requested": [SESSION_REVOKED, "https://example.test/unknown-event"],
        "aud": receiver.audience,
        "format": "email",  # a field sekisho does not use: ignored, as SSF asks
    }
    answer = api.post(STREAMS, json=body, headers=people.headers("admin01"))
    assert answer.status_code == 201, answer.text
    stream = answer.json()
    assert stream["events_delivered"] == [SESSION_REVOKED]
    return str(stream["stream_id"])


def grant_of(core: Core) -> int:
    filed = core.workflow.file(MEMBER, draft())
    view = core.workflow.approve(LEADER, filed.id, "ok")
    assert view.grant is not None
    return view.grant.id


def test_the_configuration_and_keys_are_what_a_receiver_discovers(
    core: Core, api: TestClient
) -> None:
    config = api.get("/.well-known/ssf-configuration").json()
    assert config["spec_version"] == "1_0"
    assert config["issuer"] == core.settings.public_url
    assert config["delivery_methods_supported"] == ["urn:ietf:rfc:8935"]
    assert config["configuration_endpoint"].endswith(STREAMS)
    keys = api.get(urlsplit(config["jwks_uri"]).path).json()["keys"]
    assert [(k["kty"], k["crv"], k["alg"], k["use"]) for k in keys] == [
        ("EC", "P-256", "ES256", "sig")
    ]
    assert "d" not in keys[0]  # the public half only
    again = api.get("/api/v1/ssf/jwks").json()["keys"]
    assert again == keys  # one key, kept in its file, not a new one per request


def test_an_ended_grant_and_a_user_lock_reach_the_receiver_as_session_revoked_sets(
    core: Core, api: TestClient, people: People, receiver: SetReceiver
) -> None:
    register(api, people, receiver)
    core.grants.release(MEMBER, grant_of(core))
    core.locks.place(SECURITY, "user", "member02", "laptop stolen")
    core.new_dispatcher().run_pass()

    released, locked = receiver.events(SESSION_REVOKED)
    assert released["sub_id"] == {"format": "email", "email": "member01@example.com"}
    event = released["events"][SESSION_REVOKED]
    assert event["initiating_entity"] == "user"
    assert "ProdMemberWorkGroup ended (released" in event["reason_admin"]["en"]
    assert event["event_timestamp"] == int(core.now().timestamp())
    assert released["aud"] == receiver.audience
    assert locked["sub_id"] == {"format": "email", "email": "member02@example.com"}
    assert locked["events"][SESSION_REVOKED]["initiating_entity"] == "admin"
    assert locked["events"][SESSION_REVOKED]["reason_admin"] == {
        "en": "locked by security01: laptop stolen"
    }
    kid = receiver.keys.keys[0].kid if receiver.keys else None
    assert {h["kid"] for h in receiver.headers.values()} == {kid}
    assert receiver.refusals == []


def test_grants_that_expire_in_one_sweep_each_send_one_set_by_policy(
    core: Core, clock: ManualClock, api: TestClient, people: People, receiver: SetReceiver
) -> None:
    register(api, people, receiver)
    grant_of(core)
    core.workflow.file(MEMBER, draft(group="ProdMemberWorkGroup"))  # pending: ends nothing
    clock.advance(timedelta(hours=9))
    core.sweeper.run_due()
    core.new_dispatcher().run_pass()
    [expired] = receiver.events(SESSION_REVOKED)
    assert expired["events"][SESSION_REVOKED]["initiating_entity"] == "policy"


def test_a_refused_push_is_retried_and_shown_then_arrives_once(
    core: Core, clock: ManualClock, api: TestClient, people: People, receiver: SetReceiver
) -> None:
    stream = register(api, people, receiver)
    receiver.fail_next = 1
    core.locks.place(SECURITY, "user", "member02", "laptop stolen")
    core.new_dispatcher().run_pass()
    assert receiver.events() == []
    [status] = [s for s in core.outbox.status(Actor("admin01", "cli")) if s.name == f"ssf:{stream}"]
    assert status.type == "ssf"
    assert (status.pending, status.failing) == (1, 1)
    assert status.last_error == "HTTP 400 Bad Request: invalid_audience (refused, as told)"

    clock.advance(timedelta(minutes=1))
    core.new_dispatcher().run_pass()
    core.new_dispatcher().run_pass()
    assert len(receiver.events(SESSION_REVOKED)) == 1
    [status] = [s for s in core.outbox.status(Actor("admin01", "cli")) if s.name == f"ssf:{stream}"]
    assert (status.pending, status.delivered) == (0, 1)


def test_the_bearer_token_a_receiver_gave_is_sent_and_never_shown_or_stored_in_clear(
    core: Core, api: TestClient, people: People
) -> None:
    secret = "Bearer s3cr3t-receiver-token"
    with set_receiver(core.settings.public_url, "https://app.example.test", secret) as receiver:
        receiver.keys = KeySet.import_key_set(api.get("/api/v1/ssf/jwks").json())
        stream = register(api, people, receiver, authorization_header=secret)
        core.locks.place(SECURITY, "user", "member02", "laptop stolen")
        core.new_dispatcher().run_pass()
        assert len(receiver.events(SESSION_REVOKED)) == 1
    shown = api.get(STREAMS, params={"stream_id": stream}, headers=people.headers("admin01"))
    assert "s3cr3t" not in shown.text
    with core.db.read() as s:
        stored = s.scalars(select(SsfStreamRow)).one()
    assert stored.authorization is not None
    assert "s3cr3t" not in stored.authorization


def test_verification_sends_the_state_the_receiver_asked_for(
    core: Core, api: TestClient, people: People, receiver: SetReceiver
) -> None:
    stream = register(api, people, receiver)
    body = {"stream_id": stream, "state": "VGhpcyBpcyBhbiBleGFtcGxl"}
    assert (
        api.post("/api/v1/ssf/verify", json=body, headers=people.headers("admin01")).status_code
        == 204
    )
    core.new_dispatcher().run_pass()
    [verified] = receiver.events(VERIFICATION)
    assert verified["events"][VERIFICATION] == {"state": "VGhpcyBpcyBhbiBleGFtcGxl"}
    assert verified["sub_id"] == {"format": "opaque", "id": stream}
    status = api.get(
        "/api/v1/ssf/status", params={"stream_id": stream}, headers=people.headers("admin01")
    )
    assert status.json() == {"stream_id": stream, "status": "enabled"}


def test_a_deleted_stream_hears_nothing_more_and_its_queue_is_given_up(
    core: Core, api: TestClient, people: People, receiver: SetReceiver
) -> None:
    stream = register(api, people, receiver)
    core.locks.place(SECURITY, "user", "member02", "laptop stolen")
    admin = people.headers("admin01")
    assert api.delete(STREAMS, params={"stream_id": stream}, headers=admin).status_code == 204
    core.locks.place(SECURITY, "user", "leader02", "phished")
    core.new_dispatcher().run_pass()
    assert receiver.events() == []
    [status] = [s for s in core.outbox.status(Actor("admin01", "cli")) if s.name == f"ssf:{stream}"]
    assert (status.pending, status.failed) == (0, 1)
    assert status.last_error == f"stream {stream} was deleted"
    assert api.get(STREAMS, params={"stream_id": stream}, headers=admin).status_code == 404
    assert api.delete(STREAMS, params={"stream_id": stream}, headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("delivery", "field", "rule"),
    [
        ({"method": "urn:ietf:rfc:8936"}, "delivery.method", "push_only"),
        ({"endpoint_url": "http://app.example.test/events"}, "delivery.endpoint_url", "transport"),
        ({"endpoint_url": "ftp://127.0.0.1/events"}, "delivery.endpoint_url", "transport"),
        (
            {"authorization_header": "Bearer a\r\nX-Injected: 1"},
            "delivery.authorization_header",
            "header_value",
        ),
    ],
)
def test_a_bad_stream_is_refused_naming_the_field_and_nothing_is_stored(
    core: Core,
    api: TestClient,
    people: People,
    delivery: dict[str, str],
    field: str,
    rule: str,
) -> None:
    admin = people.headers("admin01")
    asked = {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://app.example.test/events"}
    answer = api.post(STREAMS, json={"delivery": {**asked, **delivery}}, headers=admin)
    assert answer.status_code == 422
    assert [(e["field"], e["rule"]) for e in answer.json()["errors"]] == [(field, rule)]
    assert api.get(STREAMS, headers=admin).json() == []


def test_a_stream_that_asks_for_no_events_gets_every_event_sekisho_sends(
    api: TestClient, people: People
) -> None:
    body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://a.test/e"}}
    answer = api.post(STREAMS, json=body, headers=people.headers("admin01"))
    assert answer.json()["events_delivered"] == [SESSION_REVOKED]
    assert answer.json()["aud"] == "https://a.test/e"  # no aud given: the endpoint's URL


def test_only_admins_manage_streams(api: TestClient, people: People) -> None:
    member = people.headers("member01")
    body = {"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://a.test/e"}}
    assert api.post(STREAMS, json=body, headers=member).status_code == 403
    assert api.get(STREAMS, headers=member).status_code == 403
    assert api.post(STREAMS, json=body).status_code == 401
    assert api.get(STREAMS, headers=people.headers("admin01")).json() == []

"""The OpenAPI document tells the truth about refusals: every operation declares the problem
responses (RFC 9457, application/problem+json) it can give, and every answer it gives is one
it declares (schemathesis: status code, content type and body checked against the document)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sekisho.bootstrap import Core
from sekisho.server import create_app
from support import People

PROBLEM = "application/problem+json"
# What the document promises about answers. Not positive_data_acceptance: an unknown template
# is well-formed but refused (422) by a rule no schema can hold; nor negative_data_rejection:
# an unknown query parameter is ignored, as HTTP APIs do.
CHECKS = [
    not_a_server_error,
    status_code_conformance,  # ST103
    content_type_conformance,  # ST105
    response_schema_conformance,
]
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def app(core: Core) -> FastAPI:
    return create_app(core)


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    with TestClient(app) as client:
        answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


# Where transmitters push SETs: refusals are RFC 8935's `{"err", "description"}`, which is
# what a transmitter reads (a body too large is still the app's problem document).
SET_RECEIVERS = {("POST", "/api/v1/ssf/receive")}
SET_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/SetError"}}}


def test_every_refusal_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    assert "Problem" in document["components"]["schemas"]
    assert "HTTPValidationError" not in str(document)  # FastAPI's own 422 shape: not ours
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            if (method, path) in SET_RECEIVERS and status != "413":
                assert content == SET_ERROR, (method, path, status)
                continue
            assert set(content) == {PROBLEM}, (method, path, status)
            assert content[PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_what_each_operation_answers_to_plain_mistakes_is_declared(
    app: FastAPI, document: dict[str, Any], people: People
) -> None:
    """No token, a body of the wrong shape, a number that is out of range: each answer is a
    problem whose status the operation declares."""
    public = {
        ("GET", "/api/v1/healthz"),
        ("GET", "/api/v1/readyz"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/sso/token"),  # the code and its PKCE verifier are the proof
        ("POST", "/api/v1/auth/sso/device"),  # the IdP signs the person in
        ("POST", "/api/v1/auth/sso/device/token"),  # the handle is the proof
        ("GET", "/api/v1/ssf/jwks"),
        ("GET", "/.well-known/ssf-configuration"),
        *SET_RECEIVERS,  # the SET's signature is the proof, not a sekisho login
    }
    admin = people.headers("admin01")
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path, operation in operations(document):
            declared = set(operation["responses"])
            concrete = path.replace("{name}", "member01")
            for param in ("request_id", "grant_id", "session_id"):
                concrete = concrete.replace(f"{{{param}}}", "1")
            tries: list[tuple[str, dict[str, Any]]] = []
            if (method, path) not in public:
                tries.append(("no token", {}))
            if "requestBody" in operation:
                tries.append(("wrong shape", {"headers": admin, "json": {"bogus": 1}}))
                tries.append(("too large", {"headers": admin, "content": b"x" * (65 * 1024)}))
            if "_id}" in path:
                zero = path.replace("{request_id}", "0").replace("{grant_id}", "0")
                tries.append(
                    ("id 0", {"headers": admin, "path": zero.replace("{session_id}", "0")})
                )
            for label, kw in tries:
                target = kw.pop("path", concrete)
                answer = client.request(method, target, **kw)
                assert answer.status_code >= 400, (method, path, label)
                if (method, path) in SET_RECEIVERS and answer.status_code != 413:
                    assert set(answer.json()) == {"err", "description"}, (method, path, label)
                else:
                    assert answer.headers["content-type"].startswith(PROBLEM), (method, path)
                assert str(answer.status_code) in declared, (
                    method,
                    path,
                    label,
                    answer.status_code,
                )


@schemathesis.serializer("application/secevent+jwt")
def _compact_jwt(_ctx: Any, value: Any) -> bytes:
    """A SET's body is a compact JWT: whatever string was generated, as sent."""
    return str(value).encode()


@pytest.fixture
def people(core: Core) -> People:
    return People(core)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the document is the same on PG
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_one_the_document_declares(
    app: FastAPI, document: dict[str, Any], people: People, mode: GenerationMode
) -> None:
    """Generated calls (well-formed, then malformed), as an admin so they get past the login,
    checked by schemathesis: no undocumented status (ST103) or content type (ST105), bodies
    as declared, no 5xx. A few cases per operation: this runs in CI on every change."""
    api = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    headers = people.headers("admin01")
    # Nothing to get wrong in a call without parameters or body: no malformed case exists.
    bare = {
        (method, path)
        for method, path, op in operations(document)
        if not op.get("parameters") and "requestBody" not in op
    }
    for result in api.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and (operation.method.upper(), operation.path) in bare:
            continue

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=5 if mode is GenerationMode.POSITIVE else 4,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        call()

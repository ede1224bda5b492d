"""The HTTP side: people logged in once each, and the few API calls the benchmarks make."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp

from bench.backends import Credentials

V1 = "/api/v1"
GROUP = "ProdMemberWorkGroup"
ROLE = "prod/Prod_MemberRole"
INFO = {
    "target": "payment admin console",
    "change": "rotate the merchant API key",
    "rollback": "restore the previous key",
}


def request_body(*, until: str | None = None, duration: str | None = "1h") -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": "AddUserToGroup",
        "group": GROUP,
        "reason": "benchmark: fix the payment console",
        "info": INFO,
    }
    if until is not None:
        body["until"] = until
    else:
        body["for"] = duration
    return body


DECISION = {"verb": "assume", "object": ROLE}


@dataclass
class People:
    """Bearer tokens by user. TOTP codes are good once per step, so each logs in once."""

    members: list[str]
    approvers: list[str]
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def login_all(self, client: httpx.Client, creds: dict[str, Credentials]) -> None:
        """POST /auth/login for everyone, two at a time (the server hashes with Argon2)."""

        def one(user: str) -> tuple[str, str]:
            c = creds[user]
            body = {"user": user, "password": c.password, "otp": pyotp.TOTP(c.totp_secret).now()}
            return user, expect(client.post(f"{V1}/auth/login", json=body), 200)["token"]

        with ThreadPoolExecutor(max_workers=2) as pool:
            self.tokens.update(pool.map(one, [*self.members, *self.approvers]))


class UnexpectedResponse(RuntimeError):
    pass


def expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise UnexpectedResponse(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text[:500]}"
        )
    return response.json() if response.content else None


def file_request(client: httpx.Client, people: People, member: str, **kw: Any) -> dict[str, Any]:
    body = request_body(**kw)
    found: dict[str, Any] = expect(
        client.post(f"{V1}/requests", json=body, headers=people.auth(member)), 201
    )
    return found


def approve(client: httpx.Client, people: People, approver: str, request_id: int) -> dict[str, Any]:
    found: dict[str, Any] = expect(
        client.post(
            f"{V1}/requests/{request_id}/approve",
            json={"comment": "ok, go ahead"},
            headers=people.auth(approver),
        ),
        200,
    )
    return found


def allowed(client: httpx.Client, people: People, member: str) -> bool:
    body = {"user": member, **DECISION}
    decision = expect(client.post(f"{V1}/decisions", json=body, headers=people.auth(member)), 200)
    return bool(decision["allowed"])


def release(client: httpx.Client, people: People, member: str, grant_id: int) -> None:
    expect(client.post(f"{V1}/grants/{grant_id}/release", headers=people.auth(member)), 200)


def until_provisioned(
    client: httpx.Client, people: People, member: str, approved: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The request once its runbook has run, and whether the approval answered before that.

    The scheduler, woken by the approval's event, may claim the runbook before the approval's
    own call does; the approval then answers `in_progress` and the scheduler provisions.
    """
    if approved["status"] == "succeeded":
        return approved, False
    path = f"{V1}/requests/{approved['id']}"
    for _ in range(10_000):
        found: dict[str, Any] = expect(client.get(path, headers=people.auth(member)), 200)
        if found["status"] == "succeeded":
            return found, True
        if found["status"] not in ("approved", "in_progress"):
            break
        time.sleep(0.005)
    raise UnexpectedResponse(f"request #{approved['id']} was not provisioned: {found['status']}")

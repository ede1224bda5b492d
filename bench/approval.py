"""1. Time from approval to usable access, over HTTP, against the healthz round trip.

For each request: the member is denied, files a request; the clock starts when the approver's
POST /requests/{id}/approve is sent and stops when a POST /decisions for the member returns
allowed. The approval runs the runbook (add to group + tag, through the local provider) before
it answers, so the first decision after it is expected to be allowed. Then the member releases
the grant, so every request starts without access. Three GET /healthz round trips per request,
interleaved, are the peer: the framework's floor on the same server, connection and moment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx

from bench import api
from bench.api import People
from bench.report import Table
from bench.stats import Summary, fmt, fmt_ratio, ratio

HEALTHZ_PER_REQUEST = 3


@dataclass
class ApprovalResult:
    access_ms: list[float] = field(default_factory=list)  # approve sent -> allowed received
    approve_ms: list[float] = field(default_factory=list)  # the approve call alone
    decision_ms: list[float] = field(default_factory=list)  # the allowed decision call alone
    healthz_ms: list[float] = field(default_factory=list)
    extra_tries: int = 0  # decisions that still said denied after the approval returned
    raced: int = 0  # approvals answered before provisioning (the scheduler ran the runbook)


def run(base_url: str, people: People, n: int) -> ApprovalResult:
    result = ApprovalResult()
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        # Warm up the connection and the server's caches (model parse, first queries).
        for _ in range(20):
            api.expect(client.get(f"{api.V1}/healthz"), 200)
        for i in range(n):
            member = people.members[i % len(people.members)]
            approver = people.approvers[i % len(people.approvers)]
            for _ in range(HEALTHZ_PER_REQUEST):
                t0 = time.perf_counter()
                api.expect(client.get(f"{api.V1}/healthz"), 200)
                result.healthz_ms.append((time.perf_counter() - t0) * 1000)
            if api.allowed(client, people, member):
                raise RuntimeError(f"{member} has access before the approval: bad set-up")
            filed = api.file_request(client, people, member)

            t0 = time.perf_counter()
            approved = api.approve(client, people, approver, filed["id"])
            t1 = time.perf_counter()
            tries = 0
            while True:
                t2 = time.perf_counter()
                ok = api.allowed(client, people, member)
                t3 = time.perf_counter()
                if ok:
                    break
                tries += 1
                if tries > 10_000:
                    raise RuntimeError(f"request #{filed['id']} never gave access")
            result.access_ms.append((t3 - t0) * 1000)
            result.approve_ms.append((t1 - t0) * 1000)
            result.decision_ms.append((t3 - t2) * 1000)
            result.extra_tries += tries

            done, raced = api.until_provisioned(client, people, member, approved)
            result.raced += raced
            api.release(client, people, member, done["grant"]["id"])
    return result


def table(results: dict[str, ApprovalResult]) -> Table:
    t = Table(
        [
            "database",
            "n",
            "approval -> access p50 / p99 (ms)",
            "approve call p50 (ms)",
            "decision call p50 (ms)",
            "peer: healthz RTT p50 / p99 (ms)",
            "ratio p50 / p99",
        ]
    )
    for name, r in results.items():
        access, health = Summary.of(r.access_ms), Summary.of(r.healthz_ms)
        t.add(
            name,
            str(access.n),
            f"{fmt(access.p50)} / {fmt(access.p99)}",
            fmt(Summary.of(r.approve_ms).p50),
            fmt(Summary.of(r.decision_ms).p50),
            f"{fmt(health.p50)} / {fmt(health.p99)}",
            f"{fmt_ratio(ratio(access.p50, health.p50))} / "
            f"{fmt_ratio(ratio(access.p99, health.p99))}",
        )
    return t

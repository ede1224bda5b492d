"""3. Requests filed + approved (+ provisioned) per second over HTTP, against the framework floor.

C concurrent clients (asyncio tasks sharing one httpx.AsyncClient with C connections) each
loop: a member files a request, an approver (a second user) approves it, and the approval runs
the runbook (add to group + tag through the local provider) before it answers. Each workflow
writes the request, a decision, a grant, the membership and the tag, six timeline rows and four
hash-chained audit entries (section 13 counts the transactions and statements that takes).
Members are split between clients, so no two clients file for the same person at once (one
open request per person and group).

Peers, same server, same concurrency, same client: GET /api/v1/healthz (no auth, no database)
and an authenticated GET /api/v1/me (token lookup + the user's grants: one read transaction).
Completions are counted in a measuring window after a warm-up. The server's CPU time over the
window (from /proc) gives CPU per operation, which the machine's noise disturbs less than
wall-clock rates; the client's CPU shows whether the load generator was the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from bench import api
from bench.api import People
from bench.report import Table
from bench.server import ServerProcess
from bench.stats import Summary, fmt, fmt_ratio, ratio

Op = Callable[[httpx.AsyncClient, int], Awaitable[None]]


@dataclass
class Phase:
    name: str
    concurrency: int
    completed: int = 0
    raced: int = 0  # approvals answered `in_progress` (the scheduler ran the runbook)
    window_s: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.completed / self.window_s if self.window_s else 0.0

    @property
    def server_cpu_ms_per_op(self) -> float:
        return self.server_cpu_s * 1000 / self.completed if self.completed else float("nan")

    @property
    def client_cpu_share(self) -> float:
        return self.client_cpu_s / self.window_s if self.window_s else 0.0


async def _phase(
    server: ServerProcess, name: str, concurrency: int, warmup: float, window: float, op: Op
) -> Phase:
    phase = Phase(name, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, measure_to = start + warmup, start + warmup + window
    marks: dict[str, tuple[float, float]] = {}

    async def mark(label: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        marks[label] = (server.cpu_seconds(), time.process_time())

    async def worker(client: httpx.AsyncClient, index: int) -> None:
        while loop.time() < measure_to:
            t0 = loop.time()
            await op(client, index)
            t1 = loop.time()
            if measure_from <= t1 <= measure_to:
                phase.completed += 1
                phase.latencies_ms.append((t1 - t0) * 1000)

    async with httpx.AsyncClient(base_url=server.base_url, timeout=60.0, limits=limits) as client:
        await asyncio.gather(
            mark("from", measure_from),
            mark("to", measure_to),
            *(worker(client, i) for i in range(concurrency)),
        )
    phase.window_s = window
    phase.server_cpu_s = marks["to"][0] - marks["from"][0]
    phase.client_cpu_s = marks["to"][1] - marks["from"][1]
    return phase


async def _until_succeeded(
    client: httpx.AsyncClient, auth: dict[str, str], request_id: int
) -> None:
    for _ in range(10_000):
        found = api.expect(await client.get(f"{api.V1}/requests/{request_id}", headers=auth), 200)
        if found["status"] == "succeeded":
            return
        if found["status"] not in ("approved", "in_progress"):
            raise RuntimeError(f"request #{request_id} is {found['status']}")
        await asyncio.sleep(0.005)
    raise RuntimeError(f"request #{request_id} was not provisioned")


def _ops(people: People, concurrency: int, raced: list[int]) -> dict[str, Op]:
    if concurrency > len(people.members):
        raise ValueError(f"{concurrency} clients need at least as many members")
    queues = [people.members[i::concurrency] for i in range(concurrency)]
    turns = [0] * concurrency

    async def healthz(client: httpx.AsyncClient, _index: int) -> None:
        api.expect(await client.get(f"{api.V1}/healthz"), 200)

    async def me(client: httpx.AsyncClient, index: int) -> None:
        user = people.approvers[index % len(people.approvers)]  # they never hold grants
        api.expect(await client.get(f"{api.V1}/me", headers=people.auth(user)), 200)

    async def workflow(client: httpx.AsyncClient, index: int) -> None:
        mine = queues[index]
        member = mine[turns[index] % len(mine)]
        turns[index] += 1
        approver = people.approvers[index % len(people.approvers)]
        filed = api.expect(
            await client.post(
                f"{api.V1}/requests", json=api.request_body(), headers=people.auth(member)
            ),
            201,
        )
        approved = api.expect(
            await client.post(
                f"{api.V1}/requests/{filed['id']}/approve",
                json={"comment": "ok, go ahead"},
                headers=people.auth(approver),
            ),
            200,
        )
        if approved["status"] != "succeeded":
            # The scheduler, woken by the approval's event, may have claimed the runbook
            # first: the approval then answers `in_progress`. Provisioned means succeeded
            # (see api.until_provisioned).
            raced[0] += 1
            await _until_succeeded(client, people.auth(member), filed["id"])

    return {"healthz": healthz, "me": me, "workflow": workflow}


@dataclass
class ThroughputResult:
    phases: dict[tuple[str, int], Phase] = field(default_factory=dict)


def run(
    server: ServerProcess,
    people: People,
    concurrencies: list[int],
    warmup: float,
    window: float,
) -> ThroughputResult:
    result = ThroughputResult()

    async def main() -> None:
        for concurrency in concurrencies:
            for name in ("healthz", "me", "workflow"):
                raced = [0]
                op = _ops(people, concurrency, raced)[name]
                phase = await _phase(server, name, concurrency, warmup, window, op)
                phase.raced = raced[0]
                result.phases[(name, concurrency)] = phase

    asyncio.run(main())
    return result


def table(results: dict[str, ThroughputResult]) -> Table:
    t = Table(
        [
            "database",
            "clients",
            "workflows/s (file+approve+provision)",
            "workflow latency p50 / p99 (ms)",
            "peer: healthz/s",
            "peer: /me/s",
            "ratio healthz/s : workflows/s",
            "ratio /me/s : workflows/s",
            "server CPU ms per workflow / healthz / me",
            "ratio server CPU per workflow : per healthz",
            "client CPU share (workflow / healthz)",
            "approvals answered before provisioning",
        ]
    )
    for name, r in results.items():
        for concurrency in sorted({c for _, c in r.phases}):
            wf = r.phases[("workflow", concurrency)]
            hz = r.phases[("healthz", concurrency)]
            me = r.phases[("me", concurrency)]
            lat = Summary.of(wf.latencies_ms)
            t.add(
                name,
                str(concurrency),
                fmt(wf.per_second),
                f"{fmt(lat.p50)} / {fmt(lat.p99)}",
                fmt(hz.per_second),
                fmt(me.per_second),
                fmt_ratio(ratio(hz.per_second, wf.per_second)),
                fmt_ratio(ratio(me.per_second, wf.per_second)),
                " / ".join(fmt(p.server_cpu_ms_per_op) for p in (wf, hz, me)),
                fmt_ratio(cpu_ratio(r, concurrency)),
                f"{wf.client_cpu_share:.0%} / {hz.client_cpu_share:.0%}",
                f"{wf.raced} of {wf.completed}",
            )
    return t


# The goal (issue 10): server CPU per workflow at most 8x a healthz round trip's.
GOAL_CPU_RATIO = 8.0


def cpu_ratio(result: ThroughputResult, concurrency: int) -> float:
    """Server CPU per workflow over server CPU per healthz, at the same concurrency."""
    workflow = result.phases[("workflow", concurrency)].server_cpu_ms_per_op
    healthz = result.phases[("healthz", concurrency)].server_cpu_ms_per_op
    return ratio(workflow, healthz)


def describe(name: str, result: ThroughputResult) -> list[str]:
    """One line per client count: the ratio the issue's goal is about."""
    return [
        f"{name}, {c} client(s): server CPU per workflow {fmt_ratio(cpu_ratio(result, c))} "
        f"a healthz round trip's (goal: at most {GOAL_CPU_RATIO:g}x)"
        for c in sorted({c for _, c in result.phases})
    ]


def goal_table(results: dict[str, ThroughputResult]) -> Table:
    t = Table(["goal (issue 10)", "database", "clients", "measured", "met"])
    for name, r in results.items():
        for concurrency in sorted({c for _, c in r.phases}):
            measured = cpu_ratio(r, concurrency)
            t.add(
                f"server CPU per workflow at most {GOAL_CPU_RATIO:g}x a healthz round trip's",
                name,
                str(concurrency),
                fmt_ratio(measured),
                "yes" if measured <= GOAL_CPU_RATIO else "**no**",
            )
    return t

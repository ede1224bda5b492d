"""12. Sign-in under a flood of bogus logins: other calls and real logins, against no flood.

A real server (what `sekisho serve` runs: uvicorn on 127.0.0.1, in a child process) with
sekisho's own sign-in settings: Argon2id at argon2-cffi's RFC 9106 low-memory parameters
(64 MiB, 3 passes, 4 lanes) for every hash, the 1 s refusal delay, two hash slots. The load
comes from this process over real sockets, each caller from its own loopback address, which
the server takes as the client's. Every phase runs the same probes for the same window, after
a second for the flood to build up: two clients calling `GET /api/v1/requests` with a valid
token back to back, and real logins one after another, half by members from the address they
signed in from before (a token on record: the hash queue's trusted lane), half by members
who never signed in (the open lane, behind the strangers). The phases: no flood (the peer); a
flood of bogus logins for one unknown name from one address, that many always in flight
(each answer replaced at once by a new attempt); the same number from as many addresses,
each attempt a fresh unknown name, so no throttle stops one before its hash.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyotp

from bench.backends import Backend, Credentials, enroll, load_bench_model, open_core
from bench.report import Section, Table
from bench.server import ServerProcess
from bench.stats import Summary, fmt, fmt_ratio, ratio

KEY = "login"
LOGIN, LIST = "/api/v1/auth/login", "/api/v1/requests"
REFUSAL_DELAY_S = 1.0  # sekisho's default
RAMP_S = 1.0
GOAL_P99_MS = 1000.0
T = TypeVar("T")
Timed = Callable[[str, Callable[[], T]], T]


@dataclass(frozen=True)
class LoginPlan:
    window_s: float
    in_flight: int  # bogus logins kept in flight
    logins: int  # real logins of each kind per phase


FULL = LoginPlan(window_s=10.0, in_flight=100, logins=4)
QUICK = LoginPlan(window_s=3.0, in_flight=100, logins=2)


@dataclass
class Phase:
    name: str
    list_ms: list[float] = field(default_factory=list)
    list_failed: int = 0
    returning_ms: list[float] = field(default_factory=list)
    returning_failed: int = 0
    new_ms: list[float] = field(default_factory=list)
    new_failed: int = 0
    bogus: Counter[int] = field(default_factory=Counter)  # answers by status (0: no answer)
    bogus_s: float = 0.0
    server_cpu_s: float = 0.0


@dataclass
class LoginResult:
    plan: LoginPlan
    phases: dict[str, list[Phase]] = field(default_factory=dict)  # by backend


def run(plan: LoginPlan, workdir: Path, backends: list[Backend], timed: Timed[Any]) -> LoginResult:
    result = LoginResult(plan)
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        data = workdir / backend.name.lower()
        result.phases[backend.name] = timed(
            "sign-in flood", partial(_measure_backend, plan, backend, data)
        )
    return result


def _measure_backend(plan: LoginPlan, backend: Backend, data_dir: Path) -> list[Phase]:
    kinds = ("no flood", "one address", "many addresses")
    needed = 1 + 2 * plan.logins * len(kinds)
    members = [f"member{i:02d}" for i in range(1, needed + 1)]
    with backend.database(data_dir, "login") as url:
        core = open_core(url, data_dir)
        load_bench_model(core)
        creds = enroll(core, members)
        core.db.dispose()
        delay = ("--login-failure-delay", str(REFUSAL_DELAY_S))
        with ServerProcess(url, data_dir, *delay) as server:
            return asyncio.run(_phases(plan, server, creds, members, kinds))


async def _phases(
    plan: LoginPlan,
    server: ServerProcess,
    creds: dict[str, Credentials],
    members: list[str],
    kinds: tuple[str, ...],
) -> list[Phase]:
    prober, rest = members[0], members[1:]
    per = 2 * plan.logins
    returning = {k: rest[i * per : i * per + plan.logins] for i, k in enumerate(kinds)}
    new = {k: rest[i * per + plan.logins : (i + 1) * per] for i, k in enumerate(kinds)}
    async with Callers(server.base_url) as callers:
        token = await callers.login(prober, creds[prober], "127.0.0.1")
        assert token is not None, "the prober could not log in"
        for name in (n for k in kinds for n in returning[k]):  # a token on record from home
            assert await callers.login(name, creds[name], home(name)), f"{name} at home"
        await next_totp_step()  # each code is good once: the logins below need a fresh one
        phases = []
        for kind in kinds:
            phase = Phase(kind)
            flood = {"no flood": None, "one address": False, "many addresses": True}[kind]
            cpu_before = server.cpu_seconds()
            await _phase(plan, callers, phase, token, flood, creds, returning[kind], new[kind])
            phase.server_cpu_s = server.cpu_seconds() - cpu_before
            phases.append(phase)
    return phases


async def _phase(
    plan: LoginPlan,
    callers: Callers,
    phase: Phase,
    token: str,
    spread: bool | None,
    creds: dict[str, Credentials],
    returning: list[str],
    new: list[str],
) -> None:
    """One phase: the flood (if any) builds up, then the probes run for the window."""
    stop = asyncio.Event()
    flood_started = time.perf_counter()
    flood = (
        []
        if spread is None
        else [
            asyncio.create_task(callers.bogus(i, spread, stop, phase))
            for i in range(plan.in_flight)
        ]
    )
    await asyncio.sleep(RAMP_S if flood else 0)
    deadline = time.perf_counter() + plan.window_s
    probes = [asyncio.create_task(callers.list_requests(token, deadline, phase)) for _ in range(2)]
    gap = plan.window_s / (len(returning) + len(new) + 1)
    for name in [*returning, *new]:
        await asyncio.sleep(gap)
        address = home(name) if name in returning else f"127.0.4.{int(name[-2:])}"
        started = time.perf_counter()
        ok = await callers.login(name, creds[name], address) is not None
        elapsed = (time.perf_counter() - started) * 1000
        if name in returning:
            phase.returning_ms.append(elapsed)
            phase.returning_failed += not ok
        else:
            phase.new_ms.append(elapsed)
            phase.new_failed += not ok
    await asyncio.gather(*probes)
    stop.set()
    await asyncio.gather(*flood)  # every bogus login answered before the next phase
    phase.bogus_s = time.perf_counter() - flood_started


def home(member: str) -> str:
    return f"127.0.3.{int(member[-2:])}"


async def next_totp_step() -> None:
    await asyncio.sleep(30 - time.time() % 30 + 0.5)


class Callers:
    """One HTTP client per caller address (the server sees each as a machine of its own)."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def __aenter__(self) -> Callers:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        for opened in self._clients.values():
            await opened.aclose()

    def at(self, address: str) -> httpx.AsyncClient:
        if address not in self._clients:
            self._clients[address] = httpx.AsyncClient(
                base_url=self._base_url,
                transport=httpx.AsyncHTTPTransport(local_address=address),
                timeout=120.0,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
            )
        return self._clients[address]

    async def login(self, user: str, creds: Credentials, address: str) -> str | None:
        body = {
            "user": user,
            "password": creds.password,
            "otp": pyotp.TOTP(creds.totp_secret).now(),
        }
        answer = await self.at(address).post(LOGIN, json=body)
        return str(answer.json()["token"]) if answer.status_code == 200 else None

    async def list_requests(self, token: str, deadline: float, phase: Phase) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        http = self.at("127.0.0.1")
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                answer = await http.get(LIST, headers=headers)
                ok = answer.status_code == 200
            except httpx.HTTPError:
                ok = False
            phase.list_ms.append((time.perf_counter() - started) * 1000)
            phase.list_failed += not ok

    async def bogus(self, worker: int, spread: bool, stop: asyncio.Event, phase: Phase) -> None:
        """Bogus logins back to back until told to stop: one unknown name, or a fresh one."""
        address = f"127.0.1.{worker + 1}" if spread else "127.0.0.2"
        http = self.at(address)
        attempt = 0
        while not stop.is_set():
            attempt += 1
            name = f"nobody-{worker}-{attempt}" if spread else "nobody"
            body = {"user": name, "password": "not-the-password", "otp": "000000"}
            try:
                phase.bogus[(await http.post(LOGIN, json=body)).status_code] += 1
            except httpx.HTTPError:
                phase.bogus[0] += 1


# -- the report -----------------------------------------------------------------------------------


def sections(result: LoginResult) -> list[Section]:
    title, _, method = (__doc__ or "").strip().partition("\n")
    plan = result.plan
    calls = Table(
        [
            "database",
            "phase",
            "`GET /requests` n",
            "p50 / p99 (ms)",
            "p99 ratio to no flood",
            f"p99 under {GOAL_P99_MS / 1000:g} s",
            "failed",
        ]
    )
    logins = Table(
        [
            "database",
            "phase",
            "returning logins ok",
            "p50 / max (ms)",
            "first logins ok",
            "p50 / max (ms)",
            "bogus answered (/s)",
            "bogus 401 / 429 / other",
            "server CPU (s)",
        ]
    )
    for backend, phases in result.phases.items():
        peer = Summary.of(phases[0].list_ms)
        for phase in phases:
            listed = Summary.of(phase.list_ms)
            calls.add(
                backend,
                phase.name,
                str(listed.n),
                f"{fmt(listed.p50)} / {fmt(listed.p99)}",
                fmt_ratio(ratio(listed.p99, peer.p99)),
                "yes" if listed.p99 < GOAL_P99_MS else "**no**",
                str(phase.list_failed),
            )
            answered = sum(phase.bogus.values())
            other = answered - phase.bogus[401] - phase.bogus[429]
            back, first = Summary.of(phase.returning_ms), Summary.of(phase.new_ms)
            logins.add(
                backend,
                phase.name,
                f"{back.n - phase.returning_failed} of {back.n}",
                f"{fmt(back.p50)} / {fmt(back.max)}",
                f"{first.n - phase.new_failed} of {first.n}",
                f"{fmt(first.p50)} / {fmt(first.max)}",
                "-" if not answered else f"{answered:,} ({fmt(answered / phase.bogus_s)})",
                "-" if not answered else f"{phase.bogus[401]:,} / {phase.bogus[429]:,} / {other}",
                fmt(phase.server_cpu_s),
            )
    notes = [
        f"{plan.in_flight} bogus logins in flight; a {plan.window_s:g} s window per phase after "
        f"{RAMP_S:g} s of build-up; {plan.logins} returning and {plan.logins} first logins per "
        "phase, spread over the window. The server's refusal delay is awaited, so a bogus "
        "login in flight costs a waiting coroutine, not a thread.",
        "From one address, the first guesses for that name are hashed and answered 401; then "
        "that name from that address is throttled (429, no hash) for lockout_duration. From many "
        "addresses with a fresh name each, every guess costs a hash: they queue for the two "
        "slots, which bounds the bogus answer rate by the hash rate.",
        "Returning users sign in through the trusted lane of the hash queue, so they do not "
        "wait behind the strangers' hashes; a first login from a new address does.",
        "The bogus rate includes the flood's build-up and its drain after the window.",
    ]
    return [Section(title.strip().rstrip("."), method, [calls, logins], notes, key=KEY)]

"""14. Locks: from the command to every live session cut, against ending the same grants one by one.

In one process: the core on each database, a gateway on 127.0.0.1 in front of an echo target,
and `sekisho forward`'s own client (`Forwarder`) holding live sessions through it. Grants,
memberships and logins are bulk-inserted as the sweep benchmark does.

- User lock: member01 holds `user_grants` grants (with their membership) and `user_sessions`
  live sessions. Timed: `core.locks.place(user member01)` until it returns (the grants ended
  through the local provider, the logins ended), and until the last session is seen cut by
  its forwarder. Peer, in the same run: what an incident responder had before locks, one
  `grant revoke` per grant, until the last session is cut.
- Target lock: `holders` people hold a grant reaching prod-admin-console; `holder_sessions`
  of them have a live session. Timed the same way. Peers: a raw
  `UPDATE grants SET status='revoked'` of those rows (the database floor), and one
  `grant revoke` per grant (one run).

Goal (issue 11): effective everywhere within 1 s at p99, for both.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert, update

from bench.backends import Backend, load_bench_model, open_core
from bench.report import Section, Table
from bench.stats import Summary, fmt, fmt_ratio, median, ratio
from sekisho.domain.actor import Actor
from sekisho.domain.identity import TOKEN_PREFIX
from sekisho.gateway import pki
from sekisho.gateway.client import Forwarder
from sekisho.gateway.server import Gateway, GatewayLimits
from sekisho.store.tables import Base

KEY = "locks"
GOAL_S = 1.0
TABLES = Base.metadata.tables
WORK = "ProdMemberWorkGroup"
TARGET = "prod-admin-console"
SYSTEM = Actor.system("bench")
T = TypeVar("T")
Timed = Callable[[str, Callable[[], T]], T]


@dataclass(frozen=True)
class LocksPlan:
    runs: int  # user-lock runs (and as many peer runs)
    user_grants: int
    user_sessions: int
    holders: int
    holder_sessions: int
    target_runs: int


FULL = LocksPlan(
    runs=20, user_grants=10, user_sessions=20, holders=2_000, holder_sessions=20, target_runs=5
)
QUICK = LocksPlan(
    runs=3, user_grants=10, user_sessions=5, holders=200, holder_sessions=5, target_runs=2
)


@dataclass
class Case:
    """One kind of lock on one database: each run's times, and its peers'."""

    returned_s: list[float] = field(default_factory=list)  # place() returned
    cut_s: list[float] = field(default_factory=list)  # the last live session seen cut
    one_by_one_s: list[float] = field(default_factory=list)  # peer: grant revoke each
    raw_update_s: list[float] = field(default_factory=list)  # peer: the database floor


@dataclass
class LocksResult:
    plan: LocksPlan
    user: dict[str, Case] = field(default_factory=dict)  # by database
    target: dict[str, Case] = field(default_factory=dict)


def run(plan: LocksPlan, workdir: Path, backends: list[Backend], timed: Timed[Any]) -> LocksResult:
    result = LocksResult(plan)
    for backend in backends:
        print(f"{backend.name}:", flush=True)
        data_dir = workdir / backend.name.lower()
        with backend.database(data_dir, "locks") as url, Bench(url, data_dir) as bench:
            result.user[backend.name] = timed("user lock", partial(bench.user_lock, plan))
            result.target[backend.name] = timed("target lock", partial(bench.target_lock, plan))
    return result


class EchoServer:
    """The target: a TCP listener on 127.0.0.1 that takes connections and holds them."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


class Bench:
    """The core, its gateway and the echo target, for one database."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.echo = EchoServer()
        self.core = open_core(url, data_dir)
        load_bench_model(self.core, {"port: 8643": f"port: {self.echo.port}"})
        _ca, leaf = pki.ensure_gateway_certificate(data_dir / "tls", [])
        limits = GatewayLimits(opens_per_user=1000.0, opens_burst=1000.0)
        self.gateway = Gateway(self.core, pki.server_context(leaf), "127.0.0.1", 0, limits)
        self.client_tls = pki.client_context(pki.ensure_ca(data_dir / "tls").cert)
        self.next_id = 1
        self.tokens = 0

    def __enter__(self) -> Bench:
        self.gateway.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.gateway.stop()
        self.core.db.dispose()
        self.echo.close()

    # -- one kind of lock, many runs ----------------------------------------------------------

    def user_lock(self, plan: LocksPlan) -> Case:
        case = Case()
        for _ in range(plan.runs):
            grant_ids = self.grants(["member01"] * plan.user_grants)
            watch = self.watched(["member01"] * plan.user_sessions)
            t0 = time.perf_counter()
            placed = self.core.locks.place(SYSTEM, "user", "member01", "laptop stolen")
            case.returned_s.append(time.perf_counter() - t0)
            case.cut_s.append(watch.all_cut(t0))
            self.core.locks.remove(SYSTEM, placed.lock.id)
            # The peer: the same state, ended one grant at a time.
            grant_ids = self.grants(["member01"] * plan.user_grants)
            watch = self.watched(["member01"] * plan.user_sessions)
            t0 = time.perf_counter()
            for grant_id in grant_ids:
                self.core.grants.revoke(SYSTEM, grant_id, "laptop stolen")
            revoked = time.perf_counter() - t0
            case.one_by_one_s.append(max(revoked, watch.all_cut(t0)))
        return case

    def target_lock(self, plan: LocksPlan) -> Case:
        case = Case()
        holders = [f"member{i:02d}" for i in range(1, plan.holder_sessions + 1)]
        holders += [f"holder{i:05d}" for i in range(plan.holders - len(holders))]
        for _ in range(plan.target_runs):
            self.grants(holders)
            watch = self.watched(holders[: plan.holder_sessions])
            t0 = time.perf_counter()
            placed = self.core.locks.place(SYSTEM, "target", TARGET, "console compromised")
            case.returned_s.append(time.perf_counter() - t0)
            case.cut_s.append(watch.all_cut(t0))
            self.core.locks.remove(SYSTEM, placed.lock.id)
            case.raw_update_s.append(self.raw_update(self.grants(holders)))
        grant_ids = self.grants(holders)
        watch = self.watched(holders[: plan.holder_sessions])
        t0 = time.perf_counter()
        for grant_id in grant_ids:
            self.core.grants.revoke(SYSTEM, grant_id, "console compromised")
        revoked = time.perf_counter() - t0
        case.one_by_one_s.append(max(revoked, watch.all_cut(t0)))
        return case

    # -- the state each run starts from ------------------------------------------------------

    def grants(self, users: list[str]) -> list[int]:
        """One active grant per entry (an hour left), with its membership; their ids."""
        now = datetime.now(UTC)
        model_id = self.model_id()
        first = self.next_id
        ids = list(range(first, first + len(users)))
        self.next_id += len(users)
        requests = [_request(i, u, now, model_id) for i, u in zip(ids, users, strict=True)]
        grants = [_grant(i, u, now) for i, u in zip(ids, users, strict=True)]
        members = [{"user": u, "group_name": WORK, "added_at": now} for u in sorted(set(users))]
        with self.core.db.engine.begin() as connection:
            connection.execute(insert(TABLES["requests"]), requests)
            connection.execute(insert(TABLES["grants"]), grants)
            connection.execute(
                TABLES["local_memberships"]
                .delete()
                .where(TABLES["local_memberships"].c.user.in_(sorted(set(users))))
            )
            connection.execute(insert(TABLES["local_memberships"]), members)
        return ids

    def watched(self, users: list[str]) -> Watch:
        return Watch(self.forwards(users))

    def forwards(self, users: list[str]) -> list[Forwarder]:
        """A live session for each entry, each on a login of its own."""
        made = []
        for user in users:
            f = Forwarder(
                self.gateway.address,
                self.client_tls,
                self.token(user),
                TARGET,
                server_hostname="localhost",
            )
            f.open()
            f.start()
            made.append(f)
        return made

    def token(self, user: str) -> str:
        self.tokens += 1
        token = f"{TOKEN_PREFIX}bench-{self.tokens:06d}-{user}"
        now = datetime.now(UTC)
        row = {
            "id": hashlib.sha256(token.encode()).hexdigest(),
            "user": user,
            "issued_at": now,
            "expires_at": now + timedelta(hours=1),
            "source": "bench",
        }
        with self.core.db.engine.begin() as connection:
            connection.execute(insert(TABLES["tokens"]), [row])
        return token

    def raw_update(self, grant_ids: list[int]) -> float:
        grants = TABLES["grants"]
        t0 = time.perf_counter()
        with self.core.db.engine.begin() as connection:
            connection.execute(
                update(grants).where(grants.c.id.in_(grant_ids)).values(status="revoked")
            )
        return time.perf_counter() - t0

    def model_id(self) -> int:
        with self.core.db.read() as s:
            return self.core.model_source.current(s)[0]


class Watch:
    """When each forwarder saw its session end, each watched by a thread of its own (so a
    session cut while the lock's call is still running counts when it was cut)."""

    def __init__(self, forwards: list[Forwarder]) -> None:
        self.forwards, self.ended = forwards, [0.0] * len(forwards)
        self.threads = [
            threading.Thread(target=self._wait, args=(i,), daemon=True)
            for i in range(len(forwards))
        ]
        for thread in self.threads:
            thread.start()

    def _wait(self, i: int) -> None:
        if self.forwards[i].wait(10):
            self.ended[i] = time.perf_counter()

    def all_cut(self, t0: float) -> float:
        """Seconds from `t0` until the last session ended."""
        for thread in self.threads:
            thread.join(15)
        if not all(self.ended):
            raise RuntimeError("a live session was not cut within 10 s")
        for f in self.forwards:
            f.close()
        return max(self.ended) - t0


def _request(i: int, user: str, now: datetime, model_id: int) -> dict[str, Any]:
    return {
        "id": i,
        "template": "AddUserToGroup",
        "action": "grant",
        "requester": user,
        "subject": user,
        "group_name": WORK,
        "start_at": None,
        "end_at": now + timedelta(hours=1),
        "reason": "routine production work",
        "change_info": {"target": "payment console", "change": "config", "rollback": "revert"},
        "params": {},
        "status": "succeeded",
        "level": 1,
        "created_at": now,
        "updated_at": now,
        "decide_by": now + timedelta(days=3),
        "runner_until": None,
        "model_id": model_id,
    }


def _grant(i: int, user: str, now: datetime) -> dict[str, Any]:
    return {
        "id": i,
        "request_id": i,
        "user": user,
        "group_name": WORK,
        "start_at": now - timedelta(minutes=5),
        "end_at": now + timedelta(hours=1),
        "status": "active",
        "created_at": now,
        "activated_at": now,
        "end_attempts": 0,
    }


# -- the report -----------------------------------------------------------------------------------


def sections(result: LocksResult) -> list[Section]:
    title, _, method = (__doc__ or "").strip().partition("\n")
    plan = result.plan
    columns = [
        "database",
        "lock",
        "runs",
        "place() returned p50 / p99 (s)",
        "every session cut p50 / p99 (s)",
        f"p99 within {GOAL_S:g} s",
        "peer: one `grant revoke` each, until all revoked and cut, median (s)",
        "ratio peer : lock cut (median)",
        "peer: raw UPDATE median (ms)",
        "ratio lock : raw UPDATE",
    ]
    table = Table(columns)
    for name, cases, what in (
        ("user", result.user, f"user: {plan.user_grants} grants, {plan.user_sessions} sessions"),
        (
            "target",
            result.target,
            f"target: {plan.holders:,} holders, {plan.holder_sessions} sessions",
        ),
    ):
        for backend, case in cases.items():
            returned, cut = Summary.of(case.returned_s), Summary.of(case.cut_s)
            peer = median(case.one_by_one_s)
            raw = median(case.raw_update_s)
            table.add(
                backend,
                what,
                str(cut.n),
                f"{fmt(returned.p50)} / {fmt(returned.p99)}",
                f"{fmt(cut.p50)} / {fmt(cut.p99)}",
                "yes" if cut.p99 <= GOAL_S else "no",
                fmt(peer),
                fmt_ratio(ratio(peer, cut.p50)),
                fmt(raw * 1000) if case.raw_update_s else "-",
                fmt_ratio(ratio(returned.p50, raw)) if case.raw_update_s else "-",
            )
        del name
    notes = [
        "Sessions are cut when the gateway hears `lock.placed` (and each grant's end) and "
        "re-checks them against the store; a user lock also ends the logins that opened them.",
        "`place()` returns after the provider (the local directory) confirmed every removal; "
        "access is already denied at the lock's commit, before that.",
        "One gateway process here; other nodes hear the same events over PostgreSQL "
        "LISTEN/NOTIFY (tests/gateway/test_cluster.py covers the path, not timed here).",
    ]
    return [Section(f"{title}", method, [table], notes, key=KEY)]

"""2. End-of-grant lag with the real scheduler, against asyncio's own timer precision.

Grants are filed and approved over HTTP with ends 1.2-2.6 s ahead (waves of distinct members,
ends 150 ms apart, so each end is its own deadline). The server's scheduler (SystemClock)
sleeps until the earliest end and sweeps. For every grant, the lag from its `end_at` to:
- the sweep's own record that access ended (`grant.ending` on the timeline: the instant the
  scheduler took the grant out of `active`), and when a reader of the store first saw it
  leave `active` (a poller in the benchmark process, every 2 ms);
- the first POST /decisions answer that says denied (a prober asks from 30 ms before the end;
  decisions check the end themselves, so this is the answer a gateway would get);
- the provider confirming the removal (the grant's `ended_at`, written when the local provider
  confirmed remove + untag, status `expired`), and when the poller first saw `expired`.
Waves alternate between running the poller and not, so the scheduler's own records are taken
without an outside reader on the database. The peer is the physical limit on this machine: how
late asyncio fires a timer (`call_at`), and how late the scheduler's own wait primitive
(`SystemClock.wait_until`) returns, both measured in the benchmark process.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench import api
from bench.api import People
from bench.report import Table
from bench.stats import Summary, fmt, fmt_ratio, ratio
from sekisho.clock import SystemClock
from sekisho.store.tables import Base

LEAD = 1.2  # seconds from the start of a wave to its first end
SPACING = 0.15  # seconds between ends within a wave
PROBE_EARLY = 0.03  # the prober starts asking this long before an end
POLL_EVERY = 0.002  # the store poller's period (seconds)
TABLES = Base.metadata.tables

# The seed's design: a scheduled checker (Lambda on a timer) reads TTL tags written to the
# minute (YYYYMMDDhhmm). Its period is not in the seed; 5 and 15 minutes are typical choices.
SEED_PERIODS_MIN = (5, 15)


# -- the peer: timer precision --------------------------------------------------------------


@dataclass
class TimerResult:
    call_at_ms: list[float] = field(default_factory=list)
    wait_until_ms: list[float] = field(default_factory=list)


async def _timers(n: int) -> TimerResult:
    loop = asyncio.get_running_loop()
    result = TimerResult()
    rng = random.Random(7)

    def fire(future: asyncio.Future[float]) -> None:
        future.set_result(loop.time())

    for _ in range(n):
        fired: asyncio.Future[float] = loop.create_future()
        target = loop.time() + rng.uniform(0.005, 0.025)
        loop.call_at(target, fire, fired)
        result.call_at_ms.append((await fired - target) * 1000)
    clock = SystemClock()
    wake = asyncio.Event()  # never set: the wait ends at its deadline, as between sweeps
    for _ in range(n):
        deadline = clock.now() + timedelta(seconds=rng.uniform(0.005, 0.025))
        await clock.wait_until(deadline, wake)
        result.wait_until_ms.append((clock.now() - deadline).total_seconds() * 1000)
    return result


def timer_precision(n: int) -> TimerResult:
    return asyncio.run(_timers(n))


# -- the store poller -----------------------------------------------------------------------


class StorePoller(threading.Thread):
    """Watches grants' status from outside the server: when did a reader first see a change?

    On SQLite it connects afresh for every poll, as sekisho does: an idle open connection
    would keep the WAL from being checkpointed when the server closes its own, and so speed
    the server up. On PostgreSQL it keeps one pooled connection (a new one costs a backend
    process). It polls only while `enabled`: the waves that record the scheduler's own timings
    run without it.
    """

    def __init__(self, database_url: str) -> None:
        super().__init__(name="store-poller", daemon=True)
        if make_url(database_url).get_backend_name() == "sqlite":
            self._engine = create_engine(database_url, poolclass=NullPool)
        else:
            self._engine = create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self._lock = threading.Lock()
        self._watched: set[int] = set()
        self._halt = threading.Event()
        self.enabled = False
        self.left_active: dict[int, float] = {}
        self.expired: dict[int, float] = {}
        self.polls = 0

    def watch(self, grant_id: int) -> None:
        with self._lock:
            self._watched.add(grant_id)

    def all_expired(self, grant_ids: list[int]) -> bool:
        with self._lock:
            return all(g in self.expired for g in grant_ids)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self._engine.dispose()

    def run(self) -> None:
        table = TABLES["grants"]
        while not self._halt.is_set():
            with self._lock:
                ids = sorted(self._watched) if self.enabled else []
            if ids:
                with self._engine.connect() as connection:
                    rows = connection.execute(
                        select(table.c.id, table.c.status).where(table.c.id.in_(ids))
                    ).all()
                seen = time.time()
                self.polls += 1
                with self._lock:
                    for grant_id, status in rows:
                        if status != "active":
                            self.left_active.setdefault(grant_id, seen)
                        if status == "expired":
                            self.expired.setdefault(grant_id, seen)
                            self._watched.discard(grant_id)
            time.sleep(POLL_EVERY)


# -- the grants ----------------------------------------------------------------------------


@dataclass
class Sample:
    grant_id: int
    request_id: int
    member: str
    end_at: float  # epoch seconds
    observed: bool  # the store poller ran during its wave
    denied_recv: float | None = None  # the first denied answer arrived
    ending_recorded: float | None = None
    ended_recorded: float | None = None


@dataclass
class ExpiryResult:
    samples: list[Sample] = field(default_factory=list)
    seen_left_active: dict[int, float] = field(default_factory=dict)
    seen_expired: dict[int, float] = field(default_factory=dict)
    late_approvals: int = 0  # grants provisioned less than 0.2 s before their end
    raced: int = 0  # approvals answered before provisioning (the scheduler ran the runbook)
    polls: int = 0

    def lags_ms(self) -> dict[str, list[float]]:
        def lag(at: float | None, end: float) -> list[float]:
            return [] if at is None else [(at - end) * 1000]

        out: dict[str, list[float]] = {key: [] for key, _ in METRICS}
        for s in self.samples:
            if s.observed:
                out["seen_left_active"] += lag(self.seen_left_active.get(s.grant_id), s.end_at)
                out["seen_expired"] += lag(self.seen_expired.get(s.grant_id), s.end_at)
            else:
                out["ending_recorded"] += lag(s.ending_recorded, s.end_at)
                out["ended_recorded"] += lag(s.ended_recorded, s.end_at)
            out["denied"] += lag(s.denied_recv, s.end_at)
        return out


METRICS = [
    ("ending_recorded", "(a) grant out of `active`: the scheduler's record"),
    ("seen_left_active", "(a) grant out of `active`: first seen by a store reader"),
    ("denied", "(a) POST /decisions says denied: answer received"),
    ("ended_recorded", "(b) provider confirmed, grant `expired`: recorded `ended_at`"),
    ("seen_expired", "(b) grant `expired`: first seen by a store reader"),
]


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def run(
    base_url: str, database_url: str, people: People, waves: int, per_wave: int
) -> ExpiryResult:
    """Waves alternate: the scheduler's own records come from waves without the store poller,
    what a reader sees from waves with it; the decision prober runs in every wave."""
    result = ExpiryResult()
    poller = StorePoller(database_url)
    poller.start()
    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the poller and the prober share this process's GIL
    try:
        with httpx.Client(base_url=base_url, timeout=30.0) as client:
            for wave in range(waves):
                members = [
                    people.members[(wave * per_wave + j) % len(people.members)]
                    for j in range(per_wave)
                ]
                poller.enabled = wave % 2 == 1
                result.samples += _wave(client, database_url, people, members, poller, result)
    finally:
        sys.setswitchinterval(previous_interval)
        poller.stop()
    result.seen_left_active = dict(poller.left_active)
    result.seen_expired = dict(poller.expired)
    result.polls = poller.polls
    _read_records(database_url, result.samples)
    return result


def _wave(
    client: httpx.Client,
    database_url: str,
    people: People,
    members: list[str],
    poller: StorePoller,
    result: ExpiryResult,
) -> list[Sample]:
    start = time.time()
    ends = [start + LEAD + j * SPACING for j in range(len(members))]
    filed = [
        api.file_request(client, people, m, until=datetime.fromtimestamp(e, UTC).isoformat())
        for m, e in zip(members, ends, strict=True)
    ]
    samples = []
    for j, (member, request) in enumerate(zip(members, filed, strict=True)):
        approver = people.approvers[j % len(people.approvers)]
        approved = api.approve(client, people, approver, request["id"])
        done, raced = api.until_provisioned(client, people, member, approved)
        result.raced += raced
        grant = done["grant"]
        if poller.enabled:
            poller.watch(grant["id"])
        end = _epoch(grant["end_at"])
        if time.time() > end - 0.2:
            result.late_approvals += 1
        samples.append(Sample(grant["id"], request["id"], member, end, poller.enabled))
    for sample in samples:  # in end order
        pause = sample.end_at - PROBE_EARLY - time.time()
        if pause > 0:
            time.sleep(pause)
        for _ in range(100_000):
            if not api.allowed(client, people, sample.member):
                sample.denied_recv = time.time()
                break
    # Let this wave's grants finish (provider confirmed) before the next wave starts.
    ids = [s.grant_id for s in samples]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if poller.enabled:
            if poller.all_expired(ids):
                return samples
            time.sleep(0.01)
        else:
            time.sleep(0.2)  # no reader while the scheduler works: look once it is done
            if _all_expired(database_url, ids):
                return samples
    raise RuntimeError(f"grants {ids} were not all expired 30 s after their ends")


def _all_expired(database_url: str, grant_ids: list[int]) -> bool:
    engine = create_engine(database_url, poolclass=NullPool)
    grants = TABLES["grants"]
    try:
        with engine.connect() as connection:
            statuses = connection.execute(
                select(grants.c.status).where(grants.c.id.in_(grant_ids))
            ).scalars()
            return all(status == "expired" for status in statuses)
    finally:
        engine.dispose()


def _read_records(database_url: str, samples: list[Sample]) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    grants, timeline = TABLES["grants"], TABLES["timeline"]
    by_request = {s.request_id: s for s in samples}
    try:
        with engine.connect() as connection:
            ids = [s.grant_id for s in samples]
            rows = connection.execute(
                select(grants.c.id, grants.c.ended_at).where(grants.c.id.in_(ids))
            ).all()
            ended: dict[int, datetime | None] = {row.id: row.ended_at for row in rows}
            ending = connection.execute(
                select(timeline.c.request_id, timeline.c.at).where(
                    timeline.c.request_id.in_(list(by_request)), timeline.c.kind == "grant.ending"
                )
            ).all()
            for request_id, at in ending:
                by_request[request_id].ending_recorded = at.timestamp()
    finally:
        engine.dispose()
    for s in samples:
        at = ended.get(s.grant_id)
        s.ended_recorded = at.timestamp() if at is not None else None


# -- the tables ----------------------------------------------------------------------------


def table(results: dict[str, ExpiryResult], timers: TimerResult) -> Table:
    wait = Summary.of(timers.wait_until_ms)
    t = Table(
        [
            "database",
            "lag from the grant's end to ...",
            "n",
            "p50 (ms)",
            "p99 (ms)",
            "max (ms)",
            "ratio p50 / p99 to the peer (`wait_until` lag)",
        ]
    )
    for name, r in results.items():
        lags = r.lags_ms()
        for key, label in METRICS:
            s = Summary.of(lags[key])
            t.add(
                name,
                label,
                str(s.n),
                fmt(s.p50),
                fmt(s.p99),
                fmt(s.max),
                f"{fmt_ratio(ratio(s.p50, wait.p50))} / {fmt_ratio(ratio(s.p99, wait.p99))}",
            )
    return t


def peer_table(timers: TimerResult, results: dict[str, ExpiryResult]) -> Table:
    t = Table(["peer and context", "n", "p50 (ms)", "p99 (ms)", "max (ms)"])
    for label, values in (
        ("asyncio `loop.call_at` lag (timer precision)", timers.call_at_ms),
        ("`SystemClock.wait_until` lag (the scheduler's wait)", timers.wait_until_ms),
    ):
        s = Summary.of(values)
        t.add(label, str(s.n), fmt(s.p50), fmt(s.p99), fmt(s.max))
    for period in SEED_PERIODS_MIN:
        mean_ms = period * 60_000 / 2
        worst_ms = (period + 1) * 60_000  # a whole period, plus the TTL's minute rounding
        t.add(
            f"the seed's design: a checker every {period} min (mean, worst)",
            "-",
            f"~{fmt(mean_ms)}",
            f"up to ~{fmt(worst_ms)}",
            "-",
        )
    for name, r in results.items():
        provider = Summary.of(r.lags_ms()["ended_recorded"])
        for period in SEED_PERIODS_MIN:
            t.add(
                f"{name}: seed's mean lag ({period} min checker) / sekisho's p50 (b)",
                "-",
                fmt_ratio(ratio(period * 60_000 / 2, provider.p50)),
                "-",
                "-",
            )
    return t

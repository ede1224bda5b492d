"""A flood of bogus sign-ins must not stall everyone else.

Over a real uvicorn: the refusal's delay holds no worker thread, the password hash holds no
transaction or lock, and no more hashes run at once than there are slots. The delays and
the hashes are parked on events the test releases, so "still in flight" is a fact the test
sees, not a race against a clock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from login_support import LOGIN, client, login_body, served
from sqlalchemy import func, select

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.config import Settings
from sekisho.providers.memory import MemoryProvider
from sekisho.store.db import Database
from sekisho.store.tables import RequestRow
from support import EXAMPLE_TEXT, INFO, People, assemble_core, code_for

FLOOD = 100
SLOTS = 2
DEADLINE = 30.0


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (polling) for something another thread or process does, within a deadline."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DEADLINE:.0f} s: {what}")
        time.sleep(0.01)


class ParkedDelays:
    """The refusal delay, parked until released: both the thread's sleep and the loop's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.parked = 0

    def sleep(self, _seconds: float) -> None:
        with self._lock:
            self.parked += 1
        self._released.wait()

    async def async_sleep(self, _seconds: float) -> None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self.parked += 1
            released = self._released.is_set()
            if not released:
                self._waiting.append((loop, waiter))
        if not released:
            await waiter

    def release(self) -> None:
        with self._lock:
            self._released.set()
            waiting, self._waiting = self._waiting, []
        for loop, waiter in waiting:
            loop.call_soon_threadsafe(waiter.set_result, None)


class ParkedHasher(PasswordHasher):
    """Argon2id at its cheapest, whose verify of PARK waits inside until let go, one by one."""

    PARK = "park-this-verify"

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self._lock = threading.Lock()
        self._gate = threading.Semaphore(0)
        self.inside = 0
        self.most_inside = 0
        self.finished = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        if password != self.PARK:
            return super().verify(hash, password)
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self._gate.acquire()
        with self._lock:
            self.inside -= 1
            self.finished += 1
        return super().verify(hash, password)

    def let_one_go(self) -> None:
        self._gate.release()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", login_failure_delay=1.0, login_hash_slots=SLOTS)


@pytest.fixture
def delays() -> Iterator[ParkedDelays]:
    parked = ParkedDelays()
    yield parked
    parked.release()  # nothing stays parked past the test, whatever it asserted


@pytest.fixture
def hasher() -> ParkedHasher:
    return ParkedHasher()


@pytest.fixture
def core(
    db_url: str,
    clock: ManualClock,
    provider: MemoryProvider,
    settings: Settings,
    delays: ParkedDelays,
    hasher: ParkedHasher,
) -> Iterator[Core]:
    """The shared core's parts, but sleeping on the parked delays and hashing with the
    parked hasher (only a verify of PARK is parked: every other password hashes as usual)."""
    built = assemble_core(
        Database(db_url),
        settings,
        provider,
        clock,
        (EXAMPLE_TEXT, "example.yaml"),
        sleep=delays.sleep,
        async_sleep=delays.async_sleep,
        password_hasher=hasher,
    )
    yield built
    built.db.dispose()


def in_background(
    pool: ThreadPoolExecutor, url: str, address: str, body: dict[str, str]
) -> Future[int]:
    def call() -> int:
        with client(url, address) as http:
            return http.post(LOGIN, json=body).status_code

    return pool.submit(call)


def test_a_logged_in_call_completes_while_100_bogus_logins_are_in_flight(
    core: Core, delays: ParkedDelays
) -> None:
    people = People(core)
    member = people.headers("member01")
    password, secret = people.enroll("leader01")
    bogus = login_body("ghost", "guess", "000000")
    with served(core) as url, ThreadPoolExecutor(max_workers=FLOOD) as pool:
        flood = [in_background(pool, url, "127.0.0.2", bogus) for _ in range(FLOOD)]
        eventually(lambda: delays.parked == FLOOD, f"all {FLOOD} bogus logins wait out their delay")

        with client(url) as http:
            listed = http.get("/api/v1/requests", headers=member)
            assert listed.status_code == 200, listed.text
        with client(url, "127.0.0.3") as http:
            real = http.post(LOGIN, json=login_body("leader01", password, code_for(core, secret)))
            assert real.status_code == 200, real.text
        assert not any(f.done() for f in flood)  # the flood was in flight all along

        delays.release()
        statuses = [f.result() for f in flood]
    # Refused alike, whether the guess got as far as a hash (401) or was throttled first (429).
    assert len(statuses) == FLOOD
    assert set(statuses) <= {401, 429}


def test_a_password_hash_holds_no_transaction(
    core: Core, hasher: ParkedHasher, delays: ParkedDelays
) -> None:
    """While one sign-in's hash is being computed, others write (on SQLite: its write lock)."""
    delays.release()  # the refusal answers after its hash, not after its delay
    headers = People(core).headers("member01")
    request = {
        "template": "AddUserToGroup",
        "group": "ProdMemberWorkGroup",
        "reason": "fix the payment console",
        "for": "2h",
        "info": INFO,
    }
    with served(core) as url, ThreadPoolExecutor(max_workers=1) as pool:
        slow = in_background(pool, url, "127.0.0.2", login_body("ghost", hasher.PARK, "000000"))
        eventually(lambda: hasher.inside == 1, "the sign-in's hash has started")
        with client(url) as http:
            filed = http.post("/api/v1/requests", json=request, headers=headers)
            assert filed.status_code == 201, filed.text
        assert not slow.done()
        hasher.let_one_go()
        assert slow.result() == 401
    with core.db.read() as s:
        assert s.scalar(select(func.count()).select_from(RequestRow)) == 1


def test_no_more_hashes_run_at_once_than_there_are_slots(
    core: Core, hasher: ParkedHasher, delays: ParkedDelays
) -> None:
    """Twelve guesses at twelve names from twelve addresses: none throttled, two hash at once."""
    delays.release()  # each refusal answers after its hash, not after its delay
    guesses = 12
    with served(core) as url, ThreadPoolExecutor(max_workers=guesses) as pool:
        answers = [
            in_background(pool, url, f"127.0.1.{i}", login_body(f"ghost{i}", hasher.PARK, "0"))
            for i in range(1, guesses + 1)
        ]
        for done in range(guesses):
            eventually(
                lambda d=done: hasher.inside >= min(SLOTS, guesses - d),
                "the next hashes have started",
            )
            hasher.let_one_go()
            eventually(lambda d=done: hasher.finished > d, "the released hash has finished")
        statuses = [a.result() for a in answers]
    assert statuses == [401] * guesses
    assert hasher.most_inside == SLOTS
